"""Peers for the robustness tests: stamped frames, malformed messages, peer processes.

Run as a script, this file is a NetGear peer in its own process, so a test can kill it with
SIGKILL and start it again::

    python tests/peers.py receiver --pattern 1 --port 5555 [--options JSON]
    python tests/peers.py sender --pattern 1 --port 5555 --start 0 [--count N] [--interval S]
    python tests/peers.py receiver --pattern 0 --port null --protocol shm --address cam0

Each prints one line per event on stdout: ``ready``; a receiver ``frame VALUE`` (or ``frame
PORT VALUE`` in multi-server mode), then ``end`` and ``stats JSON`` (``--pause-at V``: stop
reading after frame V, to be killed there); a sender ``sent VALUE``,
then ``done``. :class:`Peer` starts such a process and follows its output.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

STAMP_BYTES = 64


# -- stamped frames ------------------------------------------------------------------------
def stamp(value: int, size: int = STAMP_BYTES) -> np.ndarray:
    """A uint8 frame carrying ``value`` (int64) and the send time (float64) in its head."""
    frame = np.zeros(max(size, 16), np.uint8)
    frame[:8] = np.frombuffer(np.int64(value).tobytes(), np.uint8)
    frame[8:16] = np.frombuffer(np.float64(time.time()).tobytes(), np.uint8)
    return frame


def value_of(frame: np.ndarray) -> int:
    return int(np.frombuffer(frame[:8].tobytes(), np.int64)[0])


def age_of(frame: np.ndarray) -> float:
    """Seconds since the frame was stamped (same machine, same clock)."""
    return time.time() - float(np.frombuffer(frame[8:16].tobytes(), np.float64)[0])


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` so far, from the scheduler (ns resolution; the
    10 ms ticks of ``cpu_times()`` make 1 % of a one-second window a single tick)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread ended
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


# -- malformed messages --------------------------------------------------------------------
BAD_SENDER = 777_000_001  # instance id of the well-formed-header messages below


def _header(seq: int, **fields: Any) -> bytes:
    base: dict[str, Any] = {"v": 1, "k": 0, "s": seq, "t": time.time(), "i": BAD_SENDER}
    base.update(fields)
    return msgpack.packb(base)


def _ext_array(descr: Any, shape: Any, body: bytes) -> msgpack.ExtType:
    return msgpack.ExtType(1, msgpack.packb([descr, shape, body]))


def bad_messages(count: int, seed: int = 7) -> list[list[bytes]]:
    """``count`` malformed multipart messages of many kinds, the same for a given seed.

    Messages whose header is well formed (and that fail on their payload) carry increasing
    sequence numbers from :data:`BAD_SENDER`, so none is mistaken for a retried duplicate.
    """
    rng = random.Random(seed)

    def noise(low: int, high: int) -> bytes:
        return rng.randbytes(rng.randint(low, high))

    makers: list[Callable[[int], list[bytes]]] = [
        lambda s: [b"\xc1" + noise(0, 200)],  # 0xc1 is never valid msgpack
        lambda s: [b"\xc1" + noise(0, 20) for _ in range(rng.randint(4, 6))],  # too many parts
        lambda s: [msgpack.packb(rng.choice([[1, 0, s], 42, "frame", None, b"x"])), b""],
        lambda s: [_header(s, v=rng.choice([0, 2, "1", None, 1.5, [1]])), b""],
        lambda s: [_header(s, k=rng.choice([7, -1, "frame", None])), b""],
        lambda s: [msgpack.packb({"v": 1, "k": 0}), b""],  # no seq, no time
        lambda s: [_header(s, d="|u1", h=rng.choice([[2**40, 2**40], [-1, 4], [1] * 33])),
                   noise(0, 64)],
        lambda s: [_header(s, d=rng.choice(["O", "S0", "(2,)i4", "garbage", [["a", "|O"]]]),
                           h=[2]), bytes(16)],
        lambda s: [_header(s, d="|u1", h=[8, 8, 3]), bytes(8 * 8 * 3 - rng.randint(1, 100))],
        lambda s: [_header(s, d="|u1", h=[8, 8, 3]), bytes(8 * 8 * 3 + rng.randint(1, 100))],
        lambda s: [_header(s, c=rng.choice(["zstd", "", "RAW"]), d="|u1", h=[4]), bytes(4)],
        lambda s: [_header(s, d="|u1", h=[4])],  # frame without payload
        lambda s: [_header(s, d="|u1", h=[4]), bytes(4), bytes(4), b""],  # four parts
        lambda s: [_header(s, d="|u1", h=[4], m=msgpack.ExtType(rng.randint(2, 127), b"?")),
                   bytes(4)],
        lambda s: [_header(s, d="|u1", h=[4], m=_ext_array("<i4", [2], b"abc")), bytes(4)],
        lambda s: [_header(s, d="|u1", h=[4], i=_ext_array("<i8", [2], bytes(16))), bytes(4)],
        lambda s: [_header(s, d="|u1", h=[4], x=["|u1", [3]]), bytes(4)],  # part 2 missing
        lambda s: [_header(s, c="jpeg", d="|u1", h=[8, 8, 3], j=["BGR", True, False]),
                   b"\xff\xd8\xff" + noise(0, 100)],
    ]
    return [makers[seq % len(makers)](seq) for seq in range(count)]


def good_message(seq: int, frame: np.ndarray, sender: int = BAD_SENDER,
                 kind: int = 0) -> list[bytes]:
    """A well-formed wire v1 message, built by hand as a foreign sender would."""
    header: dict[str, Any] = {"v": 1, "k": kind, "s": seq, "t": time.time(), "i": sender}
    if kind != 0:
        return [msgpack.packb(header)]
    header.update(d=frame.dtype.str, h=list(frame.shape))
    return [msgpack.packb(header), frame.tobytes()]


# -- raw ZMTP ------------------------------------------------------------------------------
def zmtp_null_peer(port: int, socket_type: bytes) -> Any:
    """A raw TCP socket that has sent the ZMTP 3.0 greeting and NULL READY as ``socket_type``.

    What it sends next is up to the caller (``zmtp_part``), so a test can do what libzmq
    itself never would, such as a message whose parts never end.
    """
    import socket

    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    greeting = (b"\xff" + bytes(8) + b"\x7f" + bytes([3, 0]) + b"NULL".ljust(20, b"\x00")
                + b"\x00" + bytes(31))
    name = b"Socket-Type"
    body = (b"\x05READY" + bytes([len(name)]) + name + len(socket_type).to_bytes(4, "big")
            + socket_type)
    conn.sendall(greeting + bytes([0x04, len(body)]) + body)
    # Wait for the other side's greeting and READY: libzmq reset connections whose first
    # message part raced its side of the handshake.
    expected, got = 64 + 2, b""
    while len(got) < expected:
        chunk = conn.recv(expected - len(got))
        if not chunk:
            raise ConnectionError("the receiver closed during the ZMTP handshake")
        got += chunk
        if len(got) == 66:
            expected = 66 + got[65]  # a short command frame: flags, size, body
    return conn


def zmtp_part(size: int, more: bool) -> bytes:
    """The ZMTP 3.0 frame header of a message part of ``size`` bytes (long form)."""
    return bytes([0x02 | (0x01 if more else 0)]) + size.to_bytes(8, "big")


# -- peer processes ------------------------------------------------------------------------
class Peer:
    """A peer process (this file run as a script) whose stdout lines are collected."""

    def __init__(self, role: str, pattern: int, port: Any, netns: str | None = None,
                 **args: Any) -> None:
        # netns: run inside that network namespace (``ip netns exec`` execs in place, so
        # the pid is still the peer's own)
        wrap = ["ip", "netns", "exec", netns] if netns else []
        command = [*wrap, sys.executable, str(Path(__file__).resolve()), role,
                   "--pattern", str(pattern), "--port", json.dumps(port)]
        for key, value in args.items():
            flag = "--" + key.replace("_", "-")
            as_json = key == "options" or isinstance(value, list)
            command += [flag, json.dumps(value) if as_json else str(value)]
        self.lines: list[str] = []
        self.stamps: list[float] = []  # time.monotonic() each stdout line was read
        self.errors: list[str] = []
        self._changed = threading.Condition()
        self.role = role
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self._readers = [
            threading.Thread(target=self._follow, args=(stream, sink), daemon=True)
            for stream, sink in ((self.proc.stdout, self.lines), (self.proc.stderr, self.errors))
        ]
        for reader in self._readers:
            reader.start()

    def _follow(self, stream: Any, sink: list[str]) -> None:
        for line in stream:
            with self._changed:
                if sink is self.lines:
                    self.stamps.append(time.monotonic())
                sink.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate(lines)``; fail at once if the process exited without it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.lines):
                left = deadline - time.monotonic()
                gone = not any(reader.is_alive() for reader in self._readers)
                if left <= 0 or gone:
                    raise AssertionError(
                        f"peer {self.role} did not get there within {timeout}s "
                        f"(exit code {self.proc.poll()}); last lines {self.lines[-5:]}; "
                        f"stderr {self.errors[-10:]}")
                self._changed.wait(min(left, 0.1))

    def wait_ready(self, timeout: float = 10.0) -> Peer:
        self.wait_for(lambda lines: "ready" in lines, timeout)
        return self

    def count(self, prefix: str) -> int:
        return sum(1 for line in list(self.lines) if line.startswith(prefix))

    def values(self, prefix: str = "frame ") -> list[int]:
        return [int(line.split()[-1]) for line in list(self.lines) if line.startswith(prefix)]

    def frames_by_port(self) -> dict[str, list[int]]:
        """Multi-server receiver: the values received from each server port."""
        found: dict[str, list[int]] = {}
        for line in list(self.lines):
            if line.startswith("frame "):
                _, port, value = line.split()
                found.setdefault(port, []).append(int(value))
        return found

    def stats(self, timeout: float = 10.0) -> dict[str, Any]:
        """The stats the peer printed as it finished (waits for them)."""
        self.wait_for(lambda lines: any(line.startswith("stats ") for line in lines), timeout)
        found = [line for line in self.lines if line.startswith("stats ")]
        return json.loads(found[-1][len("stats "):])

    def kill(self) -> None:
        """SIGKILL: no close(), no end-of-stream, sockets dropped by the kernel."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def wait(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout)

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()


def _hub_states(gear: Any) -> dict[str, str]:
    return {name: entry["state"] for name, entry in gear.stats["hub"]["live"].items()}


def _run_receiver(args: argparse.Namespace, gear: Any) -> None:
    from netgear import PeerTimeoutError

    print("ready", flush=True)
    states: dict[str, str] | None = None
    while True:
        try:
            item = gear.recv()
        except PeerTimeoutError:
            if not args.states:
                raise
            item = ()  # no frame within receive_timeout: only look at the hub's states
        if args.states:  # a one-port hub: print its live set whenever a state changes
            now = _hub_states(gear)
            if now != states:
                states = now
                print("states " + json.dumps(now), flush=True)
            if item == ():
                continue
        if item is None:
            break
        if isinstance(item, tuple):
            print(f"frame {item[0]} {value_of(item[-1])}", flush=True)
        else:
            print(f"frame {value_of(item)}", flush=True)
        if args.sleep:
            time.sleep(args.sleep)
        if args.pause_at is not None and value_of(item[-1] if isinstance(item, tuple)
                                                  else item) == args.pause_at:
            time.sleep(30)  # hold still (not reading) until the test kills this process
    print("end", flush=True)
    print("stats " + json.dumps(gear.stats), flush=True)


def _run_sender(args: argparse.Namespace, gear: Any) -> None:
    print("ready", flush=True)
    value = args.start
    while args.count is None or value < args.start + args.count:
        gear.send(stamp(value))
        if not args.quiet:
            print(f"sent {value}", flush=True)
        value += 1
        if args.interval:
            time.sleep(args.interval)
    gear.close()
    print("done", flush=True)
    print("stats " + json.dumps(gear.stats), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["receiver", "sender"])
    parser.add_argument("--pattern", type=int, required=True)
    parser.add_argument("--port", type=json.loads, required=True)
    parser.add_argument("--options", type=json.loads, default={})
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--interval", type=float, default=0.0)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--pause-at", type=int, default=None)
    parser.add_argument("--quiet", type=int, default=0)  # sender: no line per frame
    parser.add_argument("--protocol", default="tcp")
    parser.add_argument("--states", type=int, default=0)  # one-port hub: print its states
    parser.add_argument("--address", default="127.0.0.1",  # a list of hubs as JSON
                        type=lambda text: json.loads(text) if text.startswith("[") else text)
    args = parser.parse_args()
    from netgear import NetGear

    receiving = args.role == "receiver"
    gear = NetGear(address=args.address, port=args.port, protocol=args.protocol,
                   pattern=args.pattern, receive_mode=receiving, **args.options)
    try:
        (_run_receiver if receiving else _run_sender)(args, gear)
    finally:
        gear.close()


if __name__ == "__main__":
    main()
