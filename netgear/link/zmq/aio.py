"""Event-loop waits on the ZeroMQ link's sockets, for :mod:`netgear.aio`.

The asyncio API drives the same :class:`Transport` and the same receiver logic as the
sync class; only the waiting differs. Instead of blocking in ``zmq_poll`` it registers
each socket's ``ZMQ_FD`` with the running loop (what ``zmq.asyncio`` does inside) and
checks ``ZMQ_EVENTS`` when the loop says the descriptor fired. It does this on the
plain sockets the transport already owns rather than through ``zmq.asyncio.Poller``:
that poller wraps each socket in a new shadow per call and removes its loop reader only
in a later loop callback, while ``close()`` needs every reader gone before the sockets
close (a reader left on a closed descriptor can fire for whatever reuses its number).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import zmq

from ..base import Stop, never
from .channel import Channel, translate_errors
from .pairwatch import let_in_stranded
from .transport import Transport

__all__ = ["STRANDED_CHECK", "Watch", "receive_now"]

STRANDED_CHECK = 0.1  # a PAIR receiver's wait looks for a refused sender this often


def receive_now(transport: Transport, channels: Sequence[Channel],
                copy: bool) -> tuple[Channel, list[Any]] | None:
    """The next message already queued on any of ``channels``, or None: never waits."""
    if len(channels) > 1:
        # the transport's fair turn-taking; with a zero timeout it tries each socket once
        return transport.receive_any(list(channels), 0, copy, never)
    channel = channels[0]
    sock = channel.sock
    if sock is None:
        return None
    with translate_errors("receive"):
        try:
            parts = sock.recv_multipart(zmq.NOBLOCK, copy=copy)
        except zmq.Again:
            return None
    if channel.watch is not None:
        channel.watch.saw(parts)
    return channel, parts


class Watch:
    """The loop's watch on a receiver's sockets, for waits in :meth:`wait`.

    The descriptors are registered with the loop at the first wait and stay registered
    until :meth:`release` (a registration per wait would cost a fair share of a frame's
    time at 640x480), and again after the sockets or the loop changed. ``release()``
    must run on the loop's thread before the sockets close.
    """

    def __init__(self, channels: Sequence[Channel]) -> None:
        self.channels = channels
        self.loop: asyncio.AbstractEventLoop | None = None
        self.socks: tuple[zmq.Socket, ...] = ()
        self.fds: tuple[int, ...] = ()
        self.waiter: asyncio.Future[None] | None = None

    def ready(self) -> bool:
        """True when a message is queued. Reading ``ZMQ_EVENTS`` is also what lets a
        socket process its pending commands and so clears its descriptor."""
        with translate_errors("poll"):
            return any(s.getsockopt(zmq.EVENTS) & zmq.POLLIN for s in self.socks)

    async def wait(self, timeout: float | None, stop: Stop) -> bool:
        """Until a message is queued: True; False when ``timeout`` passed or ``stop()``
        turned true (:meth:`wake` makes a waiting call look). Cancelling it consumes
        nothing."""
        loop = asyncio.get_running_loop()
        self._arm(loop)
        if not self.socks:
            return False
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if self.ready():
                return True
            if stop():
                return False
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            if self._let_in_stranded():
                self._arm(loop)  # the reopened socket's descriptor
                continue
            if self._watched():  # look again within a slice, as the sync receiver does
                left = STRANDED_CHECK if left is None else min(left, STRANDED_CHECK)
            self.waiter = woken = loop.create_future()
            timer = None if left is None else loop.call_later(left, self.wake)
            try:
                await woken
            finally:
                self.waiter = None
                if timer is not None:
                    timer.cancel()

    def _watched(self) -> bool:
        return len(self.channels) == 1 and self.channels[0].watch is not None

    def _let_in_stranded(self) -> bool:
        """A PAIR sender refused while another held the slot: reopen the socket (see
        pairwatch.py). The loop's reader goes first: none may stay on a closed descriptor."""
        return self._watched() and let_in_stranded(self.channels[0], before=self.release)

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def release(self) -> None:
        loop, fds = self.loop, self.fds
        self.loop, self.socks, self.fds = None, (), ()
        if loop is not None and not loop.is_closed():
            for fd in fds:
                loop.remove_reader(fd)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        socks = tuple(c.sock for c in self.channels if c.sock is not None)
        if loop is self.loop and socks == self.socks:
            return
        self.release()
        self.loop, self.socks = loop, socks
        self.fds = tuple(s.getsockopt(zmq.FD) for s in socks)
        for fd in self.fds:
            loop.add_reader(fd, self._fired)

    def _fired(self) -> None:
        if any(s.closed for s in self.socks):
            self.release()  # an instance dropped unclosed: its descriptors may be reused
            return
        # Cleared also while nobody waits (a frame arrived between two recv() calls);
        # otherwise the loop would call this again at once, for as long as it stays set.
        for sock in self.socks:
            sock.getsockopt(zmq.EVENTS)
        self.wake()
