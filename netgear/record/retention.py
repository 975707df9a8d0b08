"""Retention: delete the oldest recordings by age and by size, per stream and overall."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import OptionError
from .layout import EVENTS_DIR

__all__ = ["Retention"]

logger = logging.getLogger(__name__)

MEDIA = (".mp4", ".jpg")


@dataclass(frozen=True)
class Retention:
    """Limits on what a recording folder keeps; ``None`` means no limit.

    Args:
        max_age_s: delete recordings whose last write is older than this many seconds.
        max_bytes_per_stream: keep each stream's folder under this many bytes.
        max_bytes_total: keep all streams together under this many bytes.
    """

    max_age_s: Optional[float] = None
    max_bytes_per_stream: Optional[int] = None
    max_bytes_total: Optional[int] = None

    def __post_init__(self) -> None:
        for key in ("max_age_s", "max_bytes_per_stream", "max_bytes_total"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise OptionError(f"Retention {key}={value!r} must be > 0 (or None for no "
                                  "limit)", key=key)

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.max_age_s, self.max_bytes_per_stream,
                                           self.max_bytes_total))

    def apply(self, root: Path, protect: Collection[Path] = (),
              now: Optional[float] = None) -> list[Path]:
        """Delete what is over the limits, oldest first; returns the deleted media files.

        Files in ``protect`` (segments being written) are never deleted, nor counted as
        deletable: a limit smaller than one live segment deletes everything else.
        """
        now = time.time() if now is None else now
        keep = {Path(p).resolve() for p in protect}
        files = _media(Path(root))  # (mtime, size, path, stream), oldest first
        deleted: list[Path] = []

        def drop(entry: tuple[float, int, Path, str]) -> bool:
            path = entry[2]
            if path.resolve() in keep:
                return False
            try:
                path.unlink()
                path.with_name(path.name + ".json").unlink(missing_ok=True)
            except OSError as exc:
                logger.error("retention could not delete %s: %s", path, exc)
                return False
            deleted.append(path)
            return True

        if self.max_age_s is not None:
            files = [f for f in files if not (now - f[0] > self.max_age_s and drop(f))]
        if self.max_bytes_per_stream is not None:
            for stream in {f[3] for f in files}:
                own = [f for f in files if f[3] == stream]
                files = [f for f in files if f[3] != stream]
                files += _trim(own, self.max_bytes_per_stream, drop)
            files.sort(key=lambda f: f[0])
        if self.max_bytes_total is not None:
            _trim(files, self.max_bytes_total, drop)
        for path in deleted:
            _remove_empty(path.parent)
        return deleted


def _trim(files: list[tuple[float, int, Path, str]], limit: int,
          drop: Callable[[tuple[float, int, Path, str]], bool]
          ) -> list[tuple[float, int, Path, str]]:
    total = sum(f[1] for f in files)
    left = []
    for entry in files:  # oldest first
        if total > limit and drop(entry):
            total -= entry[1]
        else:
            left.append(entry)
    return left


def _media(root: Path) -> list[tuple[float, int, Path, str]]:
    out = []
    if not root.is_dir():
        return out
    for stream_dir in root.iterdir():
        if not stream_dir.is_dir() or stream_dir.name == EVENTS_DIR:
            continue
        for path in stream_dir.glob("*/*"):
            if path.suffix not in MEDIA:
                continue
            try:
                st = path.stat()
            except OSError:  # deleted meanwhile
                continue
            out.append((st.st_mtime, st.st_size, path, stream_dir.name))
    out.sort(key=lambda f: (f[0], str(f[2])))
    return out


def _remove_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()  # only succeeds when empty
