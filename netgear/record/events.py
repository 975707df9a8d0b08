"""EventLog: what happened to a hub's streams, as JSON lines in one file per day."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Optional

from .layout import EVENTS_DIR

__all__ = ["EVENTS", "MAX_LINE", "EventLog"]

logger = logging.getLogger(__name__)

EVENTS = frozenset({"joined", "left", "stale", "live", "message", "segment_opened",
                    "segment_closed", "error"})
MAX_LINE = 4096  # bytes; a longer event keeps its ts/event/stream and says it was cut
MAX_TEXT = 500  # characters kept of any one string value (a sender's message, an error)
RECENT = 200  # events kept in memory for the viewer


class EventLog:
    """Append events to ``root/events/<YYYY-MM-DD>.jsonl`` (local date: rotated daily).

    Each write opens, appends and closes the day's file, so a crash loses nothing already
    logged and a new day starts a new file with no timer. A write that fails (disk full,
    read-only folder) is logged once per kind of error and kept in :attr:`error`;
    events still reach :meth:`recent`.
    """

    def __init__(self, root: Path) -> None:
        self.folder = Path(root) / EVENTS_DIR
        self.error: Optional[str] = None
        self._lock = threading.Lock()
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self._warned: set[str] = set()

    def path(self, when: Optional[float] = None) -> Path:
        return self.folder / (time.strftime("%Y-%m-%d", time.localtime(when)) + ".jsonl")

    def log(self, event: str, stream: Optional[str] = None, **details: Any) -> dict[str, Any]:
        """Record one event; returns it as written. Never raises for I/O."""
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; one of {sorted(EVENTS)}")
        entry: dict[str, Any] = {"ts": round(time.time(), 6), "event": event,
                                 "stream": stream}
        for key, value in details.items():
            if isinstance(value, str) and len(value) > MAX_TEXT:
                value = value[:MAX_TEXT] + "..."
            entry[key] = value
        line = json.dumps(entry, default=str, ensure_ascii=False)
        if len(line.encode()) > MAX_LINE:
            entry = {"ts": entry["ts"], "event": event, "stream": stream, "truncated": True}
            line = json.dumps(entry)
        with self._lock:
            self._recent.append(entry)
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                with open(self.path(entry["ts"]), "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
                self.error = None
            except OSError as exc:
                self.error = f"cannot write the event log in {self.folder}: {exc}"
                if type(exc).__name__ not in self._warned:
                    self._warned.add(type(exc).__name__)
                    logger.error("%s", self.error)
        return entry

    def recent(self, stream: Optional[str] = None, limit: int = 50) -> list[dict[str, Any]]:
        """The newest events (of one stream, if given), oldest first, for the viewer."""
        with self._lock:
            items = [e for e in self._recent if stream is None or e.get("stream") == stream]
        return items[-limit:]
