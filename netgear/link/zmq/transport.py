"""The ZeroMQ link: sockets, bind/connect, bounded waits, Lazy Pirate rebuilds, end of stream.

``zmq.ZMQError`` becomes :class:`TransportError` only through
:class:`~netgear.link.zmq.channel.translate_errors`.
Every socket option is applied by :meth:`Channel.open` through the hooks the
modes registered, so a rebuilt socket gets exactly the options (and keys) the
first one had. Which socket types, lingers and end-of-stream delivery apply is read
from the pattern's :class:`~netgear.link.pattern.Pattern`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import zmq

from ...core.settings import Settings
from ...errors import TransportError
from ..base import Stop
from .channel import Channel, SocketHook, translate_errors
from .failover import Hubs
from .pairwatch import watch_pair
from .sending import Sending
from .sockopts import base_options
from .tracked import Lender
from .waits import recv_within, slice_ms

__all__ = ["CLOSE_LINGER_MS", "END_REPEATS", "Channel", "SocketHook", "Transport",
           "translate_errors"]

logger = logging.getLogger(__name__)

CLOSE_LINGER_MS = 500  # how long a closing socket may still flush its last messages
END_REPEATS = 5  # PUB/SUB end-of-stream copies, see _publish_reliably
MAX_NOTICES = 64  # unasked messages read per notices() call


class Transport(Sending):
    """The channels of one NetGear instance and the blocking operations on them."""

    def __init__(self, settings: Settings, split: bool) -> None:
        # inproc only works within one context, so those instances share the global one;
        # everything else gets its own, so instances never interfere (ZAP handlers, term()).
        self.shared_context = settings.protocol == "inproc"
        self.context = zmq.Context.instance() if self.shared_context else zmq.Context()
        self.policy = policy = settings.policy
        self.receive_mode = settings.receive_mode
        socket_type = getattr(zmq, policy.receiver_socket if settings.receive_mode
                              else policy.sender_socket)
        # send_window > 1: a REQ socket carries one request at a time, a DEALER pipelines
        # them to the same REP receiver (which answers in order); it adds REQ's empty
        # delimiter part itself (self.envelope)
        self.envelope: list[bytes] = []
        if socket_type == zmq.REQ and settings.options["send_window"] > 1:
            socket_type, self.envelope = zmq.DEALER, [b""]
        hooks = [base_options(settings)]
        if (socket_type == zmq.PAIR and settings.binds and settings.receive_mode
                and len(settings.ports) == 1):
            hooks.append(watch_pair)  # a restarted PAIR sender must not be shut out
        if split:
            self.channels = [
                Channel(self.context, socket_type, [settings.endpoint(p)], settings.binds,
                        hooks, p, settings.ipv6)
                for p in settings.ports
            ]
        else:
            self.channels = [
                Channel(self.context, socket_type, settings.endpoints(), settings.binds, hooks,
                        settings.port, settings.ipv6)
            ]
        # a sender given several hub addresses: see failover.py for the rule
        self.hubs: dict[Channel, Hubs] = {}
        if len(settings.addresses) > 1:
            for channel in self.channels:  # one: validation refuses a split sender
                endpoints = settings.hub_endpoints(settings.port)
                if policy.fans_out:
                    channel.endpoints = endpoints  # a publisher feeds every hub at once
                else:
                    self.hubs[channel] = Hubs(endpoints)
                    channel.endpoints = endpoints[:1]
        if not settings.receive_mode and policy.connects_at_first_frame:
            for channel in self.channels:
                channel.deferred = True
        self.closed = False
        self._turn = 0  # receive_any: the channel to try first
        self._poll = zmq.Poller()
        self._polled: tuple[int, ...] = ()  # the sockets _poll watches
        self._at_close: list[Callable[[], None]] = []
        self._lender = Lender()

    def at_close(self, action: Callable[[], None]) -> None:
        """Run ``action`` at the end of close(), after every socket has flushed (a tunnel)."""
        self._at_close.append(action)

    def add_hook(self, hook: SocketHook) -> None:
        """Apply ``hook`` to every socket this transport opens, rebuilds included."""
        for channel in self.channels:
            channel.hooks.append(hook)

    def open(self) -> None:
        try:
            for channel in self.channels:
                if not channel.deferred:
                    channel.open()
        except BaseException:
            self.close()
            raise

    # -- receiving ----------------------------------------------------------------------
    def receive(self, channel: Channel, timeout: float | None, copy: bool,
                stop: Stop) -> list[Any] | None:
        """Wait for one message; None when ``timeout`` passes or ``stop()`` turns true."""
        self._sock(channel)
        with translate_errors("receive"):
            # the sender's key is a property of the received zmq.Frame: keep frames then
            parts = recv_within(channel, timeout, stop, copy and not channel.want_peer)
            return None if parts is None else channel.note_peer(parts)

    def receive_any(self, channels: list[Channel], timeout: float | None, copy: bool,
                    stop: Stop) -> tuple[Channel, list[Any]] | None:
        """Wait for one message on any of ``channels``, which take turns when all are busy.

        Each port has its own socket so that where a message came from is a fact of the
        transport, not a claim in its header. None when ``timeout`` passes or ``stop()``
        turns true.
        """
        if len(channels) == 1:
            parts = self.receive(channels[0], timeout, copy, stop)
            return None if parts is None else (channels[0], parts)
        deadline = None if timeout is None else time.monotonic() + timeout
        with translate_errors("receive"):
            while True:
                # Start after the channel served last, so one busy port cannot starve another.
                order = channels[self._turn:] + channels[:self._turn]
                for index, channel in enumerate(order):
                    try:
                        parts = self._sock(channel).recv_multipart(
                            zmq.NOBLOCK, copy=copy and not channel.want_peer)
                    except zmq.Again:
                        continue
                    channel.note_peer(parts)
                    self._turn = (self._turn + index + 1) % len(channels)
                    return channel, parts
                if stop() or (deadline is not None and time.monotonic() >= deadline):
                    return None
                self._poller(channels).poll(slice_ms(deadline))

    def _poller(self, channels: list[Channel]) -> zmq.Poller:
        socks = tuple(id(self._sock(c)) for c in channels)
        if self._polled != socks:
            self._poll = zmq.Poller()
            for channel in channels:
                self._poll.register(self._sock(channel), zmq.POLLIN)
            self._polled = socks
        return self._poll

    def notices(self, channel: Channel) -> list[list[Any]]:
        """Messages a peer sent this sender unasked (PAIR keyframe requests), without waiting.

        Never opens a deferred socket; at most a queue's worth per call.
        """
        sock, found = channel.sock, []
        if sock is None:
            return found
        with translate_errors("receive"):
            while len(found) < MAX_NOTICES:
                try:
                    found.append(sock.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
        return found

    def reply(self, channel: Channel, parts: list[Any]) -> None:
        """Queue a reply without waiting: never block on a peer that has gone.

        A PAIR socket whose peer left (e.g. a sender that gave up waiting for the answer to
        its end-of-stream) would block a plain send for good, and recv() with it. A reply
        that cannot be queued at once is dropped; its sender retries or has left.
        """
        with translate_errors("reply"):
            try:
                self._sock(channel).send_multipart(parts, zmq.NOBLOCK, copy=True)
            except zmq.Again:
                logger.debug("%s: reply dropped, no peer to take it", channel.label)

    def ready(self, channel: Channel) -> bool:
        """True when a peer is connected and this socket is free for a new request.

        Sender sockets set ZMQ_IMMEDIATE, so POLLOUT means a peer is connected. A request
        in flight (send_window=1) means a peer took it; the next send() on that socket
        collects its reply first.
        """
        sock = channel.sock
        return sock is not None and (channel.in_flight > 0
                                     or bool(sock.poll(0, zmq.POLLOUT)))

    # -- end of stream --------------------------------------------------------------------
    def end(self, channel: Channel, parts: list[Any], timeout: float) -> None:
        """Deliver an end-of-stream nobody acknowledges (REQ/REP's last, PUB/SUB's).

        REQ/REP: every frame has its reply already, so END is queued without waiting and
        flushed by close()'s linger; PUB/SUB: published a few times, see _publish_reliably.
        """
        sock = channel.sock
        if sock is None:
            return
        with translate_errors("end of stream"):
            if self.policy.fans_out:
                _publish_reliably(sock, parts, timeout)
                return
            # ZMQ_IMMEDIATE: writable once a receiver is connected. One still connecting (e.g.
            # mid CURVE handshake, never sent a frame yet) gets up to ``timeout`` to be told.
            if sock.poll(int(timeout * 1000), zmq.POLLOUT):
                try:
                    sock.send_multipart(self.envelope + parts, flags=zmq.NOBLOCK)
                    return
                except zmq.Again:
                    pass
            logger.debug("port %s: no receiver for the end-of-stream", channel.label)

    # -- lifecycle ----------------------------------------------------------------------
    def finish(self, replying: bool) -> None:
        """Close after a normal end of stream, lingering where messages may still be queued.

        A sender lingers where the pattern says (PAIR had its END acknowledged, which covers
        every frame before it); a replying receiver lingers so the reply to the frame recv()
        just returned is not discarded (that frame's send() would time out).
        """
        flush = replying if self.receive_mode else self.policy.lingers_on_close
        self.close(CLOSE_LINGER_MS if flush else 0)

    def _sock(self, channel: Channel) -> zmq.Socket:
        if channel.sock is None:
            if self.closed or not channel.deferred:
                raise TransportError(f"socket for port {channel.label} is closed")
            channel.deferred = False
            channel.open()
        return channel.sock  # type: ignore[return-value]

    def close(self, linger_ms: int = 0) -> None:
        if self.closed:
            return
        self.closed = True
        for channel in self.channels:
            channel.close(linger_ms)
        if not self.shared_context:
            # every socket is closed with a bounded linger, so term() cannot hang
            self.context.term()
        for action in self._at_close:
            try:
                action()
            except Exception:
                logger.exception("closing %r failed", action)


def _publish_reliably(sock: zmq.Socket, parts: list[Any], timeout: float) -> None:
    """Get the end-of-stream marker to every subscriber, within ``timeout``.

    libzmq marks a PUB pipe inactive once a burst fills it and silently skips it until the
    socket next processes its commands; XPUB_NODROP cannot see such a pipe either. So the
    marker is published a few times with back-off, letting drained pipes come back in
    between (receivers ignore the repeats: they share one sequence number).
    """
    deadline = time.monotonic() + timeout
    pause = 0.01
    sock.setsockopt(zmq.XPUB_NODROP, 1)  # a full (but active) pipe refuses, not drops
    for _ in range(END_REPEATS):
        sock.getsockopt(zmq.EVENTS)  # process pending commands: reactivates pipes
        with contextlib.suppress(zmq.Again):
            sock.send_multipart(parts, flags=zmq.NOBLOCK)
        if time.monotonic() + pause > deadline:
            return
        time.sleep(pause)  # close() only; bounded by ``timeout``
        pause *= 2
