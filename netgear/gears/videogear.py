"""VideoGear: one front for CamGear, PiGear and the test pattern."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import OptionError
from .camgear import CamGear
from .pigear import PiGear
from .testpattern import TestPatternGear, is_testpattern

__all__ = ["VideoGear"]


class VideoGear:
    """Pick the right gear for a source and expose the same start()/read()/stop().

    Args:
        source: camera index, video file, URL or ``"testpattern"`` (ignored with
            ``enablePiCamera=True``).
        enablePiCamera: use the Raspberry Pi camera (PiGear) instead of OpenCV.
        resolution: ``(width, height)`` for PiGear and the test pattern.
        framerate: frames per second for PiGear and the test pattern.
        colorspace: optional cv2 conversion name, e.g. ``"COLOR_BGR2GRAY"``.
        logging: log at INFO instead of DEBUG.
        time_delay: seconds start() waits before returning.
        **options: passed to the chosen gear (``CAP_PROP_*`` for CamGear, picamera options
            for PiGear).
    """

    def __init__(
        self,
        source: int | str = 0,
        enablePiCamera: bool = False,
        resolution: tuple[int, int] = (640, 480),
        framerate: float = 30,
        colorspace: str | None = None,
        logging: bool = False,
        time_delay: float = 0,
        **options: Any,
    ) -> None:
        if options.get("stabilize"):
            raise OptionError("VideoGear(stabilize=True) is not supported by netgear", "stabilize")
        options.pop("stabilize", None)
        common = {"colorspace": colorspace, "logging": logging, "time_delay": time_delay}
        self.stream: CamGear | PiGear | TestPatternGear
        if enablePiCamera:
            self.stream = PiGear(resolution=resolution, framerate=framerate, **common, **options)
        elif is_testpattern(source):
            self.stream = TestPatternGear(resolution=resolution, framerate=framerate, **common,
                                          **options)
        else:
            self.stream = CamGear(source=source, **common, **options)

    @property
    def framerate(self) -> float:
        return self.stream.framerate

    def start(self) -> VideoGear:
        """Start the underlying gear and return ``self``."""
        self.stream.start()
        return self

    def read(self) -> np.ndarray | None:
        """The next frame, or None at the end of the stream / after stop()."""
        return self.stream.read()

    def stop(self) -> None:
        """Stop the underlying gear and release its source."""
        self.stream.stop()

    def __enter__(self) -> VideoGear:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.stream)
