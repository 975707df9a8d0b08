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

from ..errors import PayloadError, WireFormatError

__all__ = [
    "END",
    "FRAME",
    "KEYFRAME_REQUEST",
    "NO_FRAME",
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
# Reply header key: the receiver has no reference picture for this stateful-codec stream
# and asks its sender for a keyframe.
KEYFRAME_REQUEST = "kf"
NO_FRAME = "z"  # header key: this FRAME message carries only a message, no frame


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

    __slots__ = ("codec", "frame", "header", "kind", "message", "payload", "seq", "source",
                 "ts")

    def __init__(self, header: dict[str, Any], payload: Any, message: Any) -> None:
        self.header = header
        self.kind: int = header["k"]
        self.seq: int = header["s"]
        self.ts: float = header["t"]
        self.codec: str = header.get("c", "raw")
        self.payload = payload
        self.message = message
        self.frame: np.ndarray | None = None
        self.source = ""  # the port of the socket it arrived on, set by the receiver


def dtype_descr(dtype: np.dtype) -> Any:
    """A msgpack-able description of ``dtype`` that round-trips exactly."""
    if dtype.hasobject:
        raise PayloadError(
            f"arrays of dtype {dtype} hold Python object pointers and cannot be sent; "
            "convert them to a numeric dtype"
        )
    if dtype.itemsize == 0:
        raise PayloadError(f"arrays of dtype {dtype} have zero-sized items and cannot be sent")
    if dtype.fields is None and dtype.subdtype is None:
        return dtype.str
    return np.lib.format.dtype_to_descr(dtype)


def _tuplify(descr: Any) -> Any:
    # msgpack turns the tuples of a structured descr into lists; numpy wants tuples back:
    # each field is (name or (title, name), format or nested descr[, sub-array shape]).
    if not isinstance(descr, list):
        return descr
    fields = []
    for item in descr:
        if not isinstance(item, list):
            return descr  # not a descr: numpy refuses it
        name, *rest = item
        fields.append((tuple(name) if isinstance(name, list) else name,
                       *(tuple(x) if i == 1 and isinstance(x, list) else _tuplify(x)
                         for i, x in enumerate(rest))))
    return fields


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
    if dtype.itemsize == 0 or dtype.subdtype is not None:
        # numpy cannot view bytes as zero-sized items; a sub-array dtype would change the shape
        raise WireFormatError(f"zero-sized or sub-array dtype {_brief(descr)} refused")
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
    try:
        view = memoryview(buffer)
    except TypeError as exc:
        raise WireFormatError(f"payload of type {type(buffer).__name__} is not bytes") from exc
    expected = math.prod(dims) * dtype.itemsize
    if view.nbytes != expected:
        raise WireFormatError(
            f"payload has {view.nbytes} bytes, header declares {expected} "
            f"({dtype} {list(dims)})"
        )
    try:
        return np.frombuffer(view, dtype=dtype).reshape(dims)
    except (ValueError, OverflowError) as exc:  # e.g. a zero dim beside dims beyond numpy's
        raise WireFormatError(f"unrepresentable shape {list(dims)} of {dtype}: {exc}") from exc


def _pack_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        # tobytes() is C order whatever the layout (np.ascontiguousarray would turn 0-d into 1-d)
        body = msgpack.packb([dtype_descr(obj.dtype), list(obj.shape), obj.tobytes()])
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
        if frame is None and out.payload is None and out.message is not None:
            header[NO_FRAME] = True  # a data-only message: an empty payload part
            parts.append(b"")
        elif out.payload is None:
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
    if len(parts[0]) > MAX_HEADER_BYTES:
        # every receiver refuses such a header, so say so here instead of losing it there
        raise PayloadError(
            f"message header of {len(parts[0])} bytes exceeds {MAX_HEADER_BYTES}; send large "
            "binary data as a numpy array (it travels in its own zero-copy part)"
        )
    return parts


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _holds_array(value: Any) -> bool:
    stack = [value]  # iterative: msgpack nests deeper than Python's recursion limit
    while stack:
        item = stack.pop()
        if isinstance(item, np.ndarray):
            return True
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
    return False


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
    embedded: list[bool] = []

    def ext_hook(code: int, data: bytes) -> Any:
        embedded.append(True)
        return _ext_hook(code, data)

    try:
        header = msgpack.unpackb(head, ext_hook=ext_hook, strict_map_key=False)
    except WireFormatError:
        raise
    except Exception as exc:
        raise WireFormatError(f"header is not valid msgpack: {exc}") from exc
    if not isinstance(header, dict):
        raise WireFormatError("header is not a map")
    if embedded:
        for key, value in header.items():
            if key != "m" and _holds_array(value):
                # only the message carries arrays; everywhere else one would meet code that
                # compares header values, where numpy raises instead of answering
                raise WireFormatError(f"embedded array in header key {_brief(key)}")
    # Type checks come first: a value of any other type (an embedded array, say) must not
    # reach a comparison, where numpy would raise instead of answering.
    version = header.get("v")
    if not _is_int(version) or version != VERSION:
        raise WireFormatError(f"unsupported wire format version {_brief(version)}")
    kind, seq, ts = header.get("k"), header.get("s"), header.get("t")
    if (not _is_int(kind) or kind not in _KINDS or not _is_int(seq)
            or not isinstance(ts, (int, float)) or isinstance(ts, bool)):
        raise WireFormatError("header lacks a valid kind, sequence number or timestamp")
    if "i" in header and not _is_int(header["i"]):
        raise WireFormatError(f"sender instance id {_brief(header['i'])} is not an int")
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
