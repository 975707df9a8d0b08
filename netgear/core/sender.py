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
from .wire import END, FRAME, KEYFRAME_REQUEST, REPLY, Incoming, Outgoing, decode, encode

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
        self.last_seq = -1
        # stateful codecs: a keyframe was asked for before frame `keyframe_from`, so a
        # receiver's request about an earlier frame is already being answered
        self.keyframe_from = 0
        # Lazy Pirate rebuilds and PUB/SUB subscriptions seen: a new peer may be listening
        self.peer_events = 0
        # a mode's codec keeps state between frames (video): keyframes matter
        self.stateful = any(mode.keyframes for mode in modes)
        # PAIR owes no reply per frame, so its receiver asks for keyframes unasked
        self.reads_notices = self.stateful and not needs_reply and settings.policy.two_way

    def send(self, frame: np.ndarray | None, message: Any) -> Any:
        if self.stateful:
            self._check_peers()
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
                self._count_drop()
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
            self._count_drop()
        return None

    def _send_windowed(self, channel: Channel, parts: list[Any], seq: int) -> Any:
        """Collect the reply still due on ``channel``, then send without waiting for this one.

        Returns what the collected reply carried (the previous frame's return data), or None
        when nothing was due.
        """
        # copied first, so the copy overlaps the receiver's work on the frame still out
        owned = self.inflight.keep(parts)
        result = None
        self._resend_stale(channel)
        for _ in range(len(self.transport.channels) + 1):
            earlier = self.inflight.due(channel)
            if earlier is None:
                break
            answered, data = self._settle(earlier, self.timeout, self.retries)
            if answered:
                result = self._shaped(earlier.channel, data)
                self._resend_stale(earlier.channel)
                break
            channel = self._pick_channel()  # that peer failed; another may take this frame
            self._resend_stale(channel)
        try:
            posted = self.transport.post(channel, owned, copy=False, timeout=self.timeout,
                                         retries=self.retries, stop=self.closing.is_set)
        except PeerTimeoutError:
            if not any(mode.peer_failed(channel) for mode in self.modes):
                raise
            self._count_drop()
            return result
        if not posted:
            raise ClosedError("closed while sending")
        self.inflight.add(channel, owned, seq)
        return result

    def _resend_stale(self, channel: Channel) -> None:
        """send_window > 1: frames a rebuilt socket dropped go again, in order, first."""
        stale = self.inflight.stale(channel)
        for index, pending in enumerate(stale):
            try:
                posted = self.transport.post(channel, pending.parts, copy=False,
                                             timeout=self.timeout, retries=self.retries,
                                             stop=self.closing.is_set)
            except PeerTimeoutError:
                if not any(mode.peer_failed(channel) for mode in self.modes):
                    raise
                for lost in stale[index:]:  # a mode with other peers takes the loss
                    self.inflight.done(lost, answered=False)
                    self.stats.send_dropped += 1
                return
            if not posted:
                raise ClosedError("closed while sending")
            pending.generation = channel.rebuilds

    def _settle(self, pending: Pending, timeout: float, retries: int,
                final: bool = False) -> tuple[bool, Any]:
        """Wait for the reply to ``pending`` (resending it on a rebuilt socket if need be).

        (True, reply data) once answered; (False, None) when it was given up on and dropped
        (at close, or a mode with other peers took the loss). Otherwise raises.
        """
        try:
            # sent=False when its socket was rebuilt since: request() sends it again
            data = self._exchange(pending.channel, pending.parts, pending.seq, timeout,
                                  retries, stop=never if final else None, final=final,
                                  sent=pending.generation == pending.channel.rebuilds)
        except PeerTimeoutError as exc:
            self.inflight.done(pending, answered=False)
            if final or any(mode.peer_failed(pending.channel) for mode in self.modes):
                self._count_drop()
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
            while due is not None and self._settle(due, min(self.timeout, END_TIMEOUT), 0,
                                                   final=True)[0]:
                due = self.inflight.oldest(channel)  # send_window > 1: the next one
            if due is not None:
                # the socket still waits for that reply: no end-of-stream can follow on it
                logger.debug("port %s: last frame not acknowledged", channel.label)
                for rest in list(self.inflight):
                    if rest.channel is channel:  # given up with it, and counted
                        self.inflight.done(rest, answered=False)
                        self.stats.send_dropped += 1
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

    def request_keyframe(self) -> None:
        """Make the next frame decodable on its own (modes with a stateful codec)."""
        self.keyframe_from = self.last_seq + 1
        self.stats.keyframe_requests += 1
        for mode in self.modes:
            mode.request_keyframe()

    def _count_drop(self) -> None:
        self.stats.send_dropped += 1
        if self.stateful:
            self.request_keyframe()  # the next frame would build on one nobody received

    def _check_peers(self) -> None:
        """Ask for a keyframe when a peer may be new (a rebuilt socket, a subscriber that
        joined) or a PAIR receiver asked for one."""
        channels = self.transport.channels
        events = sum(c.rebuilds + c.joins for c in channels)
        if events != self.peer_events:
            self.peer_events = events
            self.request_keyframe()
        if not self.reads_notices:
            return
        for channel in channels:
            for parts in self.transport.notices(channel):
                try:
                    notice = decode(parts)
                except WireFormatError:
                    continue  # not ours: nothing to do for it
                if notice.kind == REPLY and notice.header.get(KEYFRAME_REQUEST) is True:
                    self._keyframe_asked(notice.seq)

    def _keyframe_asked(self, seq: int) -> None:
        """A receiver could not show frame ``seq`` for want of a reference picture."""
        if self.stateful and seq >= self.keyframe_from:
            self.request_keyframe()

    def _explain(self, channel: Channel, exc: PeerTimeoutError) -> None:
        for mode in self.modes:  # e.g. secure mode names a failed CURVE handshake
            mode.explain_timeout(channel, exc)

    def _outgoing(self, kind: int, frame: np.ndarray | None = None,
                  message: Any = None) -> Outgoing:
        out = Outgoing(kind, next(self.seq), frame, message)
        self.last_seq = out.seq
        out.extra["i"] = self.instance
        return out

    def _check_size(self, channel: Channel, size: int) -> None:
        limit = self.settings.options["max_frame_bytes"]
        if size > limit:
            raise PayloadError(f"frame payload of {size} bytes exceeds max_frame_bytes={limit}; "
                               "raise it on both ends, or compress")
        if size:  # a data-only message says nothing about the frames' size
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
        if found[0].header.get(KEYFRAME_REQUEST) is True:
            self._keyframe_asked(seq)
        return found[0].message

