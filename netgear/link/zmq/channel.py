"""One ZeroMQ socket and its endpoints, and the boundary where ``zmq.ZMQError`` is translated.

:class:`translate_errors` is the one place a ``zmq.ZMQError`` becomes a
:class:`TransportError`; everything that calls ZeroMQ goes through it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import zmq

from ...errors import TransportError

if TYPE_CHECKING:
    from .pairwatch import PairWatch

__all__ = ["MAX_QUEUE_FRAMES", "QUEUE_FRAMES", "Channel", "Connector", "SocketHook",
           "translate_errors"]

logger = logging.getLogger(__name__)

QUEUE_FRAMES = 4  # senders, until their first frame tells its size
MAX_QUEUE_FRAMES = 1000
REBIND_FOR = 2.0  # a rebuilt bound socket retries its bind this long
SocketHook = Callable[[zmq.Socket, "Channel"], None]
# Replaces sock.connect(endpoint) on a connecting channel (ssh_tunnel_mode).
Connector = Callable[[zmq.Socket, str], None]


class translate_errors:
    """``with translate_errors("send"):`` turns a ``zmq.ZMQError`` into a TransportError.

    A class, not @contextmanager: it is entered twice per frame on the hot path, and a
    generator-based manager costs several times more.
    """

    __slots__ = ("action",)

    def __init__(self, action: str) -> None:
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if isinstance(exc, zmq.ZMQError):
            raise TransportError(
                f"{self.action} failed: {exc.strerror} (errno {exc.errno})") from exc
        return False


class Channel:
    """One ZeroMQ socket and the endpoints it binds or connects to."""

    def __init__(self, context: zmq.Context, socket_type: int, endpoints: Sequence[str],
                 bind: bool, hooks: Sequence[SocketHook], label: str, ipv6: bool) -> None:
        self.context = context
        self.socket_type = socket_type
        self.endpoints = list(endpoints)
        self.bind = bind
        self.hooks = list(hooks)
        self.label = label  # the port this channel stands for, reported to the user
        self.ipv6 = ipv6
        self.sock: zmq.Socket | None = None
        self.rebuilds = 0
        self.joins = 0  # XPUB: subscriptions seen (each subscriber's, with XPUB_VERBOSE)
        self.timeouts: dict[int, int] = {}  # SNDTIMEO/RCVTIMEO currently set on sock
        self.queue_frames = QUEUE_FRAMES
        self.fitted = False  # the send queue was sized from the first frame
        # PAIR and PUB senders connect at their first frame, when its size is known
        self.deferred = False
        self.connector: Connector | None = None
        self.in_flight = 0  # requests sent and not yet answered (netgear.core.inflight counts)
        # True: each received message's ZAP User-Id (the CURVE key) is kept in ``peer``
        self.want_peer = False
        self.peer: str | None = None
        self.watch: PairWatch | None = None  # a bound PAIR receiver's connections

    def note_peer(self, parts: list[Any]) -> list[Any]:
        """Keep the ZAP User-Id of the message just received (``want_peer`` channels)."""
        if self.want_peer:
            try:
                self.peer = parts[0].get("User-Id") or None
            except (AttributeError, zmq.ZMQError):  # no such property: an unauthenticated peer
                self.peer = None
        return parts

    def open(self) -> None:
        sock = self.context.socket(self.socket_type)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            if self.ipv6:
                sock.setsockopt(zmq.IPV6, 1)
            for hook in self.hooks:
                hook(sock, self)
            for endpoint in self.endpoints:
                verb = "bind" if self.bind else "connect"
                with translate_errors(f"{verb} to {endpoint}"):
                    if self.bind or self.connector is None:
                        (sock.bind if self.bind else sock.connect)(endpoint)
                    else:
                        self.connector(sock, endpoint)
        except BaseException:
            sock.close(linger=0)
            if self.watch is not None:  # a hook's watch of the socket that failed
                self.watch.close()
                self.watch = None
            raise
        self.sock = sock
        self.timeouts = {}

    def set_timeout(self, option: int, ms: int) -> None:
        """Set SNDTIMEO/RCVTIMEO, skipping the call when it already has that value."""
        if self.timeouts.get(option) != ms and self.sock is not None:
            self.sock.setsockopt(option, ms)
            self.timeouts[option] = ms

    def fit_queue(self, frame_bytes: int, queue_bytes: int) -> None:
        """Size the send queue so about ``queue_bytes`` of such frames fit.

        libzmq counts messages, not bytes, so this converts. A high-water mark cannot be
        changed on a live pipe (libzmq's flow control then stalls the writer for good), so
        deferred channels connect only after this, at their first frame; a channel that is
        already open keeps what it has.
        """
        if self.sock is None and not self.fitted:
            self.queue_frames = max(1, min(MAX_QUEUE_FRAMES, queue_bytes // max(1, frame_bytes)))
        self.fitted = True

    def rebuild(self) -> None:
        """Lazy Pirate: drop the socket and whatever it queued, then open a fresh one.

        A bound socket binds again until REBIND_FOR has passed: libzmq closes the old
        listener asynchronously, so the port can still be taken for a moment.
        """
        self.close(linger_ms=0)
        self.rebuilds += 1
        logger.debug("rebuilding socket for %s (rebuild %d)", self.label, self.rebuilds)
        deadline = time.monotonic() + REBIND_FOR
        while True:
            try:
                self.open()
                return
            except TransportError:
                if not self.bind or time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)  # the old listener is still closing in libzmq's I/O thread

    def close(self, linger_ms: int = 0) -> None:
        if self.sock is not None:
            with contextlib.suppress(zmq.ZMQError):
                self.sock.close(linger=linger_ms)
            self.sock = None
        if self.watch is not None:  # after the socket: its monitor's last event is read
            self.watch.close()
            self.watch = None
