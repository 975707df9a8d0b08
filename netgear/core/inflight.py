"""Requests a sender has sent and not yet seen answered: its frames in flight, per channel.

With ``send_window=1`` a REQ/REP (or bidirectional PAIR) sender returns from ``send()``
with one request still unanswered on that channel; the next ``send()`` on the channel,
and ``close()``, collect its reply before anything else goes out. This module is the
only place that knows how many may be outstanding, so a wider window (DEALER sockets)
changes it and not the sender.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..link import Channel

__all__ = ["InFlight", "Pending"]

SPARE_BUFFERS = 4  # answered buffers kept for reuse: the next copy is made while one is out


@dataclass(eq=False)  # identity: comparing kept frames byte by byte would be slow
class Pending:
    """One request on the wire whose reply has not been read yet."""

    channel: Channel
    parts: list[Any]  # owned copies: a Lazy Pirate retry resends exactly these
    seq: int
    # channel.rebuilds when it was sent: a rebuilt socket dropped it, so it is sent again
    generation: int = 0


class InFlight:
    """Outstanding requests per channel, at most ``window`` each (0: strict lockstep)."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._queues: dict[Channel, deque[Pending]] = {}
        # buffers of answered requests, reused for the next copies: a fresh allocation of a
        # large frame costs a page fault per 4 KiB, more than the copy itself
        self._spare: list[bytearray] = []

    def keep(self, parts: list[Any]) -> list[Any]:
        """Copies of ``parts`` that the caller's buffers cannot change.

        ``send()`` returns before the reply proves the receiver has the frame, and the
        caller may then reuse its array; the kept copy is also what a retry resends.
        """
        kept: list[Any] = []
        for part in parts:
            if isinstance(part, bytes):
                kept.append(part)
                continue
            view = memoryview(part)
            if not view.nbytes or not view.c_contiguous:  # empty arrays cannot be cast
                kept.append(view.tobytes())
                continue
            view = view.cast("B")
            buf = self._spare_of(view.nbytes) or bytearray(view.nbytes)
            memoryview(buf)[:] = view
            kept.append(buf)
        return kept

    def _spare_of(self, size: int) -> bytearray | None:
        for index, buf in enumerate(self._spare):
            if len(buf) == size:
                return self._spare.pop(index)
        return None

    def due(self, channel: Channel) -> Pending | None:
        """The oldest request on ``channel`` if the window is full, else None.

        Its reply must be collected before ``channel`` may carry another request.
        """
        queue = self._queues.get(channel)
        if queue and len(queue) >= self.window:
            return queue[0]
        return None

    def add(self, channel: Channel, parts: list[Any], seq: int) -> None:
        self._queues.setdefault(channel, deque()).append(
            Pending(channel, parts, seq, channel.rebuilds))
        channel.in_flight += 1

    def stale(self, channel: Channel) -> list[Pending]:
        """Requests on ``channel`` sent on a socket that has since been rebuilt, oldest first.

        With several in flight (send_window > 1), a Lazy Pirate rebuild or a failover
        drops all of them with the old socket; they go again, in order, before anything new.
        """
        queue = self._queues.get(channel)
        if not queue or queue[-1].generation == channel.rebuilds:
            return []  # the newest is current, so all are (generations only grow)
        return [p for p in queue if p.generation != channel.rebuilds]

    def done(self, pending: Pending, answered: bool) -> None:
        """Forget ``pending``: it was answered, or given up on.

        Only an answered request's buffers are reused: the reply proves libzmq has sent the
        whole message, while a given-up one may still be read by a closing socket.
        """
        queue = self._queues.get(pending.channel)
        if queue and pending in queue:
            queue.remove(pending)
            pending.channel.in_flight -= 1
            if answered:
                self._spare.extend(p for p in pending.parts if isinstance(p, bytearray))
                del self._spare[:-SPARE_BUFFERS]

    def oldest(self, channel: Channel) -> Pending | None:
        queue = self._queues.get(channel)
        return queue[0] if queue else None

    def __iter__(self) -> Iterator[Pending]:
        for queue in list(self._queues.values()):
            yield from list(queue)

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())
