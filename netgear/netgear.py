"""The NetGear class: validates everything, then composes transport, modes and one half."""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from .errors import ClosedError, PayloadError, UsageError
from .modes import MODES, Mode
from .options import CORE_OPTIONS, validate_options
from .receiver import Receiver
from .sender import Sender
from .settings import PATTERNS, build_settings
from .stats import Stats
from .transport import Transport
from .validation import check_combinations

__all__ = ["NetGear"]

logger = logging.getLogger(__name__)

_QUIET, _VERBOSE = logging.DEBUG, logging.INFO
CLOSE_LINGER_MS = 500  # how long a closing sender's socket may still flush


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
        self._modes: list[Mode] = []
        self._transport: Transport | None = None
        specs = CORE_OPTIONS + tuple(opt for mode in MODES for opt in mode.options)
        settings = build_settings(address, port, protocol, pattern, receive_mode, logging,
                                  validate_options(options, specs))
        mode_types = [m for m in MODES if m.enabled(settings)]
        check_combinations(settings, mode_types)
        self.settings = settings
        # logging=True only raises the level of our own records; handlers are the app's business
        verbose = _VERBOSE if settings.logging else _QUIET
        self._carries_message = any(m.carries_message for m in mode_types)
        self._returns_data = any(m.returns_data for m in mode_types)
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._stats = Stats()
        try:
            self._modes = [m(settings) for m in mode_types]
            needs_reply = pattern == 1 or any(m.needs_reply() for m in self._modes)
            self._transport = Transport(
                settings, split=any(m.split_channels(settings) for m in mode_types)
            )
            for mode in self._modes:
                mode.configure(self._transport)
            self._transport.open()
        except BaseException:
            self._teardown(linger_ms=0)
            raise
        parts = (settings, self._transport, self._modes, self._stats, self._closing,
                 needs_reply)
        self._half: Sender | Receiver = (
            Receiver(*parts, verbose) if receive_mode
            else Sender(*parts, self._returns_data)
        )
        self._closed = False
        logger.log(verbose, "%s %s on %s (%s)%s",
                   "receiving" if receive_mode else "sending", PATTERNS[pattern],
                   ", ".join(settings.endpoints()), "bind" if settings.binds else "connect",
                   "".join(f" +{m.key}" for m in self._modes))

    @property
    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters: per-stream frames, drops, latency, fps; bad messages."""
        return self._stats.as_dict()  # built fresh on every call: the caller owns it

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, frame: np.ndarray, message: Any = None) -> Any:
        """Send one frame (and optional ``message``). Send mode only.

        Returns the receiver's ``return_data`` in bidirectional mode, else None. The frame's
        buffer may be reused as soon as this returns.
        """
        if not isinstance(self._half, Sender):
            raise UsageError("send() is for send mode; this NetGear has receive_mode=True, "
                             "so call recv()")
        if not isinstance(frame, np.ndarray):
            raise PayloadError(f"frame must be a numpy array, got {type(frame).__name__}")
        if message is not None and not self._carries_message:
            raise UsageError("send(message=...) needs bidirectional_mode or multiserver_mode; "
                             "without them the receiver has no way to return the message")
        with self._lock:
            if self._closed:
                raise ClosedError("this NetGear is closed")
            return self._half.send(frame, message)

    def recv(self, return_data: Any = None) -> Any:
        """Receive the next frame. Receive mode only.

        Returns the frame (or the mode-shaped tuple), or None once the stream has ended
        (every sender closed, ``subscriber_timeout`` passed, or this instance was closed).
        """
        if not isinstance(self._half, Receiver):
            raise UsageError("recv() is for receive mode; this NetGear has receive_mode=False, "
                             "so call send()")
        if return_data is not None and not self._returns_data:
            raise UsageError("recv(return_data=...) needs bidirectional_mode=True")
        with self._lock:
            if self._closed:
                return None
            return self._half.receive(return_data)

    def close(self) -> None:
        """End the stream (the peer's recv() returns None) and release everything.

        Idempotent, bounded (about 1.1 s at most: END's acknowledgement, or PUB's flush),
        safe to call from another thread.
        """
        if self._closed:
            return
        self._closing.set()  # wakes a recv()/send() blocked in another thread
        with self._lock:
            if self._closed:
                return
            self._closed = True
            linger = 0
            if isinstance(self._half, Sender):
                # PAIR and REQ/REP wait for END's acknowledgement, which covers every frame
                # before it: lingering after it (or after giving up on it) only delays close().
                # PUB has no acknowledgement, so its last frames get a moment to flush.
                linger = CLOSE_LINGER_MS if self._half.settings.pattern == 2 else 0
                try:
                    self._half.end()
                except Exception as exc:  # the peer may be long gone; close anyway
                    logger.debug("end-of-stream not delivered: %s", exc)
            else:
                self._half.stop()  # the conflate reader, if any, before its socket closes
            if isinstance(self._half, Receiver) and self._half.needs_reply:
                # the reply to the frame recv() just returned may still be queued: without a
                # linger it is discarded and that frame's send() times out on the other side
                linger = CLOSE_LINGER_MS
            self._teardown(linger)

    def __enter__(self) -> NetGear:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _teardown(self, linger_ms: int) -> None:
        for mode in reversed(self._modes):
            try:
                mode.close()
            except Exception:
                logger.exception("closing mode %s failed", mode.key)
        if self._transport is not None:
            self._transport.close(linger_ms)
