"""The receiving side of a shared-memory stream (see ``sender`` for the design)."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import socket
import time
from typing import Optional

import msgpack
import numpy as np

from ..errors import ClosedError, TransportError
from .common import CREDIT, FIRST, LAST, MSG_MAX, REPLY, REPLY_CHUNK, writable
from .segment import Segment, check_name, try_lock, unlock

logger = logging.getLogger(__name__)


class ShmReceiver:
    """Receive frames of the stream ``name``; attaches when the sender appears.

    ``receive()`` returns ``(header, frame)``: ``frame`` is a read-only view into shared
    memory, valid until the next ``receive()`` or ``close()`` on this receiver, or an owned
    array with ``copy=True``. ``conflate=True`` returns the newest frame waiting.
    """

    def __init__(self, name: str, *, fanout: bool = False, conflate: bool = False,
                 copy: bool = False) -> None:
        self.name = check_name(name)
        self.fanout, self.conflate, self.copy = bool(fanout), bool(conflate), bool(copy)
        self._seg: Optional[Segment] = None
        self._sock: Optional[socket.socket] = None
        self._buf = bytearray(MSG_MAX)
        self._poller: Optional[select.poll] = None
        self._held = -1  # slot of the frame last returned (pinned or owed as a credit)
        self._last_seq = 0
        self.received = 0
        self.dropped = 0
        self.closed = False

    @property
    def last_sequence(self) -> int:
        """Sequence number of the newest frame seen (returned or counted as dropped)."""
        return self._last_seq

    def receive(self, timeout: Optional[float] = 1.0
                ) -> Optional[tuple[bytes, Optional[np.ndarray]]]:
        """The next ``(header, frame)``, or None if nothing came within ``timeout`` s."""
        if self.closed:
            raise ClosedError(f"shm stream {self.name!r}: receive() after close()")
        self._release()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 3600.0 if deadline is None else deadline - time.monotonic()
            if self._seg is None and not self._attach():
                if left <= 0:
                    return None
                time.sleep(min(0.05, left))  # no sender yet: look again shortly
                continue
            assert self._sock is not None
            if self._poller is None:  # one per attachment: a wait is a single syscall
                self._poller = select.poll()
                self._poller.register(self._sock, select.POLLIN)
            # rounded up: a wait cut short by the rounding would spin until the deadline
            if self._poller.poll(max(0, math.ceil(left * 1000))):
                got = self._take()
                if got is not None:
                    self.received += 1
                    return got
                continue
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def attach(self) -> bool:
        """Attach to the stream's sender now if it is there (receive() also does)."""
        return self._seg is not None or self._attach()

    def fileno(self) -> int:
        """The wake-up socket to poll while attached to a sender, else -1."""
        return -1 if self._sock is None else self._sock.fileno()

    def release(self) -> None:
        """Give the frame last returned back to the sender now (it becomes invalid)."""
        self._release()

    def reply(self, data: bytes, timeout: float = 0.5) -> bool:
        """Send ``data`` back to a lossless sender (its ``wait_reply()``); False when it
        could not be queued within ``timeout`` s (no sender, or one not reading)."""
        sock = self._sock
        if sock is None:
            return False
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        count = max(1, -(-len(view) // REPLY_CHUNK))
        for i in range(count):
            flags = (FIRST if i == 0 else 0) | (LAST if i == count - 1 else 0)
            packet = REPLY + bytes([flags]) + view[i * REPLY_CHUNK:(i + 1) * REPLY_CHUNK]
            while True:
                try:
                    sock.send(packet)
                    break
                except BlockingIOError:
                    left = deadline - time.monotonic()
                    if left <= 0 or not writable(sock, left):
                        return False
                except OSError:
                    return False  # the sender is gone
        return True

    def _attach(self) -> bool:
        seg = Segment.attach(self.name)
        if seg is None:
            return False
        if seg.fanout != self.fanout:
            seg.close()
            kinds = ("lossless delivery (NetGear pattern 0 or 1)",
                     "fan-out delivery (NetGear pattern 2)")
            raise TransportError(
                f"shm stream {self.name!r} is published with {kinds[seg.fanout]}, but this "
                f"receiver expects {kinds[self.fanout]}; use the same pattern (engine: "
                "fanout=) on both ends")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.connect(seg.endpoint)
        except OSError:  # the sender is not listening yet (or just died): try again later
            sock.close()
            seg.close()
            return False
        sock.setblocking(False)
        self._seg, self._sock, self._last_seq = seg, sock, 0
        return True

    def _detach(self) -> None:
        self._held = -1
        if self._sock is not None:
            self._sock.close()
        if self._seg is not None:
            self._seg.close(unlink=self._seg.replaced_or_dead() and self._dead_owner())
        self._sock, self._seg, self._poller = None, None, None

    def _dead_owner(self) -> bool:
        # reclaim a SIGKILLed sender's segment; a replaced one belongs to the new sender
        try:
            return os.stat(self._seg.path).st_ino == self._seg.inode  # type: ignore[union-attr]
        except FileNotFoundError:
            return False

    def _credit(self, slot: int) -> None:
        # a dead sender needs no credit; a new one starts with every slot free
        with contextlib.suppress(OSError):
            self._sock.send(CREDIT + slot.to_bytes(4, "little"))  # type: ignore[union-attr]

    def _release(self) -> None:
        slot, self._held = self._held, -1
        if slot < 0 or self._seg is None:
            return
        if self.fanout:
            unlock(self._seg.fd, 1 + slot)
        else:
            self._credit(slot)

    def _take(self) -> Optional[tuple[bytes, Optional[np.ndarray]]]:
        """Read the waiting notifications; the frame to return, or None if all dropped."""
        msgs = []
        sock = self._sock
        assert sock is not None
        while True:
            try:
                n = sock.recv_into(self._buf)
            except BlockingIOError:
                break
            except ConnectionResetError:
                # The sender closed with credits of ours unread. Linux reports that once,
                # before the notifications it sent first: read on, or the stream's last
                # frames are lost.
                continue
            except OSError:
                n = 0
            if not n:  # end of file: the sender closed or died
                if msgs:
                    break  # return what it sent first; the end is seen on the next call
                logger.info("shm stream %r: sender gone; waiting for a new one", self.name)
                self._detach()
                return None
            msgs.append(bytes(self._buf[:n]))
            if not self.conflate:
                break
        if self.conflate:
            msgs.reverse()  # newest first; the older ones only give their slots back
        result = None
        for raw in msgs:
            if self._seg is None:
                break
            if result is None:
                result = self._open(raw)
            else:
                self._skip(raw)
        return result

    def _skip(self, raw: bytes) -> None:
        slot = msgpack.unpackb(raw)[2]
        if not self.fanout and slot >= 0 and self._seg is not None:
            self._credit(slot)

    def _open(self, raw: bytes) -> Optional[tuple[bytes, Optional[np.ndarray]]]:
        seg = self._seg
        assert seg is not None
        token, seq, slot, dtype, shape, header = msgpack.unpackb(raw)
        if token != seg.token:
            self._detach()  # a new sender took over the name; attach to it
            return None
        if seq <= self._last_seq:
            self._skip(raw)
            return None
        self.dropped += seq - self._last_seq - 1
        self._last_seq = seq
        if slot < 0:
            return header, None
        if self.fanout and not try_lock(seg.fd, 1 + slot, exclusive=False):
            self.dropped += 1  # the sender is rewriting the slot: this frame is gone
            return None
        if self.fanout and int(seg.seqs[slot]) != seq:
            unlock(seg.fd, 1 + slot)
            self.dropped += 1
            return None
        view = seg.slot_view(slot, np.dtype(dtype), tuple(shape))
        self._held = slot
        if self.copy:
            view = view.copy()
            self._release()
        return header, view

    def close(self) -> None:
        """Release the frame in use and detach. Idempotent; returns at once."""
        if self.closed:
            return
        self.closed = True
        self._release()
        self._detach()
