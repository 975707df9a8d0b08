"""Shared-memory frame engine: frames in a ``/dev/shm`` slot ring, wake-ups over a Unix socket.

The frame bytes are copied once, into a slot of the stream's segment; the receiver gets a
read-only numpy view of that slot. A small message per frame (sequence, slot, dtype, shape,
the caller's header bytes) travels over a Unix ``SOCK_SEQPACKET`` socket next to it, so
every wait is a blocking ``poll`` (no spinning), messages without a frame keep their order,
and a receiver sees its sender's death at once (end of file on the socket). A plain socket
rather than ZeroMQ ``ipc://``: ZeroMQ passes each message through an I/O thread on both
sides, which measured about 0.4 ms more per frame here.

Two delivery modes:

* lossless (PAIR, REQ/REP): one receiver. The sender owns ``slots`` credits; a slot comes
  back only when the receiver is done with the frame in it (its next ``receive()``), so a
  slow receiver slows the sender and nothing is overwritten under it. A new connection
  (a receiver restart) replaces the old receiver and hands all slots back to the sender,
  once the old one has gone (a notice to it fails) or the ring runs dry: credits and
  connections are only read then.
* fan-out (PUB/SUB): any number of receivers read the same slot, no copy each. A receiver
  pins the slot of the frame it returned with a shared lock (see ``segment``); the sender
  skips pinned slots and never waits: a receiver whose socket buffer is full misses the
  message. A slow receiver drops frames, counted in ``dropped`` from the sequence numbers.

The sender's end of the socket (receivers connecting, credits, replies) is ``receivers``.
"""

from __future__ import annotations

import errno
import logging
import os
import time
import weakref
from typing import Optional, Union

import msgpack
import numpy as np

from ..errors import ClosedError, PeerTimeoutError, TransportError
from . import common
from .common import DEFAULT_SLOT_BYTES, HEADER_MAX, check_frame, check_header, socket_dir
from .receivers import Receivers
from .segment import HEADER_BYTES, MAX_SLOTS, Segment, check_name, resolve_group, try_lock, unlock

__all__ = ["DEFAULT_SLOT_BYTES", "HEADER_MAX", "ShmSender", "socket_dir"]

logger = logging.getLogger(__name__)


class ShmSender:
    """Publish frames of the stream ``name`` into shared memory.

    Args:
        name: the stream name (NetGear's ``address`` with ``protocol="shm"``); it names the file
            ``/dev/shm/netgear.<name>``.
        fanout: PUB/SUB delivery (any number of receivers, never blocks) instead of lossless.
        slots: frames the ring holds. Lossless: how far the sender may run ahead.
            Fan-out: keep it above the number of receivers plus two.
        slot_bytes: the largest frame (``ndarray.nbytes``) the stream carries.
        group: a group name or gid allowed to read the stream; default owner only (0600).
    """

    def __init__(self, name: str, *, fanout: bool = False, slots: int = 4,
                 slot_bytes: int = DEFAULT_SLOT_BYTES,
                 group: Union[str, int, None] = None) -> None:
        self.name = check_name(name)
        self.fanout = bool(fanout)
        self.slots = common.check_int("slots", slots, 2, MAX_SLOTS)
        self.slot_bytes = common.check_int("slot_bytes", slot_bytes, 1, 1 << 40)
        gid = resolve_group(group)
        endpoint = os.path.join(socket_dir(gid), name + ".sock")
        self._seg = Segment.create(name, self.slots, self.slot_bytes, endpoint, gid,
                                   self.fanout)
        try:
            self._rx = Receivers(name, endpoint, gid, self.slots, self.fanout)
        except BaseException as exc:
            common.close_quietly(None, [], self._seg, unlink=True)
            if isinstance(exc, OSError):
                raise TransportError(f"shm stream {name!r}: cannot listen on {endpoint}: {exc}") \
                    from exc
            raise
        self._finalizer = weakref.finalize(self, common.close_quietly, self._rx.sock,
                                           self._rx.conns, self._seg, True)
        self._seq = 0
        self._next = 0
        self.busy_drops = 0  # fan-out frames not published because every slot was pinned
        self.closed = False

    def publish(self, frame: Optional[np.ndarray], header: bytes = b"",
                timeout: Optional[float] = 10.0) -> bool:
        """Send ``frame`` (or None for a message only) with ``header``.

        The frame is copied into the segment, so its buffer may be reused on return.
        Lossless mode waits up to ``timeout`` seconds for a free slot and a receiver, then
        raises PeerTimeoutError. Fan-out mode never waits; it returns False (and counts
        ``busy_drops``) in the rare case that receivers pin every slot.
        """
        check_header(header)
        if frame is not None:
            check_frame(frame, self.slot_bytes, self.name)
        deadline = None if timeout is None else time.monotonic() + timeout
        slot = -1
        if frame is not None:
            slot = self.reserve(timeout)
            if slot < 0:
                if not self.fanout:
                    self._wait_s(deadline)  # raises, naming what was missing
                self.busy_drops += 1
                return False
            np.copyto(self._seg.slot_view(slot, frame.dtype, frame.shape), frame,
                      casting="no")
        shape = list(frame.shape) if frame is not None else []
        dtype = frame.dtype.str if frame is not None else ""
        if not self.commit(slot, dtype, shape, header, timeout):
            self._wait_s(deadline)
        return True

    def reserve(self, timeout: Optional[float]) -> int:
        """A slot for the next frame, to fill through :meth:`slot_buffer` and then commit.

        Lossless: waits up to ``timeout`` s for a receiver and a free slot; fan-out never
        waits. -1 when there is none (the time ran out, or every slot is pinned).
        """
        if self.closed:
            raise ClosedError(f"shm stream {self.name!r}: publish() after close()")
        if self.fanout:
            return self._pick_slot()
        if self._rx.free and self._rx.conns:
            # Credits and connections are read only when the ring runs dry: nothing to ask
            # the kernel on the common path. A receiver that left shows up as EPIPE in
            # commit(); a newer one is let in then, or once the ring runs dry (at most
            # `slots` frames on).
            return self._rx.free.popleft()
        deadline = None if timeout is None else time.monotonic() + timeout
        self._rx.drain(0.0)
        while not self._rx.free or self._rx.peer is None:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return -1
            self._rx.drain(left)
        return self._rx.free.popleft()

    def unreserve(self, slot: int) -> None:
        """Give back a slot from :meth:`reserve` that will not be committed."""
        if self.fanout:
            unlock(self._seg.fd, 1 + slot)
        elif slot not in self._rx.free:
            self._rx.free.appendleft(slot)

    def slot_buffer(self, slot: int) -> memoryview:
        """The writable bytes of ``slot`` (``slot_bytes`` long), reserved by the caller."""
        start = HEADER_BYTES + slot * self._seg.stride
        return memoryview(self._seg.mm)[start:start + self.slot_bytes]

    def slot_address(self, slot: int) -> int:
        """Where ``slot`` starts in this process's memory."""
        return self._seg.address + HEADER_BYTES + slot * self._seg.stride

    def commit(self, slot: int, dtype: str, shape: list[int], header: bytes = b"",
               timeout: Optional[float] = 10.0) -> bool:
        """Announce the frame written into ``slot`` (-1: a message without a frame).

        Lossless: False when no receiver took the notice within ``timeout`` (the slot is
        free again); fan-out always delivers to whoever can take it.
        """
        if self.closed:
            raise ClosedError(f"shm stream {self.name!r}: publish() after close()")
        check_header(header)
        self._seq += 1
        seg = self._seg
        if slot >= 0:
            seg.seqs[slot] = self._seq
            if self.fanout:
                unlock(seg.fd, 1 + slot)
        msg = msgpack.packb([seg.token, self._seq, slot, dtype, shape, bytes(header)])
        if self.fanout:
            self._rx.fan_out(msg)
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._deliver(msg, slot, deadline):
            return True
        if slot >= 0 and slot not in self._rx.free:
            self._rx.free.appendleft(slot)
        return False

    def announce(self, header: bytes, timeout: float) -> None:
        """Fan-out: a message without a frame for every receiver, waiting up to ``timeout``
        for a full socket buffer (used for the end of a stream, which must not be missed)."""
        self._rx.accept()
        self._seq += 1
        msg = msgpack.packb([self._seg.token, self._seq, -1, "", [], bytes(header)])
        deadline = time.monotonic() + timeout
        for conn in list(self._rx.conns):
            while True:
                try:
                    conn.send(msg)
                    break
                except BlockingIOError:
                    left = deadline - time.monotonic()
                    if left <= 0 or not common.writable(conn, left):
                        break
                except OSError:
                    self._rx.drop(conn)
                    break

    def _pick_slot(self) -> int:
        # Round robin over slots no receiver has pinned; the exclusive lock is held while
        # the frame is written so that no receiver can pin a half-written slot.
        for i in range(self.slots):
            slot = (self._next + i) % self.slots
            if try_lock(self._seg.fd, 1 + slot, exclusive=True):
                self._next = (slot + 1) % self.slots
                return slot
        return -1

    @property
    def receivers(self) -> int:
        """Receivers connected right now (lossless: 0 or 1)."""
        self._rx.accept()
        return len(self._rx.conns)

    def ready(self) -> bool:
        """Lossless: a receiver is connected and a slot is free (publish() would not wait)."""
        self._rx.drain(0.0)
        return self._rx.peer is not None and bool(self._rx.free)

    def _deliver(self, msg: bytes, slot: int, deadline: Optional[float]) -> bool:
        while True:
            peer = self._rx.peer
            if peer is not None:
                try:
                    peer.send(msg)
                    return True
                except BlockingIOError:
                    pass  # its buffer is full: wait below, then retry
                except OSError as exc:
                    if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                        raise TransportError(f"shm stream {self.name!r}: {exc}") from exc
                    self._rx.drop(peer)  # that receiver is gone; wait for the next one
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return False
            self._rx.drain(left)
            if slot >= 0 and self._rx.peer is not None and slot in self._rx.free:
                self._rx.free.remove(slot)  # a new receiver reset the credits; keep ours

    def _wait_s(self, deadline: Optional[float]) -> float:
        if deadline is None:
            return 1.0
        left = deadline - time.monotonic()
        if left <= 0:
            what = "a receiver" if self._rx.peer is None else "the receiver to free a slot"
            raise PeerTimeoutError(
                f"shm stream {self.name!r}: waited for {what} until the timeout; a lossless "
                "stream sends only as fast as its receiver reads (raise the timeout, or use "
                "fan-out delivery to drop frames for slow receivers instead)")
        return left

    def wait_reply(self, timeout: float) -> Optional[bytes]:
        """Lossless: the next reply its receiver sent back, or None after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        self._rx.drain(0.0)
        while not self._rx.replies:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._rx.drain(left)
        return self._rx.replies.popleft()

    def close(self) -> None:
        """Unlink the segment and close the socket. Idempotent; returns at once."""
        if self.closed:
            return
        self.closed = True
        self._finalizer()
