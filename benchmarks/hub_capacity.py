"""How many 640x480 15 fps cameras one one-port hub holds, raw and JPEG.

The hub (this process) receives on one port (REQ/REP, multi-server, one-port form); the
cameras are threads spread over a few spawned processes, each paced at ``--fps``. A step
with N cameras "holds" when every camera delivered at least 90 % of its rate over the
measured window. Cameras and hub share this machine's cores, so the figure is what one
machine does with its cameras' encoding on it too: a lower bound for a hub alone.

Usage::

    .venv/bin/python benchmarks/hub_capacity.py                    # raw and jpeg, ramp up
    .venv/bin/python benchmarks/hub_capacity.py --codecs jpeg --steps 4,8,16 --window 4
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import threading
import time
from typing import Any

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from netgear import NetGear, PeerTimeoutError  # noqa: E402

HOST = "127.0.0.1"
HELD = 0.9  # share of the target rate every camera must reach


def picture(seed: int, size: tuple[int, int]) -> np.ndarray:
    """A camera-like picture: smooth gradients plus a little noise (JPEG ~ real scenes)."""
    width, height = size
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    image = np.stack([(xs + seed * 7) % 256, (ys + seed * 13) % 256, (xs + ys) % 256], -1)
    image = image + rng.integers(0, 12, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _camera(port: int, name: str, fps: float, jpeg: bool, size: tuple[int, int],
            stop: Any) -> None:
    options: dict[str, Any] = {"jpeg_compression": True} if jpeg else {}
    cam = NetGear(address=HOST, port=port, pattern=1, multiserver_mode=True,
                  stream_name=name, request_timeout=5.0, **options)
    image = picture(hash(name) % 1000, size)
    period = 1.0 / fps
    next_at = time.monotonic()
    try:
        while not stop.is_set():
            cam.send(image)
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                stop.wait(delay)
            else:
                next_at = time.monotonic()  # behind: do not burst to catch up
    finally:
        cam.close(kill=True)


def _worker(port: int, names: list[str], fps: float, jpeg: bool, size: tuple[int, int],
            stop: Any) -> None:
    threads = [threading.Thread(target=_camera, args=(port, n, fps, jpeg, size, stop),
                                daemon=True) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run_step(count: int, jpeg: bool, args: argparse.Namespace) -> dict[str, Any]:
    """Start ``count`` cameras, measure each one's delivered fps at the hub."""
    from socket import socket

    with socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    hub = NetGear(address=HOST, port=port, pattern=1, receive_mode=True,
                  multiserver_mode=True, max_streams=10_000, receive_timeout=1.0)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    names = [f"cam{i:03d}" for i in range(count)]
    workers = [ctx.Process(target=_worker, args=(port, names[i::args.processes], args.fps,
                                                 jpeg, args.size, stop), daemon=True)
               for i in range(min(args.processes, count))]
    for proc in workers:
        proc.start()
    counts: dict[str, int] = dict.fromkeys(names, 0)
    joined: set[str] = set()
    window_start = window_end = float("inf")
    give_up = time.monotonic() + 60
    cpu_start = 0.0
    try:
        while (now := time.monotonic()) < window_end and now < give_up:
            try:
                item = hub.recv()
            except PeerTimeoutError:
                continue
            if item is None:
                continue
            if len(joined) < count:
                joined.add(item[0])
                if len(joined) == count:  # every camera is up: warm up, then measure
                    window_start = now + args.warmup
                    window_end = window_start + args.window
            elif now >= window_start:
                if not cpu_start:
                    cpu_start = time.process_time()
                counts[item[0]] += 1
        cpu = time.process_time() - cpu_start if cpu_start else 0.0
    finally:
        stop.set()
        for proc in workers:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        hub.close()
    rates = [counts[n] / args.window for n in names]
    return {"cameras": count, "codec": "jpeg" if jpeg else "raw",
            "min_fps": min(rates), "mean_fps": sum(rates) / len(rates),
            "held": min(rates) >= HELD * args.fps,
            "hub_cpu": cpu / args.window}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codecs", default="raw,jpeg")
    parser.add_argument("--steps", default="4,8,12,16,24,32,48,64")
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--window", type=float, default=4.0)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    args.size = (width, height)
    steps = [int(s) for s in args.steps.split(",")]
    for codec in args.codecs.split(","):
        held = 0
        for count in steps:
            result = run_step(count, codec == "jpeg", args)
            print(f"{codec:4s} {count:3d} cameras: min {result['min_fps']:5.1f} fps, mean "
                  f"{result['mean_fps']:5.1f} fps, hub CPU {result['hub_cpu']:.2f} cores, "
                  f"{'held' if result['held'] else 'NOT held'}", flush=True)
            if not result["held"]:
                break
            held = count
        print(f"{codec}: one hub held {held} cameras at {args.size[0]}x{args.size[1]} "
              f"{args.fps:g} fps", flush=True)


if __name__ == "__main__":
    main()
