"""A peer process for tests/test_shm_engine.py: publishes or reads one shm stream.

Frame ``k`` (header ``b"k"``) is filled with ``k % 251`` everywhere, so a torn or
overwritten frame shows as a mix of values. The peer prints one JSON line per event
("ready", progress, "done" with its counts) and flushes it.

    python tests/shm_peer.py send NAME [--fanout] [--count N] [--forever] [--hw 480x640]
    python tests/shm_peer.py recv NAME [--fanout] [--count N] [--slow S] [--then-hang]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from netgear.errors import PeerTimeoutError
from netgear.shm import ShmReceiver, ShmSender


def say(**kw: object) -> None:
    print(json.dumps(kw), flush=True)


def send(args: argparse.Namespace, shape: tuple[int, ...]) -> None:
    tx = ShmSender(args.name, fanout=args.fanout, slot_bytes=int(np.prod(shape)))
    say(event="ready")
    frame = np.empty(shape, np.uint8)
    k, t0 = 0, time.monotonic()
    while args.forever or k < args.count:
        frame.fill((k + 1) % 251)
        try:
            if tx.publish(frame, str(k + 1).encode(), timeout=1.0):
                k += 1
        except PeerTimeoutError:
            continue  # no receiver right now: keep trying, as a camera would
        if args.rate:
            time.sleep(1 / args.rate)
    say(event="done", sent=k, seconds=time.monotonic() - t0, busy=tx.busy_drops)
    if not args.no_close:
        tx.close()


def recv(args: argparse.Namespace) -> None:
    rx = ShmReceiver(args.name, fanout=args.fanout)
    say(event="ready")
    got, bad, last = 0, 0, 0
    while got < args.count:
        item = rx.receive(10.0)
        if item is None:
            break
        header, frame = item
        k = int(header)
        if frame is None or not frame.min() == frame.max() == k % 251:
            bad += 1
        if args.slow:
            time.sleep(args.slow)  # a slow consumer still holding the frame
            if not frame.min() == frame.max() == k % 251:
                bad += 1  # overwritten under the reader
        got, last = got + 1, k
    say(event="done", got=got, bad=bad, last=last, dropped=rx.dropped)
    if args.then_hang:
        time.sleep(3600)
    rx.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["send", "recv"])
    ap.add_argument("name")
    ap.add_argument("--fanout", action="store_true")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--forever", action="store_true")
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--slow", type=float, default=0.0)
    ap.add_argument("--hw", default="480x640")
    ap.add_argument("--then-hang", action="store_true")
    ap.add_argument("--no-close", action="store_true")
    args = ap.parse_args()
    h, w = (int(x) for x in args.hw.split("x"))
    if args.role == "send":
        send(args, (h, w, 3))
    else:
        recv(args)


if __name__ == "__main__":
    sys.exit(main())
