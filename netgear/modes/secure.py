"""Secure mode: CurveZMQ encryption (StoneHouse) plus sender authentication (IronHouse).

The receiver binds and is the CURVE server: it loads ``private/server.key_secret``
and runs a ZAP authenticator on its own context. The sender connects as the CURVE
client with ``private/client.key_secret`` and the receiver's ``public/server.key``.
Keys are set by a socket hook, so every Lazy Pirate rebuild gets them again.

Fail closed: anything that stops security from being set up raises SecurityError
from the constructor; nothing falls back to plain text.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar

from ..core.options import Option
from ..core.settings import Settings
from ..errors import OptionError
from ..security.auth import ServerAuthenticator, require_curve
from ..security.curve import client_hook, server_hook
from ..security.keys import KeyFolder, generate_keys, load_keypair, load_public_key
from ..security.monitor import HandshakeMonitor
from .base import Mode

if TYPE_CHECKING:
    from ..errors import PeerTimeoutError
    from ..link.zmq import Channel, Transport

__all__ = ["SECURE_LEVELS", "SecureMode"]

logger = logging.getLogger(__name__)

SECURE_LEVELS = {0: "grassland", 1: "StoneHouse", 2: "IronHouse"}


def _check_level(value: int) -> str | None:
    if value in SECURE_LEVELS:
        return None
    return "must be 0 (grassland, no security), 1 (StoneHouse) or 2 (IronHouse)"


def _check_location(value: str) -> str | None:
    return None if value.strip() else "must be a non-empty folder path"


class SecureMode(Mode):
    """``secure_mode``: 0 grassland, 1 StoneHouse, 2 IronHouse. See docs/modes/secure.md."""

    key: ClassVar[str] = "secure_mode"
    options: ClassVar[tuple[Option, ...]] = (
        Option("secure_mode", (int,), 0,
               "0 grassland (no security), 1 StoneHouse (encrypted; any sender that has the "
               "receiver's public key), 2 IronHouse (encrypted; only senders whose public key "
               "is in the receiver's allowed/ folder).", check=_check_level,
               allowed="0, 1, 2"),
        Option("custom_cert_location", (str,), None,
               "Key folder (created if missing) holding keypairs and allowed sender keys. "
               "Default ~/.netgear/keys.", check=_check_location, nullable=True),
        Option("overwrite_cert", (bool,), False,
               "Sender only: generate a fresh sender keypair at start (also written to "
               "allowed/client.key of the same folder).")
    )

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        # Also "enabled" when only a companion option is set, so validate() can refuse
        # it: a security option that silently does nothing would look like protection.
        opts = settings.options
        return bool(opts.get("secure_mode") or opts.get("custom_cert_location") is not None
                    or opts.get("overwrite_cert"))

    @classmethod
    def validate(cls, settings: Settings, enabled: frozenset[str]) -> None:
        opts = settings.options
        if not opts["secure_mode"]:
            given = [k for k in ("custom_cert_location", "overwrite_cert")
                     if opts[k] not in (None, False)]
            raise OptionError(f"{' and '.join(given)} only apply with secure_mode=1 "
                              "(StoneHouse) or 2 (IronHouse); set secure_mode or drop them",
                              key=given[0])
        if settings.protocol == "inproc":
            raise OptionError("secure_mode does not apply to protocol 'inproc': the data never "
                              "leaves the process; use tcp or ipc", key="secure_mode")
        if opts["overwrite_cert"] and settings.receive_mode:
            raise OptionError(
                "overwrite_cert is for the sender only: a new receiver (server) key would lock "
                "out every sender holding its public key. Rotate it deliberately with "
                "netgear.security.generate_keys(dir, overwrite=True) and redistribute "
                "public/server.key", key="overwrite_cert")

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        opts = settings.options
        self.level: int = opts["secure_mode"]
        self.folder = KeyFolder.at(opts["custom_cert_location"])
        self._auth: ServerAuthenticator | None = None
        self.monitor = HandshakeMonitor(server=settings.receive_mode)

    def configure(self, transport: Transport) -> None:
        require_curve()
        folder = self.folder
        generate_keys(folder.root)  # only the missing pairs; locked, so both ends may race
        if self.settings.options["overwrite_cert"]:
            generate_keys(folder.root, overwrite=True, pairs=("client",))
        if self.settings.receive_mode:
            public, secret = load_keypair(folder.secret_file("server"))
            self._auth = ServerAuthenticator(
                transport.context, folder.allowed if self.level == 2 else None)
            self._auth.start()  # before any bind: no handshake may come before the handler
            transport.add_hook(server_hook(public, secret))
        else:
            server_key = load_public_key(folder.public_file("server"))
            public, secret = load_keypair(folder.secret_file("client"))
            transport.add_hook(client_hook(server_key, public, secret))
        # after the CURVE hook: the monitor sees the socket exactly as it will connect
        transport.add_hook(self.monitor.hook)
        logger.log(logging.INFO if self.settings.logging else logging.DEBUG,
                   "secure mode %s, keys in %s", SECURE_LEVELS[self.level], folder.root)

    def explain_timeout(self, channel: Channel, exc: PeerTimeoutError) -> None:
        # The monitor saw the handshake fail: the timeout is not a dead network, say so.
        reason = self.monitor.failure(channel)
        if reason is not None and exc.args and not str(exc.args[0]).startswith(reason):
            exc.args = (f"{reason} ({exc.args[0]})", *exc.args[1:])

    def close(self) -> None:
        self.monitor.close()  # before the transport terms the context: it owns sockets
        if self._auth is not None:
            self._auth.stop()

