"""Connection-level limits for the viewer: a cap, a header/idle timeout, small socket buffers.

uvicorn on its own holds a connection that sends half a request line forever (its
keep-alive timer only runs between requests, and any byte cancels it), and writes to a
browser that stopped reading until the kernel's buffers are full. :func:`guarded_protocol`
subclasses uvicorn's h11 protocol so that

* at most ``max_connections`` are open; a new one first evicts the oldest connection
  still waiting for its request headers (a slowloris cannot starve real clients), and is
  closed at once when every slot is busy with a real request;
* a connection must deliver complete request headers within ``header_timeout`` seconds
  of opening or of finishing its previous response, however slowly it trickles bytes;
* each socket's kernel send buffer is ``SEND_BUFFER`` bytes, so a client that does not
  read pins at most that much kernel memory (plus asyncio's 64 KiB) until the MJPEG
  send timeout drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

__all__ = ["SEND_BUFFER", "GuardCounters", "RateLimitFilter", "guarded_protocol"]

logger = logging.getLogger(__name__)

SEND_BUFFER = 128 * 1024  # bytes; Linux doubles it for bookkeeping


@dataclass
class GuardCounters:
    """What the guard refused; shown under ``web`` in ``/stats``."""

    connections_refused: int = 0  # over the cap with every slot serving a request
    connections_evicted: int = 0  # waiting for headers, pushed out by a newer connection
    header_timeouts: int = 0
    streams_dropped: int = 0  # MJPEG clients that stopped reading (send timeout)
    streams_refused: int = 0  # over max_streams
    unauthorized: int = 0
    open_connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in vars(self).items() if not k.startswith("_")}


def abort(transport: asyncio.BaseTransport) -> None:
    """Close at once, discarding unsent data (RST): nothing stays queued for a dead reader."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already gone
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()  # type: ignore[attr-defined]


def guarded_protocol(max_connections: int, header_timeout: float,
                     counters: GuardCounters) -> type[asyncio.Protocol]:
    """An h11 protocol class for ``uvicorn.Config(http=...)`` enforcing the limits above."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._opened = time.monotonic()
            self._waiting = True  # for request headers
            self._header_timer: asyncio.TimerHandle | None = None
            self._counted = False
            super().connection_made(transport)
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            if len(self.connections) > max_connections and not self._make_room():
                counters.add("connections_refused")
                abort(transport)
                return
            counters.add("open_connections")
            self._counted = True
            self._arm()

        def _make_room(self) -> bool:
            waiting = [c for c in self.connections
                       if c is not self and getattr(c, "_waiting", False)]
            if not waiting:
                return False
            oldest = min(waiting, key=lambda c: c._opened)
            counters.add("connections_evicted")
            abort(oldest.transport)
            self.connections.discard(oldest)  # connection_lost follows on the next loop turn
            return True

        def _arm(self) -> None:
            self._disarm()
            self._waiting = True
            self._header_timer = self.loop.call_later(header_timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if self._waiting and not self.transport.is_closing():
                counters.add("header_timeouts")
                abort(self.transport)

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle and self.cycle is not None:
                # complete headers arrived: a request is being served, no longer "waiting"
                self._waiting = False
                self._disarm()
                # the app may drop a stream whose client stopped reading
                self.scope.setdefault("extensions", {})["netgear.abort"] = {
                    "abort": lambda t=self.transport: abort(t)}

        def on_response_complete(self) -> None:
            # Armed first: the next request's head (or the idle end) is timed too, and a
            # pipelined request that super() starts right away disarms it again.
            self._arm()
            super().on_response_complete()
            if self.transport.is_closing():
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._counted:
                self._counted = False
                counters.add("open_connections", -1)
            self._waiting = False
            super().connection_lost(exc)

    return GuardedH11Protocol


class RateLimitFilter(logging.Filter):
    """Let ``limit`` records through per ``interval`` seconds, then count the rest.

    At the start of the next interval one record says how many were suppressed. Installed
    on the viewer's and uvicorn's/asyncio's loggers while a viewer runs, so a flood of
    failing connections (2000 hitting "Too many open files") cannot fill the disk.
    """

    def __init__(self, limit: int = 20, interval: float = 10.0) -> None:
        super().__init__()
        self.limit = limit
        self.interval = interval
        self.suppressed = 0  # total, for tests and /stats
        self._window_start = time.monotonic()
        self._in_window = 0
        self._held_back = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._window_start >= self.interval:
                if self._held_back:
                    record.msg = (f"{record.msg} [{self._held_back} similar log records "
                                  f"suppressed in the last {self.interval:g} s]")
                self._window_start, self._in_window, self._held_back = now, 0, 0
            if self._in_window >= self.limit:
                self._held_back += 1
                self.suppressed += 1
                return False
            self._in_window += 1
            return True
