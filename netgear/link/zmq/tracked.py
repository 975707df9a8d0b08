"""Zero-copy sends that return only once libzmq has let go of the caller's buffers.

A fire-and-forget sender either copies a frame (libzmq reads the copy later) or lends
libzmq the caller's array and waits, before send() returns, until libzmq has written it
into the kernel. Lending saves a copy of the whole frame, which at 1080p costs the sender
more CPU than the wait (docs/performance.md, PAIR).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import zmq

from ...errors import PeerTimeoutError
from ..base import Stop, never
from .channel import Channel
from .waits import wait_released

__all__ = ["RELEASE_GRACE", "Lender"]

logger = logging.getLogger(__name__)

RELEASE_GRACE = 0.25  # close() from another thread: how long a lent frame may finish


class Lender:
    """Lends parts to libzmq and waits for them back; remembers a frame that never came back."""

    def __init__(self) -> None:
        # a lent frame whose send() timed out, per channel, until libzmq lets go of it
        self._held: dict[Channel, zmq.MessageTracker] = {}

    def can_lend(self, channel: Channel) -> bool:
        """False while a frame that timed out is still queued on ``channel``.

        Frames behind it are copied: they would wait for it anyway, and a copy can be
        queued and returned at once, as a plain copying sender does.
        """
        held = self._held.get(channel)
        if held is not None and held.done:
            del self._held[channel]
            held = None
        return held is None

    @staticmethod
    def lend(parts: list[Any]) -> tuple[list[Any], zmq.MessageTracker]:
        """Zero-copy frames for ``parts`` and one tracker over all of them.

        A tracker per part: send_multipart reports only the last part's, and a small last
        part (copied, so done at once) would hide a frame libzmq still reads.
        """
        frames = [zmq.Frame(part, track=True) for part in parts]
        return frames, zmq.MessageTracker(*frames)

    def wait(self, channel: Channel, tracker: zmq.MessageTracker, timeout: float,
             retries: int, stop: Stop) -> None:
        """Return once libzmq has written the lent frame out, within send()'s retry budget.

        The frame is already queued, so a peer that stops reading for the whole budget
        leaves it there: PeerTimeoutError says libzmq still reads that buffer. The socket
        is not rebuilt: that would drop the frames queued before it, and a PAIR receiver
        still holding the old connection would silently ignore the new one.
        """
        for attempt in range(retries + 1):
            released = wait_released(tracker, time.monotonic() + timeout, stop)
            if released:
                return
            if released is None:
                # close() from another thread: a live peer takes the frame within moments,
                # and close() then drops whatever is left before it returns
                wait_released(tracker, time.monotonic() + min(timeout, RELEASE_GRACE), never)
                return
            logger.warning("%s: peer not reading the frame after %.2fs (attempt %d of %d)",
                           channel.label, timeout, attempt + 1, retries + 1)
        self._held[channel] = tracker
        raise PeerTimeoutError(
            f"no peer read the frame on port {channel.label} within {timeout:g}s after "
            f"{retries} retries; it stays queued and its array is still being read until "
            "the receiver takes it or close(): send a new array next, not that one "
            "overwritten (copy=True copies every frame; request_timeout and max_retries set "
            "this wait)")
