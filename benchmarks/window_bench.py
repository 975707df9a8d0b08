"""Frames in flight over a slow link: lockstep, send_window=1 and wider windows, at 640x480.

REQ/REP across two network namespaces joined by the userspace bridge (``netfault``),
50 ms ± 20 ms each way (no loss by default). One NetGear REP receiver runs in B for the
whole run; in A the contenders take turns, interleaved round by round so machine noise
hits them alike, each sending raw 640x480x3 frames for ``--seconds``:

* ``lockstep``: ``send_window=0`` (send() waits for each frame's reply);
* ``window1``: ``send_window=1`` (the default: one frame in flight, REQ socket);
* ``windowN``: ``send_window=N`` (N frames in flight, DEALER socket).

fps counts acknowledged frames only. Needs root (namespaces)::

    .venv/bin/python benchmarks/window_bench.py [--seconds 5] [--rounds 3]
        [--windows 4,8] [--delay 0.05 --jitter 0.02 --loss 0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
sys.path.insert(0, str(_HERE.parent))

PORT = 9300
SHAPE = (480, 640, 3)


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def receive(args: argparse.Namespace) -> None:
    """B: one REP receiver for every contender; a contender ends with close(kill=True)."""
    from netgear import NetGear

    hub = NetGear(address="*", port=PORT, pattern=1, receive_mode=True)
    _emit("ready")
    try:
        while hub.recv() is not None:
            pass
    finally:
        hub.close()


def _netgear(addr: str, window: int, seconds: float, frame: Any) -> int:
    from netgear import NetGear

    gear = NetGear(address=addr, port=PORT, pattern=1, send_window=window,
                   request_timeout=10.0)
    try:
        gear.send(frame)  # connected and warmed up before the clock starts
        start = gear.stats["sent"]
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            gear.send(frame)
        return gear.stats["sent"] - start
    finally:
        gear.close(kill=True)  # no END: the receiver stays up for the next contender


def send(args: argparse.Namespace) -> None:
    """A: every contender, interleaved round by round."""
    import numpy as np

    frame = np.random.default_rng(1).integers(0, 256, SHAPE, np.uint8)
    contenders = ["lockstep", "window1"] + [f"window{w}" for w in args.windows]
    for rnd in range(args.rounds):
        order = contenders[rnd % len(contenders):] + contenders[:rnd % len(contenders)]
        for name in order:
            window = 0 if name == "lockstep" else int(name[len("window"):])
            count = _netgear(args.addr, window, args.seconds, frame)
            _emit("result", contender=name, round=rnd, fps=count / args.seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", nargs="?", choices=["run", "receive", "send"], default="run")
    parser.add_argument("--addr", default="10.200.0.2")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--windows", type=lambda t: [int(w) for w in t.split(",")],
                        default=[4, 8])
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--jitter", type=float, default=0.02)
    parser.add_argument("--loss", type=float, default=0.0)
    args = parser.parse_args()
    if args.role == "receive":
        receive(args)
        return 0
    if args.role == "send":
        send(args)
        return 0
    return run(args)


def run(args: argparse.Namespace) -> int:
    from netfault import Events, available, bridged

    reason = available()
    if reason is not None:
        print(f"window_bench needs network namespaces: {reason}", file=sys.stderr)
        return 1
    me = [sys.executable, str(Path(__file__).resolve())]
    with bridged(loss=args.loss, delay=args.delay, jitter=args.jitter) as topo:
        hub = topo.run("b", [*me, "receive"], stdout=subprocess.PIPE)
        Events(hub).next("ready", 30)
        sender = topo.run("a", [*me, "send", "--addr", topo.addr["b"],
                                "--seconds", str(args.seconds), "--rounds", str(args.rounds),
                                "--windows", ",".join(map(str, args.windows))],
                          stdout=subprocess.PIPE)
        events = Events(sender)
        results: dict[str, list[float]] = {}
        per_round = 2 + len(args.windows)
        for _ in range(args.rounds * per_round):
            got = events.next("result", args.seconds * 3 + 60)
            results.setdefault(got["contender"], []).append(got["fps"])
            print(f"round {got['round']}: {got['contender']:>9} {got['fps']:6.2f} fps",
                  flush=True)
    base = statistics.median(results["window1"])
    print(f"\n640x480 raw, REQ/REP, {args.delay * 1000:g} ms ± {args.jitter * 1000:g} ms "
          f"each way, loss {args.loss:.0%}, {args.rounds} rounds x {args.seconds:g} s")
    print("| contender | fps (median) | fps per round | vs window 1 |")
    print("| --- | --- | --- | --- |")
    for name, fps in results.items():
        rounds = ", ".join(f"{f:.2f}" for f in fps)
        print(f"| {name} | {statistics.median(fps):.2f} | {rounds} | "
              f"{statistics.median(fps) / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
