"""The receiving half of NetGear: judge, answer, decode and shape each message."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import zmq

from .codecs import decode_frame
from .errors import PeerTimeoutError, WireFormatError
from .modes import DELIVER, DROP, FINISH, Mode
from .settings import Settings
from .stats import Stats
from .transport import Channel, Transport, translate_errors
from .wire import END, REPLY, Incoming, Outgoing, decode, encode

__all__ = ["Receiver"]

logger = logging.getLogger(__name__)

_SKIP = object()  # _deliver's "nothing to return" (None means end of stream)


def _stream_of(incoming: Incoming, default: str) -> str:
    return str(incoming.header.get("p", default))


class Receiver:
    """Turns incoming multipart messages into what ``recv()`` returns."""

    def __init__(self, settings: Settings, transport: Transport, modes: Sequence[Mode],
                 stats: Stats, closing: threading.Event, needs_reply: bool,
                 verbose: int) -> None:
        opts = settings.options
        self.settings = settings
        self.transport = transport
        self.channel = transport.channels[0]  # a receiver binds all its ports on one socket
        self.modes = modes
        self.stats = stats
        self.closing = closing
        self.needs_reply = needs_reply
        self.verbose = verbose
        self.copy: bool = opts["copy"]
        self.conflate: bool = opts["conflate"]
        silence, timeout = opts["subscriber_timeout"], opts["receive_timeout"]
        bounds = [t for t in (silence, timeout) if t is not None]
        self.silence: float | None = silence
        self.timeout: float | None = timeout
        self.wait: float | None = min(bounds) if bounds else None
        # stream -> (sender instance, seq) of the newest message, to drop repeats
        self.last_seen: dict[str, tuple[Any, int]] = {}
        self.pending: dict[str, Incoming] = {}  # conflate: newest undelivered frame per stream
        self.warned: set[str] = set()  # kinds of malformed message already logged

    def receive(self, return_data: Any) -> Any:
        channel = self.channel
        while True:
            if self.conflate:
                if self._drain(channel, return_data):
                    return None
                while self.pending:
                    result = self._deliver(self.pending.pop(next(iter(self.pending))))
                    if result is not _SKIP:
                        return result
            parts = self.transport.receive(channel, self.wait, self.copy, self.closing.is_set)
            if parts is None:
                if self.closing.is_set() or (self.silence is not None
                                             and self.wait == self.silence):
                    return None
                raise PeerTimeoutError(f"no message within receive_timeout={self.timeout:g}s")
            verdict, incoming = self._take(channel, parts, return_data)
            if verdict == FINISH:
                return None
            if verdict != DELIVER or incoming is None:
                continue
            if self.conflate:
                self.pending[_stream_of(incoming, self.settings.port)] = incoming
                continue
            result = self._deliver(incoming)
            if result is not _SKIP:
                return result

    def _take(self, channel: Channel, parts: list[Any],
              return_data: Any) -> tuple[str, Incoming | None]:
        """Parse, judge, and (where due) answer one received message."""
        incoming = self._parse(parts)
        verdict = self._judge(incoming)
        if self.needs_reply or (incoming is not None and incoming.kind == END
                                and self.settings.pattern == 0):
            # Reply before decoding the payload: the sender prepares its next frame
            # (e.g. JPEG-encodes it) while this side decodes the current one.
            self._reply(channel, incoming, return_data if verdict == DELIVER else None)
        if verdict == FINISH:
            logger.log(self.verbose, "end of stream")
        elif verdict == DELIVER and incoming is not None:
            self.stats.stream(_stream_of(incoming, self.settings.port)).record(
                incoming.seq, incoming.ts, memoryview(incoming.payload).nbytes)
        return verdict, incoming

    def _drain(self, channel: Channel, return_data: Any) -> bool:
        """Conflate: take every queued message, keeping the newest frame per stream.

        True when the stream ended meanwhile.
        """
        sock = channel.sock
        while sock is not None:
            with translate_errors("receive"):
                try:
                    parts = sock.recv_multipart(zmq.NOBLOCK, copy=self.copy)
                except zmq.Again:
                    return False
            verdict, incoming = self._take(channel, parts, return_data)
            if verdict == FINISH:
                self.pending.clear()
                return True
            if verdict == DELIVER and incoming is not None:
                stream = _stream_of(incoming, self.settings.port)
                if self.pending.pop(stream, None) is not None:
                    self.stats.conflated += 1
                self.pending[stream] = incoming  # to the back: streams take turns
        return False

    def _deliver(self, incoming: Incoming) -> Any:
        """Decode the payload and shape what recv() returns; _SKIP when it is malformed."""
        try:
            incoming.frame = decode_frame(incoming)
        except WireFormatError as exc:
            self._count_bad(exc)
            return _SKIP
        result: Any = incoming.frame
        for mode in self.modes:
            result = mode.shape_result(incoming, result)
        return result

    def _parse(self, parts: list[Any]) -> Incoming | None:
        try:
            return decode(parts)
        except WireFormatError as exc:
            self._count_bad(exc)
            return None

    def _count_bad(self, exc: WireFormatError) -> None:
        self.stats.bad_messages += 1
        # once per kind of defect: a peer spraying garbage must not flood the log
        kind = str(exc).split(" ", 2)[:2]
        key = " ".join(kind)
        if key not in self.warned and len(self.warned) < 64:
            self.warned.add(key)
            logger.warning("malformed message dropped (further ones of this kind are only "
                           "counted in stats['bad_messages']): %s", exc)

    def _judge(self, incoming: Incoming | None) -> str:
        """What to do with a message, from its header: DELIVER, DROP or FINISH."""
        if incoming is None or incoming.kind == REPLY:
            return DROP
        stream = _stream_of(incoming, self.settings.port)
        origin = incoming.header.get("i")
        last = self.last_seen.get(stream)
        if last is not None and last[0] == origin and incoming.seq <= last[1]:
            # A Lazy Pirate retry of a frame whose reply was only late, or a repeated
            # end-of-stream marker: answered again, delivered once.
            self.stats.duplicates += 1
            return DROP
        self.last_seen[stream] = (origin, incoming.seq)
        verdict = DELIVER
        if incoming.kind == END:
            self.stats.stream(stream).record_end(incoming.seq)
            verdict = FINISH
        for mode in self.modes:
            verdict = mode.on_recv(incoming, verdict)
        return verdict

    def _reply(self, channel: Channel, incoming: Incoming | None, data: Any) -> None:
        """Answer every request, even a malformed one, so the sender is never stuck."""
        seq = incoming.seq if incoming is not None else -1
        self.transport.reply(channel, encode(Outgoing(REPLY, seq, message=data)))
