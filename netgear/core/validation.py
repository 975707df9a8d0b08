"""Cross-option rules checked before any socket opens."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import OptionError
from ..link import NOBLOCK
from ..link.shm.names import check_shm_combinations
from ..modes import Mode
from .settings import Settings

__all__ = ["check_combinations"]


def check_combinations(settings: Settings, mode_types: Sequence[type[Mode]]) -> None:
    """The core's rules; each enabled mode then adds its own in ``Mode.validate``."""
    opts = settings.options
    policy = settings.policy
    if opts["flag"] == NOBLOCK and not policy.drops_when_busy:
        raise OptionError("flag=zmq.NOBLOCK cannot apply to pattern 1 (REQ/REP): every frame "
                          "waits for its reply; use pattern 0 or 2 to drop frames instead",
                          key="flag")
    if opts["subscriber_timeout"] is not None and not policy.fans_out:
        raise OptionError("subscriber_timeout applies to pattern 2 (PUB/SUB) only; "
                          "use receive_timeout for other patterns", key="subscriber_timeout")
    if opts["conflate"] and not policy.conflates:
        raise OptionError("conflate applies to patterns 0 and 2: REQ/REP never queues more "
                          "than one frame per sender; drop conflate, or use pattern 0 or 2",
                          key="conflate")
    if settings.port_given_as_list and not any(m.accepts_port_list(settings)
                                               for m in mode_types):
        side = "receiver" if settings.receive_mode else "sender"
        mode = "multiserver_mode" if settings.receive_mode else "multiclient_mode"
        raise OptionError(f"a list of ports on the {side} needs {mode}=True; "
                          "otherwise give a single port", key="port")
    if opts["send_window"] > 1 and not policy.replies:
        raise OptionError(f"send_window={opts['send_window']} (frames in flight) needs pattern "
                          "1 (REQ/REP); bidirectional PAIR takes 0 or 1", key="send_window")
    if settings.protocol == "shm":
        check_shm_combinations(opts)
    enabled = frozenset(m.key for m in mode_types)
    if len(settings.addresses) > 1:
        _check_failover(settings, enabled)
    if {"multiserver_mode", "multiclient_mode"} <= enabled:
        raise OptionError("multiserver_mode and multiclient_mode cannot be enabled together; "
                          "choose one", key=mode_types[0].key)
    for mode_type in mode_types:
        mode_type.validate(settings, enabled)


def _check_failover(settings: Settings, enabled: frozenset[str]) -> None:
    """A list of hub addresses: one sender socket that moves between them."""
    if "multiclient_mode" in enabled:
        raise OptionError("a list of addresses (failover) and multiclient_mode cannot be "
                          "combined: a multi-client server already reaches every client on "
                          "its port list; give one address", key="address")
    if settings.options.get("ssh_tunnel_mode") is not None:
        raise OptionError("ssh_tunnel_mode tunnels to one receiver; give a single address, "
                          "or drop ssh_tunnel_mode to fail over between hubs", key="address")
