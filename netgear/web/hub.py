"""MontageHub: a multi-server receiver thread that keeps only the newest frame per stream.

The web viewer and the OpenCV window both read from a hub. The receive loop never waits
for them: it stores the latest frame under a lock and moves on, and readers take
snapshots. Montage rendering and JPEG encoding happen on the reader's side, on demand,
so nothing is encoded while nobody watches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import cv2
import numpy as np

from ..core.netgear import NetGear
from ..errors import NetGearError, PayloadError, PeerTimeoutError
from ..helpers import fit_frame, make_montage, to_bgr
from ..modes.tap import TappedPacket
from .history import History

__all__ = ["MontageHub", "StreamView"]

logger = logging.getLogger(__name__)

STALE_AFTER = 2.0  # seconds without a frame before a stream shows as STALE
DROP_AFTER = 30.0  # one-port hub: seconds of silence before a stream's tile is removed
STATS_EVERY = 0.25  # seconds between copies of NetGear.stats taken by the receive thread
JOIN_TIMEOUT = 3.0
# fps is counted over a window of arrivals: an average of 1/gap overstates jittery streams
FPS_WINDOW = 2.0
FPS_SAMPLES = 256
# Longer than the fps window: a video stream's keyframes (one a second by default, ten or
# more P-frames' worth) would make a two-second bitrate jump with each one in or out.
BITRATE_WINDOW = 5.0
BITRATE_SAMPLES = 512
SAMPLE_EVERY = 1.0  # seconds between history samples (the stream pages' plots)


@dataclass
class StreamView:
    """What the hub knows about one port; ``frame`` is the newest one received."""

    port: str
    name: str
    frame: Optional[np.ndarray] = None
    seen: float = 0.0  # time.time() of the newest frame, 0 before the first
    frames: int = 0  # counted here too: the NetGear.stats copy lags by up to STATS_EVERY
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=FPS_SAMPLES))
    codec: str = ""  # of the newest frame, as its header named it ("" before the first)
    # (arrival, payload bytes as received) per frame, for the wire bitrate
    sizes: deque[tuple[float, int]] = field(
        default_factory=lambda: deque(maxlen=BITRATE_SAMPLES))

    def bitrate(self, now: float) -> float:
        """Bits per second on the wire over the last BITRATE_WINDOW seconds of frames."""
        recent = [(t, n) for t, n in self.sizes if now - t <= BITRATE_WINDOW]
        if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
            return 0.0
        # the frames after the first, over the time they took: counted like fps()
        return sum(n for _, n in recent[1:]) * 8 / (recent[-1][0] - recent[0][0])

    def fps(self, now: float) -> float:
        """Frames per second over the last FPS_WINDOW seconds of arrivals."""
        recent = [t for t in self.arrivals if now - t <= FPS_WINDOW]
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])


class MontageHub:
    """Receive from many servers (multi-server mode) and hold the newest frame of each.

    Args:
        ports: the servers' ports; the hub binds each of them on ``address``.
        address: interface to bind, e.g. ``"127.0.0.1"`` or ``"*"``.
        pattern: 1 (REQ/REP) or 2 (PUB/SUB), as the servers use.
        stale_after: seconds without a frame after which a stream counts as stale.
        tile: ``(width, height)`` of each stream's cell in the montage.
        one_port: bind ``ports[0]`` alone as a one-port hub: any number of named servers,
            shown as they join and removed when they leave (``drop_after`` of silence
            counts as leaving); the stream never ends (``run_forever``).
        **options: extra NetGear options for the receiver (``multiserver_mode`` is set).
    """

    def __init__(self, ports: Sequence[int], address: str = "127.0.0.1", pattern: int = 1,
                 stale_after: float = STALE_AFTER, tile: tuple[int, int] = (320, 240),
                 one_port: bool = False, **options: Any) -> None:
        if not ports or (one_port and len(ports) != 1):
            raise ValueError("MontageHub needs at least one port (exactly one with one_port)")
        self.stale_after = float(stale_after)
        self.tile = tile
        self.started_at = time.time()
        self.one_port = one_port
        # a one-port hub learns its streams' names as they join
        self._views = {} if one_port else {str(p): StreamView(str(p), str(p)) for p in ports}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stats: dict[str, Any] = {"streams": {}, "bad_messages": 0}
        self._jpeg_lock = threading.Lock()  # one encoder at a time; others reuse its result
        self._jpeg: tuple[float, bytes] = (0.0, b"")
        self.error: Optional[BaseException] = None
        self.history = History()
        self._stream_jpegs: dict[str, tuple[float, bytes]] = {}
        # recv() wakes up now and then even when nothing arrives, to refresh the stats copy.
        # The port is a list even for one server: multi-server mode wants one.
        options.setdefault("receive_timeout", STATS_EVERY)
        if one_port:
            options.setdefault("run_forever", True)
            options.setdefault("stale_after", self.stale_after)
            options.setdefault("drop_after", max(DROP_AFTER, 2 * self.stale_after))
        # each frame's codec and size as received: what the viewer shows per stream
        self._user_tap = options.pop("packet_tap", None)
        options["packet_tap"] = self._on_packet
        port: Any = int(ports[0]) if one_port else [int(p) for p in ports]
        self._gear = NetGear(address=address, port=port, pattern=pattern,
                             receive_mode=True, multiserver_mode=True, **options)
        self._thread = threading.Thread(target=self._run, name="netgear-hub", daemon=True)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> MontageHub:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the receive thread and close the socket; bounded by NetGear.close()."""
        self._stop.set()
        self._gear.close()  # wakes a recv() blocked in the thread
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(JOIN_TIMEOUT)

    def __enter__(self) -> MontageHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def ports(self) -> list[str]:
        return list(self._views)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        next_stats = next_sample = 0.0
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_sample:  # recv() wakes at least every 0.25 s
                    next_sample = time.monotonic() + SAMPLE_EVERY
                    self._sample()
                try:
                    item = self._gear.recv()
                except PeerTimeoutError:  # quiet for receive_timeout: just refresh the stats
                    self._copy_stats()
                    continue
                if item is None:
                    # Every joined server ended; keep listening, a server may come back.
                    if self._stop.is_set():
                        break
                    self._stop.wait(0.05)
                    continue
                self._store(item)
                now = time.monotonic()
                if now >= next_stats:
                    next_stats = now + STATS_EVERY
                    self._copy_stats()
        except NetGearError as exc:
            if not self._stop.is_set():
                self.error = exc
                logger.error("receiving stopped: %s", exc)
        finally:
            self._copy_stats()

    def _store(self, item: Any) -> None:
        port, frame = str(item[0]), item[-1]
        message = item[1] if len(item) == 3 else None
        if frame is None:  # a data-only message: nothing to show
            return
        with self._lock:
            view = self._views.get(port)
            if view is None:  # a filter keeps unknown ports out; be safe anyway
                view = self._views[port] = StreamView(port, port)
            view.frame = frame
            view.seen = time.time()
            view.arrivals.append(view.seen)
            view.frames += 1
            if isinstance(message, str) and message.strip() and not self.one_port:
                view.name = message.strip()[:40]

    def _on_packet(self, packet: TappedPacket) -> None:
        """Called by recv() on the receive thread for each frame, before _store sees it."""
        with self._lock:
            view = self._views.get(packet.stream)
            if view is not None:
                view.codec = packet.codec
                view.sizes.append((time.time(), packet.payload.nbytes))
        if self._user_tap is not None:
            self._user_tap(packet)

    def _copy_stats(self) -> None:
        try:
            stats = self._gear.stats  # read only on this thread: NetGear mutates it here
        except RuntimeError:  # pragma: no cover - defensive, close() raced the copy
            return
        with self._lock:
            self._stats = stats
            if self.one_port:  # servers that left (or were dropped) leave the montage
                live = stats.get("hub", {}).get("live", {})
                for name in [n for n in self._views if n not in live]:
                    del self._views[name]
                    self._stream_jpegs.pop(name, None)

    def _sample(self) -> None:
        with self._lock:
            counters = dict(self._stats.get("streams", {}))
        self.history.sample(self.snapshot(), counters)

    # -- snapshots for readers ------------------------------------------------------------
    def snapshot(self) -> list[dict[str, Any]]:
        """Per stream: name, port, codec, fps, kbps (wire bitrate), frames, dropped,
        latency_ms, last_seen, age, stale."""
        now = time.time()
        with self._lock:
            views = [(v.port, v.name, v.seen, v.fps(now), v.frames, v.codec, v.bitrate(now))
                     for v in self._views.values()]
            streams = self._stats.get("streams", {})
            out = []
            for port, name, seen, fps, frames, codec, bitrate in views:
                st = streams.get(port, {})
                age = now - seen if seen else None
                stale = age is None or age > self.stale_after
                out.append({
                    "port": port,
                    "name": name,
                    "status": "waiting" if seen == 0 else ("stale" if stale else "live"),
                    "stale": stale,
                    "codec": codec or None,
                    "fps": 0.0 if stale else round(fps, 2),
                    "kbps": 0.0 if stale else round(bitrate / 1000.0, 1),
                    "frames": frames,
                    "dropped": int(st.get("dropped", 0)),
                    "latency_ms": round(float(st.get("latency", 0.0)) * 1000.0, 2),
                    "last_seen": seen or None,
                    "age": None if age is None else round(age, 3),
                })
        return out

    def stats(self) -> dict[str, Any]:
        """The JSON document served at ``/stats``."""
        with self._lock:
            bad = int(self._stats.get("bad_messages", 0))
        return {
            "streams": self.snapshot(),
            "stale_after": self.stale_after,
            "bad_messages": bad,
            "receiving": self.running,
            "uptime": round(time.time() - self.started_at, 3),
        }

    def montage(self) -> np.ndarray:
        """The montage of the newest frames; stale tiles are grey and labelled STALE."""
        now = time.time()
        with self._lock:
            items = [(v, v.frame, v.seen) for v in self._views.values()]
        tiles: dict[str, Optional[np.ndarray]] = {}
        for view, frame, seen in items:
            label = view.port if view.name == view.port else f"{view.name} ({view.port})"
            if frame is None:
                tiles[label] = None
                continue
            tile = fit_frame(frame, self.tile)
            if now - seen > self.stale_after:
                tile = _grey_out(tile)
            tiles[label] = tile
        return make_montage(tiles, tile=self.tile)

    def montage_jpeg(self, max_fps: float = 15.0, quality: int = 80) -> bytes:
        """The montage as JPEG, encoded at most ``max_fps`` times a second for all readers."""
        with self._jpeg_lock:
            stamp, data = self._jpeg
            now = time.monotonic()
            if data and now - stamp < 1.0 / max_fps:
                return data
            data = encode_jpeg(self.montage(), quality)
            self._jpeg = (now, data)
            return data

    def stream_jpeg(self, port: str, max_fps: float = 15.0, quality: int = 80
                    ) -> Optional[bytes]:
        """One stream's newest frame as JPEG (None before its first), shared like the montage."""
        with self._lock:
            view = self._views.get(port)
            frame = None if view is None else view.frame
        if frame is None:
            return None
        with self._jpeg_lock:
            stamp, data = self._stream_jpegs.get(port, (0.0, b""))
            now = time.monotonic()
            if data and now - stamp < 1.0 / max_fps:
                return data
            try:
                data = encode_jpeg(to_bgr(frame), quality)  # grey and BGRA frames too
            except PayloadError:  # not an image (e.g. float data): nothing to show
                return None
            self._stream_jpegs[port] = (now, data)
            return data



def _grey_out(tile: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(tile, cv2.COLOR_BGR2GRAY) // 2  # dim as well: stale must not look live
    out = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    height, width = out.shape[:2]
    scale = max(0.5, height / 200.0)
    thick = max(1, round(scale * 2))
    (tw, th), _ = cv2.getTextSize("STALE", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    org = ((width - tw) // 2, (height + th) // 2)
    cv2.putText(out, "STALE", org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 255), thick,
                cv2.LINE_AA)
    return out


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    """BGR image to JPEG bytes: simplejpeg when it can, else OpenCV."""
    try:
        import simplejpeg

        return bytes(simplejpeg.encode_jpeg(np.ascontiguousarray(image), quality=quality,
                                            colorspace="BGR"))
    except ImportError:  # pragma: no cover - simplejpeg is a core dependency
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("OpenCV could not encode the montage") from None
        return buf.tobytes()
