"""Multi-server mode: one client receives from many servers, each known by its port.

The client binds every port of its list; each server connects to one of them and
tags every message (frames and its end-of-stream) with the port it was given, in
header key ``p``. The client tracks which servers have joined (sent a frame) and
ends the stream (``recv()`` returns None) once every joined server has closed.

A server also tags its ``stream_name`` (header key ``n``): a client given a single port
instead of a list is the one-port hub (``hub.py``), which keys streams by that name.
"""

from __future__ import annotations

import logging
import secrets
import socket
from typing import Any, ClassVar

from ..core.options import Option
from ..core.settings import Settings
from ..core.wire import Incoming, Outgoing
from ..errors import OptionError
from .base import DELIVER, DROP, FINISH, Mode

__all__ = ["NAME_KEY", "PORT_KEY", "MultiServerMode", "check_name", "default_name"]

logger = logging.getLogger(__name__)

PORT_KEY = "p"  # header key carrying the server's port
NAME_KEY = "n"  # header key carrying the server's stream_name
MAX_NAME = 64


def check_name(value: Any) -> str | None:
    """None when ``value`` is a usable stream name, else what is wrong with it."""
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        return "must be a non-empty string without leading or trailing spaces"
    if len(value) > MAX_NAME or not value.isprintable() or "/" in value:
        return f"must be at most {MAX_NAME} printable characters, without '/'"
    return None


def default_name() -> str:
    """This host's name plus a short random suffix: unique per process, readable."""
    host = "".join(c for c in socket.gethostname().split(".")[0] if c.isprintable()) or "host"
    return f"{host[:MAX_NAME - 7].replace('/', '-')}-{secrets.token_hex(3)}"


def _filter_ports(value: Any) -> list[str]:
    """The filter as a list of port strings, normalised like ``port`` values are."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    ports = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, str)) or not str(item).strip():
            raise ValueError(f"{item!r} is not a port")
        text = str(item).strip()
        ports.append(str(int(text)) if text.isdigit() else text)
    return ports


def _check_filter(value: Any) -> str | None:
    try:
        ports = _filter_ports(value)
    except ValueError as exc:
        return f"{exc}; give a port such as '5566' or a list of ports"
    if not ports:
        return "must name at least one port"
    return None


class MultiServerMode(Mode):
    """``multiserver_mode=True``: many servers (one port each) to one client (all ports)."""

    key = "multiserver_mode"
    options: ClassVar[tuple[Option, ...]] = (
        Option("multiserver_mode", (bool,), False,
               "One client receives from many servers (patterns 1 and 2). The client's port is "
               "a list of the servers' ports; recv() returns (port, frame) or "
               "(port, message, frame)."),
        Option("filter", (str, int, list, tuple), None,
               "Multi-server client only: a port or a list of ports; frames from other servers "
               "are dropped. Every listed port must be in the client's port list. At a "
               "one-port hub: stream names instead of ports.",
               check=_check_filter, nullable=True),
        Option("stream_name", (str,), None,
               "Multi-server server: the name this server's stream has at a one-port hub "
               "(results carry it where the port-list form carries the port). Default: the "
               "host name plus a short random suffix.", check=check_name, nullable=True),
    )
    carries_message = True

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        # a filter alone also "enables" the mode, so validate() refuses it instead of
        # the filter being ignored without a word
        opts = settings.options
        if opts.get(cls.key) and settings.receive_mode and not settings.port_given_as_list:
            return False  # one port: the hub (HubMode) takes over
        return bool(opts.get(cls.key)) or opts.get("filter") is not None

    @classmethod
    def validate(cls, settings: Settings, enabled: frozenset[str]) -> None:
        opts = settings.options
        if not opts[cls.key]:
            raise OptionError("option 'filter' only applies to a multi-server client; "
                              "set multiserver_mode=True or drop 'filter'", key="filter")
        if not settings.policy.multi_peer:
            raise OptionError(f"multiserver_mode supports pattern 1 (REQ/REP) and 2 (PUB/SUB) "
                              f"only, got pattern {settings.pattern}", key="pattern")
        if settings.receive_mode:
            if opts["stream_name"] is not None:
                raise OptionError("stream_name names a server (sender); a multi-server "
                                  "client knows each server by its port, so drop it here",
                                  key="stream_name")
            if opts["filter"] is not None:
                unknown = [p for p in _filter_ports(opts["filter"]) if p not in settings.ports]
                if unknown:
                    raise OptionError(f"filter port(s) {unknown} are not in this client's port "
                                      f"list {list(settings.ports)}", key="filter")
        else:
            if settings.port_given_as_list:
                raise OptionError("a multi-server server connects to a single port (the one "
                                  "its client lists for it); got a list", key="port")
            if opts["filter"] is not None:
                raise OptionError("option 'filter' applies to the multi-server client "
                                  "(receive_mode=True), not to a server", key="filter")

    @classmethod
    def accepts_port_list(cls, settings: Settings) -> bool:
        # Both sides say yes so validate() can explain the sender's mistake precisely.
        return True

    @classmethod
    def split_channels(cls, settings: Settings) -> bool:
        # The client gets one socket per port, so a server's port is the socket its message
        # arrived on, not whatever its header claims.
        return settings.receive_mode

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._port = settings.port
        self._name = settings.options["stream_name"] or default_name()
        flt = settings.options["filter"]
        self._accept = frozenset(_filter_ports(flt)) if flt is not None else None
        self._live: set[str] = set()  # servers that sent a frame and have not ended since
        self._warned_untagged = False
        # like the core: logging=True raises our records to INFO, else they stay at DEBUG
        self._level = logging.INFO if settings.logging else logging.DEBUG

    # -- server side --------------------------------------------------------------------
    def on_send(self, out: Outgoing) -> None:
        out.extra[PORT_KEY] = self._port
        out.extra[NAME_KEY] = self._name

    def on_end(self, out: Outgoing) -> None:
        out.extra[PORT_KEY] = self._port
        out.extra[NAME_KEY] = self._name

    # -- client side --------------------------------------------------------------------
    def on_recv(self, incoming: Incoming, verdict: str) -> str:
        if verdict not in (DELIVER, FINISH):
            return verdict
        port = incoming.header.get(PORT_KEY)
        if not isinstance(port, str):
            if not self._warned_untagged:
                self._warned_untagged = True
                logger.warning("dropping messages without a server port: is the server "
                               "missing multiserver_mode=True?")
            return DROP
        if self._accept is not None and port not in self._accept:
            return DROP
        if verdict == DELIVER:
            if port not in self._live:
                self._live.add(port)
                logger.log(self._level, "server on port %s joined (%d active)", port,
                           len(self._live))
            return DELIVER
        if port not in self._live:
            # never sent a frame (or already ended): cannot end the others' stream early
            return DROP
        self._live.discard(port)
        logger.log(self._level, "server on port %s closed (%d active)", port, len(self._live))
        return DROP if self._live else FINISH

    def shape_result(self, incoming: Incoming, result: Any) -> Any:
        # vidgear's shapes, with or without bidirectional mode: (port, frame), or
        # (port, message, frame) when the server sent a message
        port = incoming.header[PORT_KEY]
        frame = result[-1] if isinstance(result, tuple) else result  # bidirectional's tuple
        if incoming.message is not None:
            return (port, incoming.message, frame)
        return (port, frame)
