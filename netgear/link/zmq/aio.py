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
from .transport import Transport

__all__ = ["readable", "receive_now"]


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
            return channel, sock.recv_multipart(zmq.NOBLOCK, copy=copy)
        except zmq.Again:
            return None


async def readable(channels: Sequence[Channel], timeout: float | None,
                   wakers: set[asyncio.Future[None]], stop: Stop) -> bool:
    """Wait until a message is queued on any of ``channels``: True, else False when
    ``timeout`` passed or ``stop()`` turned true (``close()`` resolves the futures it
    finds in ``wakers`` after setting what ``stop`` reads).

    Cancelling the wait consumes nothing: every reader is removed before this returns.
    """
    socks = [c.sock for c in channels if c.sock is not None]
    if not socks:
        return False
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    fds = [s.getsockopt(zmq.FD) for s in socks]
    woken: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not woken.done():
            woken.set_result(None)

    wakers.add(woken)
    for fd in fds:
        loop.add_reader(fd, wake)
    try:
        while True:
            # checked after the readers are in place: ZMQ_FD only fires on a change, and
            # reading ZMQ_EVENTS is what rearms it
            with translate_errors("poll"):
                if any(s.getsockopt(zmq.EVENTS) & zmq.POLLIN for s in socks):
                    return True
            if stop():
                return False
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            timer = None if left is None else loop.call_later(left, wake)
            try:
                await woken
            finally:
                if timer is not None:
                    timer.cancel()
            wakers.discard(woken)
            woken = loop.create_future()
            wakers.add(woken)
    finally:
        wakers.discard(woken)
        for fd in fds:
            loop.remove_reader(fd)
