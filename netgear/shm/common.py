"""What the shm sender and receiver share: constants, the socket directory, small helpers."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import tempfile
from typing import Optional

import numpy as np

from ..errors import OptionError, PayloadError, TransportError
from .segment import Segment

DEFAULT_SLOT_BYTES = 3840 * 2160 * 3  # one 4K BGR frame
CREDIT = b"C"  # receiver -> sender: + 4-byte slot, that slot is free again
REPLY = b"R"  # receiver -> sender: + flags byte + a chunk of a reply
FIRST, LAST = 1, 2  # reply chunk flags
MSG_MAX = 1 << 16  # largest notification (a socket buffer holds several of them)
HEADER_MAX = MSG_MAX - 1024  # the caller's header bytes; the rest is room for the metadata
REPLY_CHUNK = MSG_MAX - 2


def socket_dir(gid: Optional[int] = None) -> str:
    """The per-user directory of the stream sockets; only its owner (and group) can enter."""
    path = os.path.join(tempfile.gettempdir(), f"netgear-shm-{os.getuid()}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if st.st_uid != os.getuid() or not os.path.isdir(path) or os.path.islink(path):
        raise TransportError(f"{path} is not a directory owned by you; remove it and retry")
    os.chmod(path, 0o710 if gid is not None else 0o700)
    if gid is not None:
        os.chown(path, -1, gid)
    return path


def check_int(key: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise OptionError(f"shm {key}={value!r} must be an integer in [{lo}, {hi}]", key=key)
    return value


def close_quietly(sock: Optional[socket.socket], conns: list[socket.socket],
                   seg: Optional[Segment], unlink: bool) -> None:
    for conn in conns:
        conn.close()
    conns.clear()
    if sock is not None:
        sock.close()
    if seg is not None:
        if unlink:
            # ours to remove: while our segment (and its owner lock) exists, no other
            # sender of this name can have bound this path
            with contextlib.suppress(OSError):
                os.unlink(seg.endpoint)
        seg.close(unlink=unlink)




def writable(sock: socket.socket, wait_s: float) -> bool:
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    return bool(poller.poll(max(1, int(wait_s * 1000))))


def check_header(header: object) -> None:
    if not isinstance(header, (bytes, bytearray, memoryview)):
        raise PayloadError(f"shm header must be bytes, not {type(header).__name__}")
    if len(header) > HEADER_MAX:
        raise PayloadError(
            f"shm header of {len(header)} bytes is larger than {HEADER_MAX}; send bulk "
            "data as a frame (a numpy array) instead")


def check_frame(frame: object, slot_bytes: int, name: str) -> None:
    if not isinstance(frame, np.ndarray):
        raise PayloadError(f"shm frame must be a numpy.ndarray, not {type(frame).__name__}")
    if frame.dtype.hasobject or frame.dtype.fields is not None:
        raise PayloadError(f"shm frame dtype {frame.dtype} is not a plain numeric dtype")
    if frame.nbytes > slot_bytes:
        raise PayloadError(
            f"frame of {frame.nbytes} bytes (shape {frame.shape}, {frame.dtype}) is larger "
            f"than slot_bytes={slot_bytes} of shm stream {name!r}; create the "
            f"sender with slot_bytes={frame.nbytes} or more")
