"""Hostile peers against a receiver's memory: flooded queues and a message that never ends.

The receiver runs in its own process so its resident size (psutil) is its own; the attackers
are raw pyzmq sockets in this process, sending one buffer over and over (zero-copy), so they
cost this process nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

import msgpack
import psutil
import pytest
import zmq
from peers import stamp, zmtp_null_peer, zmtp_part

from netgear import NetGear

MIB = 1024 * 1024

# A receiver that takes one message and then stops reading: everything else a peer pushes
# stays queued. (One recv() is needed: a bound SUB socket only attaches a new connection,
# and sends it the subscription, when its own thread next calls into libzmq.)
STALLED = """
import json, sys, time
from netgear import NetGear
rx = NetGear(address="127.0.0.1", port=int(sys.argv[1]), pattern=int(sys.argv[2]),
             receive_mode=True, **json.loads(sys.argv[3]))
print("ready", flush=True)
rx.recv()
print("stalled", flush=True)
sys.stdin.read()  # until the test closes our stdin
rx.close()
"""

# A receiver that reads and prints how many frames it got, once a second.
READING = """
import json, sys, time
from netgear import NetGear
rx = NetGear(address="127.0.0.1", port=int(sys.argv[1]), pattern=int(sys.argv[2]),
             receive_mode=True, receive_timeout=0.5, **json.loads(sys.argv[3]))
print("ready", flush=True)
count, last = 0, time.monotonic()
while True:
    try:
        if rx.recv() is not None:
            count += 1
    except Exception:
        pass
    if time.monotonic() - last > 0.2:
        print("frames", count, flush=True)
        last = time.monotonic()
"""


class Receiver:
    def __init__(self, script: str, port: int, pattern: int, options: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, str(port), str(pattern), json.dumps(options)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"
        self.ps = psutil.Process(self.proc.pid)
        self.frames = 0
        self.reader = threading.Thread(target=self._follow, daemon=True)
        self.reader.start()

    def _follow(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("frames "):
                self.frames = int(line.split()[1])

    def rss(self) -> int:
        return self.ps.memory_info().rss

    def settled_rss(self, quiet: float = 1.0, limit: float = 8.0) -> int:
        """The largest RSS seen until it stops growing for ``quiet`` seconds."""
        top = self.rss()
        since = time.monotonic()
        deadline = since + limit
        while time.monotonic() < deadline and time.monotonic() - since < quiet:
            time.sleep(0.1)
            now = self.rss()
            if now > top + MIB:
                top, since = now, time.monotonic()
            top = max(top, now)
        return top

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def _frame_message(seq: int, payload: bytes) -> list[Any]:
    header = {"v": 1, "k": 0, "s": seq, "t": time.time(), "i": 424242,
              "d": "|u1", "h": [len(payload)]}
    return [msgpack.packb(header), payload]


# -- finding 3: receive queues sized from a byte budget ---------------------------------------
FRAME = 8 * MIB
BUDGET = 16 * MIB  # // FRAME = 2 messages queued per peer
PER_PEER = (BUDGET // FRAME + 1) * (FRAME + 4096)  # queued + the one libzmq holds back
FLOODERS = {0: (zmq.PAIR, 1), 1: (zmq.DEALER, 2), 2: (zmq.PUB, 2)}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("pattern", [0, 1, 2], ids=["PAIR", "REP", "SUB"])
def test_a_stalled_receiver_holds_at_most_its_stated_bytes_per_flooding_peer(pattern, port):
    rx = Receiver(STALLED, port, pattern, {"max_frame_bytes": FRAME,
                                           "receive_queue_bytes": BUDGET})
    context = zmq.Context()
    socket_type, peers = FLOODERS[pattern]
    payload = bytes(FRAME)  # the largest part the receiver accepts
    socks: list[zmq.Socket] = []
    try:
        time.sleep(0.3)
        baseline = rx.rss()
        offered = 0
        for _ in range(peers):
            sock = context.socket(socket_type)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, 4)
            sock.setsockopt(zmq.SNDTIMEO, 1500)
            sock.connect(f"tcp://127.0.0.1:{port}")
            socks.append(sock)
        time.sleep(0.5)  # connected (and subscribed, for PUB)
        for sock in socks:
            for seq in range(40):  # 320 MiB offered per peer
                parts = _frame_message(seq, payload)
                if socket_type == zmq.DEALER:
                    parts = [b"", *parts]
                try:
                    sock.send_multipart(parts, copy=False)
                except zmq.Again:
                    break  # the receiver stopped taking: the bound at work
                offered += 1
                if socket_type == zmq.PUB:
                    time.sleep(0.02)  # a publisher drops until the subscription is in
        growth = rx.settled_rss() - baseline
        bound = peers * PER_PEER + 24 * MIB  # + allocator and kernel-side slack
        assert growth < bound, f"grew {growth / MIB:.0f} MiB, bound {bound / MIB:.0f} MiB"
        assert offered >= peers * 3  # the flooders did get their first messages in
    finally:
        for sock in socks:
            sock.close(0)
        context.term()
        rx.close()


# -- finding 2: a message that never ends -----------------------------------------------------
@pytest.mark.timeout(90)
def test_an_unfinished_message_costs_only_what_was_sent_and_ends_with_its_peer(port):
    part = 40 * MIB  # above glibc's mmap ceiling: freed parts go back to the system at once
    rx = Receiver(READING, port, 1, {"max_frame_bytes": 64 * MIB})
    tx = NetGear(address="127.0.0.1", port=port, pattern=1)
    stop = threading.Event()
    attacker = None

    def legit() -> None:
        value = 0
        while not stop.is_set():
            tx.send(stamp(value, size=4096))
            value += 1

    sender = threading.Thread(target=legit, daemon=True)
    try:
        sender.start()
        time.sleep(1.0)
        baseline = rx.rss()
        # raw ZMTP: libzmq itself never puts an unfinished message on the wire
        attacker = zmtp_null_peer(port, b"DEALER")
        blob = memoryview(bytes(part))
        attacker.sendall(zmtp_part(0, more=True))  # the envelope delimiter REP expects
        for _ in range(6):  # 240 MiB, every part flagged MORE
            attacker.sendall(zmtp_part(part, more=True))
            attacker.sendall(blob)
        frames_before = rx.frames
        held = rx.settled_rss() - baseline
        # held, but not amplified: the receiver holds what the attacker sent
        assert 5 * part < held < 6 * part + 32 * MIB, f"held {held / MIB:.0f} MiB"
        time.sleep(0.5)
        assert rx.frames > frames_before  # the legitimate sender kept going meanwhile
        attacker.close()  # the peer leaves: libzmq drops its unfinished message
        deadline = time.monotonic() + 10
        while rx.rss() - baseline > 32 * MIB and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rx.rss() - baseline < 32 * MIB
    finally:
        stop.set()
        sender.join(10)
        if attacker is not None:
            attacker.close()
        tx.close()
        rx.close()
