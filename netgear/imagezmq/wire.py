"""What ImageSender and ImageHub share: the imagezmq wire format and the socket endpoint.

Each message is two ZeroMQ frames: a JSON header, then the payload.
Raw image: ``{"msg": name, "dtype": "uint8", "shape": [h, w, 3]}`` + the array's bytes.
JPEG: ``{"msg": name}`` + the JPEG bytes. REQ/REP: the hub answers every message (``b"OK"``).
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any, Callable

import cv2
import numpy as np
import zmq

from ..codecs.imageinfo import check_budget, jpeg_info
from ..errors import (
    ClosedError,
    FrameRefusedError,
    OptionError,
    PayloadError,
    PeerTimeoutError,
    TransportError,
    WireFormatError,
)
from ..link.zmq.channel import translate_errors
from ..link.zmq.waits import POLL_SLICE_MS, wait_readable, wait_released

__all__ = ["NUMERIC_KINDS", "PUB", "REP", "REQ", "SLICE_MS", "SUB", "Endpoint", "check_limit",
           "decode_message", "encode_header"]

SLICE_MS = POLL_SLICE_MS  # the link's bounded waits: close() from another thread stays prompt
REQ, REP, PUB, SUB = zmq.REQ, zmq.REP, zmq.PUB, zmq.SUB  # so imagehub.py needs no zmq
NUMERIC_KINDS = "biuf"
MAX_HEADER_BYTES = 64 * 1024  # a name, a dtype and a shape; json nests deeper than Python


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise OptionError(f"timeout must be a positive number of seconds or None, not {timeout!r}",
                          "timeout")
    return float(timeout)


def check_limit(name: str, value: Any, low: int, nullable: bool = False) -> Any:
    """A constructor bound: an int of at least ``low`` (or None where that means unbounded)."""
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        more = " or None" if nullable else ""
        raise OptionError(f"{name} must be an integer >= {low}{more}, not {value!r}", name)
    return value


def encode_header(msg: Any, **extra: Any) -> bytes:
    try:
        return json.dumps(dict(msg=msg, **extra)).encode("utf8")
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"the image name must be JSON-serialisable (a str): {exc}") from exc


class Endpoint:
    """Socket, context, lock and close() shared by both ends."""

    def __init__(self, address: str, req_rep: bool, timeout: float | None) -> None:
        if not isinstance(address, str) or "://" not in address:
            raise OptionError(f"address must look like 'tcp://host:port', not {address!r}",
                              "address")
        self.address = address
        self.REQ_REP = bool(req_rep)
        self.timeout = _check_timeout(timeout)
        self._ctx = zmq.Context()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._socket: zmq.Socket | None = None

    def _new_socket(self, kind: int, address: str, bind: bool, linger: int = 0,
                    limits: Callable[[zmq.Socket], None] | None = None) -> zmq.Socket:
        sock = self._ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, linger)
        if limits is not None:
            limits(sock)  # before bind: accepted connections take the socket's options
        try:
            with translate_errors(f"{'binding' if bind else 'connecting'} {address}"):
                if bind:
                    sock.bind(address)
                else:
                    sock.connect(address)
        except TransportError:
            sock.close(0)
            raise
        return sock

    def _wait(self, sock: zmq.Socket, deadline: float | None) -> bool:
        """Block until ``sock`` is readable; False when ``deadline`` passed."""
        readable = wait_readable(sock, deadline, self._closing.is_set)
        if readable is None:
            raise ClosedError(f"{type(self).__name__} was closed while waiting")
        return readable

    def _wait_released(self, tracker: zmq.MessageTracker) -> None:
        """Return once libzmq no longer reads a tracked (zero-copy) buffer."""
        released = wait_released(tracker, self._deadline(), self._closing.is_set)
        if released is None:
            raise ClosedError(f"{type(self).__name__} was closed while a frame was in flight")
        if not released:
            raise PeerTimeoutError(f"a subscriber of {self.address} did not take the frame "
                                   f"within {self.timeout}s; its buffer is still in use")

    def _sub_socket(self, limits: Callable[[zmq.Socket], None]) -> zmq.Socket:
        """An unconnected SUB socket taking every topic (connect() adds its senders)."""
        sock = self._ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        limits(sock)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        return sock

    @staticmethod
    def _hub_limits(max_frame_bytes: int, queue_frames: int) -> Callable[[zmq.Socket], None]:
        def apply(sock: zmq.Socket) -> None:
            sock.setsockopt(zmq.MAXMSGSIZE, max_frame_bytes)
            sock.setsockopt(zmq.RCVHWM, queue_frames)

        return apply

    def _deadline(self) -> float | None:
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


def decode_message(parts: list[zmq.Frame], want_jpg: bool, copy: bool,
                   max_decoded_bytes: int | None) -> tuple[Any, Any]:
    """``(name, image or JPEG bytes)``; a JPEG is checked against ``max_decoded_bytes``
    from its header before it is decoded or handed out (None: anything OpenCV reads)."""
    if len(parts) != 2:
        raise WireFormatError(f"expected 2 frames (header, payload), got {len(parts)}")
    if len(parts[0]) > MAX_HEADER_BYTES:
        raise WireFormatError(f"header of {len(parts[0])} bytes is too large")
    try:
        header = json.loads(parts[0].bytes)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise WireFormatError(f"header is not JSON: {exc}") from exc
    if not isinstance(header, dict) or "msg" not in header:
        raise WireFormatError("header has no 'msg'")
    name, payload = header["msg"], parts[1].buffer
    if "dtype" not in header:  # a JPEG message
        if max_decoded_bytes is not None:
            # the caller decodes what recv_jpg returns, so it is bounded the same way
            data = memoryview(payload).cast("B")
            if bytes(data[:2]) != b"\xff\xd8":
                raise FrameRefusedError("refused a payload that is not a JPEG; pass "
                                        "max_decoded_bytes=None to take any format unchecked")
            check_budget(jpeg_info(data), max_decoded_bytes, "a jpeg image")
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
    if dtype.kind not in NUMERIC_KINDS or any(n < 0 for n in shape) or len(shape) > 32:
        raise WireFormatError(f"refusing dtype {dtype} with shape {shape}")
    if math.prod(shape) * dtype.itemsize != len(payload):
        raise WireFormatError(f"payload has {len(payload)} bytes, header says {shape} {dtype}")
    image = np.frombuffer(payload, dtype=dtype).reshape(shape)
    return image.copy() if copy else image
