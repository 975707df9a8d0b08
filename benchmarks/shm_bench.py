"""Same-host transports side by side: netgear.shm, iceoryx2, netgear ipc/tcp, pyzmq, TCP.

Every measurement runs the sender and the receiver(s) as separate spawned processes;
contenders are interleaved (each repetition runs every contender once) so machine noise
hits them alike. Every receiver reads the 8-byte stamp at the start of each frame.

1. throughput: unpaced uint8 BGR frames; frames received per second after a warm-up.
2. latency: sender paced at 30 fps; one-way latency p50/p95 from a CLOCK_MONOTONIC stamp.
3. idle: CPU of a receiver attached to a silent sender (waits must not spin).
4. fan-out: one 1080p stream paced at 60 fps read by 1 and by 4 receivers: frames per
   second each and the receivers' total CPU.

Usage::

    .venv/bin/python benchmarks/shm_bench.py                 # about 5 minutes
    .venv/bin/python benchmarks/shm_bench.py --quick         # 640x480 and 1080p, shorter
    .venv/bin/python benchmarks/shm_bench.py --only shm,tcp --sections throughput
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import importlib.util
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # spawned children import shm_contenders by name
    sys.path.insert(0, _HERE)

from shm_contenders import CONTENDERS, FANOUT, open_receiver, open_sender  # noqa: E402

SIZES = {"640x480": (480, 640, 3), "1080p": (1080, 1920, 3), "4K": (2160, 3840, 3)}


def _stamp(frame: Any, value: int) -> None:
    frame.reshape(-1)[:8] = memoryview(value.to_bytes(8, "little"))


def _read_stamp(frame: Any) -> int:
    return int.from_bytes(bytes(frame.reshape(-1)[:8]), "little")


def _sender(key: str, addr: str, shape: tuple, mode: str, ready: Any, stop: Any,
            seconds: float) -> None:
    import numpy as np

    ready.wait(30)  # every receiver is open (tcp and PAIR receivers bind)
    send, close = open_sender(key, addr, shape)
    frame = np.full(shape, 7, np.uint8)
    seq = 0
    try:
        if mode == "idle":
            stop.wait(seconds)
            return
        time.sleep(0.5)  # let subscribers' connections settle
        t0 = time.monotonic()
        period = 1 / 30 if mode == "latency" else 1 / 60 if mode == "fanout" else 0.0
        while not stop.is_set() and time.monotonic() - t0 < seconds:
            seq += 1
            _stamp(frame, time.clock_gettime_ns(time.CLOCK_MONOTONIC) if period else seq)
            send(frame)
            if period:
                time.sleep(max(0.0, t0 + seq * period - time.monotonic()))
    except Exception as exc:  # a stopped receiver may time a lossless send out
        if not stop.is_set():
            print(f"[{key}] sender: {exc!r}", file=sys.stderr)
    finally:
        if os.environ.get("SHM_BENCH_DEBUG"):
            print(f"[{key}] sender sent {seq}", file=sys.stderr)
        close()


def _receiver(key: str, addr: str, shape: tuple, mode: str, ready: Any, stop: Any,
              seconds: float, out: Any) -> None:
    recv, close = open_receiver(key, addr, shape)
    ready.wait(30)
    lat: list[float] = []
    n, start, cpu0 = 0, 0.0, 0.0
    warm = 10 if mode == "throughput" else 3
    try:
        if mode == "idle":
            cpu0, t0 = time.process_time(), time.monotonic()
            while time.monotonic() - t0 < seconds:
                recv(0.5)
            out.send({"cpu": (time.process_time() - cpu0) / (time.monotonic() - t0)})
            return
        deadline = time.monotonic() + seconds + 30
        while time.monotonic() < deadline:
            frame = recv(3.0)
            if frame is None:
                break
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            n += 1
            if not start and n == warm:
                start, cpu0, n = time.monotonic(), time.process_time(), 0
            elif start and mode in ("latency", "fanout"):
                lat.append((now - _read_stamp(frame)) / 1e6)
            if start and time.monotonic() - start >= seconds:
                break
        elapsed = time.monotonic() - start if start else 0.0
        cpu = (time.process_time() - cpu0) / elapsed if elapsed else 0.0
        out.send({"fps": n / elapsed if elapsed else 0.0, "lat": lat, "cpu": cpu})
    finally:
        # drain, so that a lossless sender is not left blocked
        while not stop.is_set() and recv(0.3) is not None:
            pass
        close()


def run(key: str, size: str, mode: str, seconds: float, readers: int = 1) -> list[dict]:
    ctx = mp.get_context("spawn")
    addr = f"b{uuid.uuid4().hex[:10]}"
    if key in ("tcp", "pyzmq-tcp", "netgear-tcp"):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            addr = str(s.getsockname()[1])
    shape = SIZES[size]
    ready, stop = ctx.Barrier(readers + 1), ctx.Event()
    pipes = [ctx.Pipe(duplex=False) for _ in range(readers)]
    rx = [ctx.Process(target=_receiver, args=(key, addr, shape, mode, ready, stop, seconds, w))
          for _, w in pipes]
    tx = ctx.Process(target=_sender,
                     args=(key, addr, shape, mode, ready, stop, seconds + 10))
    procs = [*rx, tx]
    results: list[dict] = []
    try:
        for p in procs:
            p.start()
        for r, _ in pipes:
            if r.poll(seconds + 60):
                results.append(r.recv())
        stop.set()  # the receivers drain until the sender stops
    finally:
        stop.set()
        for p in procs:
            p.join(15)
            if p.is_alive():
                p.kill()
                p.join()
        # ipc socket files a killed or slow-closing peer left behind
        for path in glob.glob(os.path.join(tempfile.gettempdir(), f"shmbench-{addr}*")):
            with contextlib.suppress(OSError):
                os.unlink(path)
    return results


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _iceoryx2_files() -> set[str]:
    """What iceoryx2 keeps between processes (its node and service registry)."""
    found = set(glob.glob("/dev/shm/iox2_*"))
    root = os.path.join(tempfile.gettempdir(), "iceoryx2")
    if os.path.isdir(root):
        found.add(root)
    return found


def _remove_new_iceoryx2_files(before: set[str]) -> None:
    """iceoryx2 leaves its registry behind on purpose; ours goes (nobody else's)."""
    for path in _iceoryx2_files() - before:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)


def main(argv: list[str] | None = None) -> int:
    before = _iceoryx2_files()
    try:
        return _main(argv)
    finally:
        _remove_new_iceoryx2_files(before)


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=",".join(CONTENDERS))
    ap.add_argument("--sections", default="throughput,latency,idle,fanout")
    ap.add_argument("--reps", type=int, default=1)
    args = ap.parse_args(argv)
    keys = [k for k in args.only.split(",") if k in CONTENDERS]
    if "iceoryx2" in keys and importlib.util.find_spec("iceoryx2") is None:
        print("iceoryx2 is not installed (pip install iceoryx2): its rows are left out",
              file=sys.stderr)
        keys.remove("iceoryx2")
    sections = args.sections.split(",")
    sizes = ["640x480", "1080p"] if args.quick else list(SIZES)
    secs = 1.5 if args.quick else 3.0
    print(f"# shm_bench: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
          f"reps {args.reps}\n")
    if "throughput" in sections or "latency" in sections:
        table: dict[tuple[str, str], dict[str, list[float]]] = {}
        for _ in range(args.reps):
            for size in sizes:
                for key in keys:
                    cell = table.setdefault((key, size), {"fps": [], "lat": []})
                    print(f"… {key} {size}", file=sys.stderr)
                    if "throughput" in sections:
                        res = run(key, size, "throughput", secs)
                        cell["fps"] += [r["fps"] for r in res]
                    if "latency" in sections:
                        res = run(key, size, "latency", secs)
                        for r in res:
                            cell["lat"] += r["lat"]
        print("| contender | size | frames/s (median) | latency p50 ms | p95 ms |")
        print("|---|---|---:|---:|---:|")
        for size in sizes:
            for key in keys:
                c = table[(key, size)]
                fps = statistics.median(c["fps"]) if c["fps"] else float("nan")
                print(f"| {CONTENDERS[key]} | {size} | {fps:,.0f} | "
                      f"{_pct(c['lat'], 0.5):.3f} | {_pct(c['lat'], 0.95):.3f} |")
        print()
    if "idle" in sections:
        print("| contender | idle receiver CPU % |\n|---|---:|")
        for key in keys:
            res = run(key, "640x480", "idle", 4.0)
            print(f"| {CONTENDERS[key]} | {100 * res[0]['cpu']:.2f} |" if res
                  else f"| {CONTENDERS[key]} | n/a |")
        print()
    if "fanout" in sections:
        print("| contender (1080p at 60 fps) | receivers | frames/s each (min) | "
              "total receiver CPU % | p50 ms |")
        print("|---|---:|---:|---:|---:|")
        for key in [k for k in FANOUT if k in keys]:
            for readers in (1, 4):
                res = run(key, "1080p", "fanout", secs + 1, readers)
                fps = min((r["fps"] for r in res), default=float("nan"))
                cpu = sum(r["cpu"] for r in res)
                lat = [x for r in res for x in r["lat"]]
                print(f"| {CONTENDERS[key]} | {readers} ({len(res)} reported) | {fps:.1f} | "
                      f"{100 * cpu:.1f} | {_pct(lat, 0.5):.3f} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
