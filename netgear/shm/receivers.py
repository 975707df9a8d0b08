"""The sender's end of a stream's wake-up socket: receivers connecting, credits and replies.

A lossless stream has one receiver. A newer connection (a restart) replaces it and hands
every slot back; its credits refill :attr:`Receivers.free` and its replies (chunked when
large) queue in :attr:`Receivers.replies`. A fan-out stream keeps every receiver; they send
nothing back.

Everything here is driven by ``poll()``, not by reading until a non-blocking call raises:
a raised exception costs tens of microseconds on the first frame after an idle gap (cold
caches), and this runs on the frame path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
from collections import deque
from typing import Optional

from . import common

__all__ = ["Receivers"]

logger = logging.getLogger(__name__)


class Receivers:
    """The listening socket of stream ``name`` and the receivers connected to it.

    Raises OSError when ``endpoint`` cannot be listened on (the caller closes the socket).
    """

    def __init__(self, name: str, endpoint: str, gid: Optional[int], slots: int,
                 fanout: bool) -> None:
        self.name, self.slots, self.fanout = name, slots, fanout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.conns: list[socket.socket] = []  # fan-out: every receiver; lossless: one
        self.free: deque[int] = deque(range(slots))  # lossless: slots the sender may fill
        self.replies: deque[bytes] = deque()  # lossless: what the receiver sent back
        self._partial: Optional[bytearray] = None
        self._inbox = bytearray(common.MSG_MAX)
        self._watch: Optional[select.poll] = None  # listener + receivers; None: rebuild
        self._listener = select.poll()  # is a receiver connecting?
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(endpoint)  # a SIGKILLed sender's; the segment says it is ours
            self.sock.bind(endpoint)
            if gid is not None:
                os.chmod(endpoint, 0o660)
            self.sock.listen(64)
            self.sock.setblocking(False)
        except BaseException:
            self.sock.close()
            raise
        self._listener.register(self.sock, select.POLLIN)

    @property
    def peer(self) -> Optional[socket.socket]:
        return self.conns[0] if self.conns else None

    def accept(self) -> None:
        """Take the receivers waiting to connect (one poll() when there is none)."""
        while self._listener.poll(0):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            conn.setblocking(False)
            if not self.fanout:
                # a new receiver (a restart): the old one is done, all slots are free again
                logger.debug("shm stream %r: receiver attached", self.name)
                for old in self.conns:
                    old.close()
                self.conns.clear()
                self.free = deque(range(self.slots))
                self._partial = None
            self.conns.append(conn)
            self._watch = None

    def drop(self, conn: socket.socket) -> None:
        conn.close()
        if conn in self.conns:
            self.conns.remove(conn)
        self._watch = None

    def fan_out(self, msg: bytes) -> None:
        """Send ``msg`` to every receiver that can take it now (a full one misses it)."""
        self.accept()
        for conn in list(self.conns):
            try:
                conn.send(msg)
            except BlockingIOError:
                pass  # that receiver is behind: it counts the gap by sequence number
            except OSError:
                self.drop(conn)  # that receiver is gone

    def drain(self, wait_s: float) -> None:
        """Accept a new receiver and read credits and replies, waiting up to ``wait_s``."""
        ms = max(1, int(wait_s * 1000)) if wait_s > 0 else 0
        while self._watched().poll(ms):
            ms = 0  # whatever arrived is read; then look again without waiting
            self.accept()
            peer = self.peer
            if peer is None or not self._read(peer):
                return

    def _watched(self) -> select.poll:
        if self._watch is None:  # the receivers changed
            self._watch = select.poll()
            for sock in (self.sock, *self.conns):
                self._watch.register(sock, select.POLLIN)
        return self._watch

    def _read(self, peer: socket.socket) -> bool:
        """Take one credit or reply chunk; False when there was none, or at end of file."""
        try:
            size = peer.recv_into(self._inbox)
        except BlockingIOError:
            return False
        except ConnectionResetError:
            return True  # reported once, before what the receiver sent first (a reply)
        except OSError:
            size = 0
        if not size:  # end of file: the receiver closed or died
            self.drop(peer)
            return False
        kind = self._inbox[:1]
        if kind == common.CREDIT:
            slot = int.from_bytes(self._inbox[1:5], "little")
            if 0 <= slot < self.slots and slot not in self.free:
                self.free.append(slot)
        elif kind == common.REPLY and size >= 2:
            self._take_reply_chunk(self._inbox[1], bytes(self._inbox[2:size]))
        return True

    def _take_reply_chunk(self, flags: int, data: bytes) -> None:
        # a reply larger than one packet comes in chunks: FIRST starts it, LAST ends it
        if flags & common.FIRST:
            self._partial = bytearray()
        if self._partial is None:
            return  # the rest of a reply whose start went to a replaced receiver
        self._partial += data
        if flags & common.LAST:
            self.replies.append(bytes(self._partial))
            self._partial = None
