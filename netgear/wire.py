"""The netgear wire format, version 1 (documented in docs/wire-format.md).

A message is a ZeroMQ multipart message:

* part 0: a msgpack map, the header;
* part 1: the frame payload (kind FRAME only), sent zero-copy from the array;
* part 2: the message payload when ``message`` is a top-level numpy array.

Decoding never trusts the header: sizes are checked against the received
payload before any array view is made, and nothing is allocated from a size
the header merely claims.
"""

from __future__ import annotations

import math
import time
from typing import Any

import msgpack
import numpy as np

from .errors import PayloadError, WireFormatError

__all__ = [
    "END",
    "FRAME",
    "REPLY",
    "VERSION",
    "Incoming",
    "Outgoing",
    "array_from_buffer",
    "decode",
    "dtype_descr",
    "encode",
]

VERSION = 1
FRAME, END, REPLY = 0, 1, 2
_KINDS = (FRAME, END, REPLY)
_EXT_NDARRAY = 1
MAX_DIMS = 32  # numpy's own limit
MAX_HEADER_BYTES = 1 << 20


class Outgoing:
    """What a sender is about to put on the wire; modes may rewrite it in ``on_send``."""

    __slots__ = ("codec", "extra", "frame", "kind", "message", "payload", "seq", "ts")

    def __init__(self, kind: int, seq: int, frame: np.ndarray | None = None,
                 message: Any = None) -> None:
        self.kind = kind
        self.seq = seq
        self.ts = time.time()
        self.frame = frame
        self.message = message
        # A mode that compresses sets payload (bytes-like) and codec; raw frames leave them.
        self.payload: Any = None
        self.codec = "raw"
        self.extra: dict[str, Any] = {}


class Incoming:
    """A decoded message. ``frame`` is filled by the codec stage, not by :func:`decode`."""

    __slots__ = ("codec", "frame", "header", "kind", "message", "payload", "seq", "ts")

    def __init__(self, header: dict[str, Any], payload: Any, message: Any) -> None:
        self.header = header
        self.kind: int = header["k"]
        self.seq: int = header["s"]
        self.ts: float = header["t"]
        self.codec: str = header.get("c", "raw")
        self.payload = payload
        self.message = message
        self.frame: np.ndarray | None = None


def dtype_descr(dtype: np.dtype) -> Any:
    """A msgpack-able description of ``dtype`` that round-trips exactly."""
    if dtype.hasobject:
        raise PayloadError(
            f"arrays of dtype {dtype} hold Python object pointers and cannot be sent; "
            "convert them to a numeric dtype"
        )
    if dtype.fields is None and dtype.subdtype is None:
        return dtype.str
    return np.lib.format.dtype_to_descr(dtype)


def _tuplify(descr: Any) -> Any:
    # msgpack turns the tuples of a structured descr into lists; numpy wants tuples back.
    if isinstance(descr, list):
        return [tuple(_tuplify(x) for x in item) if isinstance(item, list) else item
                for item in descr]
    return descr


def _parse_dtype(descr: Any) -> np.dtype:
    try:
        if isinstance(descr, str):
            dtype = np.dtype(descr)
        elif isinstance(descr, list):
            dtype = np.lib.format.descr_to_dtype(_tuplify(descr))
        else:
            raise TypeError(descr)
    except Exception as exc:  # numpy raises many types for a bad descr
        raise WireFormatError(f"bad dtype {descr!r} in header") from exc
    if dtype.hasobject:
        raise WireFormatError(f"object dtype {descr!r} refused")
    return dtype


def _parse_shape(shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, list) or len(shape) > MAX_DIMS:
        raise WireFormatError(f"bad shape {shape!r} in header")
    for dim in shape:
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 0:
            raise WireFormatError(f"bad shape {shape!r} in header")
    return tuple(shape)


def array_from_buffer(buffer: Any, descr: Any, shape: Any) -> np.ndarray:
    """A view of ``buffer`` as an array, after checking the sizes agree."""
    dtype = _parse_dtype(descr)
    dims = _parse_shape(shape)
    view = memoryview(buffer)
    expected = math.prod(dims) * dtype.itemsize
    if view.nbytes != expected:
        raise WireFormatError(
            f"payload has {view.nbytes} bytes, header declares {expected} "
            f"({dtype} {list(dims)})"
        )
    return np.frombuffer(view, dtype=dtype).reshape(dims)


def _pack_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        body = msgpack.packb([dtype_descr(arr.dtype), list(arr.shape), arr.tobytes()])
        return msgpack.ExtType(_EXT_NDARRAY, body)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"cannot serialize {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> Any:
    if code != _EXT_NDARRAY:
        raise WireFormatError(f"unknown msgpack extension type {code}")
    try:
        descr, shape, body = msgpack.unpackb(data)
    except Exception as exc:
        raise WireFormatError("bad embedded array") from exc
    # copy() so the embedded array owns writable memory, like every other array we return
    return array_from_buffer(body, descr, shape).copy()


def _contiguous(arr: np.ndarray) -> np.ndarray:
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def encode(out: Outgoing) -> list[Any]:
    """Header and payload parts for ``out``. Arrays are passed through, not copied."""
    header: dict[str, Any] = {"v": VERSION, "k": out.kind, "s": out.seq, "t": out.ts}
    parts: list[Any] = [b""]
    if out.kind == FRAME:
        frame = out.frame
        if out.payload is None:
            if not isinstance(frame, np.ndarray):
                raise PayloadError(
                    f"frame must be a numpy array, got {type(frame).__name__}"
                )
            frame = _contiguous(frame)
            header["d"] = dtype_descr(frame.dtype)
            header["h"] = list(frame.shape)
            parts.append(frame)
        else:
            header["c"] = out.codec
            parts.append(out.payload)
    message = out.message
    if isinstance(message, np.ndarray):
        message = _contiguous(message)
        header["x"] = [dtype_descr(message.dtype), list(message.shape)]
        if out.kind != FRAME:
            parts.append(b"")  # keep the message array at part 2 in every kind
        parts.append(message)
    elif message is not None:
        header["m"] = message
    header.update(out.extra)
    try:
        parts[0] = msgpack.packb(header, default=_pack_default)
    except (TypeError, ValueError, OverflowError) as exc:
        raise PayloadError(
            f"message of type {type(out.message).__name__} cannot be sent: {exc}. "
            "Use None, bool, int, float, str, bytes, lists, tuples, dicts or numpy arrays."
        ) from exc
    return parts


def _buffer(part: Any) -> Any:
    return part.buffer if hasattr(part, "buffer") else part


def decode(parts: list[Any]) -> Incoming:
    """Parse a received multipart message. Raises :class:`WireFormatError` on any defect."""
    if not 1 <= len(parts) <= 3:
        raise WireFormatError(f"expected 1 to 3 parts, got {len(parts)}")
    raw = parts[0]
    head = raw.bytes if hasattr(raw, "bytes") else bytes(raw)
    if len(head) > MAX_HEADER_BYTES:
        raise WireFormatError(f"header of {len(head)} bytes is too large")
    try:
        header = msgpack.unpackb(head, ext_hook=_ext_hook, strict_map_key=False)
    except WireFormatError:
        raise
    except Exception as exc:
        raise WireFormatError(f"header is not valid msgpack: {exc}") from exc
    if not isinstance(header, dict):
        raise WireFormatError("header is not a map")
    if header.get("v") != VERSION:
        raise WireFormatError(f"unsupported wire format version {header.get('v')!r}")
    kind, seq, ts = header.get("k"), header.get("s"), header.get("t")
    if kind not in _KINDS or not isinstance(seq, int) or not isinstance(ts, (int, float)):
        raise WireFormatError("header lacks a valid kind, sequence number or timestamp")
    payload = None
    if kind == FRAME:
        if len(parts) < 2:
            raise WireFormatError("frame message without a payload part")
        payload = _buffer(parts[1])
    message = header.get("m")
    if "x" in header:
        spec = header["x"]
        if len(parts) != 3 or not isinstance(spec, list) or len(spec) != 2:
            raise WireFormatError("message array declared but not sent")
        message = array_from_buffer(_buffer(parts[2]), spec[0], spec[1])
    elif len(parts) == 3:
        raise WireFormatError("unexpected third part")
    return Incoming(header, payload, message)
