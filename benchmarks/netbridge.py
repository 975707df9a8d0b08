"""A lossy, slow wire between two network interfaces, in user space (this kernel has no netem).

Run inside a network namespace that holds two veth ends (``netfault.Topology`` does this)::

    python netbridge.py m-a m-b --loss 0.05 --delay 0.05 --jitter 0.02 --seed 1

Every Ethernet frame (ARP included) that arrives on one interface leaves on the other,
unless it is dropped (probability ``--loss``, independently per frame). Each kept frame
is held for ``delay ± jitter`` seconds (``--dist uniform``: uniform in that range;
``--dist normal``: Gaussian with sigma ``jitter``; both clamped at 0) and released from
a heap in order of due time. So with jitter, frames **can be reordered** when two are
closer together than their delay difference, as on a real multipath network (netem
does the same); ``--ordered`` keeps each direction FIFO by never letting a frame fall due
before the one ahead of it.

The sockets use ``PACKET_VNET_HDR``: the veths still offload checksums, so a frame read
from a packet socket may carry a partial checksum, and the header passes the "finish
this checksum" note (and any GSO segmentation) on to the kernel when the frame is sent.
Without it TCP and UDP through the bridge fail their checksums.

Output, one JSON object per line on stdout: ``{"event": "ready"}`` once both sockets are
bound, ``{"event": "stats", ...}`` on SIGUSR1 and once more at exit (SIGTERM/SIGINT),
counting per direction the frames received, forwarded, dropped (by ``--loss``) and
failed (the kernel refused the send, e.g. the outgoing link is down).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import heapq
import json
import os
import random
import select
import signal
import socket
import sys
import time
from typing import Any

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23  # else a frame we send comes back to us on the same socket
FRAME_MAX = 65536 + 10 + 256  # a GSO frame (64 KiB) + virtio-net header + link headers
BATCH = 256  # frames read from one socket before timers get a turn
SOCK_BUF = 4 << 20
# The link went down or its queue is full: the frame is lost, as on a real wire.
LINK_ERRNOS = {errno.ENETDOWN, errno.ENXIO, errno.ENOBUFS, errno.EAGAIN, errno.ENODEV}


def open_port(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        sock.setsockopt(socket.SOL_SOCKET, opt, SOCK_BUF)
    sock.bind((ifname, ETH_P_ALL))
    sock.setblocking(False)
    return sock


class Bridge:
    def __init__(self, ifaces: tuple[str, str], loss: float, delay: float, jitter: float,
                 dist: str, ordered: bool, seed: int) -> None:
        self.names = ifaces
        self.socks = (open_port(ifaces[0]), open_port(ifaces[1]))
        self.loss, self.delay, self.jitter = loss, delay, jitter
        self.dist, self.ordered = dist, ordered
        self.rng = random.Random(seed)
        self.heap: list[tuple[float, int, int, bytes]] = []  # (due, seq, out index, frame)
        self.seq = 0
        self.last_due = [0.0, 0.0]
        keys = ("received", "forwarded", "dropped", "failed", "recv_errors")
        self.stats = [dict.fromkeys(keys, 0), dict.fromkeys(keys, 0)]

    def hold_for(self) -> float:
        if self.jitter <= 0:
            return self.delay
        if self.dist == "normal":
            return max(0.0, self.rng.gauss(self.delay, self.jitter))
        return max(0.0, self.delay + self.rng.uniform(-self.jitter, self.jitter))

    def send(self, out: int, frame: bytes) -> None:
        stats = self.stats[1 - out]  # counted against the direction the frame travels
        try:
            self.socks[out].send(frame)
            stats["forwarded"] += 1
        except OSError as exc:
            if exc.errno not in LINK_ERRNOS:
                raise
            stats["failed"] += 1

    def pump(self, side: int) -> None:
        sock, stats, out = self.socks[side], self.stats[side], 1 - side
        for _ in range(BATCH):
            try:
                frame = sock.recv(FRAME_MAX)
            except BlockingIOError:
                return
            except OSError as exc:  # the interface went down: reported once, then it waits
                if exc.errno not in LINK_ERRNOS:
                    raise
                stats["recv_errors"] += 1
                return
            stats["received"] += 1
            if self.loss > 0 and self.rng.random() < self.loss:
                stats["dropped"] += 1
                continue
            hold = self.hold_for()
            if hold <= 0 and not self.heap:
                self.send(out, frame)
                continue
            due = time.monotonic() + hold
            if self.ordered:
                due = max(due, self.last_due[side])
                self.last_due[side] = due
            self.seq += 1
            heapq.heappush(self.heap, (due, self.seq, out, frame))

    def release(self) -> float | None:
        """Send every frame now due; return seconds until the next one (None: none held)."""
        now = time.monotonic()
        while self.heap and self.heap[0][0] <= now:
            _, _, out, frame = heapq.heappop(self.heap)
            self.send(out, frame)
        return max(0.0, self.heap[0][0] - now) if self.heap else None

    def report(self) -> dict[str, Any]:
        a, b = self.names
        return {"event": "stats", f"{a}->{b}": dict(self.stats[0]),
                f"{b}->{a}": dict(self.stats[1]), "held": len(self.heap)}

    def serve(self) -> None:
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        pending: list[int] = []
        signal.set_wakeup_fd(wake_w.fileno())
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            signal.signal(signum, lambda signum, _frame: pending.append(signum))
        emit({"event": "ready", "pid": os.getpid()})
        readers = [*self.socks, wake_r]
        while True:
            timeout = self.release()
            readable, _, _ = select.select(readers, [], [], timeout)
            for sock in readable:
                if sock is wake_r:
                    with_drain(wake_r)
                else:
                    self.pump(self.socks.index(sock))
            while pending:
                emit(self.report())
                if pending.pop(0) != signal.SIGUSR1:
                    return


def with_drain(sock: socket.socket) -> None:
    try:
        while sock.recv(512):
            pass
    except BlockingIOError:
        pass


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("iface_a")
    ap.add_argument("iface_b")
    ap.add_argument("--loss", type=float, default=0.0, help="drop probability per frame")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds, each direction")
    ap.add_argument("--jitter", type=float, default=0.0, help="seconds, see --dist")
    ap.add_argument("--dist", choices=("uniform", "normal"), default="uniform")
    ap.add_argument("--ordered", action="store_true", help="never reorder a direction")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nice", type=int, default=-10, help="niceness increment (root may "
                    "go below 0); 0 leaves the priority alone")
    args = ap.parse_args(argv)
    if not 0.0 <= args.loss < 1.0:
        ap.error(f"--loss {args.loss}: must be in [0, 1)")
    if args.delay < 0 or args.jitter < 0:
        ap.error(f"--delay {args.delay} / --jitter {args.jitter}: must be >= 0")
    if args.nice:
        # A frame released late is extra delay the caller did not ask for: on a busy box
        # a higher priority keeps the bridge's wake-ups close to the due times.
        with contextlib.suppress(OSError):
            os.nice(args.nice)
    Bridge((args.iface_a, args.iface_b), args.loss, args.delay, args.jitter, args.dist,
           args.ordered, args.seed).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
