"""Per-stream receive statistics, derived from the header's sequence numbers."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Stats", "StreamStats"]


@dataclass
class StreamStats:
    """Counters for one sender (one port in multi-server mode)."""

    name: str
    frames: int = 0
    dropped: int = 0  # frames missing from the sequence (PUB/SUB drops, lost on restart)
    restarts: int = 0  # the sender's sequence started over
    skipped: int = 0  # video frames not shown: the decoder waited for a keyframe
    bytes: int = 0
    last_seq: int = -1
    last_seen: float = 0.0  # time.time() of the last frame
    latency: float = 0.0  # seconds, sender clock to receiver clock, smoothed
    fps: float = 0.0  # smoothed
    _last_arrival: float = field(default=0.0, repr=False)
    _gap: float = field(default=0.0, repr=False)

    def record(self, seq: int, sent_at: float, nbytes: int) -> None:
        now = time.time()
        if self.last_seq >= 0:
            if seq > self.last_seq + 1:
                self.dropped += seq - self.last_seq - 1
            elif seq <= self.last_seq:
                self.restarts += 1
        self.last_seq = seq
        self.frames += 1
        self.bytes += nbytes
        arrival = time.monotonic()
        if self._last_arrival:
            # smooth the gaps, not the rates: averaging 1/gap overstates a jittery stream
            gap = arrival - self._last_arrival
            self._gap = gap if not self._gap else 0.9 * self._gap + 0.1 * gap
            self.fps = 1.0 / self._gap if self._gap > 0 else 0.0
        self._last_arrival = arrival
        delay = max(0.0, now - sent_at)
        self.latency = delay if self.frames == 1 else 0.9 * self.latency + 0.1 * delay
        self.last_seen = now

    def discard(self, nbytes: int) -> None:
        """Take back a recorded frame whose payload then failed to decode."""
        self.frames -= 1
        self.bytes -= nbytes

    def skip(self) -> None:
        """A recorded frame was not shown: its decoder has no reference picture yet."""
        self.frames -= 1
        self.skipped += 1

    def record_end(self, seq: int) -> None:
        """The sender closed; frames between the last one seen and its END were lost."""
        if 0 <= self.last_seq < seq - 1:
            self.dropped += seq - self.last_seq - 1
        self.last_seq = -1  # whatever comes next is a new stream

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_last_arrival")
        data.pop("_gap")
        return data


@dataclass
class Stats:
    """What a receiver counted; ``NetGear.stats`` returns a snapshot of it."""

    streams: dict[str, StreamStats] = field(default_factory=dict)
    bad_messages: int = 0  # malformed messages dropped
    refused: int = 0  # well-formed frames over a receiver limit (max_decoded_bytes, codecs)
    duplicates: int = 0  # retried frames and repeated end markers, answered but not delivered
    conflated: int = 0  # older frames a conflating receiver skipped for a newer one
    forged: int = 0  # port tags naming another socket, ENDs from a stranger: dropped
    sent: int = 0  # frames a sender handed to the socket
    send_dropped: int = 0  # frames a sender dropped (flag=zmq.NOBLOCK with a full queue)
    keyframe_requests: int = 0  # sender: keyframes asked for (by a receiver, a rebuild, a join)

    # stats are read from other threads (a viewer) while recv() adds streams
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def stream(self, name: str) -> StreamStats:
        entry = self.streams.get(name)
        if entry is None:
            with self._lock:
                entry = self.streams.setdefault(name, StreamStats(name))
        return entry

    def forget(self, name: str) -> None:
        """Drop a stream that left (a hub's servers come and go: keep memory bounded)."""
        with self._lock:
            self.streams.pop(name, None)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            streams = list(self.streams.items())
        return {
            "streams": {k: v.as_dict() for k, v in streams},
            "bad_messages": self.bad_messages,
            "refused": self.refused,
            "duplicates": self.duplicates,
            "conflated": self.conflated,
            "forged": self.forged,
            "sent": self.sent,
            "send_dropped": self.send_dropped,
            "keyframe_requests": self.keyframe_requests,
        }
