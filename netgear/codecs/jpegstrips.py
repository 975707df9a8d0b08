"""Strip-parallel JPEG: a frame is cut into horizontal bands coded on several cores.

A 1080p JPEG takes one core about 7 ms to encode and 6 ms to decode, which caps a
stream near 140 fps and puts 13 ms of codec time into every frame's latency. simplejpeg
releases the GIL, so bands coded on threads run truly in parallel. Each band is a
complete JPEG and band heights are multiples of the 8-row JPEG block, so the decoded
frame is the same, pixel for pixel, as from one JPEG of the whole frame. That holds
only without vertical chroma subsampling (4:4:4, 4:2:2, 4:1:1, gray): with 4:2:0 or
4:4:0 the decoder smooths chroma across block rows, which a seam would change, so
those frames stay one JPEG.

The header key ``b`` lists ``[rows, bytes]`` per band; the payload is the bands' JPEGs
back to back. The receiver decodes each band straight into its rows of one array.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from ..errors import WireFormatError

__all__ = ["MAX_BANDS", "WorkerPool", "auto_threads", "check_layout", "plan_bands", "split"]

MAX_BANDS = 16
MIN_BAND_ROWS = 64  # below this a band's fixed costs outweigh the parallelism
_BLOCK_ROWS = 8
_SEAMLESS = ("444", "422", "411", "Gray")  # no vertical chroma subsampling

T = TypeVar("T")
R = TypeVar("R")


def auto_threads() -> int:
    """Default band count: the cores this process may use, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def plan_bands(height: int, wanted: int, subsampling: str) -> list[int]:
    """Row counts of the bands for a frame ``height`` rows tall (one band if too short)."""
    count = max(1, min(wanted, MAX_BANDS, height // MIN_BAND_ROWS))
    if count == 1 or subsampling not in _SEAMLESS:
        return [height]
    blocks = math.ceil(height / _BLOCK_ROWS)
    per_band, extra = divmod(blocks, count)
    rows = [(per_band + (1 if i < extra else 0)) * _BLOCK_ROWS for i in range(count)]
    rows[-1] -= sum(rows) - height  # the last band ends at the frame's edge
    return rows


def split(image: np.ndarray, rows: Sequence[int]) -> list[np.ndarray]:
    """Views of consecutive row bands (contiguous, since ``image`` is)."""
    bands, top = [], 0
    for count in rows:
        bands.append(image[top:top + count])
        top += count
    return bands


def check_layout(layout: Any, height: int, nbytes: int) -> list[tuple[int, int]]:
    """Validate a received ``b`` header value; returns ``[(rows, bytes), ...]``."""
    if (not isinstance(layout, list) or not 2 <= len(layout) <= MAX_BANDS
            or not all(isinstance(b, list) and len(b) == 2 for b in layout)):
        raise WireFormatError(f"bad JPEG band layout {str(layout)[:60]!r}")
    bands = []
    for rows, size in layout:
        if (not isinstance(rows, int) or isinstance(rows, bool) or rows <= 0
                or not isinstance(size, int) or isinstance(size, bool) or size <= 0):
            raise WireFormatError(f"bad JPEG band {[rows, size]!r}")
        bands.append((rows, size))
    if sum(r for r, _ in bands) != height or sum(s for _, s in bands) != nbytes:
        raise WireFormatError("JPEG bands do not add up to the frame's rows and payload size")
    return bands


class WorkerPool:
    """Threads for band coding: started at first use, stopped (and joined) by close()."""

    def __init__(self, threads: int, name: str) -> None:
        self.threads = threads
        self._name = name
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(item) ...]``, the first item on the calling thread, the rest on the pool."""
        executor = self._get() if len(items) > 1 else None
        if executor is None:
            return [fn(item) for item in items]
        futures = [executor.submit(fn, item) for item in items[1:]]
        try:
            first = fn(items[0])
        finally:
            # every band finishes before its buffers can be reused or an error surfaces
            done = [future.exception() for future in futures]
        for error in done:
            if error is not None:
                raise error
        return [first, *(future.result() for future in futures)]

    def _get(self) -> ThreadPoolExecutor | None:
        with self._lock:
            if self._closed or self.threads <= 1:
                return None
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.threads - 1,
                                                    thread_name_prefix=self._name)
            return self._executor

    def close(self) -> None:
        """Idempotent; waits for bands in flight (milliseconds), later calls run inline."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
