"""Read-only view of a recordings folder, in the layout ``netgear record`` writes::

    ROOT/<stream>/<YYYY-MM-DD>/<stream>_<YYYYmmdd-HHMMSS>.mp4   (+ optional .mp4.json sidecar)
    ROOT/<stream>/<YYYY-MM-DD>/*.jpg                             (--format jpeg)
    ROOT/events/<YYYY-MM-DD>.jsonl                               (one JSON object per line)

Every path a client names is resolved and must stay under ROOT; listings and event reads
are bounded so a huge folder or log cannot stall the viewer.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Optional

__all__ = ["MAX_LISTED", "Recordings"]

MAX_LISTED = 500  # segments per listing, newest first
MAX_CACHED = 20_000  # segment rows kept between listings (a few MB at most)
EVENT_TAIL = 256 * 1024  # bytes read from the end of each daily event log
EVENT_DAYS = 2  # today's log and yesterday's: enough for "recent"
SERVED = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
STAMP = re.compile(r"_(\d{8}-\d{6})\.mp4$")


class Recordings:
    """Lists segments, serves their paths safely, and tails the event log under ``root``."""

    def __init__(self, root: os.PathLike[str] | str) -> None:
        self.root = Path(root).expanduser().resolve()
        self._cache: dict[tuple[str, int, int, Optional[int]], dict[str, Any]] = {}

    # -- files ------------------------------------------------------------------------
    def resolve(self, relative: str) -> Optional[Path]:
        """The file ``relative`` names under the root, or None (outside, missing, other type)."""
        if not relative or "\x00" in relative or relative.startswith(("/", "\\")):
            return None
        try:
            path = (self.root / relative).resolve()
        except (OSError, RuntimeError, ValueError):  # symlink loops, bad names
            return None
        # resolve() follows symlinks first, so a link pointing out of the root fails here too
        if not path.is_relative_to(self.root) or path.suffix.lower() not in SERVED:
            return None
        return path if path.is_file() else None

    @staticmethod
    def media_type(path: Path) -> str:
        return SERVED[path.suffix.lower()]

    def segments(self, streams: tuple[str, ...] = (), limit: int = MAX_LISTED
                 ) -> list[dict[str, Any]]:
        """Segments (and JPEG days) newest first, of ``streams`` only when given.

        Day folders are read newest first and reading stops once ``limit`` items are in:
        weeks of one-minute segments cost one listing of the days, not a stat per file.
        """
        days: list[tuple[str, str, Path]] = []
        for stream_dir in self._dirs(self.root):
            if stream_dir.name == "events" or (streams and stream_dir.name not in streams):
                continue
            days.extend((d.name, stream_dir.name, d) for d in self._dirs(stream_dir)
                        if DAY.match(d.name))
        days.sort(reverse=True)
        out: list[dict[str, Any]] = []
        for index, (day, stream, day_dir) in enumerate(days):
            out.extend(self._day(stream, day_dir))
            if len(out) >= limit and (index + 1 == len(days) or days[index + 1][0] != day):
                break
        out.sort(key=lambda s: (s["start"] or 0, s["path"]), reverse=True)
        return out[:limit]

    def _day(self, stream: str, day_dir: Path) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        jpegs, jpeg_bytes, newest = 0, 0, 0.0
        try:
            entries = list(os.scandir(day_dir))
        except OSError:
            return items
        stats: dict[str, os.stat_result] = {}
        for entry in entries:
            try:
                stats[entry.name] = entry.stat()
            except OSError:  # removed by retention while we looked
                continue
        for name, st in stats.items():
            if name.lower().endswith((".jpg", ".jpeg")):
                jpegs, jpeg_bytes, newest = jpegs + 1, jpeg_bytes + st.st_size, max(newest,
                                                                                   st.st_mtime)
            elif name.endswith(".mp4"):
                side = stats.get(name + ".json")
                # a segment and its sidecar unchanged since the last listing: reuse its row
                key = (str(day_dir / name), st.st_size, st.st_mtime_ns,
                       side.st_mtime_ns if side else None)
                item = self._cache.get(key)
                if item is None:
                    if len(self._cache) >= MAX_CACHED:
                        self._cache.clear()
                    item = self._cache[key] = self._segment(stream, day_dir, name,
                                                            st.st_size, st.st_mtime)
                items.append(dict(item))
        if jpegs:
            items.append({"stream": stream, "day": day_dir.name, "kind": "jpeg",
                          "path": f"{stream}/{day_dir.name}", "files": jpegs,
                          "size": jpeg_bytes, "start": newest, "end": newest,
                          "duration": None, "complete": None})
        return items

    def _segment(self, stream: str, day_dir: Path, name: str, size: int, mtime: float
                 ) -> dict[str, Any]:
        start: Optional[float] = None
        match = STAMP.search(name)
        if match:
            try:
                start = time.mktime(time.strptime(match.group(1), "%Y%m%d-%H%M%S"))
            except ValueError:
                start = None
        item: dict[str, Any] = {"stream": stream, "day": day_dir.name, "kind": "mp4",
                                "path": f"{stream}/{day_dir.name}/{name}", "name": name,
                                "size": size, "start": start, "end": mtime, "frames": None,
                                "complete": None}
        side = self._sidecar(day_dir / (name + ".json"))
        for key in ("start", "end", "frames", "complete", "codec"):
            if key in side:
                item[key] = side[key]
        # without a sidecar the file's last write is the best end we have
        ok = isinstance(item["start"], (int, float)) and isinstance(item["end"], (int, float))
        item["duration"] = round(max(0.0, item["end"] - item["start"]), 1) if ok else None
        return item

    @staticmethod
    def _sidecar(path: Path) -> dict[str, Any]:
        try:
            if path.stat().st_size > 64 * 1024:
                return {}
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    @staticmethod
    def _dirs(path: Path) -> list[Path]:
        try:
            return sorted(p for p in path.iterdir() if p.is_dir() and not p.is_symlink())
        except OSError:
            return []

    # -- event log --------------------------------------------------------------------
    def events(self, streams: tuple[str, ...] = (), limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` events, newest first, of ``streams`` when given (null-stream
        events, such as disk errors, are always included)."""
        found: list[dict[str, Any]] = []
        logs = sorted(self._logs())[-EVENT_DAYS:]
        for path in reversed(logs):
            for event in reversed(_tail(path)):
                stream = event.get("stream")
                if streams and stream is not None and stream not in streams:
                    continue
                found.append(event)
                if len(found) >= limit:
                    return found
        return found

    def _logs(self) -> list[Path]:
        try:
            return [p for p in (self.root / "events").glob("*.jsonl")
                    if DAY.match(p.stem) and p.is_file()]
        except OSError:
            return []

    def status(self, streams: tuple[str, ...] = ()) -> Optional[dict[str, Any]]:
        """The recorder's current error, or None.

        The newest ``error`` event counts as current until a later ``segment_opened`` or
        ``segment_closed`` of the same stream (any stream, for a stream-less error) shows
        that recording works again. An unreadable root is an error too.
        """
        if not os.access(self.root, os.R_OK | os.X_OK) or not self.root.is_dir():
            return {"ts": time.time(), "event": "error", "stream": None,
                    "message": f"recordings folder {self.root} is missing or not readable"}
        recovered: set[Optional[str]] = set()
        for event in self.events(streams, limit=500):
            kind, stream = event.get("event"), event.get("stream")
            if kind in ("segment_opened", "segment_closed"):
                recovered.add(stream)
            elif kind == "error":
                if stream in recovered or (stream is None and recovered):
                    continue
                return event
        return None


_TAILS: dict[Path, tuple[tuple[int, int], list[dict[str, Any]]]] = {}
_TAILS_LOCK = threading.Lock()


def _tail(path: Path) -> list[dict[str, Any]]:
    """The JSON objects in the last EVENT_TAIL bytes of ``path``; bad lines are skipped.

    Cached by size and mtime: every open stream page asks once a second, and the log
    changes far less often than that.
    """
    try:
        st = path.stat()
    except OSError:
        return []
    key = (st.st_size, st.st_mtime_ns)
    with _TAILS_LOCK:
        cached = _TAILS.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    events = _read_tail(path)
    with _TAILS_LOCK:
        if len(_TAILS) >= 8:  # two days per folder; a few folders at most
            _TAILS.clear()
        _TAILS[path] = (key, events)
    return events


def _read_tail(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - EVENT_TAIL))
            data = fh.read(EVENT_TAIL)
    except OSError:
        return []
    lines = data.split(b"\n")
    if size > EVENT_TAIL:
        lines = lines[1:]  # the first one is cut
    out = []
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:  # a line being written, or garbage
            continue
        if isinstance(doc, dict) and isinstance(doc.get("event"), str):
            out.append(doc)
    return out
