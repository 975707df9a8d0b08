"""Addressing and option rules of ``protocol="shm"``, read by the core's settings.

A shm stream has a name instead of an endpoint: ``address="cam0"`` is the stream
``/dev/shm/netgear.cam0``. Two shapes name several streams (a multi-server receiver):

* ``address=["cam0", "cam1"]`` and no port: one channel per name, labelled by the name
  (so a multi-server ``recv()`` returns ``("cam0", frame)``);
* ``address="cams"`` with ``port=5566`` or a list of ports: the stream of each port is
  ``"cams-5566"``, like the ipc transport's ``path-port``, and the channels keep the
  port as their label, so code written for tcp ports only switches ``protocol``.
"""

from __future__ import annotations

from typing import Any

from ...errors import OptionError
from ...shm.segment import check_name

__all__ = ["DEFAULT_NAME", "check_shm_combinations", "shm_addressing", "stream_name"]

DEFAULT_NAME = "netgear"


def stream_name(address: str, label: str) -> str:
    """The stream name of the channel ``label``: the label itself when ``address`` is empty
    (names given as a list), else ``address-label`` (a port given)."""
    return label if not address else f"{address}-{label}"


def _port_text(port: Any) -> str:
    if isinstance(port, bool) or not isinstance(port, (int, str)) or not str(port).strip():
        raise OptionError(f"port {port!r} must be an int or a name; with protocol='shm' it is "
                          "optional: the address names the stream", key="port")
    return str(port).strip()


def shm_addressing(address: Any, port: Any) -> tuple[str, tuple[str, ...], bool]:
    """``(address, channel labels, given as a list)`` for the settings, all names checked."""
    if isinstance(address, (list, tuple)):
        if port is not None:
            raise OptionError("with protocol='shm', give either a list of stream names as "
                              "address or one address with port(s), not both", key="port")
        if not address:
            raise OptionError("address list must not be empty: name at least one shm stream",
                              key="address")
        names = tuple(check_name(a) for a in address)
        if len(set(names)) != len(names):
            raise OptionError(f"address list {list(address)!r} repeats a stream", key="address")
        return "", names, True
    if address is None:
        address = DEFAULT_NAME
    if isinstance(address, str):
        address = address.strip()
    if isinstance(address, str) and "://" in address:
        raise OptionError(f"address {address!r} must not include a scheme; with "
                          "protocol='shm' it is a stream name such as 'cam0'", key="address")
    check_name(address)
    if port is None:
        return "", (address,), False
    as_list = isinstance(port, (list, tuple))
    if as_list and not port:
        raise OptionError("port list must not be empty", key="port")
    labels = tuple(_port_text(p) for p in (port if as_list else [port]))
    if len(set(labels)) != len(labels):
        raise OptionError(f"port list {list(port)!r} repeats a port", key="port")
    for label in labels:
        check_name(stream_name(address, label))
    return address, labels, as_list


def check_shm_combinations(options: dict[str, Any]) -> None:
    """What cannot apply to a same-host shared-memory stream."""
    if options.get("secure_mode"):
        raise OptionError(
            "secure_mode does not apply to protocol 'shm': the frames never leave this host, "
            "and access to them is the operating system's (segments are owner-only; let a "
            "group read them with shm_group). Drop secure_mode, or use tcp/ipc",
            key="secure_mode")
    if options.get("ssh_tunnel_mode") is not None:
        raise OptionError("ssh_tunnel_mode does not apply to protocol 'shm', which stays on "
                          "one host; use protocol='tcp' to reach another machine",
                          key="ssh_tunnel_mode")
