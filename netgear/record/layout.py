"""Where recordings go on disk; the web viewer reads the same layout.

    OUT/<stream>/<YYYY-MM-DD>/<stream>_<YYYYmmdd-HHMMSS>.mp4 (+ .mp4.json sidecar)
    OUT/<stream>/<YYYY-MM-DD>/<stream>_<YYYYmmdd-HHMMSS-mmm>.jpg   (--format jpeg)
    OUT/events/<YYYY-MM-DD>.jsonl

Dates and times are the recorder's local time, like imagehub's folders.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Optional

__all__ = ["EVENTS_DIR", "day_folder", "safe_name", "stamp"]

EVENTS_DIR = "events"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 64


def safe_name(name: str) -> str:
    """A stream name as a folder name: runs of anything but ``A-Z a-z 0-9 . _ -`` become
    one ``_``, leading dots/underscores go, at most 64 characters; ``events`` and an empty
    result get a ``stream_`` prefix so they never clash with the event-log folder."""
    text = _UNSAFE.sub("_", str(name)).lstrip("._")[:MAX_NAME].rstrip("_")
    if not text or text == EVENTS_DIR:
        text = f"stream_{text}".rstrip("_")
    return text


def day_folder(root: Path, stream: str, when: Optional[float] = None) -> Path:
    return root / stream / time.strftime("%Y-%m-%d", time.localtime(when))


def stamp(when: float, millis: bool = False) -> str:
    text = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    if millis:
        text += f"-{int((when % 1) * 1000):03d}"
    return text
