"""Tell a CURVE handshake failure from a dead network, with ZeroMQ's socket monitor.

Without this, a sender holding the wrong server key (or refused by IronHouse) only sees
timeouts. Every secure socket gets a monitor PAIR socket when it opens; one small thread
per NetGear reads their events, logs each failing peer once, and remembers the failure so
a timeout can name it. A PAIR receiver's socket is monitored by its PAIR watch already
(libzmq allows one monitor per socket), whose thread passes the events to :meth:`note`.
The frame path never touches the monitor.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from typing import TYPE_CHECKING

import zmq
from zmq.utils.monitor import recv_monitor_message

if TYPE_CHECKING:
    from ..link.zmq import Channel

__all__ = ["HandshakeMonitor"]

logger = logging.getLogger(__name__)

FAILURES = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
            | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
EVENTS = FAILURES | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_MONITOR_STOPPED
POLL_MS = 100  # how soon the thread notices close() and newly opened sockets
JOIN_TIMEOUT = 1.0


def _peer(endpoint: bytes) -> str:
    text = endpoint.decode(errors="replace")
    return text.split("://", 1)[-1]


class HandshakeMonitor:
    """Watch the handshakes of every socket passed to :meth:`hook` (a transport hook).

    ``server``: the sockets are CURVE servers (receivers), which only learn that *some*
    sender failed on their bound endpoint, not who.
    """

    def __init__(self, server: bool) -> None:
        self.server = server
        self._lock = threading.Lock()
        self._pending: list[zmq.Socket] = []
        self._failed: dict[str, str] = {}  # peer "host:port" -> message, while it keeps failing
        self._logged: set[str] = set()  # peers already reported: once each, not per retry
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._serial = itertools.count()

    # -- called by the transport on the application's thread -------------------------------
    def hook(self, sock: zmq.Socket, channel: Channel) -> None:
        watch = getattr(channel, "watch", None)
        if watch is not None:
            # a PAIR receiver's watch (link/zmq/pairwatch.py) already holds the socket's one
            # monitor; its thread passes the handshake events on
            watch.relay = self.note
            return
        # get_monitor_socket binds and connects the PAIR here, before the socket connects,
        # so no event is lost; the thread takes the PAIR over (the lock is the barrier).
        # A unique address: pyzmq's default derives it from the socket's fd, which a Lazy
        # Pirate rebuild may reuse before libzmq has unbound the old monitor.
        address = f"inproc://netgear-monitor-{id(self):x}-{next(self._serial)}"
        try:
            monitor = sock.get_monitor_socket(EVENTS, addr=address)
        except zmq.ZMQError as exc:  # a diagnostic must never stop the socket from working
            logger.debug("no CURVE handshake monitor on %s: %s", channel.label, exc)
            return
        with self._lock:
            self._pending.append(monitor)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="netgear-curve-monitor",
                                                daemon=True)
                self._thread.start()

    def failure(self, channel: Channel) -> str | None:
        """The handshake error seen on one of ``channel``'s endpoints, if any."""
        with self._lock:
            for endpoint in channel.endpoints:
                message = self._failed.get(_peer(endpoint.encode()))
                if message is not None:
                    return message
        return None

    def close(self) -> None:
        """Stop the thread; it closes every monitor socket. Idempotent, bounded."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():  # pragma: no cover - poll() returns every POLL_MS
                logger.error("CURVE handshake monitor did not stop within %.1fs", JOIN_TIMEOUT)

    # -- the monitor thread -------------------------------------------------------------
    def _run(self) -> None:
        poller = zmq.Poller()
        sockets: list[zmq.Socket] = []
        try:
            while not self._stop.is_set():
                with self._lock:
                    new, self._pending = self._pending, []
                for monitor in new:
                    poller.register(monitor, zmq.POLLIN)
                    sockets.append(monitor)
                for monitor, _ in poller.poll(POLL_MS):
                    if self._read(monitor):  # the watched socket closed (Lazy Pirate rebuild)
                        poller.unregister(monitor)
                        sockets.remove(monitor)
                        monitor.close(linger=0)
        except zmq.ZMQError as exc:  # pragma: no cover - context torn down under us
            logger.debug("CURVE handshake monitor stopped: %s", exc)
        finally:
            with self._lock:
                sockets += self._pending
                self._pending = []
            for monitor in sockets:
                with contextlib.suppress(zmq.ZMQError):
                    monitor.close(linger=0)

    def _read(self, monitor: zmq.Socket) -> bool:
        """Handle the queued events; True once the monitored socket has gone."""
        while True:
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return False
            if event["event"] == zmq.EVENT_MONITOR_STOPPED:
                return True
            self.note(event["event"], event["endpoint"])

    def note(self, kind: int, endpoint: bytes) -> None:
        """One handshake event (from this monitor's thread, or a PAIR watch's)."""
        peer = _peer(endpoint)
        if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            with self._lock:
                self._failed.pop(peer, None)
                self._logged.discard(peer)
            return
        if not kind & FAILURES:
            return
        message = self._describe(kind, peer)
        with self._lock:
            self._failed[peer] = message
            first = peer not in self._logged
            self._logged.add(peer)
        if first:
            logger.warning("%s", message)

    def _describe(self, kind: int, peer: str) -> str:
        if self.server:
            return (f"CURVE handshake failed on {peer}: a sender used a wrong server key or "
                    "is not allowed (IronHouse: `netgear keys allow DIR KEYFILE` lets it in)")
        detail = ""
        if kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            detail = ("; the receiver refused this sender's public key (IronHouse: add "
                      "public/client.key to the receiver's allowed/ folder)")
        return (f"CURVE handshake failed with {peer}: wrong server key or client not "
                f"allowed{detail}")
