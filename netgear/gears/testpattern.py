"""TestPatternGear: cheap synthetic moving frames for demos, tests and benchmarks."""

from __future__ import annotations

import logging
import threading
import time
from logging import DEBUG, INFO
from typing import Any

import cv2
import numpy as np

from ..errors import ClosedError, OptionError, UsageError
from ._threaded import GearBase, resolve_colorspace

__all__ = ["TestPatternGear", "is_testpattern"]

logger = logging.getLogger(__name__)

_BITS = 32
# Saturated bars (BGR) so colour mix-ups (RGB vs BGR) are visible at a glance.
_BARS = [
    (255, 255, 255), (0, 255, 255), (255, 255, 0), (0, 255, 0),
    (255, 0, 255), (0, 0, 255), (255, 0, 0), (32, 32, 32),
]
_OPTION_KEYS = {
    "CAP_PROP_FRAME_WIDTH": "width",
    "CAP_PROP_FRAME_HEIGHT": "height",
    "CAP_PROP_FPS": "framerate",
    "CAP_PROP_FRAME_COUNT": "frames",
}


def is_testpattern(source: object) -> bool:
    """True for the ``source="testpattern"`` spelling accepted by CamGear and VideoGear."""
    return isinstance(source, str) and source.strip().lower() in ("testpattern", "test_pattern")


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or value < 1:
        raise OptionError(f"{key} must be a positive whole number, not {value!r}", key)
    return int(value)


class TestPatternGear(GearBase):
    """Synthetic source: scrolling colour bars and gradient, frame counter and timestamp.

    Frame ``n`` also carries ``n`` as a 32-cell black/white barcode along its top edge;
    :meth:`frame_index` reads it back, so receivers can check order and loss.

    Args:
        resolution: ``(width, height)``.
        framerate: frames per second read() is paced at; ``0`` or ``None`` = as fast as asked.
        frames: end the stream (read() returns None) after this many frames; None = endless.
        colorspace: optional cv2 conversion name, e.g. ``"COLOR_BGR2GRAY"``.
        logging: log at INFO instead of DEBUG.
        time_delay: seconds start() waits before returning.
        timestamp: draw the wall-clock time (turn off for bit-identical frames across runs).
        **options: ``CAP_PROP_FRAME_WIDTH``, ``CAP_PROP_FRAME_HEIGHT``, ``CAP_PROP_FPS``,
            ``CAP_PROP_FRAME_COUNT`` override the arguments above (CamGear spelling).
    """

    __test__ = False  # its name starts with "Test": keep pytest from collecting it

    def __init__(
        self,
        resolution: tuple[int, int] = (640, 480),
        framerate: float | None = 30,
        frames: int | None = None,
        colorspace: str | None = None,
        logging: bool = False,
        time_delay: float = 0,
        *,
        timestamp: bool = True,
        **options: Any,
    ) -> None:
        try:
            width, height = resolution
        except (TypeError, ValueError):
            raise OptionError(f"resolution must be (width, height), not {resolution!r}",
                              "resolution") from None
        settings: dict[str, Any] = {"width": width, "height": height,
                                    "framerate": framerate, "frames": frames}
        for key, value in options.items():
            target = _OPTION_KEYS.get(str(key).upper())
            if target is None:
                raise OptionError(
                    f"unknown option {key!r} for the test pattern; supported: "
                    + ", ".join(sorted(_OPTION_KEYS)), str(key))
            settings[target] = value
        self.width = _positive_int(settings["width"], "width")
        self.height = _positive_int(settings["height"], "height")
        fps = settings["framerate"]
        if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float))
                                or fps < 0):
            raise OptionError(f"framerate must be >= 0 or None, not {fps!r}", "framerate")
        self._fps = float(fps or 0.0)
        limit = settings["frames"]
        self.frames = None if limit is None else _positive_int(limit, "frames")
        self._color_code = resolve_colorspace(colorspace)
        self.timestamp = bool(timestamp)
        self._time_delay = max(0.0, float(time_delay or 0))
        self._level = INFO if logging else DEBUG
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = False
        self._count = 0
        self._next_due = 0.0
        self._background = self._make_background()
        self._step = max(1, self.width // 160)
        self._cell = self.width // _BITS
        self._bar_h = max(1, min(self._cell, self.height // 8)) if self._cell else 0
        self._scale = max(0.3, self.height / 480.0)
        self._thick = max(1, round(2 * self._scale))

    @property
    def framerate(self) -> float:
        return self._fps

    def _make_background(self) -> np.ndarray:
        w, h = self.width, self.height
        bars_h = max(1, (2 * h) // 3)
        bg = np.empty((h, w, 3), np.uint8)
        edges = np.linspace(0, w, len(_BARS) + 1).astype(int)
        for i, colour in enumerate(_BARS):
            bg[:bars_h, edges[i]:edges[i + 1]] = colour
        ramp = np.linspace(0, 255, w).astype(np.uint8)
        bg[bars_h:] = ramp[None, :, None]
        # Two copies side by side: a scrolled frame is then one contiguous slice, no np.roll.
        return np.ascontiguousarray(np.concatenate([bg, bg], axis=1))

    def render(self, index: int) -> np.ndarray:
        """Frame ``index`` (BGR, before any colorspace conversion). Pure apart from the clock."""
        offset = (index * self._step) % self.width
        frame = self._background[:, offset:offset + self.width].copy()
        if self._cell:
            bits = (index >> np.arange(_BITS - 1, -1, -1)) & 1
            row = np.repeat(bits.astype(np.uint8) * 255, self._cell)
            frame[:self._bar_h] = 0
            frame[:self._bar_h, :row.size] = row[None, :, None]
        lines = [f"#{index:06d}"]
        if self.timestamp:
            now = time.time()
            millis = int(now % 1 * 1000)
            lines.append(time.strftime("%H:%M:%S", time.localtime(now)) + f".{millis:03d}")
        y = self._bar_h
        for text in lines:
            y += int(30 * self._scale) + 4
            org = (int(8 * self._scale) + 2, y)
            cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, self._scale, (0, 0, 0),
                        self._thick + 2, cv2.LINE_AA)
            cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, self._scale,
                        (255, 255, 255), self._thick, cv2.LINE_AA)
        return frame

    @staticmethod
    def frame_index(frame: np.ndarray) -> int | None:
        """Read back the frame number from the barcode; None if the frame is too narrow.

        Works on raw frames and reasonable-quality JPEG at the original width, in BGR or grey.
        """
        cell = frame.shape[1] // _BITS
        if cell == 0:
            return None
        bar_h = max(1, min(cell, frame.shape[0] // 8))
        centres = np.arange(_BITS) * cell + cell // 2
        samples = np.asarray(frame[bar_h // 2, centres], dtype=np.float32)
        if samples.ndim > 1:
            samples = samples.mean(axis=1)
        value = 0
        for bit in samples > 127:
            value = (value << 1) | int(bit)
        return value

    def start(self) -> TestPatternGear:
        """Arm the pattern and return ``self``."""
        with self._lock:
            if self._stop.is_set():
                raise ClosedError("TestPatternGear was stopped; create a new one")
            if self._started:
                return self
            self._started = True
            self._next_due = time.monotonic()
        if self._time_delay:
            self._stop.wait(self._time_delay)
        return self

    def read(self) -> np.ndarray | None:
        """The next frame, paced at ``framerate``; None after ``frames`` frames or stop()."""
        with self._lock:
            if not self._started:
                raise UsageError("TestPatternGear: call start() before read()")
            if self._stop.is_set() or (self.frames is not None and self._count >= self.frames):
                return None
            index = self._count
            self._count += 1
            delay = 0.0
            if self._fps > 0:
                now = time.monotonic()
                period = 1.0 / self._fps
                if self._next_due < now - period:
                    # A slow reader must not be paid back with a burst of instant frames.
                    self._next_due = now
                delay = self._next_due - now
                self._next_due += period
        if delay > 0 and self._stop.wait(delay):
            return None
        frame = self.render(index)
        if self._color_code is not None:
            frame = cv2.cvtColor(frame, self._color_code)
        return frame

    def stop(self) -> None:
        """End the stream; a read() waiting for its time slot returns None at once."""
        self._stop.set()
        logger.log(self._level, "TestPatternGear: stopped after %d frames", self._count)

