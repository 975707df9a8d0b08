"""Helpers for the video codec tests: camera-like frames and PSNR."""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV is the optional extra netgear[video]")

_BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
if _BENCH not in sys.path:
    sys.path.insert(0, _BENCH)

import content  # noqa: E402  (benchmarks/content.py: the documented scene generator)


def scene(width: int, height: int, count: int, seed: int = 0) -> list[np.ndarray]:
    return list(content.scene(width, height, count, seed=seed))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255 * 255 / mse)


STAMP_BITS = 12


def stamped(frame: np.ndarray, index: int) -> np.ndarray:
    """``frame`` with ``index`` written in its top-left corner as 12 black/white 8x8 blocks,
    which survive lossy coding: a receiver in another process can tell which frame it got."""
    out = frame.copy()
    for bit in range(STAMP_BITS):
        out[:8, bit * 8:(bit + 1) * 8] = 255 if (index >> bit) & 1 else 0
    return out


def index_of(frame: np.ndarray) -> int:
    means = [float(frame[1:7, bit * 8 + 1:bit * 8 + 7].mean()) for bit in range(STAMP_BITS)]
    return sum(1 << bit for bit, mean in enumerate(means) if mean > 128)


def video_packets(frames: list[np.ndarray], **options) -> list[tuple[dict, bytes]]:
    """(header meta ``y``, payload) of each frame, as a video_codec sender codes them."""
    from netgear.codecs.video import VideoCodecEncoder
    from netgear.core.wire import FRAME, Outgoing

    encoder = VideoCodecEncoder({"video_codec": "h264", **options})
    packets = []
    try:
        for seq, frame in enumerate(frames):
            out = Outgoing(FRAME, seq, frame)
            encoder.encode(frame, out)
            packets.append((out.extra["y"], bytes(out.payload)))
    finally:
        encoder.close()
    return packets


def video_message(seq: int, meta: object, payload: bytes, codec: object = "h264",
                  sender: int = 7) -> list[bytes]:
    """A wire message carrying a video packet, built by hand as a foreign peer would."""
    import time

    import msgpack

    header = {"v": 1, "k": 0, "s": seq, "t": time.time(), "i": sender, "c": codec, "y": meta}
    return [msgpack.packb(header), payload]
