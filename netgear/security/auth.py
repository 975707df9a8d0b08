"""The receiver's ZAP authenticator: one per NetGear, on that NetGear's own zmq.Context.

vidgear starts its authenticator on the process-wide context, so a second secure
instance in the same process cannot bind the ZAP endpoint (and then silently drops
to plain text). Here every receiver owns a context and therefore its own ZAP handler.

Fail closed: receiver sockets set a ZAP domain and ``ZAP_ENFORCE_DOMAIN``, so when
no handler answers (not started yet, crashed, already stopped) libzmq refuses the
handshake instead of letting the peer in unauthenticated.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.base import Authenticator
from zmq.auth.thread import ThreadAuthenticator

from ..errors import SecurityError
from .keys import load_allowed

__all__ = ["ZAP_DOMAIN", "AllowedFolder", "ServerAuthenticator", "require_curve"]

logger = logging.getLogger(__name__)

ZAP_DOMAIN = "netgear"
STOP_TIMEOUT = 1.0  # seconds close() waits for the authenticator thread


def require_curve() -> None:
    """Raise SecurityError unless this libzmq can do CURVE with enforced ZAP domains."""
    if not zmq.has("curve"):
        raise SecurityError("this libzmq was built without CURVE support (zmq.has('curve') is "
                            "False); install a pyzmq wheel, which bundles a CURVE-enabled libzmq")
    if zmq.zmq_version_info() < (4, 3) or not hasattr(zmq, "ZAP_ENFORCE_DOMAIN"):
        raise SecurityError(f"secure mode needs libzmq >= 4.3 (ZAP_ENFORCE_DOMAIN), this is "
                            f"{zmq.zmq_version()}")


class AllowedFolder:
    """IronHouse credentials provider: a sender is let in when its key is in ``allowed/``.

    The folder is re-read when its listing changes, so ``allow_client`` (or deleting a
    file) takes effect on the next handshake without restarting the receiver.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        if not folder.is_dir():
            raise SecurityError(f"IronHouse allowed-keys folder {folder} is missing")
        # listing first: a change racing with the load is then picked up by the next check
        self._signature = self._scan()
        self._keys: dict[bytes, str] = load_allowed(folder, strict=True)
        self._refused: set[bytes] = set()
        if not self._keys:
            logger.warning("IronHouse: %s holds no sender keys yet; every sender is refused "
                           "until one is added", folder)

    def _scan(self) -> tuple[tuple[str, int, int], ...]:
        entries = []
        with os.scandir(self.folder) as listing:
            for entry in listing:
                if entry.name.endswith(".key"):
                    st = entry.stat()
                    entries.append((entry.name, st.st_mtime_ns, st.st_size))
        return tuple(sorted(entries))

    def callback(self, domain: str, key: bytes) -> bool:
        # Runs on the authenticator thread; an exception would kill it, so refuse instead.
        try:
            signature = self._scan()
            if signature != self._signature:
                self._keys = load_allowed(self.folder, strict=False)
                self._signature = signature
            allowed = key in self._keys
        except Exception:
            logger.exception("IronHouse: cannot read %s; refusing the sender", self.folder)
            return False
        if allowed:
            logger.debug("IronHouse: let in sender %s (%s)", key.decode(), self._keys[key])
        elif key not in self._refused:  # the peer retries; say it once per key
            self._refused.add(key)
            logger.warning("IronHouse: refused sender with public key %s: not in %s",
                           key.decode(), self.folder)
        return allowed


class ServerAuthenticator:
    """Start/stop a pyzmq ThreadAuthenticator for StoneHouse (``allowed=None``) or IronHouse."""

    def __init__(self, context: zmq.Context, allowed: Path | None) -> None:
        self.context = context
        self.allowed = allowed
        self._auth: ThreadAuthenticator | None = None

    def start(self) -> None:
        auth = ThreadAuthenticator(self.context, log=logging.getLogger(f"{__name__}.zap"))
        if self.allowed is None:
            auth.configure_curve(domain="*", location=zmq.auth.CURVE_ALLOW_ANY)
        else:
            auth.configure_curve_callback(ZAP_DOMAIN, AllowedFolder(self.allowed))
        self._auth = auth
        try:
            auth.start()
        except (zmq.ZMQError, RuntimeError) as exc:
            self.stop()
            raise SecurityError(f"cannot start the ZAP authenticator: {exc}") from exc
        logger.debug("ZAP authenticator running (%s)",
                     "StoneHouse" if self.allowed is None else f"IronHouse, {self.allowed}")

    @property
    def running(self) -> bool:
        return self._auth is not None and self._auth.is_alive()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the thread and close its sockets. Idempotent; waits at most ``timeout``.

        pyzmq's own ``stop()`` joins without a limit; this bounds the join.
        """
        auth, self._auth = self._auth, None
        if auth is None:
            return
        thread, pipe = auth.thread, auth.pipe
        if pipe is not None:
            with contextlib.suppress(zmq.ZMQError):  # if the thread is gone, nobody to tell
                pipe.send(b"TERMINATE", zmq.NOBLOCK)
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                # Closing its sockets under a live thread is unsafe; leave the daemon thread.
                logger.error("ZAP authenticator did not stop within %.1fs", timeout)
                return
        auth.thread = None  # type: ignore[assignment]
        if pipe is not None:
            pipe.close(linger=0)
            auth.pipe = None  # type: ignore[assignment]
        Authenticator.stop(auth)  # closes the ZAP socket, so context.term() cannot block
