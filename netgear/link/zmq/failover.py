"""Failover: a sender given a list of hub addresses, and the rule for moving between them.

The rule (documented in docs/reliability.md):

* the sender starts on the first hub of the list;
* it stays on the hub in use for as long as that hub answers: it never leaves a working
  hub on its own, so no frame ever waits on a probe of a hub that may still be down;
* when a request exhausts its budget there (``request_timeout`` x (``max_retries`` + 1)),
  the same request goes to the next hub of the list (wrapping round), with a fresh budget;
* a hub that comes back is used again when its turn comes round: when the hub in use
  fails in turn. The primary is thus not preferred once left;
* ``send()`` raises :class:`~netgear.errors.PeerTimeoutError` only when every hub of the
  list failed one after the other for the same frame, so the longest a ``send()`` can
  take is ``len(address)`` x ``request_timeout`` x (``max_retries`` + 1).

PUB/SUB senders do not fail over: a publisher never waits for a subscriber, so it
connects to every hub of the list at once and each gets every frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from ...errors import PeerTimeoutError
from .channel import Channel, translate_errors

__all__ = ["Hubs", "at_each_hub", "fail_over"]

T = TypeVar("T")

logger = logging.getLogger(__name__)


class Hubs:
    """The endpoints of one channel at each hub, in list order, and the hub in use."""

    def __init__(self, endpoints: Sequence[str]) -> None:
        self.endpoints = list(endpoints)
        self.current = 0
        self.failovers = 0  # moves so far, for the logs and the tests

    def __len__(self) -> int:
        return len(self.endpoints)

    @property
    def in_use(self) -> str:
        return self.endpoints[self.current]

    def advance(self) -> str:
        self.current = (self.current + 1) % len(self.endpoints)
        self.failovers += 1
        return self.in_use


def fail_over(channel: Channel, hubs: Hubs) -> None:
    """Move ``channel`` to the next hub: a new socket there, whatever the old one queued gone."""
    left = hubs.in_use
    channel.endpoints = [hubs.advance()]
    logger.warning("%s: hub %s did not answer within the retry budget; failing over to %s "
                   "(failover %d)", channel.label, left, hubs.in_use, hubs.failovers)
    if channel.sock is not None:
        with translate_errors("failover"):
            channel.rebuild()


def at_each_hub(channel: Channel, hubs: Hubs, attempt: Callable[[bool], T]) -> T:
    """``attempt(first)`` at the hub in use, then at each next hub while it times out.

    ``first`` is False once the channel moved: what was already sent went to the old hub,
    so the attempt must send again. Raises when the last hub of a full round failed too.
    """
    tried: list[str] = []
    while True:
        try:
            return attempt(not tried)
        except PeerTimeoutError as exc:
            tried.append(hubs.in_use)
            if len(tried) == len(hubs):
                raise PeerTimeoutError(f"every hub failed in turn ({', '.join(tried)}); "
                                       f"the last: {exc}") from exc
        fail_over(channel, hubs)
