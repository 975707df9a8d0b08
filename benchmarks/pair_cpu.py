"""CPU per frame of a PAIR stream, sender and receiver, netgear against raw pyzmq.

Throughput on a shared 2-core machine swings by 2-5x between runs when other jobs run;
the CPU a stream costs per frame swings far less, because a process that waits for a
core is not charged for the wait. So this measures, for each contender, the user + system
time of the sender process (libzmq's I/O thread included) and of the receiver process over
N unpaced frames, and the frames per second as well. Contenders are interleaved, round-robin
per repetition, and medians are reported.

Contenders: ``netgear`` (this checkout), ``old`` (the netgear checkout at ``--old``, e.g.
``git archive <commit> | tar -x -C /tmp/old``) and ``raw`` (pyzmq PAIR, ``copy=False`` both
ends: the sender queues its one buffer without waiting, so frames arrive torn; it is the
ceiling, not a peer).

Usage::

    .venv/bin/python benchmarks/pair_cpu.py --sizes 640x480,1920x1080 --reps 5
    .venv/bin/python benchmarks/pair_cpu.py --old /tmp/old --reps 5
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import socket
import statistics
import sys
import time
from typing import Any

import numpy as np

HOST = "127.0.0.1"


def _usage() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return time.perf_counter(), r.ru_utime + r.ru_stime


def _import_path(old: str | None) -> None:
    if old:
        sys.path.insert(0, old)


def _receiver(kind: str, old: str | None, port: int, frames: int,
              shape: tuple[int, ...], out: Any) -> None:
    _import_path(old if kind == "old" else None)
    if kind == "raw":
        import zmq

        ctx = zmq.Context()
        sock = ctx.socket(zmq.PAIR)
        sock.bind(f"tcp://{HOST}:{port}")

        def recv() -> Any:
            return np.frombuffer(sock.recv(copy=False).buffer, np.uint8).reshape(shape)
    else:
        from netgear import NetGear

        recv = NetGear(address=HOST, port=port, pattern=0, receive_mode=True,
                       logging=False).recv
    out.put("ready")
    recv()  # the first frame includes the connection; not measured
    wall, cpu = _usage()
    for _ in range(frames):
        recv()
    end_wall, end_cpu = _usage()
    out.put((end_wall - wall, end_cpu - cpu))
    time.sleep(1.0)  # the sender reads its own usage first
    os._exit(0)


def _sender(kind: str, old: str | None, frames: int, shape: tuple[int, ...]) -> dict[str, float]:
    """One measurement in a fresh process (spawned by main)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_receiver, args=(kind, old, port, frames, shape, out), daemon=True)
    proc.start()
    try:
        out.get(timeout=30)
        frame = np.random.default_rng(1).integers(0, 255, shape, np.uint8)
        if kind == "raw":
            import zmq

            sock = zmq.Context().socket(zmq.PAIR)
            sock.connect(f"tcp://{HOST}:{port}")

            def send(buf: np.ndarray) -> None:
                sock.send(buf, copy=False)
        else:
            from netgear import NetGear

            send = NetGear(address=HOST, port=port, pattern=0, logging=False).send
        send(frame)
        _, cpu = _usage()
        for i in range(frames):
            frame[0, 0, 0] = i & 255  # the caller reuses its buffer
            send(frame)
        rx_wall, rx_cpu = out.get(timeout=120)
        _, end_cpu = _usage()  # after the receiver has them all: the I/O thread's work too
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
    return {"fps": frames / rx_wall, "tx_ms": (end_cpu - cpu) / frames * 1e3,
            "rx_ms": rx_cpu / frames * 1e3}


def _child(kind: str, old: str | None, frames: int, shape: tuple[int, ...], out: Any) -> None:
    _import_path(old if kind == "old" else None)
    out.put(_sender(kind, old, frames, shape))
    out.close()
    out.join_thread()  # the result is flushed before os._exit
    os._exit(0)  # a library thread that will not stop cannot keep this process alive


def _measure(kind: str, old: str | None, frames: int, shape: tuple[int, ...]) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_child, args=(kind, old, frames, shape, out))
    proc.start()
    try:
        return out.get(timeout=180)
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="640x480,1920x1080")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--seconds", type=float, default=1.0,
                   help="frames per run: as many as 400 fps of 1080p would send in this time")
    p.add_argument("--old", default=None, help="a netgear checkout to compare (contender 'old')")
    args = p.parse_args(argv)
    kinds = ["netgear", "raw"] + (["old"] if args.old else [])
    rows: dict[tuple[str, str], list[dict[str, float]]] = {}
    for rep in range(args.reps):
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.split("x"))
            shape = (height, width, 3)
            frames = max(100, int(args.seconds * 400 * 1920 * 1080 / (width * height)))
            for kind in kinds[rep % len(kinds):] + kinds[:rep % len(kinds)]:
                got = _measure(kind, args.old, frames, shape)
                rows.setdefault((size, kind), []).append(got)
                print(f"rep {rep + 1} {size} {kind}: {got['fps']:.0f} fps, sender "
                      f"{got['tx_ms']:.3f} ms, receiver {got['rx_ms']:.3f} ms CPU per frame",
                      file=sys.stderr, flush=True)
    print(f"load average at end: {os.getloadavg()}\n")
    print("| size | contender | fps | sender CPU ms/frame | receiver CPU ms/frame |")
    print("| --- | --- | --- | --- | --- |")
    for (size, kind), got in rows.items():
        med = {k: statistics.median(g[k] for g in got) for k in got[0]}
        print(f"| {size} | {kind} | {med['fps']:.0f} | {med['tx_ms']:.2f} | {med['rx_ms']:.2f} |")
    print("\nPer-repetition fps ratios, median (the runs of one repetition are back to back):\n")
    for size in args.sizes.split(","):
        for other in kinds[1:]:
            ratios = [a["fps"] / b["fps"] for a, b in zip(rows[(size, "netgear")],
                                                          rows[(size, other)], strict=True)]
            print(f"- {size} netgear / {other}: {statistics.median(ratios):.2f}x "
                  f"({', '.join(f'{r:.2f}' for r in ratios)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
