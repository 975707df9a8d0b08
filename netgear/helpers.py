"""Frame helpers: shrink a frame, tile several streams into montages."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import cv2
import numpy as np

from .errors import OptionError, PayloadError

__all__ = ["build_montages", "make_montage", "reducer", "to_bgr"]

_NO_SIGNAL_BG = (40, 40, 40)


def _check_frame(frame: Any, what: str = "frame") -> np.ndarray:
    if frame is None:
        raise PayloadError(f"{what} is None: the source ended or has not produced a frame yet")
    if not isinstance(frame, np.ndarray):
        raise PayloadError(f"{what} must be a numpy.ndarray image, not {type(frame).__name__}")
    channels = frame.shape[2] if frame.ndim == 3 else 1
    if frame.ndim not in (2, 3) or frame.size == 0 or channels not in (1, 3, 4):
        raise PayloadError(f"{what} must be an HxW, HxWx1, HxWx3 or HxWx4 image, "
                           f"not shape {frame.shape}")
    return frame


def reducer(
    frame: np.ndarray,
    percentage: float = 0,
    interpolation: int = cv2.INTER_LANCZOS4,
) -> np.ndarray:
    """Shrink ``frame`` by ``percentage`` percent of its width and height (aspect kept).

    ``reducer(frame, percentage=30)`` returns a frame 70 % as wide and as tall.

    Raises:
        OptionError: ``percentage`` is not in ``(0, 90]`` or ``interpolation`` is not a cv2 flag.
        PayloadError: ``frame`` is not an image array.
    """
    frame = _check_frame(frame)
    if isinstance(percentage, bool) or not isinstance(percentage, (int, float, np.number)) \
            or not 0 < percentage <= 90:
        raise OptionError(f"reducer percentage must be in (0, 90], not {percentage!r}",
                          "percentage")
    if isinstance(interpolation, bool) or not isinstance(interpolation, (int, np.integer)):
        raise OptionError(f"interpolation must be a cv2.INTER_* flag, not {interpolation!r}",
                          "interpolation")
    height, width = frame.shape[:2]
    keep = (100.0 - float(percentage)) / 100.0
    size = (max(1, int(width * keep)), max(1, int(height * keep)))
    return cv2.resize(frame, size, interpolation=int(interpolation))


def to_bgr(frame: np.ndarray) -> np.ndarray:
    """A uint8 BGR version of a grey, BGR or BGRA image (the array itself if already BGR)."""
    frame = _check_frame(frame)
    if frame.dtype != np.uint8:
        raise PayloadError(f"montage images must be uint8, not {frame.dtype}")
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def _pair(value: Any, name: str) -> tuple[int, int]:
    try:
        first, second = value
        pair = (int(first), int(second))
    except (TypeError, ValueError):
        raise OptionError(f"{name} must be a pair of positive integers, not {value!r}",
                          name) from None
    if pair[0] < 1 or pair[1] < 1:
        raise OptionError(f"{name} must be a pair of positive integers, not {value!r}", name)
    return pair


def fit_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``frame`` as a BGR image of ``size`` (width, height), resized only when needed."""
    frame = to_bgr(frame)
    if (frame.shape[1], frame.shape[0]) != size:
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return frame


def build_montages(
    images: Iterable[np.ndarray],
    image_shape: tuple[int, int],
    montage_shape: tuple[int, int],
) -> list[np.ndarray]:
    """Tile images into as many montages as needed (imutils-compatible).

    Args:
        images: any iterable of images (grey, BGR or BGRA, any sizes).
        image_shape: ``(width, height)`` every image is resized to.
        montage_shape: ``(columns, rows)`` of each montage.

    Returns:
        A list of BGR montages, each ``rows * height`` by ``columns * width``, filled row by row;
        unused cells stay black. An empty input gives one black montage, as imutils does.
    """
    width, height = _pair(image_shape, "image_shape")
    columns, rows = _pair(montage_shape, "montage_shape")
    per_montage = columns * rows

    def blank() -> np.ndarray:
        return np.zeros((rows * height, columns * width, 3), np.uint8)

    montages: list[np.ndarray] = []
    current = blank()
    cell = 0
    for image in images:
        r, c = divmod(cell, columns)
        cell_view = current[r * height:(r + 1) * height, c * width:(c + 1) * width]
        cell_view[:] = fit_frame(image, (width, height))
        cell += 1
        if cell == per_montage:
            montages.append(current)
            current, cell = blank(), 0
    if cell or not montages:
        montages.append(current)
    return montages


def _label(tile: np.ndarray, text: str) -> None:
    scale = max(0.35, tile.shape[0] / 400.0)
    thickness = max(1, round(scale * 1.5))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, th // 3)
    band = min(tile.shape[0], th + base + 2 * pad)
    # Darken rather than blank the band so the picture stays visible under the label.
    tile[:band, : min(tile.shape[1], tw + 2 * pad)] //= 3
    cv2.putText(tile, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thickness, cv2.LINE_AA)


def make_montage(
    frames: Mapping[Any, np.ndarray | None],
    tile: tuple[int, int] = (320, 240),
    columns: int | None = None,
    labels: bool = True,
) -> np.ndarray:
    """One BGR image showing every stream, each resized to ``tile`` and labelled with its key.

    Args:
        frames: ``{label: frame}`` in display order; a ``None`` frame shows a "no signal" tile.
        tile: ``(width, height)`` of each cell.
        columns: cells per row; default ``ceil(sqrt(len(frames)))``.
        labels: draw each key in the top-left corner of its cell.

    Returns:
        A ``rows * height`` by ``columns * width`` BGR image (one black tile when empty).
    """
    width, height = _pair(tile, "tile")
    count = len(frames)
    if columns is None:
        columns = max(1, math.ceil(math.sqrt(count)))
    elif isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise OptionError(f"columns must be a positive integer, not {columns!r}", "columns")
    rows = max(1, math.ceil(count / columns))
    canvas = np.zeros((rows * height, columns * width, 3), np.uint8)
    for index, (name, frame) in enumerate(frames.items()):
        r, c = divmod(index, columns)
        cell = canvas[r * height:(r + 1) * height, c * width:(c + 1) * width]
        if frame is None:
            cell[:] = _NO_SIGNAL_BG
            cv2.putText(cell, "no signal", (8, height // 2), cv2.FONT_HERSHEY_SIMPLEX,
                        max(0.35, height / 400.0), (200, 200, 200), 1, cv2.LINE_AA)
        else:
            cell[:] = fit_frame(_check_frame(frame, f"frame {name!r}"), (width, height))
        if labels:
            _label(cell, str(name))
    return canvas
