"""One shm stream of a link, and how a netgear message is laid out in a slot.

A netgear message is 1-3 parts (header, payload, message array; see core/wire.py). Parts
that are large (always the frame payload) are copied into one slot of the stream's ring,
each at a 64-byte aligned offset; small ones travel inline in the notification. The
notification's header bytes say which is where: ``[spec0, spec1, spec2]``, each ``None``
(no such part), ``bytes`` (inline) or ``[offset, length]`` (in the slot).
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from ...errors import PayloadError, WireFormatError
from ...shm import ShmReceiver, ShmSender
from ...shm.common import HEADER_MAX

__all__ = ["Layout", "ShmChannel", "layout", "read_parts", "reply_bytes", "reply_parts"]

ALIGN = 64  # payload offsets in a slot: cache-line aligned, so views are aligned for any dtype
# parts up to this many bytes ride in the notification instead of a slot; the frame payload
# (part 1) always takes a slot, so a lossless stream's credits pace frames of any size
INLINE = (HEADER_MAX - 4096, 0, 1024)


class ShmChannel:
    """One named stream: a sender's ring or a receiver's view of one (the link's Channel)."""

    def __init__(self, label: str, name: str) -> None:
        self.label = label  # the port (or name) the core reports and keys streams by
        self.name = name  # the stream, /dev/shm/netgear.<name>
        self.in_flight = 0
        self.rebuilds = 0  # nothing to rebuild: a restarted peer reattaches by itself
        self.tx: ShmSender | None = None
        self.rx: ShmReceiver | None = None
        self.loan: tuple[int, int, np.ndarray] | None = None  # (slot, address, array) lent

    def fit_queue(self, frame_bytes: int, queue_bytes: int) -> None:
        """Nothing to fit: the ring's slots (shm_slots) bound what a sender queues."""

    def __repr__(self) -> str:
        return f"ShmChannel({self.name!r})"


class Layout:
    """Where each part of one outgoing message goes: notification or slot."""

    __slots__ = ("frame", "header", "pieces", "total")

    def __init__(self, header: bytes, pieces: list[tuple[int, memoryview]], total: int,
                 frame: np.ndarray | None) -> None:
        self.header = header
        self.pieces = pieces  # (offset in the slot, bytes to copy there); the payload first
        self.total = total  # bytes of the slot used; 0: no slot needed
        self.frame = frame  # the payload when it is an array (a loaned slot's, maybe)

    def payload_at(self, address: int, loaned: np.ndarray) -> bool:
        """Whether the payload is the array ``loaned`` lent at ``address`` (no copy due)."""
        frame = self.frame
        if frame is None or not self.total:
            return False
        if frame is loaned:  # the usual case, and cheaper than reading the address
            return True
        return bool(frame.__array_interface__["data"][0] == address)

    def write(self, slot: memoryview, skip_payload: bool = False) -> None:
        """Copy the pieces into ``slot``; ``skip_payload``: it is already there (a loan)."""
        for offset, view in self.pieces[1 if skip_payload else 0:]:
            slot[offset:offset + view.nbytes] = view


def _bytes_view(part: Any) -> memoryview:
    view = memoryview(part)
    if view.nbytes and (view.format != "B" or view.ndim != 1):
        view = view.cast("B")  # wire.encode made arrays C-contiguous
    return view


def layout(parts: list[Any], slot_bytes: int) -> Layout:
    """Plan ``parts`` into a slot; PayloadError when they do not fit ``shm_slot_bytes``."""
    specs: list[Any] = [None, None, None]
    pieces: list[tuple[int, memoryview]] = []
    total = 0
    frame = None
    if len(parts) > 1 and isinstance(parts[1], np.ndarray) and parts[1].nbytes:
        frame = parts[1]
    # the payload first, at offset 0: where a loaned frame already lies
    for index in sorted(range(len(parts)), key=lambda i: i != 1):
        part = parts[index]
        view = _bytes_view(part)
        size = view.nbytes
        if (index != 1 and size <= INLINE[index]) or size == 0:
            specs[index] = view.tobytes()
            continue
        offset = -(-total // ALIGN) * ALIGN
        specs[index] = [offset, size]
        pieces.append((offset, view))
        total = offset + size
    if total > slot_bytes:
        raise PayloadError(
            f"frame of {total} bytes (payload and message) does not fit shm_slot_bytes="
            f"{slot_bytes}; create the sender with shm_slot_bytes={total} or more "
            "(receivers need no change)")
    return Layout(msgpack.packb(specs[:len(parts)]), pieces, total, frame)


def read_parts(header: bytes, slot: np.ndarray | None) -> list[Any]:
    """The parts of a received message; slot parts are views into ``slot``."""
    try:
        specs = msgpack.unpackb(header)
    except Exception as exc:
        raise WireFormatError(f"shm notification is not valid msgpack: {exc}") from exc
    if not isinstance(specs, list) or not 1 <= len(specs) <= 3:
        raise WireFormatError("shm notification does not describe 1 to 3 parts")
    parts: list[Any] = []
    for spec in specs:
        if isinstance(spec, bytes):
            parts.append(spec)
            continue
        if (slot is None or not isinstance(spec, list) or len(spec) != 2
                or not all(isinstance(v, int) and v >= 0 for v in spec)
                or spec[0] + spec[1] > slot.nbytes):
            raise WireFormatError(f"shm part {spec!r} lies outside its slot")
        parts.append(slot[spec[0]:spec[0] + spec[1]])
    return parts


def reply_bytes(parts: list[Any]) -> bytes:
    """A reply (header and an optional message array) as one byte string for the way back."""
    return msgpack.packb([_bytes_view(p).tobytes() for p in parts])


def reply_parts(data: bytes) -> list[Any]:
    try:
        parts = msgpack.unpackb(data)
    except Exception as exc:
        raise WireFormatError(f"shm reply is not valid msgpack: {exc}") from exc
    if not isinstance(parts, list) or not all(isinstance(p, bytes) for p in parts):
        raise WireFormatError("shm reply is not a list of parts")
    return parts
