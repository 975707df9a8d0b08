"""The NetGear class: validates, then composes settings, modes, wire codec and transport."""

from __future__ import annotations

import contextlib
import copy as _copy
import itertools
import logging
import secrets
import threading
import time
from typing import Any, Callable

import numpy as np
import zmq

from .codecs import decode_frame
from .errors import (
    ClosedError,
    OptionError,
    PayloadError,
    PeerTimeoutError,
    UsageError,
    WireFormatError,
)
from .modes import DELIVER, DROP, FINISH, MODES, Mode
from .options import CORE_OPTIONS, validate_options
from .settings import PATTERNS, Settings, build_settings
from .stats import Stats
from .transport import Channel, Transport, translate_errors
from .wire import END, FRAME, REPLY, Incoming, Outgoing, decode, encode

__all__ = ["NetGear"]

logger = logging.getLogger(__name__)

_QUIET, _VERBOSE = logging.DEBUG, logging.INFO

# Bounds on close(): how long the end-of-stream message may take, and socket linger.
END_TIMEOUT = 1.0
END_REPEATS = 5  # PUB/SUB end-of-stream copies, see _publish_reliably
CLOSE_LINGER_MS = 500


class NetGear:
    """Send (``receive_mode=False``) or receive (``True``) frames and data over ZeroMQ.

    ``pattern``: 0 PAIR, 1 REQ/REP, 2 PUB/SUB. The receiver binds ``address:port``
    (default ``*:5555``), the sender connects (default ``localhost:5555``). Modes
    and tuning come through ``**options``; every key is checked here, before any
    socket opens. See docs/options.md.
    """

    def __init__(self, address: str | None = None, port: Any = None, protocol: str = "tcp",
                 pattern: int = 0, receive_mode: bool = False, logging: bool = False,
                 **options: Any) -> None:
        self._closed = True  # until fully built, close() has nothing to undo
        specs = CORE_OPTIONS + tuple(opt for mode in MODES for opt in mode.options)
        settings = build_settings(address, port, protocol, pattern, receive_mode, logging,
                                  validate_options(options, specs))
        mode_types = [m for m in MODES if m.enabled(settings)]
        _check_combinations(settings, mode_types)
        self.settings = settings
        # logging=True only raises the level of our own records; handlers are the app's business
        self._verbose = _VERBOSE if settings.logging else _QUIET
        opts = settings.options
        self._timeout: float = opts["request_timeout"]
        self._retries: int = opts["max_retries"]
        self._copy: bool = opts["copy"]
        self._track: bool = opts["track"]
        self._noblock = opts["flag"] == zmq.NOBLOCK
        self._modes: list[Mode] = []
        self._transport: Transport | None = None
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._stats = Stats()
        # stream -> (sender instance, seq) of the newest message, to drop repeats
        self._last_seen: dict[str, tuple[Any, int]] = {}
        self._instance = secrets.randbits(31)  # tells a retry from a restarted sender
        self._conflate: bool = opts["conflate"]
        self._pending: dict[str, Incoming] = {}  # conflate: newest undelivered frame per stream
        self._seq = itertools.count()
        self._needs_reply = pattern == 1
        self._carries_message = any(m.carries_message for m in mode_types)
        self._returns_data = any(m.returns_data for m in mode_types)
        try:
            self._modes = [m(settings) for m in mode_types]
            self._needs_reply = self._needs_reply or any(m.needs_reply() for m in self._modes)
            self._transport = Transport(
                settings, split=any(m.split_channels(settings) for m in mode_types)
            )
            for mode in self._modes:
                mode.configure(self._transport)
            self._transport.open()
        except BaseException:
            self._teardown(linger_ms=0)
            raise
        self._rotation = itertools.cycle(self._transport.channels)
        self._closed = False
        logger.log(
            self._verbose, "%s %s on %s (%s)%s",
            "receiving" if receive_mode else "sending", PATTERNS[pattern],
            ", ".join(self._transport.channels[0].endpoints if len(self._transport.channels) == 1
                      else [e for c in self._transport.channels for e in c.endpoints]),
            "bind" if settings.binds else "connect",
            "".join(f" +{m.key}" for m in self._modes),
        )

    # -- public API ---------------------------------------------------------------------
    @property
    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters: per-stream frames, drops, latency, fps; bad messages."""
        return _copy.deepcopy(self._stats.as_dict())

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, frame: np.ndarray, message: Any = None) -> Any:
        """Send one frame (and optional ``message``). Send mode only.

        Returns the receiver's ``return_data`` in bidirectional mode, else None. The frame's
        buffer may be reused as soon as this returns.
        """
        if self.settings.receive_mode:
            raise UsageError("send() is for send mode; this NetGear has receive_mode=True, "
                             "so call recv()")
        if not isinstance(frame, np.ndarray):
            raise PayloadError(f"frame must be a numpy array, got {type(frame).__name__}")
        if message is not None and not self._carries_message:
            raise UsageError("send(message=...) needs bidirectional_mode or multiserver_mode; "
                             "without them the receiver has no way to return the message")
        with self._lock:
            self._check_open()
            out = Outgoing(FRAME, next(self._seq), frame, message)
            out.extra["i"] = self._instance
            for mode in self._modes:
                mode.on_send(out)
            parts = encode(out)
            channel = self._pick_channel()
            self._check_size(channel, memoryview(parts[1]).nbytes)
            assert self._transport is not None  # set whenever open
            if self._needs_reply:
                try:
                    data = self._exchange(channel, parts, out.seq, self._timeout, self._retries)
                except PeerTimeoutError:
                    # a mode with other peers to fall back on may drop this frame instead
                    if not any(mode.peer_failed(channel) for mode in self._modes):
                        raise
                    self._stats.send_dropped += 1
                    return None
                self._stats.sent += 1
                if not self._returns_data:
                    return None
                for mode in self._modes:
                    data = mode.shape_send_result(channel, data)
                return data
            sent = self._transport.send(
                channel, parts, copy=self._copy or not self._track, track=self._track,
                timeout=self._timeout, retries=self._retries, drop_if_busy=self._noblock,
                stop=self._closing.is_set,
            )
            if sent:
                self._stats.sent += 1
            else:
                self._stats.send_dropped += 1
            return None

    def recv(self, return_data: Any = None) -> Any:
        """Receive the next frame. Receive mode only.

        Returns the frame (or the mode-shaped tuple), or None once the stream has ended
        (every sender closed, ``subscriber_timeout`` passed, or this instance was closed).
        """
        if not self.settings.receive_mode:
            raise UsageError("recv() is for receive mode; this NetGear has receive_mode=False, "
                             "so call send()")
        if return_data is not None and not self._returns_data:
            raise UsageError("recv(return_data=...) needs bidirectional_mode=True")
        with self._lock:
            if self._closed:
                return None
            return self._receive_loop(return_data)

    def close(self) -> None:
        """End the stream (the peer's recv() returns None) and release everything.

        Idempotent, bounded (about a second at most), safe from another thread.
        """
        if self._closed:
            return
        self._closing.set()  # wakes a recv()/send() blocked in another thread
        with self._lock:
            if self._closed:
                return
            self._closed = True
            linger = 0
            if not self.settings.receive_mode:
                linger = CLOSE_LINGER_MS
                try:
                    self._send_end()
                except Exception as exc:  # the peer may be long gone; close anyway
                    logger.debug("end-of-stream not delivered: %s", exc)
            self._teardown(linger)

    def __enter__(self) -> NetGear:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("this NetGear is closed")

    def _check_size(self, channel: Channel, size: int) -> None:
        limit = self.settings.options["max_frame_bytes"]
        if size > limit:
            raise PayloadError(f"frame payload of {size} bytes exceeds max_frame_bytes={limit}; "
                               "raise it on both ends, or compress")
        channel.fit_queue(size, self.settings.options["queue_bytes"])

    def _pick_channel(self) -> Channel:
        assert self._transport is not None
        channels = self._transport.channels
        for mode in self._modes:
            chosen = mode.pick_channel(channels)
            if chosen is not None:
                return chosen
        return channels[0] if len(channels) == 1 else next(self._rotation)

    def _exchange(self, channel: Channel, parts: list[Any], seq: int, timeout: float,
                  retries: int, stop: Callable[[], bool] | None = None,
                  final: bool = False) -> Any:
        """Send and wait for the reply to ``seq``; return the reply's message."""
        assert self._transport is not None
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

        # REQ/REP is zero-copy: send() returns only after the reply, when libzmq is done
        # with the buffer, so the caller may reuse it at once.
        reply = self._transport.request(channel, parts, copy=self._copy, timeout=timeout,
                                        retries=retries, accept=accept,
                                        stop=stop or self._closing.is_set, final=final)
        if reply is None:
            raise ClosedError("closed while waiting for a reply")
        return found[0].message

    def _receive_loop(self, return_data: Any) -> Any:
        assert self._transport is not None
        opts = self.settings.options
        channel = self._transport.channels[0]
        silence = opts["subscriber_timeout"]
        timeout = opts["receive_timeout"]
        bounds = [t for t in (silence, timeout) if t is not None]
        wait = min(bounds) if bounds else None
        while True:
            if self._conflate:
                if self._drain(channel, return_data):
                    return None
                while self._pending:
                    result = self._deliver(self._pending.pop(next(iter(self._pending))))
                    if result is not _SKIP:
                        return result
            parts = self._transport.receive(channel, wait, self._copy, self._closing.is_set)
            if parts is None:
                if self._closing.is_set() or (silence is not None and wait == silence):
                    return None
                raise PeerTimeoutError(f"no message within receive_timeout={timeout:g}s")
            verdict, incoming = self._take(channel, parts, return_data)
            if verdict == FINISH:
                return None
            if verdict != DELIVER or incoming is None:
                continue
            if self._conflate:
                self._pending[_stream_of(incoming, self.settings.port)] = incoming
                continue
            result = self._deliver(incoming)
            if result is not _SKIP:
                return result

    def _take(self, channel: Channel, parts: list[Any],
              return_data: Any) -> tuple[str, Incoming | None]:
        """Parse, judge, and (REQ/REP) answer one received message."""
        incoming = self._parse(parts)
        verdict = self._judge(incoming)
        if self._needs_reply or (incoming is not None and incoming.kind == END
                                 and self.settings.pattern == 0):
            # Reply before decoding the payload: the sender prepares its next frame
            # (e.g. JPEG-encodes it) while this side decodes the current one.
            self._reply(channel, incoming, return_data if verdict == DELIVER else None)
        if verdict == FINISH:
            logger.log(self._verbose, "end of stream")
        elif verdict == DELIVER and incoming is not None:
            self._stats.stream(_stream_of(incoming, self.settings.port)).record(
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
                    parts = sock.recv_multipart(zmq.NOBLOCK, copy=self._copy)
                except zmq.Again:
                    return False
            verdict, incoming = self._take(channel, parts, return_data)
            if verdict == FINISH:
                self._pending.clear()
                return True
            if verdict == DELIVER and incoming is not None:
                stream = _stream_of(incoming, self.settings.port)
                if self._pending.pop(stream, None) is not None:
                    self._stats.conflated += 1
                self._pending[stream] = incoming  # to the back: streams take turns
        return False

    def _deliver(self, incoming: Incoming) -> Any:
        """Decode the payload and shape what recv() returns; _SKIP when it is malformed."""
        try:
            incoming.frame = decode_frame(incoming)
        except WireFormatError as exc:
            self._count_bad(exc)
            return _SKIP
        result: Any = incoming.frame
        for mode in self._modes:
            result = mode.shape_result(incoming, result)
        return result

    def _parse(self, parts: list[Any]) -> Incoming | None:
        try:
            return decode(parts)
        except WireFormatError as exc:
            self._count_bad(exc)
            return None

    def _count_bad(self, exc: WireFormatError) -> None:
        self._stats.bad_messages += 1
        if self._stats.bad_messages == 1 or self.settings.logging:
            logger.warning("malformed message dropped: %s", exc)

    def _judge(self, incoming: Incoming | None) -> str:
        """What to do with a message, from its header: DELIVER, DROP or FINISH."""
        if incoming is None or incoming.kind == REPLY:
            return DROP
        stream = _stream_of(incoming, self.settings.port)
        origin = incoming.header.get("i")
        last = self._last_seen.get(stream)
        if last is not None and last[0] == origin and incoming.seq <= last[1]:
            # A Lazy Pirate retry of a frame whose reply was only late, or a repeated
            # end-of-stream marker: answered again, delivered once.
            self._stats.duplicates += 1
            return DROP
        self._last_seen[stream] = (origin, incoming.seq)
        verdict = DELIVER
        if incoming.kind == END:
            self._stats.stream(stream).record_end(incoming.seq)
            verdict = FINISH
        for mode in self._modes:
            verdict = mode.on_recv(incoming, verdict)
        return verdict

    def _reply(self, channel: Channel, incoming: Incoming | None, data: Any) -> None:
        """Answer every request, even a malformed one, so the sender is never stuck."""
        assert self._transport is not None
        seq = incoming.seq if incoming is not None else -1
        self._transport.reply(channel, encode(Outgoing(REPLY, seq, message=data)))

    def _send_end(self) -> None:
        assert self._transport is not None
        for channel in self._transport.channels:
            out = Outgoing(END, next(self._seq))
            out.extra["i"] = self._instance
            for mode in self._modes:
                mode.on_end(out)
            parts = encode(out)
            if self._needs_reply or self.settings.pattern == 0:
                # A PAIR receiver acknowledges END too: closing before it has read everything
                # can strand the last frames in libzmq (its reader stops on a full queue and
                # then tears down on the disconnect without draining).
                seq = _seq_of(parts)
                try:
                    # not interruptible by _closing: close() itself is waiting here
                    self._exchange(channel, parts, seq, min(self._timeout, END_TIMEOUT), 0,
                                   stop=_never, final=True)
                except (PeerTimeoutError, ClosedError):
                    logger.debug("port %s: end-of-stream not acknowledged", channel.label)
            elif self.settings.pattern == 2:
                _publish_reliably(channel, parts, END_TIMEOUT)

    def _teardown(self, linger_ms: int) -> None:
        for mode in reversed(self._modes):
            try:
                mode.close()
            except Exception:
                logger.exception("closing mode %s failed", mode.key)
        if self._transport is not None:
            self._transport.close(linger_ms)


_SKIP = object()  # _deliver's "nothing to return" (None means end of stream)


def _stream_of(incoming: Incoming, default: str) -> str:
    return str(incoming.header.get("p", default))


def _never() -> bool:
    return False


def _seq_of(parts: list[Any]) -> int:
    return decode(parts).seq


def _publish_reliably(channel: Channel, parts: list[Any], timeout: float) -> None:
    """Get the end-of-stream marker to every subscriber, within ``timeout``.

    libzmq marks a PUB pipe inactive once a burst fills it and silently skips it until the
    socket next processes its commands; XPUB_NODROP cannot see such a pipe either. So the
    marker is published a few times with back-off, letting drained pipes come back in
    between (receivers ignore the repeats: they share one sequence number).
    """
    sock = channel.sock
    if sock is None:
        return
    deadline = time.monotonic() + timeout
    pause = 0.01
    with translate_errors("end of stream"):
        sock.setsockopt(zmq.XPUB_NODROP, 1)  # a full (but active) pipe refuses, not drops
        for _ in range(END_REPEATS):
            sock.getsockopt(zmq.EVENTS)  # process pending commands: reactivates pipes
            with contextlib.suppress(zmq.Again):
                sock.send_multipart(parts, flags=zmq.NOBLOCK)
            if time.monotonic() + pause > deadline:
                return
            time.sleep(pause)  # close() only; bounded by ``timeout``
            pause *= 2


def _check_combinations(settings: Settings, mode_types: list[type[Mode]]) -> None:
    """Cross-option rules of the core; each mode adds its own in ``Mode.validate``."""
    opts = settings.options
    if opts["flag"] == zmq.NOBLOCK and settings.pattern == 1:
        raise OptionError("flag=zmq.NOBLOCK cannot apply to pattern 1 (REQ/REP): every frame "
                          "waits for its reply; use pattern 0 or 2 to drop frames instead",
                          key="flag")
    if opts["subscriber_timeout"] is not None and settings.pattern != 2:
        raise OptionError("subscriber_timeout applies to pattern 2 (PUB/SUB) only; "
                          "use receive_timeout for other patterns", key="subscriber_timeout")
    if opts["conflate"] and settings.pattern == 1:
        raise OptionError("conflate applies to patterns 0 and 2: REQ/REP never queues more "
                          "than one frame per sender", key="conflate")
    if settings.port_given_as_list and not any(m.accepts_port_list(settings)
                                               for m in mode_types):
        side = "receiver" if settings.receive_mode else "sender"
        raise OptionError(
            f"a list of ports on the {side} needs "
            f"{'multiserver_mode' if settings.receive_mode else 'multiclient_mode'}=True; "
            "otherwise give a single port", key="port")
    enabled = frozenset(m.key for m in mode_types)
    for mode in mode_types:
        mode.validate(settings, enabled)
