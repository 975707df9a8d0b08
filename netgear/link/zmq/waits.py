"""Bounded, interruptible waits on ZeroMQ sockets, shared by the link and the imagezmq API.

Every blocking call is cut into slices of at most POLL_SLICE_MS, so a ``close()`` from
another thread (``stop()`` turning true) is noticed within one slice, and no wait outlives
its deadline by more than that.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import zmq

from ..base import Stop
from .pairwatch import let_in_stranded

if TYPE_CHECKING:
    from .channel import Channel

__all__ = ["MISSED", "POLL_SLICE_MS", "drain_subscriptions", "recv_within", "send_within",
           "slice_ms", "wait_readable", "wait_released"]

POLL_SLICE_MS = 100  # blocking waits wake this often to notice close() from another thread
MISSED = object()  # send_within: the time ran out (None is a valid "sent, untracked")


def slice_ms(deadline: float | None) -> int:
    if deadline is None:
        return POLL_SLICE_MS
    return max(1, min(POLL_SLICE_MS, int((deadline - time.monotonic()) * 1000)))


def send_within(channel: Channel, parts: list[Any], timeout: float | None, stop: Stop,
                copy: bool, track: bool) -> Any:
    """Blocking send in short slices (SNDTIMEO), so the common case is one call.

    Returns the tracker (or None untracked), or MISSED when ``timeout`` passed or
    ``stop()`` turned true first.
    """
    sock = channel.sock
    assert sock is not None  # the caller opened it (an internal invariant, not user input)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        channel.set_timeout(zmq.SNDTIMEO, slice_ms(deadline))
        try:
            return sock.send_multipart(parts, copy=copy, track=track)
        except zmq.Again:
            if stop() or (deadline is not None and time.monotonic() >= deadline):
                return MISSED


def recv_within(channel: Channel, timeout: float | None, stop: Stop,
                copy: bool) -> list[Any] | None:
    """Blocking receive in short slices (RCVTIMEO); None when the time is up or stopped."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if deadline is not None and deadline <= time.monotonic():
            return None
        channel.set_timeout(zmq.RCVTIMEO, slice_ms(deadline))
        sock = channel.sock
        assert sock is not None  # the caller opened it (an internal invariant, not user input)
        try:
            parts = sock.recv_multipart(copy=copy)
        except zmq.Again:
            if stop():
                return None
            if channel.watch is not None:  # nothing came: was a restarted sender shut out?
                let_in_stranded(channel)
            continue
        if channel.watch is not None:
            channel.watch.saw(parts)
        return parts


def wait_readable(sock: zmq.Socket, deadline: float | None, stop: Stop) -> bool | None:
    """Poll ``sock`` for input in slices: True readable, False deadline passed, None stopped."""
    while True:
        if stop():
            return None
        if deadline is not None and deadline <= time.monotonic():
            return False
        if sock.poll(slice_ms(deadline), zmq.POLLIN):
            return True


def wait_released(tracker: zmq.MessageTracker, deadline: float | None,
                  stop: Stop) -> bool | None:
    """Wait until libzmq let go of a tracked buffer: True released, False late, None stopped."""
    while not tracker.done:
        if stop():
            return None
        if deadline is not None and deadline <= time.monotonic():
            return False
        with contextlib.suppress(zmq.NotDone):
            tracker.wait(slice_ms(deadline) / 1000)
    return True


def drain_subscriptions(sock: zmq.Socket) -> int:
    """Read the XPUB's queued notices; returns how many were subscriptions (joins)."""
    # XPUB queues a notice per subscribe/unsubscribe; if nobody read them, libzmq would
    # keep them forever on a publisher that runs for months.
    joins = 0
    with contextlib.suppress(zmq.ZMQError):
        while True:
            joins += sock.recv(zmq.NOBLOCK, copy=True)[:1] == b"\x01"
    return joins
