"""Recorder: one writer thread per stream, an event log, retention, and a status to show.

Frames are handed over through a short queue per stream, so a slow disk or encoder
never holds up receiving: when a queue is full the frame is not recorded and counted in
``lost``. A write error (disk full, folder not writable) is logged, written to the event
log and shown in :meth:`status`; the stream's frames are dropped until ``retry_after``
seconds pass, then recording tries again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import OptionError
from .events import EventLog
from .jpeg import JpegWriter
from .layout import safe_name
from .retention import Retention
from .segment import SEGMENT_SECONDS, SegmentWriter

__all__ = ["FORMATS", "Recorder"]

logger = logging.getLogger(__name__)

FORMATS = ("mp4", "jpeg")
TICK = 0.5  # seconds between stale checks
RETENTION_EVERY = 10.0
_CLOSE = object()


class _Stream:
    def __init__(self, rec: Recorder, key: str, name: str) -> None:
        self.rec, self.key, self.name = rec, key, name
        self.folder = safe_name(name)
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=rec.queue_frames)
        self.writer: Any = None
        self.error: Optional[str] = None
        self.retry_at = 0.0
        self.frames = self.lost = 0
        self.encoders = 0  # encoders opened by this stream's closed writers
        # passthrough: a packet was not recorded, so the next ones lack their reference
        self.need_keyframe = False
        self.seen = 0.0
        self.state = "live"
        self.message: Optional[str] = None
        self.thread = threading.Thread(target=self._run, name=f"netgear-record-{key}",
                                       daemon=True)
        self.thread.start()

    def _event(self, event: str, **details: Any) -> None:
        self.rec.events.log(event, self.key, name=self.name, **details)
        if event == "segment_closed":
            self.rec._retention_due.set()

    def _make_writer(self) -> Any:
        rec = self.rec
        if rec.format == "jpeg":
            return JpegWriter(rec.out, self.folder, on_event=self._event)
        return SegmentWriter(rec.out, self.folder, segment_seconds=rec.segment_seconds,
                             crf=rec.crf, on_event=self._event)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _CLOSE:
                self._close_writer()
                return
            kind, args = item
            if self.error is not None and time.monotonic() < self.retry_at:
                self.lost += 1
                continue
            try:
                if self.writer is None:
                    self.writer = self._make_writer()
                if kind == "frame":
                    self.writer.write_frame(*args)
                elif kind == "packet":
                    if not self.writer.write_packet(*args):
                        continue  # before the first keyframe (after an error): not playable
                else:
                    self.writer.close()
                    continue
                self.frames += 1
                if self.error is not None:
                    self.error = None
                    logger.warning("recording %s works again", self.name)
            except Exception as exc:  # disk full, permissions, codec: recording pauses
                self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self.lost += 1
        self.error = f"cannot record stream {self.name!r} under {self.rec.out}: {exc}"
        self.retry_at = time.monotonic() + self.rec.retry_after
        logger.error("%s (retrying in %g s; receiving goes on)", self.error,
                     self.rec.retry_after)
        self.rec.events.log("error", self.key, name=self.name, error=self.error)
        self._close_writer()

    def _close_writer(self) -> None:
        writer, self.writer = self.writer, None
        if writer is None:
            return
        self.encoders += getattr(writer, "encoders_opened", 0)
        try:
            writer.close()
        except Exception as exc:  # the file is already broken; keep the first error
            logger.error("closing the recording of %s failed: %s", self.name, exc)


class Recorder:
    """Record every stream under ``out`` as MP4 segments (or JPEG files), with an event log.

    Args:
        out: the recordings folder (created if missing).
        format: ``"mp4"`` (segments through PyAV) or ``"jpeg"``.
        segment_seconds: length of an MP4 segment.
        retention: what to delete, oldest first; checked every 10 s and as segments close.
        stale_after: seconds without a frame before a stream is logged as stale.
        crf: libx264 quality for encoded segments (0-51, lower is better).
        queue_frames: frames waiting per stream before new ones are not recorded.
        retry_after: seconds recording pauses for a stream after a write error.
    """

    def __init__(self, out: Path, format: str = "mp4",
                 segment_seconds: float = SEGMENT_SECONDS,
                 retention: Optional[Retention] = None, stale_after: float = 2.0,
                 crf: int = 23, queue_frames: int = 30, retry_after: float = 5.0) -> None:
        if format not in FORMATS:
            raise OptionError(f"format={format!r}: record as one of {FORMATS}", key="format")
        if not segment_seconds > 0:
            raise OptionError(f"segment_seconds={segment_seconds!r} must be > 0, e.g. 60",
                              key="segment_seconds")
        if not 0 <= int(crf) <= 51:
            raise OptionError(f"crf={crf!r} is outside 0-51 (23 is libx264's default)",
                              key="crf")
        if format == "mp4":
            from .segment import _av

            _av()  # a missing PyAV fails here, before any socket opens
        self.out = Path(out)
        self.format, self.segment_seconds, self.crf = format, float(segment_seconds), int(crf)
        self.retention = retention or Retention()
        self.stale_after, self.queue_frames = float(stale_after), int(queue_frames)
        self.retry_after = float(retry_after)
        self.events = EventLog(self.out)
        self.error: Optional[str] = None  # a problem with the folder itself
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._retention_due = threading.Event()
        self._thread = threading.Thread(target=self._monitor, name="netgear-record",
                                        daemon=True)
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.error = f"cannot create the recordings folder {self.out}: {exc}"
            logger.error("%s; receiving goes on without recording", self.error)

    def start(self) -> Recorder:
        self._thread.start()
        return self

    # -- input ----------------------------------------------------------------------------
    def _stream(self, key: str, name: Optional[str]) -> _Stream:
        with self._lock:
            st = self._streams.get(key)
            if st is None or not st.thread.is_alive():
                st = self._streams[key] = _Stream(self, key, name or key)
                self.events.log("joined", key, name=st.name, folder=st.folder)
            return st

    def add_frame(self, key: str, frame: np.ndarray, name: Optional[str] = None,
                  message: Any = None, when: Optional[float] = None) -> bool:
        """Queue one decoded frame of stream ``key``; False when its queue was full."""
        st = self._stream(key, name)
        self._seen(st, message)
        return self._put(st, ("frame", (frame, time.time() if when is None else when)))

    def add_message(self, key: str, message: Any, name: Optional[str] = None) -> None:
        """A text that came without a picture (see RecordingHub): logged, nothing recorded."""
        self._seen(self._stream(key, name), message)

    def add_packet(self, key: str, data: bytes, keyframe: bool, pts: Optional[float] = None,
                   codec: str = "h264", width: int = 0, height: int = 0,
                   extradata: Optional[bytes] = None, name: Optional[str] = None,
                   message: Any = None) -> bool:
        """Queue one H.264/HEVC packet, recorded without re-encoding (MP4 only).

        Packets must come in decoding order with none missing. When one cannot be queued
        (the writer is behind), the following ones are not recorded either until the next
        keyframe, which needs no earlier packet: False for each of them.
        """
        st = self._stream(key, name)
        self._seen(st, message)
        if st.need_keyframe and not keyframe:
            st.lost += 1
            return False
        when = time.time() if pts is None else pts
        queued = self._put(st, ("packet", (data, keyframe, when, codec, width, height,
                                           extradata)))
        st.need_keyframe = not queued
        return queued

    def stream_left(self, key: str) -> None:
        """The sender said goodbye: close its segment and log ``left``."""
        with self._lock:
            st = self._streams.pop(key, None)
        if st is not None:
            self.events.log("left", key, name=st.name, frames=st.frames, lost=st.lost)
            st.queue.put(_CLOSE)

    def _seen(self, st: _Stream, message: Any) -> None:
        st.seen = time.monotonic()
        if st.state == "stale":
            st.state = "live"
            self.events.log("live", st.key, name=st.name)
        if message is not None and not isinstance(message, str):
            message = str(message)
        if message and message != st.message and message.strip() != st.name:
            st.message = message
            self.events.log("message", st.key, name=st.name, text=message)

    def _put(self, st: _Stream, item: Any) -> bool:
        try:
            st.queue.put_nowait(item)
            return True
        except queue.Full:
            st.lost += 1
            return False

    # -- background: stale streams, retention --------------------------------------------
    def _monitor(self) -> None:
        next_retention = time.monotonic()
        while not self._stop.wait(TICK):
            now = time.monotonic()
            with self._lock:
                streams = list(self._streams.values())
            for st in streams:
                if st.state == "live" and now - st.seen > self.stale_after:
                    st.state = "stale"
                    self.events.log("stale", st.key, name=st.name)
            if self.retention.active and (self._retention_due.is_set()
                                          or now >= next_retention):
                self._retention_due.clear()
                next_retention = now + RETENTION_EVERY
                self.apply_retention()

    def apply_retention(self) -> list[Path]:
        """Apply the retention limits now; the segments being written are kept."""
        with self._lock:
            protect = [st.writer.path for st in self._streams.values()
                       if st.writer is not None and st.writer.path is not None]
        return self.retention.apply(self.out, protect)

    # -- output ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """JSON-ready: the folder, format, any error, and per stream its recording state."""
        with self._lock:
            streams = list(self._streams.values())
        errors = [e for e in [self.error, self.events.error] + [s.error for s in streams] if e]
        return {
            "out": str(self.out),
            "format": self.format,
            "segment_seconds": self.segment_seconds,
            "ok": not errors,
            "error": errors[0] if errors else None,
            "streams": {st.key: {
                "name": st.name, "folder": st.folder,
                "state": "error" if st.error else st.state,
                "error": st.error, "frames": st.frames, "lost": st.lost,
                "encoders_opened": st.encoders + getattr(st.writer, "encoders_opened", 0),
                "path": None if st.writer is None or st.writer.path is None
                else str(st.writer.path),
            } for st in streams},
        }

    def close(self, timeout: float = 10.0) -> None:
        """Finish every segment (bounded by ``timeout`` overall); idempotent."""
        self._stop.set()
        with self._lock:
            streams, self._streams = list(self._streams.values()), {}
        deadline = time.monotonic() + timeout
        for st in streams:
            try:  # waits only while that writer drains its short queue
                st.queue.put(_CLOSE, timeout=max(0.01, deadline - time.monotonic()))
            except queue.Full:  # a writer stuck on a hung disk: leave its daemon thread
                logger.error("recording of %s did not finish in %g s", st.name, timeout)
        for st in streams:
            st.thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
