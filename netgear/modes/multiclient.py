"""Multi-client mode: one server feeds many clients, each at its own port.

Each client binds one port; the server connects to every port of its list. Over
REQ/REP the server has one socket per client and spreads frames round-robin,
skipping clients that are not connected; over PUB/SUB one socket broadcasts every
frame to all clients. ``close()`` sends the end-of-stream to every client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from ..core.options import Option
from ..core.settings import Settings
from ..errors import OptionError
from ..link import Channel, Link
from .base import Mode

__all__ = ["MultiClientMode"]

logger = logging.getLogger(__name__)


class MultiClientMode(Mode):
    """``multiclient_mode=True``: one server (a list of ports) to many clients (one each)."""

    key = "multiclient_mode"
    options: ClassVar[tuple[Option, ...]] = (
        Option("multiclient_mode", (bool,), False,
               "One server feeds many clients (patterns 1 and 2). The server's port is a list of "
               "the clients' ports: REQ/REP spreads frames round-robin over the clients, "
               "PUB/SUB sends every frame to all of them. Over REQ/REP, as in vidgear, a "
               "client's recv(return_data=...) comes back and the server's send() returns "
               "(port, data)."),
    )
    returns_data = True  # REQ/REP only: the core ignores it for PUB/SUB

    @classmethod
    def validate(cls, settings: Settings, enabled: frozenset[str]) -> None:
        if not settings.policy.multi_peer:
            raise OptionError(f"multiclient_mode supports pattern 1 (REQ/REP) and 2 (PUB/SUB) "
                              f"only, got pattern {settings.pattern}: set pattern=1 or 2",
                              key="pattern")
        if settings.receive_mode and settings.port_given_as_list:
            raise OptionError("a multi-client client binds a single port (its own); the "
                              "server lists every client's port", key="port")
        if not settings.receive_mode and not settings.port_given_as_list:
            raise OptionError("a multi-client server needs a list/tuple of the clients' ports, "
                              f"e.g. port=(5566, 5567); got port={settings.port!r}", key="port")

    @classmethod
    def accepts_port_list(cls, settings: Settings) -> bool:
        # Both sides say yes so validate() can explain the client's mistake precisely.
        return True

    @classmethod
    def split_channels(cls, settings: Settings) -> bool:
        # REQ/REP: one socket per client, so a slow or absent client is never chosen by
        # libzmq's own round-robin, and the end-of-stream reaches each client. PUB/SUB: one
        # socket fans out to all.
        return not settings.receive_mode and settings.policy.replies

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._next = 0
        self._channels: Sequence[Channel] = ()
        self._link: Link | None = None

    def configure(self, transport: Link) -> None:
        self._channels = transport.channels
        self._link = transport

    def _connected(self, channel: Channel) -> bool:
        return self._link is not None and self._link.ready(channel)

    def pick_channel(self, channels: Sequence[Channel]) -> Channel | None:
        count = len(channels)
        if count < 2:
            return None
        for step in range(count):
            index = (self._next + step) % count
            if self._connected(channels[index]):
                self._next = index + 1
                return channels[index]
        # nobody connected yet: wait (bounded by request_timeout) on the next in turn
        chosen = channels[self._next % count]
        self._next += 1
        return chosen

    def peer_failed(self, channel: Channel) -> bool:
        others = [c for c in self._channels if c is not channel and self._connected(c)]
        if others:
            logger.warning("client on port %s did not reply; frame dropped, going on with "
                           "ports %s", channel.label, ", ".join(c.label for c in others))
            return True
        return False

    def shape_send_result(self, channel: Channel, data: Any) -> Any:
        return (channel.label, data)
