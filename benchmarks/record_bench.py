"""CPU cost of recording N streams: encoding decoded frames vs H.264 passthrough.

Feeds a Recorder in this process at the given frame rate per stream (no network, so only
recording is measured) and reports this process's CPU use per second of video (psutil:
% of one core) and what went to disk. Passthrough packets are encoded before the timed
part starts, as a sender's camera or encoder would have done.

    python benchmarks/record_bench.py [--streams 4] [--size 1280x720] [--fps 15]
                                      [--seconds 10] [--mode encode|passthrough|both]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import psutil

from netgear.record import Recorder

LOOP = 30  # distinct frames per stream, cycled


def frames(size: tuple[int, int], seed: int) -> list[np.ndarray]:
    """Camera-like frames: a gradient, a moving block and a little sensor noise."""
    width, height = size
    rng = np.random.default_rng(seed)
    base = np.zeros((height, width, 3), np.uint8)
    base[:, :, 0] = np.linspace(0, 255, width, dtype=np.uint8)
    base[:, :, 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    base[:, :, 2] = 100
    out = []
    for i in range(LOOP):
        frame = base.copy()
        x = (i * 20) % (width - 160)
        frame[height // 3:height // 3 + 120, x:x + 160] = (40, 200, 240)
        noise = rng.integers(0, 6, (height, width, 1), dtype=np.uint8)
        out.append(frame + noise)
    return out


def packets(images: list[np.ndarray], fps: float) -> list[tuple[bytes, bool]]:
    ctx = av.CodecContext.create("libx264", "w")
    height, width = images[0].shape[:2]
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = Fraction(1, round(fps))
    ctx.gop_size = LOOP
    ctx.options = {"tune": "zerolatency", "preset": "veryfast"}
    out = []
    for i, image in enumerate(images):
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = i
        out += [(bytes(p), p.is_keyframe) for p in ctx.encode(frame)]
    out += [(bytes(p), p.is_keyframe) for p in ctx.encode(None)]
    return out


def run(mode: str, streams: int, size: tuple[int, int], fps: float, seconds: float) -> dict:
    images = [frames(size, s) for s in range(streams)]
    encoded = [packets(imgs, fps) for imgs in images] if mode == "passthrough" else []
    out = Path(tempfile.mkdtemp(prefix="netgear-record-bench-"))
    proc = psutil.Process()
    rec = Recorder(out, segment_seconds=60, queue_frames=60).start()
    try:
        cpu0, t0 = proc.cpu_times(), time.monotonic()
        n = 0
        while time.monotonic() - t0 < seconds:
            for s in range(streams):
                if mode == "passthrough":
                    data, key = encoded[s][n % len(encoded[s])]
                    rec.add_packet(f"cam{s}", data, key, None, "h264", *size)
                else:
                    rec.add_frame(f"cam{s}", images[s][n % LOOP])
            n += 1
            time.sleep(max(0.0, t0 + n / fps - time.monotonic()))  # pace like a camera
        rec.close()
        wall = time.monotonic() - t0
        cpu1 = proc.cpu_times()
        status_bytes = sum(p.stat().st_size for p in out.rglob("*.mp4"))
        lost = sum(st["lost"] for st in rec.status()["streams"].values())
        used = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        video = n / fps  # seconds of video recorded per stream
        # CPU per second of video, not per wall second: on a loaded machine the writers
        # finish their queues after feeding stops, and that work belongs to the recording
        return {"mode": mode, "streams": streams, "size": f"{size[0]}x{size[1]}", "fps": fps,
                "video_seconds": round(video, 2), "wall_seconds": round(wall, 2),
                "frames_per_stream": n,
                "cpu_percent_of_one_core": round(100 * used / video, 1),
                "lost_frames": lost, "mbit_per_s_per_stream":
                round(status_bytes * 8 / video / streams / 1e6, 2)}
    finally:
        rec.close()
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--mode", choices=("encode", "passthrough", "both"), default="both")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    modes = ["encode", "passthrough"] if args.mode == "both" else [args.mode]
    for mode in modes:
        print(json.dumps(run(mode, args.streams, (width, height), args.fps, args.seconds)),
              flush=True)


if __name__ == "__main__":
    main()
