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
