"""imagezmq-compatible ImageSender / ImageHub, wire-compatible with imagezmq 1.2 both ways.

The wire format and the endpoint both ends share live in :mod:`netgear.imagezmq.wire`.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np

from ..codecs.imageinfo import DEFAULT_MAX_DECODED_BYTES
from ..errors import (
    FrameRefusedError,
    OptionError,
    PayloadError,
    PeerTimeoutError,
    UsageError,
    WireFormatError,
)
from ..link.zmq.channel import translate_errors
from .wire import (
    NUMERIC_KINDS,
    PUB,
    REP,
    REQ,
    Endpoint,
    check_limit,
    decode_message,
    encode_header,
)

__all__ = ["ImageHub", "ImageSender"]

logger = logging.getLogger(__name__)
_PUB_LINGER_MS = 200  # a closing PUB gets this long to flush its last frames, then drops them
# 8K with alpha (7680 x 4320 x 4 = 132.7 MB) fits in one part
HUB_MAX_FRAME_BYTES = 128 * 1024 * 1024
# REQ/REP: a REQ sender has one image in flight, so more are queued only for a raw peer.
# PUB/SUB: a hub holds a burst its publishers send (a tracked PUB waits until it is taken).
HUB_QUEUE_FRAMES = {True: 4, False: 64}


class ImageSender(Endpoint):
    """Send ``(name, image)`` pairs to an :class:`ImageHub` (or an imagezmq hub).

    Args:
        connect_to: REQ/REP: the hub's address (``tcp://hub:5555``). PUB/SUB: the address to
            bind, usually ``tcp://*:5555``.
        REQ_REP: True (default) for REQ/REP, False for PUB/SUB.
        timeout: REQ/REP only: seconds to wait for the hub's reply (4 by default). After a
            timeout the socket is rebuilt and the frame re-sent ``retries`` times, so a hub
            restart is ridden out; then :class:`PeerTimeoutError` is raised. None waits
            forever, as imagezmq does.
        retries: re-sends after a timeout before giving up.
        copy: None (default) is zero-copy for REQ/REP (safe: the reply proves the hub has the
            frame) and a copy for PUB. ``False`` with PUB tracks the buffer and returns only
            once ZeroMQ has released it.
    """

    def __init__(self, connect_to: str = "tcp://127.0.0.1:5555", REQ_REP: bool = True,
                 timeout: float | None = 4.0, retries: int = 3,
                 copy: bool | None = None) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise OptionError(f"retries must be an integer >= 0, not {retries!r}", "retries")
        super().__init__(connect_to, REQ_REP, timeout)
        self.retries = retries
        self._copy = (not self.REQ_REP) if copy is None else bool(copy)
        self._awaiting_reply = False
        try:
            if self.REQ_REP:
                self._socket = self._new_socket(REQ, connect_to, bind=False)
            else:
                self._socket = self._new_socket(PUB, connect_to, bind=True,
                                                linger=_PUB_LINGER_MS)
        except BaseException:
            self._ctx.term()
            raise

    def send_image(self, msg: Any, image: np.ndarray) -> bytes | None:
        """Send an image with its name; returns the hub's reply (REQ/REP) or None (PUB/SUB)."""
        if not isinstance(image, np.ndarray):
            raise PayloadError(f"image must be a numpy.ndarray, not {type(image).__name__}")
        if image.dtype.kind not in NUMERIC_KINDS:
            raise PayloadError(f"image dtype {image.dtype} cannot be sent; use a numeric dtype")
        image = np.ascontiguousarray(image)
        return self._send([encode_header(msg, dtype=str(image.dtype), shape=image.shape), image])

    def send_jpg(self, msg: Any, jpg_buffer: Any) -> bytes | None:
        """Send JPEG bytes (bytes, bytearray, memoryview or cv2.imencode's array) with a name."""
        try:
            payload = memoryview(jpg_buffer)
        except TypeError:
            raise PayloadError("jpg_buffer must be bytes-like (e.g. cv2.imencode(...)[1]), "
                               f"not {type(jpg_buffer).__name__}") from None
        if not payload.c_contiguous:
            payload = memoryview(payload.tobytes())
        return self._send([encode_header(msg), payload])

    def _send(self, parts: list[Any]) -> bytes | None:
        with self._lock, translate_errors(f"sending to {self.address}"):
            sock = self._check_open()
            if not self.REQ_REP:
                if self._copy:
                    sock.send_multipart(parts, copy=True)
                else:
                    self._wait_released(sock.send_multipart(parts, copy=False, track=True))
                return None
            return self._request(parts)

    def _request(self, parts: list[Any]) -> bytes:
        if self._awaiting_reply:
            self._rebuild()  # a previous request was interrupted: REQ would refuse with EFSM
        attempts = 1 + (self.retries if self.timeout is not None else 0)
        for attempt in range(1, attempts + 1):
            sock = self._check_open()
            sock.send_multipart(parts, copy=self._copy)
            self._awaiting_reply = True
            if self._wait(sock, self._deadline()):
                reply = sock.recv()
                self._awaiting_reply = False
                return reply
            logger.warning("no reply from %s within %ss (attempt %d of %d)", self.address,
                         self.timeout, attempt, attempts)
            self._rebuild()
        raise PeerTimeoutError(f"no reply from the hub at {self.address} after {attempts} "
                               f"attempt(s) of {self.timeout}s each")

    def _rebuild(self) -> None:
        """Lazy Pirate: a REQ socket stuck waiting for a lost reply is replaced, not reused."""
        if self._socket is not None:
            self._socket.close(0)
        self._socket = self._new_socket(REQ, self.address, bind=False)
        self._awaiting_reply = False


class ImageHub(Endpoint):
    """Receive ``(name, image)`` pairs from :class:`ImageSender` s (or imagezmq senders).

    Args:
        open_port: REQ/REP: the address to bind (``tcp://*:5555``). PUB/SUB: the first
            sender's address to connect to (``tcp://sender:5555``); add more with :meth:`connect`.
        REQ_REP: True (default) for REQ/REP, False for PUB/SUB.
        timeout: seconds recv_image()/recv_jpg() wait before raising :class:`PeerTimeoutError`;
            None (default) waits forever.
        max_frame_bytes: largest message part accepted (128 MiB: an 8K BGRA image). libzmq
            disconnects a peer that announces a larger part, before allocating anything.
        queue_frames: messages queued per sender before libzmq stops reading from it (None:
            4 for REQ/REP, 64 for PUB/SUB), so a hub holds at most about
            ``(queue_frames + 1) * max_frame_bytes`` per sender.
        max_decoded_bytes: most bytes decoding one JPEG may allocate (128 MiB), read from its
            header before recv_image() decodes it or recv_jpg() returns it; a larger one, or
            a payload that is not a JPEG, is dropped and counted in ``stats['refused']``.
            None decodes whatever OpenCV reads, unchecked (imagezmq's behaviour).
    """

    def __init__(self, open_port: str = "tcp://*:5555", REQ_REP: bool = True,
                 timeout: float | None = None, *,
                 max_frame_bytes: int = HUB_MAX_FRAME_BYTES,
                 queue_frames: int | None = None,
                 max_decoded_bytes: int | None = DEFAULT_MAX_DECODED_BYTES) -> None:
        self.max_frame_bytes = check_limit("max_frame_bytes", max_frame_bytes, 1024)
        self.queue_frames = check_limit("queue_frames", queue_frames, 1, nullable=True)
        self.max_decoded_bytes = check_limit("max_decoded_bytes", max_decoded_bytes, 1024,
                                             nullable=True)
        super().__init__(open_port, REQ_REP, timeout)
        if self.queue_frames is None:
            self.queue_frames = HUB_QUEUE_FRAMES[self.REQ_REP]
        self._reply_pending = False
        self._counts = {"bad_messages": 0, "refused": 0}
        try:
            if self.REQ_REP:
                self._socket = self._new_socket(REP, open_port, bind=True,
                                                limits=self._limits)
            else:
                self._socket = self._sub_socket(self._limits)
                self._connect(open_port)
        except BaseException:
            self.close()
            raise

    @property
    def stats(self) -> dict[str, int]:
        """Messages dropped: ``bad_messages`` (malformed), ``refused`` (over a limit)."""
        return dict(self._counts)

    @property
    def _limits(self) -> Any:
        return self._hub_limits(self.max_frame_bytes, self.queue_frames)

    def connect(self, open_port: str) -> None:
        """PUB/SUB only: also receive from the sender bound at ``open_port``."""
        if self.REQ_REP:
            raise UsageError("connect() is for PUB/SUB hubs; in REQ/REP senders connect to the hub")
        with self._lock:
            self._connect(open_port)

    def _connect(self, address: str) -> None:
        sock = self._check_open()
        if "*" in address:
            raise OptionError(f"a PUB/SUB hub connects to each sender: give the sender's address "
                              f"(tcp://sender-ip:5555), not {address!r}", "open_port")
        with translate_errors(f"connecting to {address}"):
            sock.connect(address)

    def recv_image(self, copy: bool = True) -> tuple[Any, np.ndarray]:
        """Next ``(name, image)``. JPEG messages are decoded.

        ``copy=True`` (default) returns an array owning its memory; ``copy=False`` a zero-copy
        view of the received message (imagezmq's behaviour; read-only on some pyzmq versions).
        """
        return self._receive(want_jpg=False, copy=copy)

    def recv_jpg(self, copy: bool = True) -> tuple[Any, bytes]:
        """Next ``(name, jpg_bytes)``; raw images are JPEG-encoded so the result is always JPEG."""
        return self._receive(want_jpg=True, copy=copy)

    def send_reply(self, reply_message: Any = b"OK") -> None:
        """REQ/REP: answer the sender of the last image, which unblocks its send_image()."""
        if not self.REQ_REP:
            raise UsageError("send_reply() is only for REQ/REP hubs; PUB/SUB senders expect none")
        if isinstance(reply_message, str):
            reply_message = reply_message.encode("utf8")
        with self._lock, translate_errors(f"replying at {self.address}"):
            sock = self._check_open()
            if not self._reply_pending:
                raise UsageError("send_reply() without a received image: call recv_image() first")
            sock.send(reply_message)
            self._reply_pending = False

    def _receive(self, want_jpg: bool, copy: bool) -> tuple[Any, Any]:
        with self._lock, translate_errors(f"receiving at {self.address}"):
            sock = self._check_open()
            if self._reply_pending:
                raise UsageError("REQ/REP hub: call send_reply() for the previous image "
                                 "before receiving the next one")
            deadline = self._deadline()
            while True:
                if not self._wait(sock, deadline):
                    raise PeerTimeoutError(f"no image arrived at {self.address} within "
                                           f"{self.timeout}s")
                parts = sock.recv_multipart(copy=False)
                self._reply_pending = self.REQ_REP
                try:
                    return decode_message(parts, want_jpg, copy, self.max_decoded_bytes)
                except (WireFormatError, cv2.error) as exc:
                    counter = "refused" if isinstance(exc, FrameRefusedError) else "bad_messages"
                    self._counts[counter] += 1
                    count = self._counts[counter]
                    # 1st, 2nd, 4th, 8th...: a peer spraying bad messages must not flood the log
                    level = logging.WARNING if count & (count - 1) == 0 else logging.DEBUG
                    logger.log(level, "dropped a message at %s (%d so far in stats[%r]): %s",
                             self.address, count, counter, exc)
                    if self.REQ_REP:
                        sock.send(b"ERROR: malformed message")
                        self._reply_pending = False
