"""SSH tunnel mode: the sender reaches the receiver through an SSH server.

``ssh_tunnel_mode="user@host:port"`` (vidgear's option): the sender logs in to that SSH
server and connects to ``address:port`` as seen from there, so the receiver needs no port
open to the sender's network, only the SSH server does. Sender side only; tcp only; not
with multi-server or multi-client mode (as in vidgear). The tunnel itself lives in
:mod:`netgear.link.zmq.tunnel`. See docs/modes/ssh.md.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar

from ..core.options import Option
from ..core.settings import Settings
from ..errors import OptionError
from ..link.zmq.tunnel import SshTunnel, check_keyfile, check_server, parse_server, require_paramiko
from .base import Mode

if TYPE_CHECKING:
    from ..link.zmq import Transport

__all__ = ["SshTunnelMode"]

logger = logging.getLogger(__name__)

_COMPANIONS = ("ssh_tunnel_pwd", "ssh_tunnel_keyfile")


class SshTunnelMode(Mode):
    """``ssh_tunnel_mode``: tunnel the sender's connection through SSH (paramiko)."""

    key: ClassVar[str] = "ssh_tunnel_mode"
    options: ClassVar[tuple[Option, ...]] = (
        Option("ssh_tunnel_mode", (str,), None,
               "Sender only: 'user@host:port' of an SSH server (port 22 and the current user "
               "when left out) to tunnel the connection through; address is then the "
               "receiver's address as seen from that server. Needs the ssh extra (paramiko) "
               "and the server's host key in ~/.ssh/known_hosts.",
               check=check_server, nullable=True),
        Option("ssh_tunnel_pwd", (str,), None,
               "The passphrase of an encrypted ssh_tunnel_keyfile, else the SSH login "
               "password (tried after the keys). Needs ssh_tunnel_mode.",
               nullable=True),
        Option("ssh_tunnel_keyfile", (str,), None,
               "Path of the SSH private key to log in with; must exist. Unset: the keys ssh "
               "would try (~/.ssh/id_*, the agent). Needs ssh_tunnel_mode.",
               check=check_keyfile, nullable=True),
    )

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        # Also "enabled" by a companion alone, so validate() can refuse it instead of the
        # password or key silently doing nothing.
        return any(settings.options.get(k) is not None for k in (cls.key, *_COMPANIONS))

    @classmethod
    def validate(cls, settings: Settings, enabled: frozenset[str]) -> None:
        opts = settings.options
        if opts[cls.key] is None:
            given = [k for k in _COMPANIONS if opts[k] is not None]
            raise OptionError(f"{' and '.join(given)} only apply with ssh_tunnel_mode="
                              "'user@host:port'; set it or drop them", key=given[0])
        if settings.receive_mode:
            raise OptionError(
                "ssh_tunnel_mode is for the sender (receive_mode=False): the receiver binds "
                "and the sender reaches it through the SSH server; remove it from the "
                "receiver's options", key=cls.key)
        if settings.protocol != "tcp":
            raise OptionError(f"ssh_tunnel_mode forwards TCP only; use protocol='tcp', not "
                              f"{settings.protocol!r}", key=cls.key)
        for other in ("multiserver_mode", "multiclient_mode"):
            if other in enabled:
                raise OptionError(f"ssh_tunnel_mode cannot be combined with {other} (as in "
                                  f"vidgear): it tunnels one connection; drop one of them",
                                  key=cls.key)
        require_paramiko()

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        opts = settings.options
        server = parse_server(opts[self.key])
        assert server is not None  # the option check accepted it
        self.tunnel = SshTunnel(server, settings.address, int(settings.port),
                                opts["ssh_tunnel_keyfile"], opts["ssh_tunnel_pwd"])

    def configure(self, transport: Transport) -> None:
        # Started here, so a wrong host, key or password fails the constructor even for
        # PAIR and PUB senders, whose socket only connects at the first frame.
        # Stopped after the transport: the last frames (PUB's flush) still go through it.
        transport.at_close(self.tunnel.close)
        self.tunnel.start()
        for channel in transport.channels:
            channel.connector = self.tunnel.connect
        logger.log(logging.INFO if self.settings.logging else logging.DEBUG,
                   "ssh tunnel via %s to %s:%s", self.tunnel.server, *self.tunnel.remote)
