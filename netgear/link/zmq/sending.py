"""Sending on the ZeroMQ link: queue a message, a request and its reply, a posted request.

Each operation is tried at one hub with Lazy Pirate retries (``*_at_hub``) and moved to
the next hub of a sender's list when that one exhausts its budget (``failover.py``).
:class:`Sending` is mixed into :class:`~netgear.link.zmq.transport.Transport`, which
owns the attributes declared on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import zmq

from ...errors import PeerTimeoutError
from ..base import Stop, never
from .channel import Channel, translate_errors
from .failover import Hubs, at_each_hub
from .tracked import Lender
from .waits import MISSED, drain_subscriptions, recv_within, send_within

__all__ = ["Sending"]

logger = logging.getLogger(__name__)


class Sending:
    """send(), request() and post() of the transport."""

    hubs: dict[Channel, Hubs]  # a sender's hub list per channel, if it has one
    envelope: list[bytes]  # what a DEALER standing in for REQ puts before each request
    _lender: Lender

    def _sock(self, channel: Channel) -> zmq.Socket:
        raise NotImplementedError  # the transport opens deferred sockets

    def _at_each_hub(self, channel: Channel, attempt: Callable[[bool], Any],
                     final: bool = False) -> Any:
        hubs = self.hubs.get(channel)
        return attempt(True) if hubs is None or final else at_each_hub(channel, hubs, attempt)

    def send(self, channel: Channel, parts: list[Any], *, copy: bool, track: bool,
             timeout: float, retries: int, drop_if_busy: bool, stop: Stop = never) -> bool:
        """Queue ``parts`` once the socket can take them, failing over when a hub list says so.

        Returns False when ``drop_if_busy`` and the queue is full (nothing was sent).
        """
        return self._at_each_hub(channel, lambda first: self._send_at_hub(
            channel, parts, copy=copy, track=track, timeout=timeout, retries=retries,
            drop_if_busy=drop_if_busy, stop=stop))

    def _send_at_hub(self, channel: Channel, parts: list[Any], *, copy: bool, track: bool,
                     timeout: float, retries: int, drop_if_busy: bool,
                     stop: Stop = never) -> bool:
        """Queue ``parts`` once the socket can take them; rebuild and retry when it cannot.

        Returns False when ``drop_if_busy`` and the queue is full (nothing was sent).
        ``track``: send zero-copy and return only once libzmq has let go of every part, so
        the caller may overwrite its buffers (see :class:`~.tracked.Lender`). While a
        tracked frame that timed out is still queued on ``channel``, frames are copied.
        """
        tracker = None
        if track and self._lender.can_lend(channel):
            parts, tracker = self._lender.lend(parts)
            copy = False
        elif track:
            copy = True
        for attempt in range(retries + 1):
            sock = self._sock(channel)
            if channel.socket_type == zmq.XPUB:
                channel.joins += drain_subscriptions(sock)
            with translate_errors("send"):
                if drop_if_busy:
                    try:
                        sock.send_multipart(parts, zmq.NOBLOCK, copy=copy)
                        sent = True
                    except zmq.Again:
                        return False
                else:
                    sent = send_within(channel, parts, timeout, stop, copy, False) is not MISSED
                if sent:
                    if tracker is not None:
                        # each Frame object holds its message until it is freed: libzmq
                        # can only let go once these are gone
                        parts.clear()
                        self._lender.wait(channel, tracker, timeout, retries, stop)
                    return True
            if stop():
                return False
            # No rebuild here: a full queue means a slow or stalled peer, and rebuilding
            # would silently discard frames already accepted (a gone peer needs none: libzmq
            # reconnects by itself). So the attempts only pace the warnings.
            logger.warning("%s: peer not taking frames after %.2fs (attempt %d of %d)",
                           channel.label, timeout, attempt + 1, retries + 1)
        raise PeerTimeoutError(
            f"no peer took the message on port {channel.label} within {timeout:g}s "
            f"after {retries} retries"
        )

    def request(self, channel: Channel, parts: list[Any], *, copy: bool, timeout: float,
                retries: int, accept: Callable[[list[Any]], bool],
                stop: Stop = never, final: bool = False,
                sent: bool = False) -> list[Any] | None:
        """:meth:`_request_at_hub`, moved to the next hub when one exhausts its budget."""
        return self._at_each_hub(channel, lambda first: self._request_at_hub(
            channel, parts, copy=copy, timeout=timeout, retries=retries, accept=accept,
            stop=stop, final=final, sent=sent and first), final)

    def _request_at_hub(self, channel: Channel, parts: list[Any], *, copy: bool,
                        timeout: float, retries: int, accept: Callable[[list[Any]], bool],
                        stop: Stop = never, final: bool = False,
                        sent: bool = False) -> list[Any] | None:
        """Send and wait for the matching reply (REQ/REP, bidirectional PAIR), Lazy Pirate style.

        ``accept`` tells a reply to this request from a stale one, which is skipped.
        None when ``stop()`` turned true while waiting. ``final``: the socket is closed next,
        so it is not rebuilt after the last attempt. ``sent``: :meth:`post` already sent
        ``parts``, so the first attempt only waits (a retry resends them on a new socket).
        """
        for attempt in range(retries + 1):
            self._sock(channel)
            deadline = time.monotonic() + timeout
            with translate_errors("request"):
                if (sent and attempt == 0) or send_within(
                        channel, self.envelope + parts, timeout, stop, copy,
                        False) is not MISSED:
                    while True:
                        reply = recv_within(channel, deadline - time.monotonic(), stop, False)
                        if reply is None:
                            break
                        reply = reply[len(self.envelope):]
                        if accept(reply):
                            return reply
            if stop():
                return None
            # at close (final) an unanswered end-of-stream is normal: the peer left first
            (logger.debug if final else logger.warning)(
                "%s: no reply within %.2fs (attempt %d of %d)",
                channel.label, timeout, attempt + 1, retries + 1)
            if attempt < retries:
                with translate_errors("socket rebuild"):
                    channel.rebuild()
        if not final:
            # The socket may hold a half-done request; leave a clean one for the next call.
            with translate_errors("socket rebuild"):
                channel.rebuild()
        raise PeerTimeoutError(
            f"no reply from port {channel.label} within {timeout:g}s after {retries} retries"
        )

    def post(self, channel: Channel, parts: list[Any], *, copy: bool, timeout: float,
             retries: int, stop: Stop = never) -> bool:
        """:meth:`_post_at_hub`, moved to the next hub when one exhausts its budget."""
        return self._at_each_hub(channel, lambda first: self._post_at_hub(
            channel, parts, copy=copy, timeout=timeout, retries=retries, stop=stop))

    def _post_at_hub(self, channel: Channel, parts: list[Any], *, copy: bool, timeout: float,
                     retries: int, stop: Stop = never) -> bool:
        """Send a request without waiting for its reply (``request(sent=True)`` collects it).

        Rebuilds the socket between attempts like :meth:`request`; False when ``stop()``
        turned true first.
        """
        for attempt in range(retries + 1):
            self._sock(channel)
            with translate_errors("request"):
                if send_within(channel, self.envelope + parts, timeout, stop, copy,
                               False) is not MISSED:
                    return True
            if stop():
                return False
            logger.warning("%s: no peer took the request within %.2fs (attempt %d of %d)",
                           channel.label, timeout, attempt + 1, retries + 1)
            with translate_errors("socket rebuild"):
                channel.rebuild()
        raise PeerTimeoutError(
            f"no peer took the frame on port {channel.label} within {timeout:g}s "
            f"after {retries} retries"
        )
