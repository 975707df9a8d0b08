"""CamGear: an OpenCV ``VideoCapture`` (camera, file, URL) read on a background thread."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from ..errors import OptionError, SourceError
from ._threaded import ThreadedGear
from .testpattern import TestPatternGear, is_testpattern

__all__ = ["CamGear", "resolve_cap_options"]

logger = logging.getLogger(__name__)


def resolve_cap_options(options: Mapping[str, Any]) -> dict[int, float]:
    """Map ``{"CAP_PROP_FRAME_WIDTH": 320}`` to ``{cv2.CAP_PROP_FRAME_WIDTH: 320.0}``.

    Raises :class:`OptionError` naming the first key that is not a cv2 ``CAP_PROP_*`` constant
    or whose value is not a number.
    """
    resolved: dict[int, float] = {}
    for key, value in options.items():
        name = str(key).strip().upper()
        prop = getattr(cv2, name, None) if name.startswith("CAP_PROP_") else None
        if not isinstance(prop, int):
            raise OptionError(
                f"unknown option {key!r}: CamGear options are cv2 capture properties "
                "such as 'CAP_PROP_FRAME_WIDTH', 'CAP_PROP_FRAME_HEIGHT', 'CAP_PROP_FPS'",
                str(key),
            )
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise OptionError(f"option {key!r} needs a number, not {value!r}", str(key))
        resolved[prop] = float(value)
    return resolved


def _open_capture(source: int | str, backend: int) -> Any:
    """Open the OpenCV capture; tests replace this to simulate devices."""
    return cv2.VideoCapture(source, backend) if backend else cv2.VideoCapture(source)


def _looks_live(source: int | str) -> bool:
    if isinstance(source, int):
        return True
    scheme, sep, _ = source.partition("://")
    return bool(sep) and scheme.lower() != "file"


class CamGear(ThreadedGear):
    """Read frames from a camera index, a video file, a URL or ``"testpattern"``.

    Args:
        source: camera index (``0``), path to a video file, stream URL (``rtsp://``,
            ``http://``...) or ``"testpattern"`` for synthetic frames.
        colorspace: optional cv2 conversion name applied to every frame, e.g. ``"COLOR_BGR2GRAY"``.
        logging: log progress at INFO instead of DEBUG (logger ``netgear.gears``).
        time_delay: seconds start() waits before returning, to let a camera warm up.
        backend: optional cv2 capture API preference, e.g. ``cv2.CAP_V4L2``.
        live: force newest-frame (True) or every-frame (False) reading; by default files are read
            frame by frame and cameras/URLs newest-frame.
        **options: cv2 capture properties by name, e.g. ``CAP_PROP_FRAME_WIDTH=320``.

    Raises:
        SourceError: the source cannot be opened.
        OptionError: an option or the colorspace is not valid.
    """

    def __init__(
        self,
        source: int | str = 0,
        colorspace: str | None = None,
        logging: bool = False,
        time_delay: float = 0,
        *,
        backend: int = 0,
        live: bool | None = None,
        **options: Any,
    ) -> None:
        if isinstance(source, str) and source.strip().isdigit():
            source = int(source.strip())
        if isinstance(source, bool) or not isinstance(source, (int, str, os.PathLike)):
            raise OptionError(f"source must be a camera index, path or URL, not {source!r}",
                              "source")
        if isinstance(source, os.PathLike):
            source = os.fspath(source)
        self.source = source
        self._pattern: TestPatternGear | None = None
        self._capture: Any = None
        if is_testpattern(source):
            # A synthetic source has no frames to lose: read it like a file, every frame in order.
            self._pattern = TestPatternGear(colorspace=None, logging=logging, **options)
            super().__init__(live=bool(live), colorspace=colorspace, verbose=logging,
                             time_delay=time_delay, name="CamGear(testpattern)")
            return
        props = resolve_cap_options(options)
        super().__init__(
            live=_looks_live(source) if live is None else bool(live),
            colorspace=colorspace,
            verbose=logging,
            time_delay=time_delay,
            name=f"CamGear({source!r})",
        )
        capture = _open_capture(source, int(backend))
        if capture is None or not capture.isOpened():
            if capture is not None:
                capture.release()
            raise SourceError(f"cannot open video source {source!r}")
        self._capture = capture
        for prop, value in props.items():
            if not capture.set(prop, value):
                logger.warning("%s: the source ignored property %s=%s", self._name, prop, value)

    @property
    def framerate(self) -> float:
        """Frames per second reported by the source (0.0 when it does not know)."""
        if self._pattern is not None:
            return self._pattern.framerate
        if self._capture is None:
            return 0.0
        return float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)

    @property
    def stream(self) -> Any:
        """The underlying ``cv2.VideoCapture`` (or TestPatternGear) for advanced use."""
        return self._pattern if self._pattern is not None else self._capture

    def start(self) -> CamGear:
        if self._pattern is not None:
            self._pattern.start()
        return super().start()

    def _grab(self) -> np.ndarray | None:
        if self._pattern is not None:
            return self._pattern.read()
        ok, frame = self._capture.read()
        return frame if ok and frame is not None else None

    def stop(self) -> None:
        if self._pattern is not None:
            # Wakes a reader thread paced inside the pattern so stop() stays prompt.
            self._pattern.stop()
        super().stop()

    def _release(self) -> None:
        if self._capture is not None:
            self._capture.release()
