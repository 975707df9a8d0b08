"""What the sender, the receiver and the modes need from a transport: the link interface.

A link owns the sockets (or whatever carries messages) of one NetGear instance, one
:class:`Channel` per peer socket, and the bounded, interruptible waits on them. The
ZeroMQ link (:mod:`netgear.link.zmq`) is the implementation used by ``NetGear``; the
in-memory one in the tests checks the core without sockets. Everything above the link
speaks in channels and message parts (lists of bytes-like objects), never in sockets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

__all__ = ["NOBLOCK", "Channel", "Link", "Stop", "never"]

# vidgear's flag=zmq.NOBLOCK: "drop a frame the queue cannot take". The int keeps zmq out
# of the modules that validate and read the option.
NOBLOCK = 1
Stop = Callable[[], bool]


def never() -> bool:
    """The default ``stop``: nothing interrupts the wait except its own bound."""
    return False


class Channel(Protocol):
    """One peer socket of a link, as the layers above see it."""

    label: str  # the port it stands for, reported to the user and used as stream name
    in_flight: int  # requests sent and not yet answered (netgear.core.inflight counts)
    rebuilds: int  # Lazy Pirate rebuilds so far
    peer: str | None  # with want_peer: the authenticated key (ZAP User-Id) of the last message
    joins: int  # peers that announced themselves so far (PUB/SUB subscriptions)

    def fit_queue(self, frame_bytes: int, queue_bytes: int) -> None:
        """Size the send queue from the first frame (before the channel connects)."""


class Link(Protocol):
    """Send, request, receive and reply over the channels of one NetGear instance."""

    channels: Sequence[Channel]

    def open(self) -> None:
        """Bind or connect every channel that does not wait for its first frame."""

    def at_close(self, action: Callable[[], None]) -> None:
        """Run ``action`` at the end of close(), once every channel has flushed."""

    def send(self, channel: Any, parts: list[Any], *, copy: bool, track: bool,
             timeout: float, retries: int, drop_if_busy: bool, stop: Stop = never) -> bool:
        """Queue ``parts`` (fire and forget); False when dropped or stopped."""

    def request(self, channel: Any, parts: list[Any], *, copy: bool, timeout: float,
                retries: int, accept: Callable[[list[Any]], bool], stop: Stop = never,
                final: bool = False, sent: bool = False) -> list[Any] | None:
        """Send and wait for the reply ``accept`` recognises, within the retry budget."""

    def post(self, channel: Any, parts: list[Any], *, copy: bool, timeout: float,
             retries: int, stop: Stop = never) -> bool:
        """Send a request whose reply a later ``request(sent=True)`` collects."""

    def notices(self, channel: Any) -> list[list[Any]]:
        """Messages a peer sent a fire-and-forget sender unasked, read without waiting
        (a PAIR receiver asking for a keyframe); [] before the channel has opened."""

    def receive_any(self, channels: Sequence[Any], timeout: float | None, copy: bool,
                    stop: Stop) -> tuple[Any, list[Any]] | None:
        """The next message on any of ``channels``; None on timeout or stop."""

    def reply(self, channel: Any, parts: list[Any]) -> None:
        """Answer the last request on ``channel`` without ever blocking."""

    def end(self, channel: Any, parts: list[Any], timeout: float) -> None:
        """Deliver an end-of-stream that no reply acknowledges, bounded by ``timeout``."""

    def ready(self, channel: Any) -> bool:
        """True when a peer is connected on ``channel`` and can take the next request."""

    def close(self, linger_ms: int = 0) -> None:
        """Release everything at once; queued messages get ``linger_ms`` to flush."""

    def finish(self, replying: bool) -> None:
        """Close after a normal end: the pattern (and ``replying``) say how long to linger."""
