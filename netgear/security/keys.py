"""CURVE key folders: layout, race-safe generation, strict loading, allowing senders.

A key folder ``DIR`` looks like this (see docs/modes/secure.md)::

    DIR/private/server.key_secret   receiver keypair (0600); only the receiver needs it
    DIR/private/client.key_secret   sender keypair (0600); only the sender needs it
    DIR/public/server.key           receiver public key; every sender needs a copy
    DIR/public/client.key           sender public key; IronHouse receivers list it in allowed/
    DIR/allowed/*.key               IronHouse: public keys of the senders let in

Files are written by pyzmq's ``zmq.auth.create_certificates`` into a private
temporary folder and moved into place with ``os.replace``, under an exclusive
lock on ``DIR/.lock``, so two processes starting together on one folder end up
with one consistent set of keys and a reader never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Union

import zmq
import zmq.auth
from zmq.utils import z85

from ..errors import SecurityError
from .perms import require_safe_folder

__all__ = [
    "KeyFolder",
    "allow_client",
    "default_key_dir",
    "fingerprint",
    "generate_keys",
    "load_allowed",
    "load_keypair",
    "load_public_key",
    "too_open",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
PAIRS = ("server", "client")
LOCK_TIMEOUT = 10.0  # seconds; generating keys takes milliseconds, so longer means a stuck peer


def default_key_dir() -> Path:
    """The folder used when ``custom_cert_location`` is not given: ``~/.netgear/keys``."""
    try:
        return Path.home() / ".netgear" / "keys"
    except (RuntimeError, KeyError) as exc:  # no HOME and no passwd entry (some containers)
        raise SecurityError("cannot find the home folder for the default key folder; "
                            "pass custom_cert_location") from exc


@dataclass(frozen=True)
class KeyFolder:
    """The paths of one key folder."""

    root: Path

    @classmethod
    def at(cls, directory: PathLike | None) -> KeyFolder:
        path = default_key_dir() if directory is None else Path(directory)
        return cls(path.expanduser().absolute())

    @property
    def private(self) -> Path:
        return self.root / "private"

    @property
    def public(self) -> Path:
        return self.root / "public"

    @property
    def allowed(self) -> Path:
        return self.root / "allowed"

    def secret_file(self, name: str) -> Path:
        return self.private / f"{name}.key_secret"

    def public_file(self, name: str) -> Path:
        return self.public / f"{name}.key"


def _make_dir(path: Path) -> None:
    # Owner-only: the folder tree holds secret keys, and 0700 keeps even their names private.
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)


@contextlib.contextmanager
def _locked(folder: KeyFolder) -> Iterator[None]:
    """Hold an exclusive lock on the folder; released by the OS even if the process dies."""
    _make_dir(folder.root)
    fd = os.open(folder.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+b") as handle:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while not _try_lock(handle):
            if time.monotonic() >= deadline:
                raise SecurityError(f"key folder {folder.root} stayed locked for "
                                    f"{LOCK_TIMEOUT:g}s by another process")
            time.sleep(0.02)
        try:
            yield
        finally:
            _unlock(handle)


try:
    import fcntl

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

except ImportError:  # Windows
    import msvcrt

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]


def _write_pair(folder: KeyFolder, name: str) -> None:
    staging = Path(tempfile.mkdtemp(prefix=".new-", dir=folder.root))  # created 0700
    try:
        public, secret = zmq.auth.create_certificates(staging, name)
        os.chmod(secret, 0o600)
        os.chmod(public, 0o644)
        # secret first: a reader that sees the new public key also finds its secret
        os.replace(secret, folder.secret_file(name))
        if name == "client":
            # the folder's own sender is let in by IronHouse out of the box (same-machine use)
            shutil.copyfile(public, staging / "allowed.key")
            os.chmod(staging / "allowed.key", 0o644)
            os.replace(staging / "allowed.key", folder.allowed / "client.key")
        os.replace(public, folder.public_file(name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def generate_keys(directory: PathLike | None = None, overwrite: bool = False,
                  pairs: Iterable[str] = PAIRS) -> KeyFolder:
    """Create the key folder and every missing keypair in it; return its paths.

    Raises SecurityError, before reading or writing anything, when the folder (or a
    subfolder or key file) is owned by another user or writable by group/others.
    A pair is generated when neither of its files exists, so a sender folder holding only
    a copied ``public/server.key`` keeps it. ``overwrite=True`` replaces the listed pairs
    (``"server"``, ``"client"``). A new client pair is also written to
    ``allowed/client.key``. Raises SecurityError when the folder cannot be written.
    """
    folder = KeyFolder.at(directory)
    names = tuple(pairs)
    unknown = [n for n in names if n not in PAIRS]
    if unknown:
        raise ValueError(f"pairs must be among {PAIRS}, got {unknown}")

    # before trusting a single file in it: someone else may have prepared this folder
    require_safe_folder(folder.root)

    def missing(name: str) -> bool:
        return overwrite or not (folder.secret_file(name).exists()
                                 or folder.public_file(name).exists())

    if not any(missing(n) for n in names):
        return folder  # nothing to write: a read-only, pre-deployed folder works too
    try:
        with _locked(folder):
            for sub in (folder.private, folder.public, folder.allowed):
                _make_dir(sub)
            os.chmod(folder.private, 0o700)  # even if someone loosened it
            for name in names:
                if missing(name):  # checked again: another process may have just written it
                    _write_pair(folder, name)
                    logger.info("generated %s keypair in %s", name, folder.root)
    except OSError as exc:
        raise SecurityError(f"cannot write keys to {folder.root}: {exc}") from exc
    return folder


def _read(path: Path) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise SecurityError(f"key file {path} is missing")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise SecurityError(f"key file {path} is unreadable or corrupt: {exc}") from exc
    if not _valid_z85_key(public) or (secret is not None and not _valid_z85_key(secret)):
        raise SecurityError(f"key file {path} holds a malformed CURVE key")
    return public, secret


def _valid_z85_key(key: bytes) -> bool:
    try:
        return len(key) == 40 and len(z85.decode(key)) == 32
    except (ValueError, KeyError, TypeError):
        return False


def load_keypair(path: PathLike) -> tuple[bytes, bytes]:
    """(public, secret) z85 keys from a ``.key_secret`` file; SecurityError if unusable."""
    file = Path(path)
    public, secret = _read(file)
    if secret is None:
        raise SecurityError(f"key file {file} holds no secret key")
    if zmq.curve_public(secret) != public:
        raise SecurityError(f"key file {file} is corrupt: its public and secret keys differ")
    if too_open(file):
        logger.warning("secret key file %s is readable by other users; run chmod 600 on it",
                       file)
    return public, secret


def load_public_key(path: PathLike) -> bytes:
    """The z85 public key in a ``.key`` (or ``.key_secret``) file; SecurityError if unusable."""
    return _read(Path(path))[0]


def load_allowed(directory: PathLike, strict: bool = True) -> dict[bytes, str]:
    """Public keys in an allowed folder, mapped to their file names.

    ``strict``: a corrupt file raises SecurityError; otherwise it is skipped and logged.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise SecurityError(f"allowed-keys folder {folder} is missing")
    keys: dict[bytes, str] = {}
    for file in sorted(folder.glob("*.key")):
        try:
            keys[load_public_key(file)] = file.name
        except SecurityError:
            if strict:
                raise
            logger.warning("skipping unusable allowed key %s", file)
    return keys


def fingerprint(public_key: bytes) -> str:
    """A short, filename-safe tag of a public key (z85 itself contains '/')."""
    return hashlib.sha256(public_key).hexdigest()[:12]


def allow_client(directory: PathLike | None, public_key_file: PathLike,
                 name: str | None = None) -> Path:
    """Let a sender into an IronHouse receiver: copy its public key into ``allowed/``.

    The file is named ``NAME.key``; by default ``<source name>-<fingerprint>.key`` so
    several senders' ``client.key`` files never overwrite each other. Returns the new path.
    """
    folder = KeyFolder.at(directory)
    require_safe_folder(folder.root)
    public, secret = _read(Path(public_key_file))
    if secret is not None:  # a mix-up that would spread a secret key; refuse it
        raise SecurityError(f"{public_key_file} holds a secret key; pass the sender's "
                            "public/client.key instead")
    if name is None:
        name = f"{Path(public_key_file).name.split('.')[0]}-{fingerprint(public)}"
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"name {name!r} must be a plain file name")
    target = folder.allowed / f"{name}.key"
    try:
        with _locked(folder):
            _make_dir(folder.allowed)
            staging = folder.allowed / f".{name}.tmp"
            shutil.copyfile(public_key_file, staging)
            os.chmod(staging, 0o644)
            os.replace(staging, target)  # a live receiver reloads allowed/ on each handshake
    except OSError as exc:
        raise SecurityError(f"cannot write {target}: {exc}") from exc
    logger.info("allowed sender key %s as %s", public.decode(), target)
    return target


def too_open(path: Path) -> bool:
    return os.name == "posix" and bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
