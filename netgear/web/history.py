"""Per-stream history for the stream pages: a bounded ring of samples and recent events.

The hub's receive thread calls :meth:`History.sample` about once a second with its
snapshot and its copy of ``NetGear.stats``; readers take copies. Nothing here grows
without bound: HISTORY_SECONDS samples and MAX_EVENTS events per hub.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Optional

__all__ = ["HISTORY_SECONDS", "MAX_EVENTS", "History"]

HISTORY_SECONDS = 300  # samples kept per stream, one a second: the last five minutes
MAX_EVENTS = 200


class History:
    """Samples ``(time, fps, latency_ms, kbps)`` per stream, and join/stale/live events."""

    def __init__(self, seconds: int = HISTORY_SECONDS, max_events: int = MAX_EVENTS) -> None:
        self._samples: dict[str, deque[tuple[float, float, float, float]]] = {}
        self._events: deque[dict[str, Any]] = deque(maxlen=max_events)
        self._seconds = seconds
        self._bytes: dict[str, tuple[float, int]] = {}  # port -> (time, byte count) last seen
        self._status: dict[str, str] = {}
        self._lock = threading.Lock()

    def sample(self, streams: Sequence[Mapping[str, Any]],
               counters: Mapping[str, Mapping[str, Any]], now: Optional[float] = None) -> None:
        """Record one sample per stream; ``streams`` is ``MontageHub.snapshot()``."""
        now = time.time() if now is None else now
        with self._lock:
            for s in streams:
                port = s["port"]
                nbytes = int(counters.get(port, {}).get("bytes", 0))
                before = self._bytes.get(port)
                kbps = 0.0
                if before is not None and now > before[0] and nbytes >= before[1]:
                    # payload bytes as received (compressed), so this is the wire bitrate
                    kbps = (nbytes - before[1]) * 8 / 1000.0 / (now - before[0])
                self._bytes[port] = (now, nbytes)
                ring = self._samples.setdefault(port, deque(maxlen=self._seconds))
                ring.append((round(now, 3), float(s["fps"]), float(s["latency_ms"]),
                             round(kbps, 1)))
                self._note_status(port, s["name"], s["status"], now)

    def _note_status(self, port: str, name: str, status: str, now: float) -> None:
        previous = self._status.get(port, "waiting")
        self._status[port] = status
        if status == previous:
            return
        # the hub's own view of a stream: first frame, then stale/live transitions
        event = {"waiting": None, "live": "joined" if previous == "waiting" else "live",
                 "stale": "stale"}.get(status)
        if event:
            self._events.append({"ts": round(now, 3), "event": event, "stream": name,
                                 "port": port})

    def samples(self, port: str) -> list[tuple[float, float, float, float]]:
        with self._lock:
            return list(self._samples.get(port, ()))

    def events(self, ports: Sequence[str] = (), limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` events, newest first; only ``ports`` when given."""
        with self._lock:
            items = [e for e in self._events if not ports or e["port"] in ports]
        return list(reversed(items[-limit:]))
