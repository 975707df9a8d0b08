"""Constructor arguments: validation, defaults and endpoint strings.

Addressing rule (the same as vidgear's, so existing deployments keep working):
the receiver binds and the sender connects, in every pattern and mode. A list
of ports is accepted only where an enabled mode says so (multi-server receivers,
multi-client senders).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, replace
from typing import Any

from ..errors import OptionError
from ..link.pattern import Pattern, pattern_policy
from ..link.shm.names import shm_addressing, stream_name

__all__ = ["PATTERNS", "PROTOCOLS", "Settings", "build_settings"]

PATTERNS = {0: "PAIR", 1: "REQ/REP", 2: "PUB/SUB"}
PROTOCOLS = ("tcp", "ipc", "inproc", "shm")
DEFAULT_PORT = "5555"

_UNSUPPORTED_PROTOCOLS = {
    "udp": "ZeroMQ's udp transport only works with RADIO/DISH sockets, which cannot carry "
    "multipart video frames",
    "upd": "this is a typo of 'udp' in vidgear's docs; udp is not supported either",
    "pgm": "pgm/epgm multicast needs a libzmq built with OpenPGM and only works with PUB/SUB",
    "epgm": "pgm/epgm multicast needs a libzmq built with OpenPGM and only works with PUB/SUB",
}


@dataclass(frozen=True)
class Settings:
    """Validated constructor arguments and options of one NetGear instance."""

    address: str
    ports: tuple[str, ...]
    port_given_as_list: bool
    protocol: str
    pattern: int
    receive_mode: bool
    logging: bool
    options: dict[str, Any]
    # a sender given a list of hubs: every address in order, ``address`` is the first
    addresses: tuple[str, ...] = ()

    @property
    def policy(self) -> Pattern:
        """What the pattern promises (replies, fans out, ...), read by name."""
        return pattern_policy(self.pattern)

    @property
    def binds(self) -> bool:
        return self.receive_mode

    @property
    def port(self) -> str:
        return self.ports[0]

    @property
    def ipv6(self) -> bool:
        return self.protocol == "tcp" and self.address.startswith("[")

    def endpoint(self, port: str) -> str:
        if self.protocol == "shm":  # a stream name, see netgear/link/shm/names.py
            return f"shm://{stream_name(self.address, port)}"
        if self.protocol == "tcp":
            return f"tcp://{self.address}:{port}"
        # ipc paths and inproc names have no port; the port keeps channels apart.
        return f"{self.protocol}://{self.address}-{port}"

    def endpoints(self) -> list[str]:
        return [self.endpoint(p) for p in self.ports]

    def hub_endpoints(self, port: str) -> list[str]:
        """``port`` at every hub of an address list, in the order given (failover)."""
        return [replace(self, address=a).endpoint(port) for a in self.addresses or
                (self.address,)]


def _check_address(address: Any, protocol: str, receive_mode: bool) -> str:
    if address is None:
        if protocol == "tcp":
            return "*" if receive_mode else "localhost"
        if protocol == "ipc":
            return os.path.join(tempfile.gettempdir(), "netgear")
        return "netgear"
    if not isinstance(address, str) or not address.strip():
        raise OptionError(
            f"address must be a non-empty string such as '192.168.1.7', got {address!r}",
            key="address",
        )
    address = address.strip()
    if "://" in address:
        raise OptionError(
            f"address {address!r} must not include a scheme; pass protocol= separately",
            key="address",
        )
    if protocol == "tcp" and ":" in address and not address.startswith("["):
        address = f"[{address}]"  # a bare IPv6 literal
    return address


def _check_port(port: Any, protocol: str) -> str:
    if isinstance(port, bool) or not isinstance(port, (int, str)):
        raise OptionError(
            f"port must be an int or a string of digits, got {type(port).__name__} {port!r}",
            key="port",
        )
    text = str(port).strip()
    if protocol == "tcp":
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            raise OptionError(f"port {port!r} must be a number from 1 to 65535", key="port")
        return str(int(text))
    if not text or "/" in text:
        raise OptionError(f"port {port!r} must be a non-empty name without '/'", key="port")
    return text


def _check_addresses(address: Any, protocol: str, receive_mode: bool) -> tuple[str, ...]:
    """A sender's list of hubs (failover), each checked like a single address."""
    if receive_mode:
        raise OptionError(
            f"a receiver binds one address; a list ({list(address)!r}) is for a sender that "
            "fails over between hubs. Give the receiver a single address", key="address")
    if not address:
        raise OptionError("address list must name at least one hub, e.g. "
                          "['hub-a.local', 'hub-b.local']", key="address")
    # None means "the default address" on its own, never as one hub of several
    hubs = tuple(_check_address("" if a is None else a, protocol, receive_mode)
                 for a in address)
    if len(set(hubs)) != len(hubs):
        raise OptionError(f"address list {list(address)!r} names a hub twice; list each "
                          "hub once", key="address")
    return hubs


def build_settings(
    address: Any,
    port: Any,
    protocol: Any,
    pattern: Any,
    receive_mode: Any,
    logging: Any,
    options: dict[str, Any],
) -> Settings:
    """Validate the constructor arguments (not the mode-specific rules)."""
    for name, value in (("receive_mode", receive_mode), ("logging", logging)):
        if not isinstance(value, bool):
            raise OptionError(
                f"{name} must be True or False, got {type(value).__name__} {value!r}", key=name
            )
    if isinstance(pattern, bool) or not isinstance(pattern, int) or pattern not in PATTERNS:
        allowed = ", ".join(f"{k} ({v})" for k, v in PATTERNS.items())
        raise OptionError(f"pattern must be one of {allowed}; got {pattern!r}", key="pattern")
    if not isinstance(protocol, str):
        raise OptionError(f"protocol must be a string, got {protocol!r}", key="protocol")
    proto = protocol.strip().lower()
    if proto in _UNSUPPORTED_PROTOCOLS:
        raise OptionError(
            f"protocol {protocol!r} is not supported: {_UNSUPPORTED_PROTOCOLS[proto]}. "
            f"Use one of {', '.join(PROTOCOLS)}.",
            key="protocol",
        )
    if proto not in PROTOCOLS:
        raise OptionError(
            f"protocol must be one of {', '.join(PROTOCOLS)}; got {protocol!r}", key="protocol"
        )
    if proto == "shm":
        address, ports, as_list = shm_addressing(address, port)
        return Settings(address, ports, as_list, proto, pattern, receive_mode, logging,
                        dict(options))
    as_list = isinstance(port, (list, tuple))
    if as_list:
        if not port:
            raise OptionError("port list must not be empty", key="port")
        ports = tuple(_check_port(p, proto) for p in port)
        if len(set(ports)) != len(ports):
            raise OptionError(f"port list {list(port)!r} repeats a port", key="port")
    else:
        ports = (_check_port(DEFAULT_PORT if port is None else port, proto),)
    hubs = (_check_addresses(address, proto, receive_mode)
            if isinstance(address, (list, tuple)) else ())
    return Settings(
        address=hubs[0] if hubs else _check_address(address, proto, receive_mode),
        addresses=hubs,
        ports=ports,
        port_given_as_list=as_list,
        protocol=proto,
        pattern=pattern,
        receive_mode=receive_mode,
        logging=logging,
        options=dict(options),
    )
