"""An in-memory link for unit tests of the core and the modes: no sockets, no threads.

Each :class:`FakeChannel` records what the layers above sent, and plays back what a test
queued for it: incoming messages (``inbox``) and the peer's answers to requests
(``answer``, a function of the request's parts, or None for a peer that never answers).
Every call returns at once; a wait that would time out raises or returns as the real
link does when its time is up, so a test runs in microseconds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import PeerTimeoutError, TransportError
from .base import Stop, never
from .pattern import Pattern

__all__ = ["FakeChannel", "FakeLink"]

Answer = Callable[[list[Any]], "list[Any] | None"]


class FakeChannel:
    """One peer: what was sent to it, what it sends back."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.peer: str | None = None
        self.in_flight = 0
        self.rebuilds = 0
        self.joins = 0
        self.queue_frames = 0  # fit_queue's result, as a sender sized it
        self.connected = True  # what ready() reports
        self.busy = False  # a full send queue: drop_if_busy sends are refused
        self.answer: Answer | None = None
        self.sent: list[list[Any]] = []  # every message sent, requests included
        self.replies: list[list[Any]] = []  # what reply() answered
        self.ended: list[list[Any]] = []  # unacknowledged end-of-stream messages
        self.inbox: deque[list[Any]] = deque()
        self._answers: deque[list[Any]] = deque()

    def fit_queue(self, frame_bytes: int, queue_bytes: int) -> None:
        if not self.queue_frames:
            self.queue_frames = max(1, queue_bytes // max(1, frame_bytes))


class FakeLink:
    """:class:`netgear.link.Link` in memory; ``channels`` one per port (or one in all)."""

    def __init__(self, policy: Pattern, labels: Sequence[str], receive_mode: bool) -> None:
        self.policy = policy
        self.receive_mode = receive_mode
        self.channels = [FakeChannel(label) for label in labels]
        self.hooks: list[Any] = []
        self.opened = False
        self.closed = False
        self.linger_ms: int | None = None
        self._at_close: list[Callable[[], None]] = []

    # -- lifecycle ------------------------------------------------------------------
    def open(self) -> None:
        self.opened = True

    def add_hook(self, hook: Any) -> None:
        self.hooks.append(hook)

    def at_close(self, action: Callable[[], None]) -> None:
        self._at_close.append(action)

    def close(self, linger_ms: int = 0) -> None:
        if self.closed:
            return
        self.closed, self.linger_ms = True, linger_ms
        for action in self._at_close:
            action()

    def finish(self, replying: bool) -> None:
        flush = replying if self.receive_mode else self.policy.lingers_on_close
        self.close(500 if flush else 0)

    # -- sending --------------------------------------------------------------------
    def send(self, channel: FakeChannel, parts: list[Any], *, copy: bool, track: bool,
             timeout: float, retries: int, drop_if_busy: bool, stop: Stop = never) -> bool:
        self._check_open()
        if channel.busy:
            if drop_if_busy:
                return False
            raise PeerTimeoutError(f"no peer took the message on port {channel.label} "
                                   f"within {timeout:g}s after {retries} retries")
        channel.sent.append(_owned(parts))
        return True

    def post(self, channel: FakeChannel, parts: list[Any], *, copy: bool, timeout: float,
             retries: int, stop: Stop = never) -> bool:
        self._check_open()
        self._deliver(channel, parts)
        return True

    def request(self, channel: FakeChannel, parts: list[Any], *, copy: bool, timeout: float,
                retries: int, accept: Callable[[list[Any]], bool], stop: Stop = never,
                final: bool = False, sent: bool = False) -> list[Any] | None:
        self._check_open()
        for attempt in range(retries + 1):
            if not (sent and attempt == 0):
                self._deliver(channel, parts)
            while channel._answers:
                reply = channel._answers.popleft()
                if accept(reply):
                    return reply
            if stop():
                return None
            if attempt < retries:
                channel.rebuilds += 1  # the real link's Lazy Pirate rebuild
        raise PeerTimeoutError(f"no reply from port {channel.label} within {timeout:g}s "
                               f"after {retries} retries")

    def _deliver(self, channel: FakeChannel, parts: list[Any]) -> None:
        channel.sent.append(_owned(parts))
        if channel.answer is not None:
            reply = channel.answer(channel.sent[-1])
            if reply is not None:
                channel._answers.append(reply)

    def end(self, channel: FakeChannel, parts: list[Any], timeout: float) -> None:
        channel.ended.append(_owned(parts))

    def ready(self, channel: FakeChannel) -> bool:
        return channel.connected

    # -- receiving ------------------------------------------------------------------
    def receive_any(self, channels: Sequence[FakeChannel], timeout: float | None, copy: bool,
                    stop: Stop) -> tuple[FakeChannel, list[Any]] | None:
        self._check_open()
        for channel in channels:
            if channel.inbox:
                return channel, channel.inbox.popleft()
        return None  # what the real link returns once ``timeout`` has passed

    def notices(self, channel: FakeChannel) -> list[list[Any]]:
        found = list(channel.inbox)
        channel.inbox.clear()
        return found

    def reply(self, channel: FakeChannel, parts: list[Any]) -> None:
        channel.replies.append(_owned(parts))

    def _check_open(self) -> None:
        if self.closed:
            raise TransportError("link is closed")


def _owned(parts: list[Any]) -> list[Any]:
    # what a socket would have put on the wire: bytes, so a caller reusing its buffer
    # afterwards cannot change a recorded message
    return [bytes(memoryview(p).cast("B")) if not isinstance(p, bytes) else p for p in parts]
