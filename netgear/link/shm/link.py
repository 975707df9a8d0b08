"""The shm link: NetGear over shared memory on one host (``protocol="shm"``).

One :class:`~netgear.link.shm.channel.ShmChannel` per named stream. A sender owns each
stream's ring (:class:`netgear.shm.ShmSender`, created at construction, so receivers
started later attach to it); a receiver attaches to it (:class:`netgear.shm.ShmReceiver`)
and keeps looking for it until it appears. The pattern picks the ring's delivery:
fan-out for PUB/SUB, lossless (credits, one receiver) otherwise. Replies (REQ/REP,
bidirectional mode, PAIR's end-of-stream acknowledgement) travel back over the stream's
wake-up socket.

Every wait is a blocking ``poll`` cut into slices of at most SLICE seconds, so ``stop()``
(a ``close()`` from another thread) is noticed within one slice.
"""

from __future__ import annotations

import logging
import math
import select
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import PayloadError, PeerTimeoutError, TransportError, UsageError, WireFormatError
from ...shm import ShmReceiver, ShmSender
from ..base import Stop, never
from .channel import Layout, ShmChannel, layout, read_parts, reply_bytes, reply_parts
from .names import stream_name

if TYPE_CHECKING:
    from ...core.settings import Settings

__all__ = ["ShmLink"]

logger = logging.getLogger(__name__)

SLICE = 0.1  # longest single wait: close() from another thread is seen this fast
ATTACH_EVERY = 0.05  # a receiver whose sender has not appeared yet looks again this often
REPLY_WAIT = 0.5  # a reply that does not fit the socket buffer at once waits this long
LOSSLESS_SLOTS, FANOUT_SLOTS = 4, 8
SENT, BUSY, MISSED = "sent", "busy", "missed"


class ShmLink:
    """Send, request, receive and reply over the shm streams of one NetGear instance."""

    def __init__(self, settings: Settings, split: bool) -> None:
        # every stream has its own ring and socket, so channels are always split
        opts = settings.options
        self.policy = settings.policy
        self.receive_mode = settings.receive_mode
        self.channels = [ShmChannel(label, stream_name(settings.address, label))
                         for label in settings.ports]
        self._slots: int = opts["shm_slots"] or (
            FANOUT_SLOTS if self.policy.fans_out else LOSSLESS_SLOTS)
        self._slot_bytes: int = opts["shm_slot_bytes"]
        self._group = opts["shm_group"]
        # a conflating reader holds frames past the next receive: it gets owned copies
        self._copy = bool(opts["copy"] or opts["conflate"])
        self._conflate = bool(opts["conflate"])
        self._turn = 0
        self._at_close: list[Callable[[], None]] = []
        self.closed = False

    def at_close(self, action: Callable[[], None]) -> None:
        self._at_close.append(action)

    def open(self) -> None:
        fanout = self.policy.fans_out
        try:
            for ch in self.channels:
                if self.receive_mode:
                    ch.rx = ShmReceiver(ch.name, fanout=fanout, conflate=self._conflate,
                                        copy=self._copy)
                    ch.rx.attach()  # a sender already there can send at once
                else:
                    ch.tx = ShmSender(ch.name, fanout=fanout, slots=self._slots,
                                      slot_bytes=self._slot_bytes, group=self._group)
        except BaseException:
            self.close()
            raise

    # -- sending ------------------------------------------------------------------------
    def _tx(self, channel: ShmChannel) -> ShmSender:
        if channel.tx is None or self.closed:
            raise TransportError(f"shm stream {channel.name!r} is closed")
        return channel.tx

    def _publish(self, channel: ShmChannel, plan: Layout, timeout: float, stop: Stop) -> str:
        """Copy ``plan`` into a slot and announce it: SENT, BUSY (fan-out, every slot
        pinned) or MISSED (no receiver, or no free slot, within ``timeout``, or stopped)."""
        tx = self._tx(channel)
        deadline = time.monotonic() + timeout
        slot = -1
        if channel.loan is not None:
            slot, address, loaned = channel.loan
            channel.loan = None
            if plan.payload_at(address, loaned):  # the loaned frame: no copy
                plan.write(tx.slot_buffer(slot), skip_payload=True)
                left = max(0.0, deadline - time.monotonic())
                return SENT if tx.commit(slot, "|u1", [plan.total], plan.header,
                                         left) else MISSED
            tx.unreserve(slot)  # something else was sent: the loan lapses
            slot = -1
        if plan.total:
            while True:
                left = deadline - time.monotonic()
                slot = tx.reserve(max(0.0, min(SLICE, left)))
                if slot >= 0:
                    break
                if tx.fanout:
                    tx.busy_drops += 1
                    return BUSY
                if left <= 0 or stop():
                    return MISSED
            plan.write(tx.slot_buffer(slot))
        left = max(0.0, deadline - time.monotonic())
        return SENT if tx.commit(slot, "|u1", [plan.total], plan.header, left) else MISSED

    def send(self, channel: ShmChannel, parts: list[Any], *, copy: bool, track: bool,
             timeout: float, retries: int, drop_if_busy: bool, stop: Stop = never) -> bool:
        """Copy the message into the ring (the caller may reuse its buffers at once)."""
        plan = layout(parts, self._tx(channel).slot_bytes)
        for attempt in range(retries + 1):
            result = self._publish(channel, plan, 0.0 if drop_if_busy else timeout, stop)
            if result == SENT:
                return True
            if result == BUSY or drop_if_busy or stop():
                return False
            logger.warning("%s: no receiver took frames within %.2fs (attempt %d of %d)",
                           channel.name, timeout, attempt + 1, retries + 1)
        raise PeerTimeoutError(
            f"shm stream {channel.name!r}: no receiver took the message within {timeout:g}s "
            f"after {retries} retries")

    def post(self, channel: ShmChannel, parts: list[Any], *, copy: bool, timeout: float,
             retries: int, stop: Stop = never) -> bool:
        """Send a request whose reply a later ``request(sent=True)`` collects."""
        return self.send(channel, parts, copy=copy, track=False, timeout=timeout,
                         retries=retries, drop_if_busy=False, stop=stop)

    def request(self, channel: ShmChannel, parts: list[Any], *, copy: bool, timeout: float,
                retries: int, accept: Callable[[list[Any]], bool], stop: Stop = never,
                final: bool = False, sent: bool = False) -> list[Any] | None:
        """Send and wait for the reply ``accept`` recognises; a retry sends again (the
        receiver answers a repeated frame without delivering it twice)."""
        plan = layout(parts, self._tx(channel).slot_bytes)
        tx = self._tx(channel)
        for attempt in range(retries + 1):
            deadline = time.monotonic() + timeout
            if (sent and attempt == 0) or self._publish(channel, plan, timeout, stop) == SENT:
                while (left := deadline - time.monotonic()) > 0:
                    data = tx.wait_reply(min(SLICE, left))
                    if data is None:
                        if stop():
                            return None
                        continue
                    try:
                        reply = reply_parts(data)
                    except WireFormatError as exc:
                        logger.warning("%s: malformed reply dropped: %s", channel.name, exc)
                        continue
                    if accept(reply):
                        return reply
            if stop():
                return None
            (logger.debug if final else logger.warning)(
                "%s: no reply within %.2fs (attempt %d of %d)",
                channel.name, timeout, attempt + 1, retries + 1)
        raise PeerTimeoutError(f"shm stream {channel.name!r}: no reply within {timeout:g}s "
                               f"after {retries} retries")

    def loan(self, shape: Any, dtype: Any, timeout: float) -> np.ndarray:
        """A writable array in a free slot of the stream; ``send()`` it to skip the copy.

        The slot stays reserved until the next send(); sending another array returns it.
        """
        if self.receive_mode or len(self.channels) != 1:
            raise UsageError("loan() is for a shm sender of one stream")
        channel = self.channels[0]
        tx = self._tx(channel)
        if channel.loan is not None:
            tx.unreserve(channel.loan[0])
            channel.loan = None
        kind = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)
        dims = (shape,) if isinstance(shape, int) else tuple(shape)
        # math.prod, not np.prod: numpy's reduction costs ~100 us on a frame's first call
        # after an idle 33 ms (cold caches), and this is on every loaned frame's path
        count = math.prod(dims)
        if count * kind.itemsize > tx.slot_bytes:
            raise PayloadError(
                f"a loan of {count * kind.itemsize} bytes does not fit shm_slot_bytes="
                f"{tx.slot_bytes}; create the sender with a larger shm_slot_bytes")
        slot = tx.reserve(timeout)
        if slot < 0:
            raise PeerTimeoutError(f"shm stream {channel.name!r}: no free slot within "
                                   f"{timeout:g}s (lossless: is a receiver attached?)")
        frame = np.frombuffer(tx.slot_buffer(slot), kind, count).reshape(dims)
        channel.loan = (slot, tx.slot_address(slot), frame)
        return frame

    def ready(self, channel: ShmChannel) -> bool:
        """A receiver is attached and a slot is free (or a request of ours is in flight)."""
        return channel.tx is not None and (channel.in_flight > 0 or channel.tx.ready())

    def end(self, channel: ShmChannel, parts: list[Any], timeout: float) -> None:
        """End-of-stream nobody acknowledges: every subscriber gets it (PUB/SUB), or the
        receiver does if it is there within ``timeout`` (REQ/REP)."""
        tx = channel.tx
        if tx is None or self.closed:
            return
        plan = layout(parts, tx.slot_bytes)
        if self.policy.fans_out and not plan.total:
            tx.announce(plan.header, timeout)
            return
        if self._publish(channel, plan, timeout, never) != SENT:
            logger.debug("%s: no receiver for the end-of-stream", channel.name)

    # -- receiving ----------------------------------------------------------------------
    def receive_any(self, channels: Sequence[ShmChannel], timeout: float | None, copy: bool,
                    stop: Stop) -> tuple[ShmChannel, list[Any]] | None:
        """The next message on any of ``channels``. What the previous call returned is
        given back to its sender first: a received frame is valid until the next call."""
        for ch in self.channels:
            if ch.rx is not None:
                ch.rx.release()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.closed:
                return None
            order = list(channels[self._turn:]) + list(channels[:self._turn])
            single = len(order) == 1
            for index, ch in enumerate(order):
                rx = ch.rx
                if rx is None:
                    continue
                wait = 0.0
                if single:  # one stream: wait inside the engine, one poll per message
                    left = SLICE if deadline is None else deadline - time.monotonic()
                    wait = max(0.0, min(SLICE, left))
                got = rx.receive(wait)
                if got is None:
                    continue
                self._turn = (self._turn + index + 1) % len(channels)
                header, frame = got
                try:
                    return ch, read_parts(header, frame)
                except WireFormatError as exc:
                    logger.warning("%s: malformed notification dropped: %s", ch.name, exc)
                    rx.release()
            if stop() or (deadline is not None and time.monotonic() >= deadline):
                return None
            if not single:
                self._wait_any(channels, deadline)

    def _wait_any(self, channels: Sequence[ShmChannel], deadline: float | None) -> None:
        fds = [ch.rx.fileno() for ch in channels if ch.rx is not None]
        wait = SLICE if all(fd >= 0 for fd in fds) else ATTACH_EVERY
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
        if wait <= 0:
            return
        poller = select.poll()
        for fd in fds:
            if fd >= 0:
                poller.register(fd, select.POLLIN)
        poller.poll(max(1, int(wait * 1000)))

    def reply(self, channel: ShmChannel, parts: list[Any]) -> None:
        """Answer the last request; dropped (its sender retries) if it cannot be queued."""
        if channel.rx is not None and not channel.rx.reply(reply_bytes(parts), REPLY_WAIT):
            logger.debug("%s: reply dropped, no sender to take it", channel.name)

    # -- lifecycle ----------------------------------------------------------------------
    def finish(self, replying: bool) -> None:
        """Nothing lingers: whatever was sent is already in the receiver's socket buffer or
        the segment, both of which outlive this side's close()."""
        self.close()

    def close(self, linger_ms: int = 0) -> None:
        if self.closed:
            return
        self.closed = True
        for ch in self.channels:
            for end in (ch.tx, ch.rx):
                if end is not None:
                    try:
                        end.close()
                    except Exception:
                        logger.exception("closing shm stream %r failed", ch.name)
        for action in self._at_close:
            try:
                action()
            except Exception:
                logger.exception("closing %r failed", action)
