"""The sending half of NetGear: sequence numbers, mode hooks, replies, end of stream."""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np

from ..errors import ClosedError, PayloadError, PeerTimeoutError, WireFormatError
from ..link import NOBLOCK, Channel, Link, never
from ..modes import Mode
from .inflight import InFlight, Pending
from .settings import Settings
from .stats import Stats
from .wire import END, FRAME, REPLY, Incoming, Outgoing, decode, encode

__all__ = ["END_TIMEOUT", "Sender"]

logger = logging.getLogger(__name__)

END_TIMEOUT = 1.0  # longest wait for the end-of-stream acknowledgement in close()
LEND_BYTES = 384 * 1024  # PAIR frames this large go zero-copy; send() waits for libzmq


class Sender:
    """Encodes frames, hands them to the transport, and waits for replies where due."""

    def __init__(self, settings: Settings, transport: Link, modes: Sequence[Mode],
                 stats: Stats, closing: threading.Event, needs_reply: bool,
                 returns_data: bool) -> None:
        opts = settings.options
        self.settings = settings
        self.transport = transport
        self.modes = modes
        self.stats = stats
        self.closing = closing
        self.needs_reply = needs_reply
        self.returns_data = returns_data
        self.timeout: float = opts["request_timeout"]
        self.retries: int = opts["max_retries"]
        self.copy: bool = opts["copy"]
        self.track: bool = opts["track"]
        self.noblock = opts["flag"] == NOBLOCK
        # PAIR lends large frames to libzmq instead of copying them (see send()); PUB/SUB
        # copies, so one slow subscriber's queue never holds up send(). Not over inproc:
        # there the receiver's frame is the sender's buffer, released only when the
        # receiving application drops it.
        self.lends = not (self.copy or self.noblock or settings.policy.fans_out
                          or settings.protocol == "inproc")
        self.seq = itertools.count()
        self.instance = secrets.randbits(31)  # lets receivers tell a retry from a restart
        self.rotation = itertools.cycle(transport.channels)
        self.inflight = InFlight(opts["send_window"])

    def send(self, frame: np.ndarray, message: Any) -> Any:
        out = self._outgoing(FRAME, frame, message)
        for mode in self.modes:
            mode.on_send(out)
        parts = encode(out)
        channel = self._pick_channel()
        size = memoryview(parts[1]).nbytes
        self._check_size(channel, size)
        if self.needs_reply and self.inflight.window:
            try:
                return self._send_windowed(channel, parts, out.seq)
            except PeerTimeoutError as exc:
                self._explain(channel, exc)
                raise
        if self.needs_reply:
            try:
                data = self._exchange(channel, parts, out.seq, self.timeout, self.retries)
            except PeerTimeoutError as exc:
                self._explain(channel, exc)
                # a mode with other peers to fall back on may drop this frame instead
                if not any(mode.peer_failed(channel) for mode in self.modes):
                    raise
                self.stats.send_dropped += 1
                return None
            self.stats.sent += 1
            if not self.returns_data:
                return None
            for mode in self.modes:
                data = mode.shape_send_result(channel, data)
            return data
        # Fire-and-forget: the caller may overwrite its frame once send() returns, so
        # libzmq gets either a copy or the frame itself, tracked until libzmq has written
        # it into the kernel (track=True, and PAIR frames of LEND_BYTES or more). Measured
        # at 1080p on 2 cores: the 6 MB copy and its page faults cost the sender more CPU
        # than waiting does (docs/performance.md, PAIR); small frames copy faster.
        track = (self.track and not self.copy) or (self.lends and size >= LEND_BYTES)
        try:
            sent = self.transport.send(
                channel, parts, copy=not track, track=track,
                timeout=self.timeout, retries=self.retries, drop_if_busy=self.noblock,
                stop=self.closing.is_set,
            )
        except PeerTimeoutError as exc:
            self._explain(channel, exc)
            raise
        if sent:
            self.stats.sent += 1
        else:
            self.stats.send_dropped += 1
        return None

    def _send_windowed(self, channel: Channel, parts: list[Any], seq: int) -> Any:
        """Collect the reply still due on ``channel``, then send without waiting for this one.

        Returns what the collected reply carried (the previous frame's return data), or None
        when nothing was due.
        """
        # copied first, so the copy overlaps the receiver's work on the frame still out
        owned = self.inflight.keep(parts)
        result = None
        for _ in range(len(self.transport.channels) + 1):
            earlier = self.inflight.due(channel)
            if earlier is None:
                break
            answered, data = self._settle(earlier, self.timeout, self.retries)
            if answered:
                result = self._shaped(earlier.channel, data)
                break
            channel = self._pick_channel()  # that peer failed; another may take this frame
        try:
            posted = self.transport.post(channel, owned, copy=False, timeout=self.timeout,
                                         retries=self.retries, stop=self.closing.is_set)
        except PeerTimeoutError:
            if not any(mode.peer_failed(channel) for mode in self.modes):
                raise
            self.stats.send_dropped += 1
            return result
        if not posted:
            raise ClosedError("closed while sending")
        self.inflight.add(channel, owned, seq)
        return result

    def _settle(self, pending: Pending, timeout: float, retries: int,
                final: bool = False) -> tuple[bool, Any]:
        """Wait for the reply to ``pending`` (resending it on a rebuilt socket if need be).

        (True, reply data) once answered; (False, None) when it was given up on and dropped
        (at close, or a mode with other peers took the loss). Otherwise raises.
        """
        try:
            data = self._exchange(pending.channel, pending.parts, pending.seq, timeout,
                                  retries, stop=never if final else None, final=final,
                                  sent=True)
        except PeerTimeoutError as exc:
            self.inflight.done(pending, answered=False)
            if final or any(mode.peer_failed(pending.channel) for mode in self.modes):
                self.stats.send_dropped += 1
                return False, None
            raise PeerTimeoutError(f"{exc}, for the previous frame (send_window=1 collects "
                                   "each reply at the next send(); this frame was not "
                                   "sent)") from exc
        self.inflight.done(pending, answered=True)
        self.stats.sent += 1
        return True, data

    def _shaped(self, channel: Channel, data: Any) -> Any:
        if not self.returns_data:
            return None
        for mode in self.modes:
            data = mode.shape_send_result(channel, data)
        return data

    def end(self) -> None:
        """Tell every peer the stream is over, bounded by END_TIMEOUT per channel.

        A reply still due is collected first, so every frame send() returned for is
        acknowledged (or given up on) before the end-of-stream goes out.
        """
        for channel in self.transport.channels:
            due = self.inflight.oldest(channel)
            if due is not None and not self._settle(due, min(self.timeout, END_TIMEOUT), 0,
                                                    final=True)[0]:
                # the socket still waits for that reply: no end-of-stream can follow on it
                logger.debug("port %s: last frame not acknowledged", channel.label)
                continue
            out = self._outgoing(END)
            for mode in self.modes:
                mode.on_end(out)
            parts = encode(out)
            policy = self.settings.policy
            if policy.replies or policy.fans_out:
                # REQ/REP: every frame has its reply already (collected above, or by
                # lockstep), so END needs none: it is queued and flushed by close()'s linger.
                # One thread that calls send() then recv() can thus close the server, then
                # the client, without a wait; the REP socket drops its answer to a peer that
                # has left. PUB/SUB: no way back; the link publishes it reliably.
                self.transport.end(channel, parts, END_TIMEOUT)
            elif self.needs_reply or policy.acknowledges_end:
                # A PAIR receiver acknowledges END too: closing before it has read everything
                # can strand the last frames in libzmq (its reader stops on a full queue and
                # then tears down on the disconnect without draining).
                try:
                    # not interruptible by `closing`: close() itself is waiting here
                    self._exchange(channel, parts, out.seq, min(self.timeout, END_TIMEOUT), 0,
                                   stop=never, final=True)
                except (PeerTimeoutError, ClosedError):
                    logger.debug("port %s: end-of-stream not acknowledged", channel.label)

    def _explain(self, channel: Channel, exc: PeerTimeoutError) -> None:
        for mode in self.modes:  # e.g. secure mode names a failed CURVE handshake
            mode.explain_timeout(channel, exc)

    def _outgoing(self, kind: int, frame: np.ndarray | None = None,
                  message: Any = None) -> Outgoing:
        out = Outgoing(kind, next(self.seq), frame, message)
        out.extra["i"] = self.instance
        return out

    def _check_size(self, channel: Channel, size: int) -> None:
        limit = self.settings.options["max_frame_bytes"]
        if size > limit:
            raise PayloadError(f"frame payload of {size} bytes exceeds max_frame_bytes={limit}; "
                               "raise it on both ends, or compress")
        channel.fit_queue(size, self.settings.options["queue_bytes"])

    def _pick_channel(self) -> Channel:
        channels = self.transport.channels
        for mode in self.modes:
            chosen = mode.pick_channel(channels)
            if chosen is not None:
                return chosen
        return channels[0] if len(channels) == 1 else next(self.rotation)

    def _exchange(self, channel: Channel, parts: list[Any], seq: int, timeout: float,
                  retries: int, stop: Callable[[], bool] | None = None,
                  final: bool = False, sent: bool = False) -> Any:
        """Send and wait for the reply to ``seq``; return the reply's message."""
        found: list[Incoming] = []

        def accept(reply: list[Any]) -> bool:
            try:
                incoming = decode(reply)
            except WireFormatError as exc:
                logger.warning("port %s: malformed reply dropped: %s", channel.label, exc)
                return False
            if incoming.kind == REPLY and incoming.seq == seq:
                found.append(incoming)
                return True
            return False

        # Zero-copy is safe here: the reply proves the receiver has the whole frame, so
        # libzmq is done with the caller's buffer by the time send() returns.
        reply = self.transport.request(channel, parts, copy=self.copy, timeout=timeout,
                                       retries=retries, accept=accept,
                                       stop=stop or self.closing.is_set, final=final,
                                       sent=sent)
        if reply is None:
            raise ClosedError("closed while waiting for a reply")
        return found[0].message

