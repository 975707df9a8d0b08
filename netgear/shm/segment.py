"""The shared-memory segment of one named stream: layout, permissions, locks, reclaim.

One file per stream in ``/dev/shm`` (``netgear.<name>``), mapped by the sender read-write
and by receivers read-only. Layout::

    0      header (4096 bytes): magic, slots, slot_bytes, token, owner pid, endpoint
    1024   slot sequence table: one uint64 per slot, the sequence number last written there
    4096   slot 0, slot 1, ...  (each ``stride`` bytes, a multiple of the page size)

Locks are Linux open-file-description (OFD) byte-range locks on the segment file. The
kernel drops them when the holder's descriptor closes, including on SIGKILL, so:

* byte 0, held exclusively by the sender for its lifetime: a segment whose owner lock can
  be taken has no live sender and is reclaimed (unlinked) by the next sender or receiver;
* byte ``1 + i``, the pin of slot ``i``: a fan-out reader holds it shared while the frame
  it returned is in use, the sender needs it exclusive to overwrite the slot. Readers never
  see a torn frame and the sender never waits (a pinned slot is skipped).

OFD locks, not ``fcntl.lockf``: POSIX record locks belong to the process, so two receivers
in one process (or closing any descriptor of the file) would silently share or drop them.
The segment is opened with ``os.open`` rather than ``multiprocessing.shared_memory`` because
the latter registers attached segments with the resource tracker, which unlinks them when
a *receiver* exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import grp
import logging
import math
import mmap
import os
import re
import secrets
import struct
from typing import Optional, Union

import numpy as np

from ..errors import OptionError, TransportError

logger = logging.getLogger(__name__)

SHM_DIR = "/dev/shm"
PREFIX = "netgear."
MAGIC = b"NGSHM001"
HEADER_BYTES = 4096
SEQ_TABLE = 1024
MODE_AT = SEQ_TABLE - 8  # one byte: 1 when the sender fans out (PUB/SUB), 0 lossless
MAX_SLOTS = (HEADER_BYTES - SEQ_TABLE) // 8
_PAGE = mmap.PAGESIZE
# magic, slots, stride, slot_bytes, owner pid, token, endpoint length; endpoint follows.
_HEAD = struct.Struct("<8sIQQI16sH")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# struct flock on Linux x86-64 and aarch64: short type, short whence, off_t start, off_t len,
# pid_t pid (must be 0 for OFD locks), padded to 32 bytes.
_FLOCK = struct.Struct("@hhqqi4x")


def check_name(name: object) -> str:
    """Return ``name`` if it is a valid stream name, else raise OptionError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise OptionError(
            f"shm stream name {name!r} is invalid: use 1-64 characters from A-Z a-z 0-9 _ . - "
            "starting with a letter or digit (it names a file in /dev/shm)", key="address")
    return name


def segment_path(name: str) -> str:
    return os.path.join(SHM_DIR, PREFIX + name)


def resolve_group(group: Union[str, int, None]) -> Optional[int]:
    """The gid for the ``group`` option (a name or a number), or None for owner-only."""
    if group is None:
        return None
    if isinstance(group, bool) or not isinstance(group, (str, int)):
        raise OptionError(f"shm group={group!r} must be a group name or gid", key="group")
    if isinstance(group, int):
        return group
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise OptionError(f"shm group={group!r}: no such group on this host; "
                          "use an existing group name or gid", key="group") from None


def _lock(fd: int, kind: int, start: int, wait: bool = False) -> bool:
    """Set or clear an OFD lock on one byte; False when another holder conflicts."""
    cmd = fcntl.F_OFD_SETLKW if wait else fcntl.F_OFD_SETLK
    try:
        fcntl.fcntl(fd, cmd, _FLOCK.pack(kind, os.SEEK_SET, start, 1, 0))
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def try_lock(fd: int, start: int, exclusive: bool) -> bool:
    return _lock(fd, fcntl.F_WRLCK if exclusive else fcntl.F_RDLCK, start)


def unlock(fd: int, start: int) -> None:
    _lock(fd, fcntl.F_UNLCK, start)


def owner_alive(fd: int) -> bool:
    """Whether some descriptor (the sender's) holds the owner lock of this segment."""
    probe = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 1, 0)
    res = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, probe)
    return _FLOCK.unpack(res)[0] != fcntl.F_UNLCK


def reclaim_if_stale(name: str) -> bool:
    """Unlink the segment of ``name`` if its sender is gone. True if one was removed."""
    path = segment_path(name)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        if owner_alive(fd):
            return False
        st = os.fstat(fd)
        try:
            # only the file we checked: a new sender may have replaced it meanwhile
            if os.stat(path).st_ino == st.st_ino:
                os.unlink(path)
                logger.info("shm: reclaimed stale segment %s (its sender is gone)", path)
                return True
        except (FileNotFoundError, PermissionError):
            pass
        return False
    finally:
        os.close(fd)


def _address(mm: mmap.mmap) -> int:
    """The mapping's start address (0 for a read-only mapping, where nobody needs it)."""
    try:
        view = ctypes.c_char.from_buffer(mm)
    except TypeError:  # read-only: a receiver's
        return 0
    address = ctypes.addressof(view)
    del view  # an exported buffer would keep mm.close() from unmapping
    return address


class Segment:
    """A mapped segment: the sender creates it, receivers attach to it read-only."""

    def __init__(self, fd: int, mm: mmap.mmap, slots: int, stride: int, slot_bytes: int,
                 token: bytes, endpoint: str, path: str) -> None:
        self.fd, self.mm, self.path = fd, mm, path
        self.slots, self.stride, self.slot_bytes = slots, stride, slot_bytes
        self.token, self.endpoint = token, endpoint
        self.inode = os.fstat(fd).st_ino
        self.seqs = np.frombuffer(mm, np.uint64, slots, SEQ_TABLE)
        self.fanout = bool(mm[MODE_AT])
        self.address = _address(mm)


    @classmethod
    def create(cls, name: str, slots: int, slot_bytes: int, endpoint: str,
               gid: Optional[int], fanout: bool = False) -> Segment:
        path = segment_path(name)
        reclaim_if_stale(name)
        mode = 0o640 if gid is not None else 0o600
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode)
        except FileExistsError:
            raise TransportError(
                f"shm stream {name!r} is already published by a live sender ({path}); "
                "use another address or stop that sender") from None
        try:
            _lock(fd, fcntl.F_WRLCK, 0)
            os.fchmod(fd, mode)  # the umask may have narrowed it; never widen beyond mode
            if gid is not None:
                os.fchown(fd, -1, gid)
            stride = -(-slot_bytes // _PAGE) * _PAGE
            size = HEADER_BYTES + slots * stride
            os.ftruncate(fd, size)  # sparse on tmpfs: pages cost memory once written
            mm = mmap.mmap(fd, size)
            token = secrets.token_bytes(16)
            ep = endpoint.encode()
            mm[_HEAD.size:_HEAD.size + len(ep)] = ep
            head = _HEAD.pack(b"\0" * 8, slots, stride, slot_bytes, os.getpid(), token, len(ep))
            mm[:_HEAD.size] = head
            mm[MODE_AT] = 1 if fanout else 0
            mm[:8] = MAGIC  # last: a receiver treats the segment as ready only with it
            return cls(fd, mm, slots, stride, slot_bytes, token, endpoint, path)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise

    @classmethod
    def attach(cls, name: str) -> Optional[Segment]:
        """Map the live segment of ``name`` read-only, or None if there is none (yet)."""
        path = segment_path(name)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except PermissionError:
            os_err = f"permission denied on {path}"
            raise TransportError(f"shm stream {name!r}: {os_err}; the sender must share it "
                                 "with your group (option group)") from None
        try:
            size = os.fstat(fd).st_size
            if size < HEADER_BYTES or not owner_alive(fd):
                os.close(fd)
                if size >= HEADER_BYTES:
                    reclaim_if_stale(name)
                return None
            mm = mmap.mmap(fd, size, prot=mmap.PROT_READ)
            magic, slots, stride, slot_bytes, _pid, token, n = _HEAD.unpack(mm[:_HEAD.size])
            if magic != MAGIC:
                mm.close()
                os.close(fd)
                return None
            endpoint = mm[_HEAD.size:_HEAD.size + n].decode()
            return cls(fd, mm, slots, stride, slot_bytes, token, endpoint, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise

    def slot_view(self, slot: int, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        count = math.prod(shape)  # np.prod costs ~20 us a call, on every frame
        offset = HEADER_BYTES + slot * self.stride
        return np.frombuffer(self.mm, dtype, count, offset).reshape(shape)

    def replaced_or_dead(self) -> bool:
        """True when this mapping no longer belongs to a live sender of the stream."""
        try:
            if os.stat(self.path).st_ino != self.inode:
                return True
        except FileNotFoundError:
            return True
        return not owner_alive(self.fd)

    def close(self, unlink: bool = False) -> None:
        if self.fd < 0:
            return
        if unlink:
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == self.inode:
                    os.unlink(self.path)
        self.seqs = np.empty(0, np.uint64)
        # a caller may still hold a view of a frame: then the GC unmaps it with the view
        with contextlib.suppress(BufferError):
            self.mm.close()
        os.close(self.fd)
        self.fd = -1

