"""Frame codecs side by side: raw, JPEG q90 and H.264/HEVC through netgear.video.

Per frame, at 640x480, 1280x720 and 1920x1080, on camera-like content (benchmarks/
content.py: textured panning scene, moving objects, sensor noise) or on ``--clip FILE``:

* bytes per frame (mean over the run, keyframes included) and the Mbit/s that makes at
  30 fps;
* encode and decode ms per frame (mean), and the frame rate one core pair sustains if it
  only codes (1000 / (encode + decode));
* PSNR of the decoded frame against the original, in dB (mean and worst frame).

Codecs: ``raw`` (what NetGear sends by default), ``jpeg`` (simplejpeg q90, 4:2:2,
fastdct, one JPEG per frame), ``jpeg-bands`` (netgear's default JPEG: the same settings,
coded in horizontal bands on several threads by netgear.codecs.jpegstrips), ``h264`` and
``hevc`` (netgear.video defaults: libx264 veryfast / libx265 ultrafast, zero-latency
tuning, constant quality, one keyframe per second at 30 fps). Everything runs in this
one process, so machine noise hits all codecs alike.

``--latency`` measures instead what a user of NetGear sees: frames sent at 30 fps over
REQ/REP on 127.0.0.1 (``raw``; ``jpeg``: ``jpeg_compression=True``, q90, netgear's bands;
``h264``/``hevc``: ``video_codec``), one-way latency from the moment ``send()`` is called
to the moment ``recv()`` returns the decoded frame (encode, transport and decode; one
process, one clock), p50 and p95, with bytes per frame. Contenders take turns, repeated
``--reps`` times, so machine noise hits them alike.

Usage::

    .venv/bin/python benchmarks/codecs_bench.py                       # ~2 minutes
    .venv/bin/python benchmarks/codecs_bench.py --latency --codecs raw,jpeg,h264
    .venv/bin/python benchmarks/codecs_bench.py --frames 30 --sizes 640x480
    .venv/bin/python benchmarks/codecs_bench.py --clip my_camera.mp4 --codecs jpeg,h264

Prints a markdown table to stdout; progress to stderr.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import simplejpeg

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(1, os.path.dirname(_HERE))

import content  # noqa: E402

from netgear.codecs.jpegstrips import WorkerPool, auto_threads, plan_bands, split  # noqa: E402
from netgear.video import VideoDecoder, VideoEncoder  # noqa: E402

CODECS = ("raw", "jpeg", "jpeg-bands", "h264", "hevc")
SIZES = ("640x480", "1280x720", "1920x1080")
QUALITY = 90

Coder = tuple[Callable[[np.ndarray], object], Callable[[object], np.ndarray],
              Callable[[object], int], Callable[[], None]]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255 * 255 / mse)


def _raw() -> Coder:
    return (lambda f: f.tobytes(), lambda d: np.frombuffer(d, np.uint8), len, lambda: None)


def _jpeg() -> Coder:
    def enc(f: np.ndarray) -> bytes:
        return simplejpeg.encode_jpeg(f, quality=QUALITY, colorspace="BGR",
                                      colorsubsampling="422", fastdct=True)

    def dec(d: bytes) -> np.ndarray:
        return simplejpeg.decode_jpeg(d, colorspace="BGR", fastdct=True)

    return enc, dec, len, lambda: None


def _jpeg_bands() -> Coder:
    pool = WorkerPool(auto_threads(), "bench-jpeg")
    enc1 = _jpeg()[0]

    def enc(f: np.ndarray) -> tuple[list[int], list[bytes], tuple[int, ...]]:
        rows = plan_bands(f.shape[0], pool.threads, "422")
        return rows, pool.map(enc1, split(f, rows)), f.shape

    def dec(d: tuple[list[int], list[bytes], tuple[int, ...]]) -> np.ndarray:
        rows, parts, shape = d
        out = np.empty(shape, np.uint8)
        targets = split(out, rows)

        def one(i: int) -> None:
            simplejpeg.decode_jpeg(parts[i], colorspace="BGR", fastdct=True, buffer=targets[i])

        pool.map(one, list(range(len(parts))))
        return out

    return enc, dec, lambda d: sum(len(p) for p in d[1]), pool.close


def _video(codec: str) -> Coder:
    encoder, decoder = VideoEncoder(codec, fps_hint=30), VideoDecoder()

    def enc(f: np.ndarray) -> object:
        (packet,) = encoder.encode(f)
        return packet

    def dec(p: object) -> np.ndarray:
        out = decoder.decode(p.data, p.meta)  # type: ignore[attr-defined]
        if out is None:
            raise RuntimeError(f"{codec}: decoder returned no frame ({decoder.stats()})")
        return out

    def close() -> None:
        encoder.close()
        decoder.close()

    return enc, dec, lambda p: len(p.data), close  # type: ignore[attr-defined]


def coder(name: str) -> Coder:
    if name == "raw":
        return _raw()
    if name == "jpeg":
        return _jpeg()
    if name == "jpeg-bands":
        return _jpeg_bands()
    return _video(name)


def run(frames: list[np.ndarray], name: str) -> dict[str, float]:
    enc, dec, size, close = coder(name)
    sizes, enc_ms, dec_ms, quality = [], [], [], []
    try:
        for frame in frames:
            t0 = time.perf_counter()
            data = enc(frame)
            t1 = time.perf_counter()
            image = dec(data).reshape(frame.shape)
            t2 = time.perf_counter()
            sizes.append(size(data))
            enc_ms.append((t1 - t0) * 1000)
            dec_ms.append((t2 - t1) * 1000)
            quality.append(psnr(frame, image))
    finally:
        close()
    mean_bytes = statistics.fmean(sizes)
    coding = statistics.fmean(enc_ms) + statistics.fmean(dec_ms)
    return {"bytes": mean_bytes, "mbit30": mean_bytes * 8 * 30 / 1e6,
            "enc": statistics.fmean(enc_ms), "dec": statistics.fmean(dec_ms),
            "fps": 1000 / coding if coding > 0 else math.inf,
            "psnr": statistics.fmean(quality), "psnr_min": min(quality)}


_LATENCY_OPTIONS = {"raw": {}, "jpeg": {"jpeg_compression": True},
                    "h264": {"video_codec": "h264"}, "hevc": {"video_codec": "hevc"}}


def latency_run(frames: list[np.ndarray], name: str, fps: float, port: int
                ) -> dict[str, float]:
    """One-way latency through NetGear REQ/REP on loopback, frames paced at ``fps``."""
    from netgear import NetGear

    rx = NetGear(address="127.0.0.1", port=port, pattern=1, receive_mode=True,
                 receive_timeout=30.0)
    tx = NetGear(address="127.0.0.1", port=port, pattern=1, **_LATENCY_OPTIONS[name])
    sent_at: list[float] = []
    latencies: list[float] = []

    def receive() -> None:
        while (frame := rx.recv()) is not None:
            latencies.append(time.perf_counter() - sent_at[len(latencies)])
            assert frame.shape == frames[0].shape

    reader = threading.Thread(target=receive, daemon=True)
    reader.start()
    start = time.perf_counter()
    try:
        for i, frame in enumerate(frames):
            delay = start + i / fps - time.perf_counter()
            if delay > 0:
                time.sleep(delay)  # the camera's clock
            sent_at.append(time.perf_counter())
            tx.send(frame)
        tx.close()
        reader.join(30)
        entry = next(iter(rx.stats["streams"].values()))
    finally:
        tx.close()
        rx.close()
    if len(latencies) != len(frames):
        raise RuntimeError(f"{name}: {len(latencies)} of {len(frames)} frames arrived")
    cut = len(latencies) // 10  # warm-up: the first frames open codecs and connections
    kept = sorted(latencies[cut:])
    return {"p50": kept[len(kept) // 2] * 1000, "p95": kept[int(len(kept) * 0.95)] * 1000,
            "bytes": entry["bytes"] / entry["frames"]}


def latency_table(args: argparse.Namespace, codecs: list[str]) -> None:
    sys.path.insert(0, os.path.join(os.path.dirname(_HERE), "tests"))
    from conftest import free_port

    print(f"One-way latency through NetGear REQ/REP at {args.fps:g} fps on 127.0.0.1, "
          f"{args.frames} frames per run (first 10 % left out), {args.reps} interleaved "
          f"runs per contender (median of their p50 and p95); {os.cpu_count()} CPUs\n")
    print("| size | codec | latency p50 ms | latency p95 ms | p50 spread over runs "
          "| bytes/frame | Mbit/s @30fps |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.split("x"))
        frames = list(content.scene(width, height, args.frames))
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in codecs}
        for rep in range(args.reps):
            for name in codecs:
                print(f"{size} {name} run {rep + 1} ...", file=sys.stderr, flush=True)
                runs[name].append(latency_run(frames, name, args.fps, free_port()))
        for name, results in runs.items():
            p50s = [r["p50"] for r in results]
            mean_bytes = statistics.fmean(r["bytes"] for r in results)
            print(f"| {size} | {name} | {statistics.median(p50s):.1f} "
                  f"| {statistics.median(r['p95'] for r in results):.1f} "
                  f"| {min(p50s):.1f}-{max(p50s):.1f} | {mean_bytes:,.0f} "
                  f"| {mean_bytes * 8 * 30 / 1e6:.1f} |", flush=True)


def _fmt_db(value: float) -> str:
    return "lossless" if math.isinf(value) else f"{value:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=60, help="frames per size (default 60)")
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--codecs", default=",".join(CODECS))
    parser.add_argument("--clip", help="a video file to use instead of the generated scene")
    parser.add_argument("--latency", action="store_true",
                        help="one-way latency through NetGear instead of codec costs")
    parser.add_argument("--fps", type=float, default=30.0, help="--latency: sending rate")
    parser.add_argument("--reps", type=int, default=3, help="--latency: runs per contender")
    args = parser.parse_args(argv)
    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    known = _LATENCY_OPTIONS if args.latency else CODECS
    unknown = set(codecs) - set(known)
    if unknown:
        parser.error(f"unknown codecs {sorted(unknown)}; pick from {', '.join(known)}")
    if args.latency:
        latency_table(args, codecs)
        return 0
    source = f"clip {args.clip}" if args.clip else "content.scene (seed 0, noise sigma 2.0)"
    print(f"Content: {source}; {args.frames} frames per size; {os.cpu_count()} CPUs\n")
    print("| size | codec | bytes/frame | Mbit/s @30fps | vs JPEG q90 | encode ms | decode ms "
          "| codec fps | PSNR dB (mean / worst) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.split("x"))
        make = content.clip(args.clip, width, height, args.frames) if args.clip \
            else content.scene(width, height, args.frames)
        frames = list(make)
        results = {}
        for name in codecs:
            print(f"{size} {name} ...", file=sys.stderr, flush=True)
            results[name] = run(frames, name)
        jpeg = results.get("jpeg", {}).get("bytes")
        for name, r in results.items():
            ratio = f"{r['bytes'] / jpeg:.3f}" if jpeg else "-"
            print(f"| {size} | {name} | {r['bytes']:,.0f} | {r['mbit30']:.1f} | {ratio} "
                  f"| {r['enc']:.2f} | {r['dec']:.2f} | {r['fps']:.0f} "
                  f"| {_fmt_db(r['psnr'])} / {_fmt_db(r['psnr_min'])} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
