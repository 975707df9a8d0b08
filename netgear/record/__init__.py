"""Recording: every stream into its own folder as MP4 segments or JPEG files, an event
log per hub, and retention. See docs/recording.md."""

from __future__ import annotations

from .events import EventLog
from .jpeg import JpegWriter
from .layout import safe_name
from .recorder import FORMATS, Recorder
from .retention import Retention
from .segment import SegmentWriter

__all__ = ["FORMATS", "EventLog", "JpegWriter", "Recorder", "Retention", "SegmentWriter",
           "safe_name"]
