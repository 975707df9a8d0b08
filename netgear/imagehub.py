"""imagezmq-compatible ImageSender / ImageHub, wire-compatible with imagezmq 1.2 both ways.

Each message is two ZeroMQ frames: a JSON header, then the payload.
Raw image: ``{"msg": name, "dtype": "uint8", "shape": [h, w, 3]}`` + the array's bytes.
JPEG: ``{"msg": name}`` + the JPEG bytes. REQ/REP: the hub answers every message (``b"OK"``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
from typing import Any, Optional

import cv2
import numpy as np
import zmq

from netgear.errors import (
    ClosedError,
    OptionError,
    PayloadError,
    PeerTimeoutError,
    TransportError,
    UsageError,
    WireFormatError,
)

__all__ = ["ImageHub", "ImageSender"]

_LOG = logging.getLogger(__name__)
_SLICE_MS = 100  # blocking waits poll in slices so close() from another thread stays prompt
_PUB_LINGER_MS = 200  # a closing PUB gets this long to flush its last frames, then drops them
_NUMERIC_KINDS = "biuf"


def _check_timeout(timeout: Optional[float]) -> Optional[float]:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise OptionError(f"timeout must be a positive number of seconds or None, not {timeout!r}",
                          "timeout")
    return float(timeout)


def _header(msg: Any, **extra: Any) -> bytes:
    try:
        return json.dumps(dict(msg=msg, **extra)).encode("utf8")
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"the image name must be JSON-serialisable (a str): {exc}") from exc


class _Endpoint:
    """Socket, context, lock and close() shared by both ends."""

    def __init__(self, address: str, req_rep: bool, timeout: Optional[float]) -> None:
        if not isinstance(address, str) or "://" not in address:
            raise OptionError(f"address must look like 'tcp://host:port', not {address!r}",
                              "address")
        self.address = address
        self.REQ_REP = bool(req_rep)
        self.timeout = _check_timeout(timeout)
        self._ctx = zmq.Context()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._socket: Optional[zmq.Socket] = None

    def _new_socket(self, kind: int, address: str, bind: bool, linger: int = 0) -> zmq.Socket:
        sock = self._ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, linger)
        try:
            if bind:
                sock.bind(address)
            else:
                sock.connect(address)
        except zmq.ZMQError as exc:
            sock.close(0)
            verb = "bind" if bind else "connect"
            raise TransportError(f"cannot {verb} {address}: {exc}") from exc
        return sock

    def _wait(self, sock: zmq.Socket, deadline: Optional[float]) -> bool:
        """Block until ``sock`` is readable; False when ``deadline`` passed."""
        while True:
            if self._closing.is_set():
                raise ClosedError(f"{type(self).__name__} was closed while waiting")
            left = _SLICE_MS if deadline is None else int((deadline - time.monotonic()) * 1000)
            if left <= 0:
                return False
            if sock.poll(min(left, _SLICE_MS), zmq.POLLIN):
                return True

    def _deadline(self) -> Optional[float]:
        return None if self.timeout is None else time.monotonic() + self.timeout

    def _check_open(self) -> zmq.Socket:
        if self._socket is None:
            raise ClosedError(f"{type(self).__name__} is closed")
        return self._socket

    def close(self) -> None:
        """Close the socket and the context. Idempotent; never blocks for long."""
        self._closing.set()
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None
            if not self._ctx.closed:
                self._ctx.term()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ImageSender(_Endpoint):
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
                 timeout: Optional[float] = 4.0, retries: int = 3,
                 copy: Optional[bool] = None) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise OptionError(f"retries must be an integer >= 0, not {retries!r}", "retries")
        super().__init__(connect_to, REQ_REP, timeout)
        self.retries = retries
        self._copy = (not self.REQ_REP) if copy is None else bool(copy)
        self._awaiting_reply = False
        try:
            if self.REQ_REP:
                self._socket = self._new_socket(zmq.REQ, connect_to, bind=False)
            else:
                self._socket = self._new_socket(zmq.PUB, connect_to, bind=True,
                                                linger=_PUB_LINGER_MS)
        except BaseException:
            self._ctx.term()
            raise

    def send_image(self, msg: Any, image: np.ndarray) -> Optional[bytes]:
        """Send an image with its name; returns the hub's reply (REQ/REP) or None (PUB/SUB)."""
        if not isinstance(image, np.ndarray):
            raise PayloadError(f"image must be a numpy.ndarray, not {type(image).__name__}")
        if image.dtype.kind not in _NUMERIC_KINDS:
            raise PayloadError(f"image dtype {image.dtype} cannot be sent; use a numeric dtype")
        image = np.ascontiguousarray(image)
        return self._send([_header(msg, dtype=str(image.dtype), shape=image.shape), image])

    def send_jpg(self, msg: Any, jpg_buffer: Any) -> Optional[bytes]:
        """Send JPEG bytes (bytes, bytearray, memoryview or cv2.imencode's array) with a name."""
        try:
            payload = memoryview(jpg_buffer)
        except TypeError:
            raise PayloadError("jpg_buffer must be bytes-like (e.g. cv2.imencode(...)[1]), "
                               f"not {type(jpg_buffer).__name__}") from None
        if not payload.c_contiguous:
            payload = memoryview(payload.tobytes())
        return self._send([_header(msg), payload])

    def _send(self, parts: list[Any]) -> Optional[bytes]:
        with self._lock:
            sock = self._check_open()
            if not self.REQ_REP:
                if self._copy:
                    sock.send_multipart(parts, copy=True)
                else:
                    self._wait_released(sock.send_multipart(parts, copy=False, track=True))
                return None
            return self._request(parts)

    def _wait_released(self, tracker: zmq.MessageTracker) -> None:
        deadline = self._deadline()
        while not tracker.done:
            if self._closing.is_set():
                raise ClosedError("ImageSender was closed while a frame was in flight")
            if deadline is not None and time.monotonic() > deadline:
                raise PeerTimeoutError(f"a subscriber of {self.address} did not take the frame "
                                       f"within {self.timeout}s; its buffer is still in use")
            with contextlib.suppress(zmq.NotDone):
                tracker.wait(_SLICE_MS / 1000)

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
            _LOG.warning("no reply from %s within %ss (attempt %d of %d)", self.address,
                         self.timeout, attempt, attempts)
            self._rebuild()
        raise PeerTimeoutError(f"no reply from the hub at {self.address} after {attempts} "
                               f"attempt(s) of {self.timeout}s each")

    def _rebuild(self) -> None:
        """Lazy Pirate: a REQ socket stuck waiting for a lost reply is replaced, not reused."""
        if self._socket is not None:
            self._socket.close(0)
        self._socket = self._new_socket(zmq.REQ, self.address, bind=False)
        self._awaiting_reply = False


class ImageHub(_Endpoint):
    """Receive ``(name, image)`` pairs from :class:`ImageSender` s (or imagezmq senders).

    Args:
        open_port: REQ/REP: the address to bind (``tcp://*:5555``). PUB/SUB: the first
            sender's address to connect to (``tcp://sender:5555``); add more with :meth:`connect`.
        REQ_REP: True (default) for REQ/REP, False for PUB/SUB.
        timeout: seconds recv_image()/recv_jpg() wait before raising :class:`PeerTimeoutError`;
            None (default) waits forever.
    """

    def __init__(self, open_port: str = "tcp://*:5555", REQ_REP: bool = True,
                 timeout: Optional[float] = None) -> None:
        super().__init__(open_port, REQ_REP, timeout)
        self._reply_pending = False
        try:
            if self.REQ_REP:
                self._socket = self._new_socket(zmq.REP, open_port, bind=True)
            else:
                self._socket = self._ctx.socket(zmq.SUB)
                self._socket.setsockopt(zmq.LINGER, 0)
                self._socket.setsockopt(zmq.SUBSCRIBE, b"")
                self._connect(open_port)
        except BaseException:
            self.close()
            raise

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
        try:
            sock.connect(address)
        except zmq.ZMQError as exc:
            raise TransportError(f"cannot connect {address}: {exc}") from exc

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
        with self._lock:
            sock = self._check_open()
            if not self._reply_pending:
                raise UsageError("send_reply() without a received image: call recv_image() first")
            sock.send(reply_message)
            self._reply_pending = False

    def _receive(self, want_jpg: bool, copy: bool) -> tuple[Any, Any]:
        with self._lock:
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
                    return _decode(parts, want_jpg, copy)
                except (WireFormatError, cv2.error) as exc:
                    _LOG.warning("dropped a malformed message at %s: %s", self.address, exc)
                    if self.REQ_REP:
                        sock.send(b"ERROR: malformed message")
                        self._reply_pending = False


def _decode(parts: list[zmq.Frame], want_jpg: bool, copy: bool) -> tuple[Any, Any]:
    if len(parts) != 2:
        raise WireFormatError(f"expected 2 frames (header, payload), got {len(parts)}")
    try:
        header = json.loads(parts[0].bytes)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireFormatError(f"header is not JSON: {exc}") from exc
    if not isinstance(header, dict) or "msg" not in header:
        raise WireFormatError("header has no 'msg'")
    name, payload = header["msg"], parts[1].buffer
    if "dtype" not in header:  # a JPEG message
        if want_jpg:
            return name, parts[1].bytes
        image = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise WireFormatError("payload is not a decodable image")
        return name, image
    image = _array(header, payload, copy)
    if not want_jpg:
        return name, image
    if image.dtype != np.uint8 or image.shape[2:] not in ((), (1,), (3,), (4,)) or image.ndim < 2:
        raise WireFormatError(f"a {image.dtype} {image.shape} array cannot be JPEG-encoded")
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    ok, jpg = cv2.imencode(".jpg", image)
    if not ok:
        raise WireFormatError(f"a {image.shape} image cannot be JPEG-encoded")
    return name, jpg.tobytes()


def _array(header: dict[str, Any], payload: memoryview, copy: bool) -> np.ndarray:
    try:
        dtype = np.dtype(header["dtype"])
        shape = tuple(int(n) for n in header["shape"])
    except (TypeError, ValueError, KeyError) as exc:
        raise WireFormatError(f"bad dtype/shape in header: {exc}") from exc
    if dtype.kind not in _NUMERIC_KINDS or any(n < 0 for n in shape) or len(shape) > 32:
        raise WireFormatError(f"refusing dtype {dtype} with shape {shape}")
    if math.prod(shape) * dtype.itemsize != len(payload):
        raise WireFormatError(f"payload has {len(payload)} bytes, header says {shape} {dtype}")
    image = np.frombuffer(payload, dtype=dtype).reshape(shape)
    return image.copy() if copy else image
