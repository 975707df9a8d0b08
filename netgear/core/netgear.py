"""The NetGear class: validates everything, then composes transport, modes and one half."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ClosedError, PayloadError, UsageError
from ..link.shm import ShmLink
from ..link.zmq import Transport
from ..modes import MODES, Mode
from .options import CORE_OPTIONS, validate_options
from .receiver import Receiver
from .sender import Sender
from .settings import PATTERNS, Settings, build_settings
from .stats import Stats
from .validation import check_combinations

__all__ = ["NetGear"]

logger = logging.getLogger(__name__)

_QUIET, _VERBOSE = logging.DEBUG, logging.INFO
RELEASE_WAIT = 1.0  # seconds a finalizer waits for a call in another thread to return


class NetGear:
    """Send (``receive_mode=False``) or receive (``True``) frames and data over ZeroMQ.

    ``pattern``: 0 PAIR, 1 REQ/REP, 2 PUB/SUB. The receiver binds ``address:port``
    (default ``*:5555``), the sender connects (default ``localhost:5555``; a list of hub
    addresses fails over between them, see docs/reliability.md). Modes
    and tuning come through ``**options``; every key is checked here, before any
    socket opens. See docs/options.md.
    """

    def __init__(self, address: str | None = None, port: Any = None, protocol: str = "tcp",
                 pattern: int = 0, receive_mode: bool = False, logging: bool = False,
                 **options: Any) -> None:
        self._closed = True  # until fully built, close() has nothing to undo
        self._modes: list[Mode] = []
        self._transport: Transport | ShmLink | None = None
        specs = CORE_OPTIONS + tuple(opt for mode in MODES for opt in mode.options)
        settings = build_settings(address, port, protocol, pattern, receive_mode, logging,
                                  validate_options(options, specs))
        mode_types = [m for m in MODES if m.enabled(settings)]
        check_combinations(settings, mode_types)
        self.settings = settings
        # logging=True only raises the level of our own records; handlers are the app's business
        verbose = _VERBOSE if settings.logging else _QUIET
        self._carries_message = any(m.carries_message for m in mode_types)
        # PUB/SUB has no way back, whatever the modes say
        self._returns_data = settings.policy.two_way and any(m.returns_data for m in mode_types)
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._stats = Stats()
        try:
            self._modes = [m(settings) for m in mode_types]
            needs_reply = settings.policy.replies or any(m.needs_reply() for m in self._modes)
            self._transport = (ShmLink if settings.protocol == "shm" else Transport)(
                settings, split=any(m.split_channels(settings) for m in mode_types)
            )
            for mode in self._modes:
                mode.configure(self._transport)
            self._transport.open()
        except BaseException:
            self._teardown(kill=True)
            raise
        parts = (settings, self._transport, self._modes, self._stats, self._closing,
                 needs_reply)
        self._half: Sender | Receiver = (
            Receiver(*parts, verbose, _give_up_after(settings, options, verbose)) if receive_mode
            else Sender(*parts, self._returns_data)
        )
        # Whatever the owner forgets (close(), an exception, a reference cycle, interpreter
        # exit), this releases everything without waiting: holding the transport here keeps
        # its context out of the garbage, so pyzmq's Context.__del__ can never term() it
        # with sockets still open (which blocks for good).
        self._finalizer = weakref.finalize(self, _release, self._closing, self._lock,
                                           self._half, self._modes, self._transport)
        self._closed = False
        logger.log(verbose, "%s %s on %s (%s)%s",
                   "receiving" if receive_mode else "sending", PATTERNS[pattern],
                   ", ".join(settings.endpoints()), "bind" if settings.binds else "connect",
                   "".join(f" +{m.key}" for m in self._modes))

    @property
    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters: per-stream frames, drops, latency, fps; bad messages."""
        data = self._stats.as_dict()  # built fresh on every call: the caller owns it
        for mode in self._modes:
            mode.add_stats(data)  # e.g. the hub's live set
        return data

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, frame: np.ndarray | None, message: Any = None) -> Any:
        """Send one frame (and optional ``message``). Send mode only.

        ``frame=None`` with a ``message`` sends data only (an event, a status): the
        receiver gets it in the usual result shape with None as the frame.

        Returns the receiver's ``return_data`` in bidirectional mode (``(port, data)`` in
        multi-client REQ/REP mode), else None. With ``send_window=1`` (the default) a
        REQ/REP or bidirectional PAIR ``send()`` returns once the frame is sent and the data
        is the previous frame's, collected now (with ``send_window=N`` > 1, REQ/REP only, the
        frame N back's); ``send_window=0`` waits for this frame's.
        The frame's buffer may be reused as soon as this returns.
        """
        self._check_send(frame, message)
        with self._lock:
            if self._closed:
                raise ClosedError("this NetGear is closed")
            return self._half.send(frame, message)

    def recv(self, return_data: Any = None, info: bool = False) -> Any:
        """Receive the next frame. Receive mode only.

        Returns the frame (or the mode-shaped tuple), or None once the stream has ended
        (every sender closed, ``subscriber_timeout`` passed, or this instance was closed).
        ``info=True`` returns a :class:`~netgear.FrameInfo` (frame, name, sequence, send
        time, latency, message) instead of the mode's shape, in every mode.
        """
        self._check_recv(return_data)
        with self._lock:
            if self._closed:
                return None
            return self._half.receive(return_data, info)

    # the argument checks, shared with netgear.aio.NetGear
    def _check_send(self, frame: Any, message: Any) -> Sender:
        if not isinstance(self._half, Sender):
            raise UsageError("send() is for send mode; this NetGear has receive_mode=True, "
                             "so call recv()")
        if message is not None and not self._carries_message:
            raise UsageError("send(message=...) needs bidirectional_mode or multiserver_mode; "
                             "without them the receiver has no way to return the message")
        if frame is None and message is None:
            raise PayloadError("send(None) needs a message: send(None, message=...) sends "
                               "data only; otherwise pass a numpy array frame")
        if frame is not None and not isinstance(frame, np.ndarray):
            raise PayloadError(f"frame must be a numpy array, got {type(frame).__name__}")
        return self._half

    def _check_recv(self, return_data: Any) -> Receiver:
        if not isinstance(self._half, Receiver):
            raise UsageError("recv() is for receive mode; this NetGear has receive_mode=False, "
                             "so call send()")
        if return_data is not None and not self._returns_data:
            raise UsageError("recv(return_data=...) needs bidirectional_mode=True (or "
                             "multiclient_mode=True) with pattern 0 or 1")
        return self._half

    def close(self, kill: bool = False) -> None:
        """End the stream (the peer's recv() returns None) and release everything.

        Idempotent, bounded (per peer, about 1 s for the reply still in flight, then 1 s
        for PAIR's END acknowledgement or 0.5 s of REQ/PUB flush), safe to call from
        another thread.
        ``kill=True`` (vidgear's flag) releases everything at once: no end-of-stream, no
        waiting for replies, nothing left to flush.
        """
        if self._closed:
            return
        self._closing.set()  # wakes a recv()/send() blocked in another thread
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if kill:
                self._finalizer()
                return
            if isinstance(self._half, Sender):
                try:
                    self._half.end()
                except Exception as exc:  # the peer may be long gone; close anyway
                    logger.debug("end-of-stream not delivered: %s", exc)
            else:
                self._half.stop()  # the conflate reader, if any, before its socket closes
            self._finalizer.detach()
            # the link lingers as the pattern says (and a replying receiver's last reply)
            self._teardown(isinstance(self._half, Receiver) and self._half.needs_reply)

    def __enter__(self) -> NetGear:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _teardown(self, replying: bool = False, *, kill: bool = False) -> None:
        """Close the modes, then the link: at once with ``kill``, else as it sees fit."""
        for mode in reversed(self._modes):
            try:
                mode.close()
            except Exception:
                logger.exception("closing mode %s failed", mode.key)
        if self._transport is not None:
            if kill:
                self._transport.close(0)
            else:
                self._transport.finish(replying)


def _give_up_after(settings: Settings, given: dict[str, Any], level: int) -> float | None:
    """The silence after which a receiver given vidgear's retry options ends its stream.

    A vidgear client with ``request_timeout``/``max_retries`` and no server gives up and
    its recv() returns None; netgear's own ``receive_timeout`` (which raises) wins if set.
    """
    opts = settings.options
    if (settings.policy.fans_out or opts["receive_timeout"] is not None
            or not {"request_timeout", "max_retries"} & given.keys()):
        return None
    budget = float(opts["request_timeout"] * (opts["max_retries"] + 1))
    logger.log(level, "receiver: request_timeout=%gs x (max_retries=%d + 1): recv() returns "
               "None (end of stream) after %gs without a message, as vidgear's client gives "
               "up; set receive_timeout to raise PeerTimeoutError instead",
               opts["request_timeout"], opts["max_retries"], budget)
    return budget


def _release(closing: threading.Event, lock: threading.RLock, half: Sender | Receiver,
             modes: Sequence[Mode], transport: Transport | ShmLink) -> None:
    """close(kill=True), and the finalizer of an instance nobody closed: never blocks.

    Must not reference the NetGear itself (it would then never be collected).
    """
    closing.set()  # a send()/recv() still running in another thread returns within a slice
    # At interpreter exit a daemon thread may still be inside recv(): closing its socket
    # under it aborts libzmq, so wait (briefly) for the call to leave. If it does not, leave
    # the sockets be: the process is ending anyway, and term() would block on them.
    if not lock.acquire(timeout=RELEASE_WAIT):
        logger.debug("a call still holds this instance; its sockets are left to the OS")
        return
    try:
        if isinstance(half, Receiver):
            half.stop(grace=False)
        for mode in reversed(modes):
            try:
                mode.close()
            except Exception:
                logger.exception("closing mode %s failed", mode.key)
        transport.close(0)
    finally:
        lock.release()
