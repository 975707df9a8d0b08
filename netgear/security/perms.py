"""Ownership and permission checks on a key folder, in the spirit of OpenSSH's StrictModes.

A folder that another user owns, or that group/others may write to, lets someone else
plant their own ``allowed/`` key (IronHouse then lets them in) or swap the server key a
sender trusts. netgear refuses such a folder instead of using it as is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import SecurityError

__all__ = ["folder_problems", "require_safe_folder"]

SUBFOLDERS = ("private", "public", "allowed")
PATTERNS = {"private": "*.key_secret", "public": "*.key", "allowed": "*.key"}


def _trusted_owner(uid: int) -> bool:
    # root-owned folders are fine, as for OpenSSH: only root could have written them
    return uid in (os.geteuid(), 0)


def _check(path: Path, problems: list[str]) -> None:
    try:
        st = path.stat()  # a link is judged by what it points to, as OpenSSH does
    except FileNotFoundError:
        return
    if not _trusted_owner(st.st_uid):
        problems.append(f"{path} is owned by uid {st.st_uid}, not by you (uid {os.geteuid()}); "
                        f"run chown {os.geteuid()} {path} if you trust its content, or use a "
                        "fresh key folder")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        fix = "chmod 700" if stat.S_ISDIR(st.st_mode) else "chmod go-w"
        problems.append(f"{path} is writable by group/others "
                        f"(mode {stat.S_IMODE(st.st_mode):04o}); run {fix} {path}")


def folder_problems(root: Path) -> list[str]:
    """Every way ``root`` (a key folder) could have been written by someone else; [] if none.

    Checks the folder, its private/public/allowed subfolders and the key files in them.
    Always [] off POSIX, where modes and owners mean something else.
    """
    if os.name != "posix" or not root.exists():
        return []
    problems: list[str] = []
    _check(root, problems)
    for name in SUBFOLDERS:
        sub = root / name
        _check(sub, problems)
        if sub.is_dir():
            for file in sorted(sub.glob(PATTERNS[name])):
                _check(file, problems)
    return problems


def require_safe_folder(root: Path) -> None:
    """Raise SecurityError naming each problem and its fix when ``root`` is unsafe."""
    problems = folder_problems(root)
    if problems:
        raise SecurityError(
            f"refusing key folder {root}: another user could have planted or replaced keys "
            f"in it. {'; '.join(problems)}. `netgear keys show {root}` lists every problem")
