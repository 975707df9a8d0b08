"""Shared machinery for the source gears: a frame buffer and a background reader thread."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

import cv2
import numpy as np

from ..errors import ClosedError, OptionError, UsageError

__all__ = ["FrameBuffer", "ThreadedGear", "resolve_colorspace"]

logger = logging.getLogger(__name__)

#: stop() waits this long for the reader thread; a camera stuck inside its driver is abandoned
#: (daemon thread) and releases the device itself once the driver returns.
JOIN_TIMEOUT = 0.9

_G = TypeVar("_G", bound="GearBase")


def resolve_colorspace(colorspace: Any) -> int | None:
    """Turn ``"COLOR_BGR2GRAY"`` (or the cv2 integer itself) into the cv2 conversion code."""
    if colorspace is None:
        return None
    if isinstance(colorspace, bool):
        raise OptionError(f"colorspace must be a cv2 COLOR_* name, not {colorspace!r}",
                          "colorspace")
    if isinstance(colorspace, int):
        return colorspace
    if isinstance(colorspace, str):
        name = colorspace.strip()
        if not name.upper().startswith("COLOR_"):
            name = "COLOR_" + name
        code = getattr(cv2, name, None)
        if code is None:
            code = getattr(cv2, name.upper(), None)
        if isinstance(code, int):
            return code
    raise OptionError(
        f"unknown colorspace {colorspace!r}: use a cv2 conversion name such as 'COLOR_BGR2GRAY'",
        "colorspace",
    )


class FrameBuffer:
    """Hands frames from one producer thread to any number of readers.

    ``keep_latest=False`` (files): a bounded FIFO, the producer blocks while it is full, so
    nothing is dropped. ``keep_latest=True`` (live sources): only the newest frame is kept, so a
    slow reader never falls behind the camera.
    """

    def __init__(self, maxsize: int, keep_latest: bool) -> None:
        self._frames: collections.deque[np.ndarray] = collections.deque()
        self._maxsize = 1 if keep_latest else max(1, int(maxsize))
        self._keep_latest = keep_latest
        self._cond = threading.Condition()
        self._finished = False
        self._closed = False

    def put(self, frame: np.ndarray) -> bool:
        """Add a frame; returns False once the buffer is closed (the producer should quit)."""
        with self._cond:
            if self._keep_latest:
                self._frames.clear()
            else:
                while len(self._frames) >= self._maxsize and not self._closed:
                    self._cond.wait()
            if self._closed:
                return False
            self._frames.append(frame)
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> np.ndarray | None:
        """The next frame; None when the stream ended, was closed, or ``timeout`` expired."""
        with self._cond:
            ready = self._cond.wait_for(
                lambda: self._frames or self._finished or self._closed, timeout
            )
            if not ready or self._closed or not self._frames:
                return None
            frame = self._frames.popleft()
            self._cond.notify_all()
            return frame

    def finish(self) -> None:
        """The producer has no more frames; readers drain what is left, then get None."""
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def close(self) -> None:
        """Drop everything and wake every waiter, producer and readers alike."""
        with self._cond:
            self._closed = True
            self._frames.clear()
            self._cond.notify_all()


class GearBase:
    """What every gear shares: ``with gear:`` starts and stops it, iterating reads frames."""

    def start(self: _G) -> _G:
        raise NotImplementedError

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: _G) -> _G:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame


class ThreadedGear(GearBase):
    """Base of gears that read a source on a background thread.

    Subclasses implement :meth:`_grab` (one frame, or None at the end of the stream) and
    :meth:`_release`. The thread owns the source: it is the only caller of ``_grab`` and it
    releases the source when it exits, so a driver call is never raced by a release.
    """

    #: Frames buffered ahead of the reader for file sources (the reader thread blocks beyond it).
    QUEUE_SIZE: int = 32

    def __init__(
        self,
        *,
        live: bool,
        colorspace: Any = None,
        verbose: bool = False,
        time_delay: float = 0,
        name: str = "gear",
    ) -> None:
        self._color_code = resolve_colorspace(colorspace)
        self.color_space = self._color_code
        try:
            self._time_delay = max(0.0, float(time_delay or 0))
        except (TypeError, ValueError):
            raise OptionError(f"time_delay must be a number, not {time_delay!r}",
                              "time_delay") from None
        self._level = logging.INFO if verbose else logging.DEBUG
        self._live = live
        self._name = name
        self._buffer = FrameBuffer(self.QUEUE_SIZE, keep_latest=live)
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._state_lock = threading.Lock()
        self._released = False
        self._stopped = False
        self.error: BaseException | None = None

    # -- subclass hooks -------------------------------------------------------------------
    def _grab(self) -> np.ndarray | None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    # -- public API -----------------------------------------------------------------------
    @property
    def live(self) -> bool:
        """True when read() returns the newest frame (camera, URL); False for files."""
        return self._live

    def start(self: _G) -> _G:
        """Start the reader thread and return ``self``; wait ``time_delay`` seconds first."""
        with self._state_lock:
            if self._stopped:
                raise ClosedError(f"{self._name} was stopped; create a new gear to read again")
            if self._thread is not None:
                return self
            self._thread = threading.Thread(
                target=self._run, name=f"netgear-{self._name}", daemon=True
            )
            self._thread.start()
        logger.log(self._level, "%s: started (%s)", self._name, "live" if self._live else "file")
        if self._time_delay:
            self._stop_event.wait(self._time_delay)
        return self

    def read(self, timeout: float | None = None) -> np.ndarray | None:
        """The next frame: every frame in order for files, the newest unseen one for live sources.

        Returns None at the end of the stream, after :meth:`stop`, or if ``timeout`` seconds
        pass without a frame.
        """
        if self._thread is None and not self._stopped:
            raise UsageError(f"{self._name}: call start() before read()")
        return self._buffer.get(timeout)

    def stop(self) -> None:
        """Stop reading and release the source. Returns within about a second; idempotent."""
        with self._state_lock:
            self._stopped = True
            thread = self._thread
        self._stop_event.set()
        self._buffer.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():
                logger.warning("%s: source did not return in time; it is released later",
                               self._name)
                return
        self._release_once()

    # -- internals ------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop_event.is_set():
                frame = self._grab()
                if frame is None:
                    logger.log(self._level, "%s: end of stream", self._name)
                    break
                if self._color_code is not None:
                    frame = cv2.cvtColor(frame, self._color_code)
                if not self._buffer.put(frame):
                    break
        except Exception as exc:  # the thread must never die silently and leave readers waiting
            self.error = exc
            logger.error("%s: reading the source failed: %s", self._name, exc, exc_info=exc)
        finally:
            self._buffer.finish()
            self._release_once()

    def _release_once(self) -> None:
        with self._state_lock:
            if self._released:
                return
            self._released = True
        try:
            self._release()
        except Exception as exc:  # releasing a broken device must not mask the caller's flow
            logger.warning("%s: releasing the source failed: %s", self._name, exc)
