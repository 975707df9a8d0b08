"""JpegWriter: one stream's frames as JPEG files in dated folders, like imagehub."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import OptionError
from .layout import day_folder, stamp

__all__ = ["JpegWriter"]


class JpegWriter:
    """Write each frame to ``root/<stream>/<day>/<stream>_<YYYYmmdd-HHMMSS-mmm>.jpg``.

    Each file is written under a temporary name and renamed, so a crash never leaves a
    half-written JPEG under a real name.
    """

    path: Optional[Path] = None  # nothing is "being written" between frames
    encoders_opened = 0

    def __init__(self, root: Path, stream: str, quality: int = 90, on_event: Any = None
                 ) -> None:
        if not 1 <= int(quality) <= 100:
            raise OptionError(f"quality={quality!r} is outside 1-100", key="quality")
        self.root, self.stream, self.quality = Path(root), stream, int(quality)
        self.files = 0
        self._last = ""

    def write_frame(self, frame: np.ndarray, when: Optional[float] = None) -> None:
        from ..web.hub import encode_jpeg

        when = time.time() if when is None else when
        folder = day_folder(self.root, self.stream, when)
        folder.mkdir(parents=True, exist_ok=True)
        base = f"{self.stream}_{stamp(when, millis=True)}"
        # two or more frames in one millisecond: compare the stamp, not the last name
        # (a third frame would otherwise take the first one's name and replace its file)
        name = f"{base}-{self.files}" if base == self._last else base
        self._last = base
        image = frame if frame.ndim == 3 else np.dstack([frame] * 3)
        data = encode_jpeg(np.ascontiguousarray(image[:, :, :3]), self.quality)
        path = folder / f"{name}.jpg"
        tmp = folder / f".{name}.jpg.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        self.files += 1

    def write_packet(self, *args: Any, **kwargs: Any) -> bool:
        raise OptionError("--format jpeg records decoded frames; H.264/HEVC packets need "
                          "--format mp4", key="format")

    def close(self) -> None:
        """Nothing is held open between frames."""
