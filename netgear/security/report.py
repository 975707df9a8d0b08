"""A read-only description of a key folder, for ``netgear keys show`` and for debugging."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SecurityError
from .keys import PAIRS, KeyFolder, PathLike, load_keypair, load_public_key, too_open
from .perms import folder_problems

__all__ = ["AllowedKey", "KeyInfo", "KeyringInfo", "list_keys"]


@dataclass
class KeyInfo:
    """One keypair of a folder as found on disk."""

    name: str
    public_file: Path
    secret_file: Path
    public_key: str | None  # z85 from the public file, None when missing or unusable
    has_secret: bool


@dataclass
class AllowedKey:
    file: Path
    public_key: str | None


@dataclass
class KeyringInfo:
    """What ``list_keys`` found: the pairs, the allowed senders and any problems."""

    root: Path
    pairs: list[KeyInfo]
    allowed: list[AllowedKey]
    problems: list[str] = field(default_factory=list)


def list_keys(directory: PathLike | None = None) -> KeyringInfo:
    """Describe a key folder without changing it (for ``netgear keys show``)."""
    folder = KeyFolder.at(directory)
    info = KeyringInfo(folder.root, [], [])
    info.problems.extend(folder_problems(folder.root))  # first: they make the rest untrustworthy
    for name in PAIRS:
        pub_file, sec_file = folder.public_file(name), folder.secret_file(name)
        entry = KeyInfo(name, pub_file, sec_file, None, sec_file.is_file())
        if pub_file.is_file():
            try:
                entry.public_key = load_public_key(pub_file).decode()
            except SecurityError as exc:
                info.problems.append(str(exc))
        if entry.has_secret:
            try:
                own = load_keypair(sec_file)[0].decode()
                if entry.public_key not in (None, own):
                    info.problems.append(
                        f"{pub_file.name} does not match {sec_file.name} (expected only when "
                        f"{pub_file.name} was copied from another machine)")
                if too_open(sec_file):
                    info.problems.append(f"{sec_file} is readable by other users")
            except SecurityError as exc:
                info.problems.append(str(exc))
        info.pairs.append(entry)
    if folder.allowed.is_dir():
        for file in sorted(folder.allowed.glob("*.key")):
            try:
                info.allowed.append(AllowedKey(file, load_public_key(file).decode()))
            except SecurityError as exc:
                info.allowed.append(AllowedKey(file, None))
                info.problems.append(str(exc))
    return info
