"""A PAIR receiver that lets a restarted sender in once the old one is gone.

libzmq's PAIR socket takes one peer. A second connection that completes its handshake
while the first is still attached is refused its pipe but kept open: when the first peer
then leaves (a SIGKILLed sender whose end of file libzmq only reads once the receiver has
drained its queue), the newcomer stays connected to nothing. Its frames fill the TCP
window and the stream stops for good, although both processes are alive.

:class:`PairWatch` follows the receiver's connections with ZeroMQ's socket monitor and
learns which one carries the frames (``zmq.SRCFD`` of each message). When that one
disconnects while another connection is open, the receiving socket is rebuilt: every
connection is dropped, and the live sender reconnects (RECONNECT_IVL) and is attached.
The decision is taken between wait slices, when nothing arrives; the frame path pays one
property read per message.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import struct
import termios
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zmq

if TYPE_CHECKING:
    from .channel import Channel

__all__ = ["PairWatch", "let_in_stranded", "watch_pair"]

logger = logging.getLogger(__name__)

EVENTS = zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_MONITOR_STOPPED
# libzmq keeps one monitor per socket: a secure receiver's CURVE handshake events come
# through this one too, passed on to whoever set ``relay`` (security/monitor.py)
RELAYED = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
           | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
POLL_MS = 100  # how soon the thread notices close()
JOIN_TIMEOUT = 1.0
GRACE = 1.0  # a connection with no peer attached and no message for this long is stranded
_serial = itertools.count()


class PairWatch:
    """The connections of one bound PAIR socket, and which of them is attached.

    A thread of its own reads the monitor at once: libzmq's I/O thread blocks on a full
    monitor pipe, so the events must never wait for the application to call recv().
    """

    def __init__(self, sock: zmq.Socket) -> None:
        # a unique address: a rebuilt socket's monitor must not meet the old one's
        address = f"inproc://netgear-pairwatch-{id(self):x}-{next(_serial)}"
        self._monitor = sock.get_monitor_socket(EVENTS | RELAYED, addr=address)
        # set before the socket binds (by a later socket hook), read by the watch's thread
        self.relay: Callable[[int, bytes], None] | None = None
        self._lock = threading.Lock()
        self.live: dict[int, float] = {}  # open connections: fd -> when accepted
        self.attached: int | None = None  # the connection the last message came through
        self.last_message = time.monotonic()
        self.orphaned = False
        self._stuck: dict[int, tuple[int, float]] = {}  # fd -> (bytes unread, growing since)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="netgear-pair-watch",
                                        daemon=True)
        self._thread.start()

    def saw(self, parts: list[Any]) -> None:
        """A message arrived: its connection is the attached one."""
        self.last_message = time.monotonic()
        # which connection: only asked while it may have changed (a property read costs
        # more than the rest of this call)
        if self.attached is None or len(self.live) > 1:
            frame = parts[0]
            if isinstance(frame, zmq.Frame):
                with contextlib.suppress(zmq.ZMQError):
                    self.attached = frame.get(zmq.SRCFD)

    def stranded(self) -> bool:
        """True when a connection waits that libzmq will never attach.

        That is: the attached peer left while another connection was open, or (libzmq
        reports the departure before it has let go of the old pipe, so a newcomer can be
        refused just after it) nothing arrived for GRACE, no connection is attached, and
        one has had bytes unread in the kernel, never fewer, for GRACE.
        """
        now = time.monotonic()
        with self._lock:
            # only this (the application's) thread touches _stuck: forget closed ones here
            for fd in [fd for fd in self._stuck if fd not in self.live]:
                del self._stuck[fd]
            if not self.live:
                self.orphaned = False  # the waiting one left too: nothing to let in
                return False
            if self.orphaned:
                return True
            if self.attached is not None or now - self.last_message < GRACE:
                return False
            live = [fd for fd, since in self.live.items() if now - since >= GRACE]
        # A refused connection is not read: what its sender sends piles up in the kernel,
        # never less from one check to the next. An attached one is read as its bytes
        # arrive (a first frame crawling over a slow link included), so its queue empties.
        for fd in live:
            queued = _queued(fd)
            last = self._stuck.get(fd)
            if not queued or last is None or queued < last[0]:
                self._stuck[fd] = (queued, now)  # read meanwhile: start over
                continue
            self._stuck[fd] = (queued, last[1])
            if now - last[1] >= GRACE:
                return True
        return False

    def _note(self, kind: int, fd: int) -> None:
        with self._lock:
            if kind == zmq.EVENT_ACCEPTED:
                self.live[fd] = time.monotonic()
            elif kind == zmq.EVENT_DISCONNECTED:
                self.live.pop(fd, None)
                if fd == self.attached:
                    self.attached = None
                    self.orphaned = bool(self.live)

    def _run(self) -> None:
        monitor = self._monitor
        try:
            while not self._stop.is_set():
                if not monitor.poll(POLL_MS):
                    continue
                while True:
                    try:
                        parts = monitor.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    kind, fd = _event(parts)
                    if kind == zmq.EVENT_MONITOR_STOPPED:  # the watched socket closed
                        return
                    if kind & RELAYED:
                        relay = self.relay
                        if relay is not None and len(parts) > 1:
                            relay(kind, parts[1])
                        continue
                    self._note(kind, fd)
        except zmq.ZMQError as exc:  # pragma: no cover - context torn down under us
            logger.debug("PAIR watch stopped: %s", exc)
        finally:
            monitor.close(linger=0)

    def close(self) -> None:
        """Stop the thread (after the watched socket closed: its last event is read
        first). Idempotent, bounded by one poll slice."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(JOIN_TIMEOUT)


def _queued(fd: int) -> int:
    """Bytes waiting in the kernel on the connection ``fd`` (libzmq's; only looked at)."""
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0


def _event(parts: list[bytes]) -> tuple[int, int]:
    # ZeroMQ's monitor message: 16-bit event, 32-bit value (the fd here), then the endpoint
    head = parts[0]
    return int.from_bytes(head[:2], "little"), int.from_bytes(head[2:6], "little")


def watch_pair(sock: zmq.Socket, channel: Channel) -> None:
    """Socket hook of a bound PAIR receiver: give the channel a watch for each socket."""
    channel.watch = PairWatch(sock)


def let_in_stranded(channel: Channel, before: Callable[[], None] | None = None) -> bool:
    """Rebuild ``channel``'s socket if its peer left while a newer sender waits unattached;
    True if it did. ``before`` runs first (an asyncio loop lets go of the old descriptor)."""
    watch = channel.watch
    if watch is None or not watch.stranded():
        return False
    if before is not None:
        before()
    logger.info("port %s: the sender left while another waited; reopening the socket so "
                "that it is let in", channel.label)
    channel.rebuild()
    return True
