"""The receiving half of NetGear: judge, answer, decode and shape each message."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from ..codecs import Decoder, new_decoder
from ..codecs.registry import check_accepted
from ..errors import DependencyError, FrameRefusedError, PeerTimeoutError, WireFormatError
from ..link import Channel, Link
from ..modes import DELIVER, DROP, FINISH, Mode
from .frameinfo import FrameInfo
from .settings import Settings
from .stats import Stats
from .wire import END, FRAME, KEYFRAME_REQUEST, NO_FRAME, REPLY, Incoming, Outgoing, decode, encode

__all__ = ["Receiver"]

logger = logging.getLogger(__name__)

REPLY_GRACE = 0.1  # seconds a closing replier waits after its last reply
MAX_SENDERS = 16  # sender instances remembered per stream, to tell their END from a forged one
_SKIP = object()  # _deliver's "nothing to return" (None means end of stream)


def _stream_of(incoming: Incoming) -> str:
    # The socket's port, never the header's claim: streams are bounded by the port list.
    return incoming.source


class Receiver:
    """Turns incoming multipart messages into what ``recv()`` returns."""

    def __init__(self, settings: Settings, transport: Link, modes: Sequence[Mode],
                 stats: Stats, closing: threading.Event, needs_reply: bool,
                 verbose: int, give_up: float | None = None) -> None:
        opts = settings.options
        self.settings = settings
        self.transport = transport
        self.channels = transport.channels  # one socket for all ports, or one per port
        self.modes = modes
        self.stats = stats
        self.closing = closing
        self.needs_reply = needs_reply
        self.verbose = verbose
        self.copy: bool = opts["copy"]
        self.conflate: bool = opts["conflate"]
        # give_up: vidgear's retry options on a receiver; a silence that long ends the stream
        silence = opts["subscriber_timeout"] if give_up is None else give_up
        timeout = opts["receive_timeout"]
        bounds = [t for t in (silence, timeout) if t is not None]
        self.silence: float | None = silence
        self.timeout: float | None = timeout
        self.wait: float | None = min(bounds) if bounds else None
        # stream -> (sender instance, seq) of the newest message, to drop repeats
        self.last_seen: dict[str, tuple[Any, int]] = {}
        # stream -> the sender instances that sent it frames (oldest first); only they may end it
        self.senders: dict[str, dict[Any, None]] = {}
        self.pending: dict[str, Incoming] = {}  # conflate: newest undelivered frame per stream
        self.warned: set[str] = set()  # kinds of malformed message already logged
        self.last_reply: tuple[Any, Any] | None = None  # ((stream, instance, seq), data)
        self.replied_at = 0.0
        self.ready = threading.Condition()  # conflate: guards pending/finished/failure
        self.finished = False
        self.failure: BaseException | None = None
        self.pump: threading.Thread | None = None
        # (stream, codec) -> its decoder, created at the stream's first frame of that codec
        # and closed by stop(); a codec's threads (JPEG bands) belong to its decoder
        self.decoders: dict[tuple[str, str], Decoder] = {}
        self.decoders_lock = threading.Lock()  # conflate: the reader and recv() may both ask
        self.max_decoded: int = opts["max_decoded_bytes"]
        codecs = opts["accepted_codecs"]
        self.codecs = None if codecs is None else frozenset(codecs)
        for mode in modes:
            mode.attach(self.forget)
        if self.conflate:
            self.pump = threading.Thread(target=self._run_pump, name="netgear-conflate",
                                         daemon=True)
            self.pump.start()

    def receive(self, return_data: Any, info: bool = False) -> Any:
        if self.conflate:
            return self._newest(info)
        while True:
            got = self.transport.receive_any(self.channels, self.wait, self.copy,
                                             self.closing.is_set)
            if got is None:
                return self._timed_out()
            channel, parts = got
            verdict, incoming = self._take(channel, parts, return_data)
            if verdict == FINISH:
                return None
            if verdict != DELIVER or incoming is None:
                continue
            result = self._deliver(incoming, info)
            if result is not _SKIP:
                return result

    def stop(self, grace: bool = True) -> None:
        """Join the conflate reader (``closing`` is already set); bounded by one poll slice.

        Right after a reply, wait a moment (at most REPLY_GRACE, skipped without ``grace``):
        a REQ socket discards a reply whose connection closes before its application has
        read it.
        """
        if self.pump is not None:
            self.pump.join(2.0)
        with self.decoders_lock:
            decoders, self.decoders = list(self.decoders.values()), {}
        for decoder in decoders:
            decoder.close()
        since = time.monotonic() - self.replied_at
        if grace and self.needs_reply and since < REPLY_GRACE:
            time.sleep(REPLY_GRACE - since)

    def forget(self, stream: str) -> None:
        """Drop what is kept for a stream that left, so servers coming and going for
        months do not grow it (its conflated frame, if any, is still delivered)."""
        self.last_seen.pop(stream, None)
        self.senders.pop(stream, None)
        with self.decoders_lock:
            gone = [key for key in self.decoders if key[0] == stream]
            decoders = [self.decoders.pop(key) for key in gone]
        for decoder in decoders:
            decoder.close()
        self.stats.forget(stream)

    def _timed_out(self) -> None:
        if self.closing.is_set() or (self.silence is not None and self.wait == self.silence):
            return None
        raise PeerTimeoutError(f"no message within receive_timeout={self.timeout:g}s")

    # -- conflate: a reader thread keeps the newest frame of each stream ------------------
    def _run_pump(self) -> None:
        """Take every message as it arrives, so no backlog ages in the queues upstream.

        Frames of stateless codecs stay undecoded here; only the one recv() hands out is
        decoded. A stateful codec's decoder must see every frame in order, so those are
        decoded here, as they arrive.
        """
        try:
            while not self.closing.is_set():
                got = self.transport.receive_any(self.channels, None, self.copy,
                                                 self.closing.is_set)
                if got is None:
                    continue
                verdict, incoming = self._take(*got, None)
                with self.ready:
                    if verdict == FINISH:
                        self.pending.clear()
                        self.finished = True
                    elif verdict == DELIVER and incoming is not None:
                        stream = _stream_of(incoming)
                        if not self._decode_now(incoming):
                            continue
                        if stream in self.pending:
                            self.stats.conflated += 1
                        # replacing keeps the stream's place in line: streams take turns
                        self.pending[stream] = incoming
                    else:
                        continue
                    self.ready.notify_all()
        except BaseException as exc:  # surfaced by the next recv()
            with self.ready:
                self.failure = exc
                self.ready.notify_all()

    def _newest(self, info: bool) -> Any:
        deadline = None if self.wait is None else time.monotonic() + self.wait
        while True:
            with self.ready:
                while not (self.pending or self.finished or self.failure
                           or self.closing.is_set()):
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return self._timed_out()
                    self.ready.wait(0.1 if left is None else min(left, 0.1))
                if self.failure is not None:
                    raise self.failure
                if self.finished:
                    self.finished = False
                    return None
                if not self.pending:
                    return None  # closing
                incoming = self.pending.pop(next(iter(self.pending)))
            result = self._deliver(incoming, info)  # decoded outside the lock
            if result is not _SKIP:
                return result

    def _take(self, channel: Channel, parts: list[Any],
              return_data: Any) -> tuple[str, Incoming | None]:
        """Parse, judge, and (where due) answer one received message."""
        incoming = self._parse(parts)
        refused = False
        if incoming is not None:
            incoming.source = channel.label
            for mode in self.modes:  # the hub names streams by the server's stream_name
                named = mode.name_stream(incoming, channel)
                refused = named is None
                if refused:
                    break  # still answered below, with its own sequence number
                incoming.source = named
        verdict = DROP if refused else self._judge(incoming)
        policy = self.settings.policy
        wants_keyframe = policy.two_way and self._wants_keyframe(incoming, verdict)
        if self.needs_reply or (incoming is not None and incoming.kind == END
                                and policy.acknowledges_end):
            # Reply before decoding the payload: the sender prepares its next frame
            # (e.g. JPEG-encodes it) while this side decodes the current one.
            self._reply(channel, incoming, self._reply_data(incoming, verdict, return_data),
                        wants_keyframe)
        elif wants_keyframe:
            # PAIR owes no reply per frame: a reply-shaped notice asks for the keyframe,
            # which the sender reads before its next frame
            self._reply(channel, incoming, None, keyframe=True)
        if verdict == FINISH:
            logger.log(self.verbose, "end of stream")
        elif verdict == DELIVER and incoming is not None and not refused:
            self.stats.stream(_stream_of(incoming)).record(
                incoming.seq, incoming.ts, memoryview(incoming.payload).nbytes)
        return verdict, incoming

    def _deliver(self, incoming: Incoming, info: bool = False) -> Any:
        """Decode the payload and shape what recv() returns; _SKIP when it is malformed."""
        data_only = incoming.header.get(NO_FRAME) is True
        if incoming.frame is None and not data_only and not self._decode(incoming):
            return _SKIP
        if info:  # recv(info=True): the same facts for every mode, no tuple shapes
            return FrameInfo(incoming.frame, _stream_of(incoming), incoming.seq,
                             float(incoming.ts), time.time(), incoming.message)
        result: Any = incoming.frame
        for mode in self.modes:
            result = mode.shape_result(incoming, result)
        return result

    def _decoder(self, incoming: Incoming) -> Decoder:
        check_accepted(incoming.codec, self.codecs)
        key = (_stream_of(incoming), incoming.codec)
        with self.decoders_lock:
            decoder = self.decoders.get(key)
            if decoder is None:
                decoder = self.decoders[key] = new_decoder(incoming.codec,
                                                           self.settings.options)
        return decoder

    def _decode(self, incoming: Incoming) -> bool:
        """Fill ``incoming.frame``; False (counted) when the payload is malformed/refused,
        or a video decoder has no reference picture for it yet (counted as skipped)."""
        try:
            frame = self._decoder(incoming).decode(incoming, self.max_decoded)
        except WireFormatError as exc:
            # its header was fine, so it was counted as a frame on arrival: take that back
            self.stats.stream(_stream_of(incoming)).discard(
                memoryview(incoming.payload).nbytes)
            self._count_bad(exc)
            return False
        if frame is None:
            self.stats.stream(_stream_of(incoming)).skip()
            return False
        incoming.frame = frame
        return True

    def _wants_keyframe(self, incoming: Incoming | None, verdict: str) -> bool:
        """True when this frame's stream decoder lacks the reference picture it needs."""
        if incoming is None or verdict != DELIVER or incoming.kind != FRAME:
            return False
        try:
            return self._decoder(incoming).needs_keyframe(incoming)
        except (WireFormatError, DependencyError):
            return False  # refused, unknown or not installed: decoding reports it, after
            # the reply went out (a REP socket that raised before replying would be stuck)

    def _decode_now(self, incoming: Incoming) -> bool:
        """Conflate's reader: decode a stateful codec's frame at once; False if it failed."""
        try:
            stateful = self._decoder(incoming).stateful
        except WireFormatError:
            return True  # refused or unknown: recv() reports it, as for any frame
        return not stateful or self._decode(incoming)

    def _parse(self, parts: list[Any]) -> Incoming | None:
        try:
            return decode(parts)
        except WireFormatError as exc:
            self._count_bad(exc)
            return None

    def _count_bad(self, exc: WireFormatError) -> None:
        if isinstance(exc, FrameRefusedError):  # well formed, but over a receiver limit
            self.stats.refused += 1
        else:
            self.stats.bad_messages += 1
        # once per kind of defect: a peer spraying garbage must not flood the log
        kind = str(exc).split(" ", 2)[:2]
        key = " ".join(kind)
        if key not in self.warned and len(self.warned) < 64:
            self.warned.add(key)
            if isinstance(exc, FrameRefusedError):
                logger.warning("frame refused (further ones of this kind are only counted "
                               "in stats['refused']): %s", exc)
                return
            logger.warning("malformed message dropped (further ones of this kind are only "
                           "counted in stats['bad_messages']): %s", exc)

    def _judge(self, incoming: Incoming | None) -> str:
        """What to do with a message, from its header: DELIVER, DROP or FINISH."""
        if incoming is None or incoming.kind == REPLY:
            return DROP
        stream = _stream_of(incoming)
        origin = incoming.header.get("i")
        last = self.last_seen.get(stream)
        if last is not None and last[0] == origin and incoming.seq <= last[1]:
            # A Lazy Pirate retry of a frame whose reply was only late, or a repeated
            # end-of-stream marker: answered again, delivered once.
            self.stats.duplicates += 1
            return DROP
        if not self._authentic(incoming, stream, origin):
            return DROP
        self.last_seen[stream] = (origin, incoming.seq)
        verdict = DELIVER
        if incoming.kind == END:
            self.stats.stream(stream).record_end(incoming.seq)
            verdict = FINISH
        for mode in self.modes:
            verdict = mode.on_recv(incoming, verdict)
        return verdict

    def _authentic(self, incoming: Incoming, stream: str, origin: Any) -> bool:
        """False (counted as forged) for a port tag naming another socket's port, or an END
        from a sender instance that never sent this stream a frame."""
        tag = incoming.header.get("p")
        owners = self.senders.setdefault(stream, {})
        if tag is not None and tag != stream:
            why = f"claims port {tag!r} but arrived on port {stream}"
        elif incoming.kind == END and owners and origin not in owners:
            why = f"ends port {stream}'s stream but its sender never sent it a frame"
        else:
            owners.pop(origin, None)
            if incoming.kind != END:
                owners[origin] = None  # newest last; an END retires its sender
                if len(owners) > MAX_SENDERS:
                    del owners[next(iter(owners))]
            return True
        self.stats.forged += 1
        if "forged" not in self.warned:
            self.warned.add("forged")
            logger.warning("forged message dropped (further ones are only counted in "
                           "stats['forged']): it %s", why)
        return False

    def _reply_data(self, incoming: Incoming | None, verdict: str, return_data: Any) -> Any:
        """The data for this reply; a retried frame gets the data its first copy got."""
        if incoming is None:
            return None
        key = (_stream_of(incoming), incoming.header.get("i"), incoming.seq)
        if verdict == DELIVER:
            self.last_reply = (key, return_data)
            return return_data
        if self.last_reply is not None and self.last_reply[0] == key:
            return self.last_reply[1]  # its reply was lost, the sender resent the frame
        return None

    def _reply(self, channel: Channel, incoming: Incoming | None, data: Any,
               keyframe: bool = False) -> None:
        """Answer every request, even a malformed one, so the sender is never stuck."""
        seq = incoming.seq if incoming is not None else -1
        out = Outgoing(REPLY, seq, message=data)
        if keyframe:
            out.extra[KEYFRAME_REQUEST] = True
        self.transport.reply(channel, encode(out))
        self.replied_at = time.monotonic()
