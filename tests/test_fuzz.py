"""Property-based fuzzing of the wire decoder and the frame codecs.

Whatever bytes arrive, ``decode`` + ``decode_frame`` either give back a frame whose size is
exactly the payload that arrived, or raise ``WireFormatError``; never another exception, and
never an allocation sized by what a header merely claims (tracemalloc peak stays a small
multiple of the input). And what ``encode`` writes, ``decode`` reads back exactly.
"""

from __future__ import annotations

import contextlib
import math
import struct
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import netgear  # noqa: F401  (imports every mode, so every codec's decoder is registered)
from netgear.codecs import decode_frame
from netgear.core.wire import END, FRAME, REPLY, Incoming, Outgoing, decode, encode
from netgear.errors import FrameRefusedError, PayloadError, WireFormatError

# derandomize: the same examples on every run, so a failure is reproducible and CI is stable
FUZZ = settings(max_examples=500, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      ])
ROUND_TRIP = settings(FUZZ, max_examples=250)

# Allocation budget for decoding ``n`` input bytes: headers become Python objects (a list of
# one-byte msgpack ints costs ~8 bytes per element), so a small multiple plus a constant.
# A decoder that trusted a header claim such as [4096, 4096] would blow through it.
ALLOC_FACTOR, ALLOC_SLACK = 16, 256 * 1024


# -- strategies: absurd headers -----------------------------------------------------------
DTYPE_STRINGS = [
    "|u1", "<u2", ">i4", "<f4", "<f8", "|b1", "<c8", "<M8[ns]", "M8", "i4,i4", "S3",
    "O", "|O", "S0", "V0", "U0", "(2,)i4", "(0,)i4", "V99999999999", "S2147483648",
    "|V2147483647", "garbage", "", " <i4 ", "<i4\x00",
]
ABSURD_SHAPES = [
    [2**40, 2**40], [-1], [1] * 33, [1] * 64, [0, 2**63], [2**62, 0], [2**64 - 1, 0],
    [2**31, 2**31, 0], [4096, 4096], [1e3], [True], ["3"], [None], [], [0], [[2]],
]
DIMS = st.one_of(st.integers(0, 16), st.sampled_from([2**31, 2**32, 2**40, 2**62, 2**63,
                                                      2**64 - 1, -1, -(2**63)]))


def _ext_array(descr: Any, shape: Any, body: bytes) -> msgpack.ExtType:
    """msgpack extension type 1 (an embedded array), with whatever fields we like."""
    return msgpack.ExtType(1, msgpack.packb([descr, shape, body]))


descrs = st.one_of(
    st.sampled_from(DTYPE_STRINGS),
    st.text(max_size=6),
    st.lists(st.lists(st.one_of(st.text(max_size=3), st.sampled_from(DTYPE_STRINGS),
                                st.lists(DIMS, max_size=3)), min_size=1, max_size=3),
             max_size=3),
    st.integers(-(2**63), 2**64 - 1),
)
shapes = st.one_of(st.lists(DIMS, max_size=6), st.sampled_from(ABSURD_SHAPES),
                   st.lists(DIMS, min_size=30, max_size=70))
exts = st.one_of(
    st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=24)),
    st.builds(_ext_array, descrs, shapes, st.binary(max_size=24)),
    st.builds(msgpack.ExtType, st.just(1), st.binary(max_size=24)),
)
# real arrays, embedded (ext type 1) where they do not belong: comparisons must not meet them
embedded_arrays = hnp.arrays(st.sampled_from(["<i8", "|u1", "<f4"]),
                             hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(),
    st.text(max_size=8), st.binary(max_size=8), exts, embedded_arrays,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.text(max_size=3),
                                                      st.integers(-(2**63), 2**64 - 1)),
                                            inner, max_size=4)),
    max_leaves=12,
)


def _biased(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly plausible values (so decoding gets deep), sometimes anything at all."""
    return st.one_of(good, good, values)


HEADER_FIELDS = {
    "v": _biased(st.sampled_from([1, 1, 1, 0, 2, 255, -1, 1.0, True])),
    "k": _biased(st.sampled_from([FRAME, FRAME, END, REPLY, 3, -1, 1.0, True])),
    "s": _biased(st.integers(-(2**63), 2**64 - 1)),
    "t": _biased(st.one_of(st.floats(), st.integers(-(2**63), 2**64 - 1))),
    "d": _biased(descrs),
    "h": _biased(shapes),
    "c": _biased(st.sampled_from(["raw", "raw", "jpeg", "png", "bmp", "zstd", "", "RAW"])),
    "x": _biased(st.lists(st.one_of(descrs, shapes), max_size=3)),
    "m": values,
    "i": _biased(st.integers(0, 2**31)),
    "p": _biased(st.text(max_size=5)),
    "j": _biased(st.lists(st.one_of(st.sampled_from(["BGR", "GRAY", "RGBA"]), st.booleans()),
                          max_size=4)),
}
STRUCTURED = [[["a", "<i4"]], [["a", "|O"]], [["a", "V0"]], [["a", "<i4", [2]]],
              [["a", "<i4", [-1]]], [[["t", "a"], "|u1"]], [["a", [["b", "S0"]]]], [["a"]]]
# frame-like headers: valid version and kind, a dtype from the pool, a small or absurd shape
frame_headers = st.fixed_dictionaries(
    {"v": st.just(1), "k": st.just(FRAME), "s": st.integers(0, 2**40), "t": st.floats(0, 2e9),
     "d": st.sampled_from(DTYPE_STRINGS + STRUCTURED),
     "h": st.one_of(st.lists(st.integers(0, 4), max_size=4), st.sampled_from(ABSURD_SHAPES))},
    optional={k: HEADER_FIELDS[k] for k in "cxmipj"},
)
# anything goes (version and kind usually plausible so decoding gets past them)
loose_headers = st.builds(
    lambda base, more: {**more, **base},
    st.fixed_dictionaries({key: HEADER_FIELDS[key] for key in "vk"},
                          optional={k: v for k, v in HEADER_FIELDS.items() if k not in "vk"}),
    st.dictionaries(st.text(max_size=2), values, max_size=2),
)
headers = st.one_of(frame_headers, loose_headers)


def _pack(header: dict[Any, Any]) -> bytes:
    """msgpack, arrays as extension type 1 the way a sender embeds them."""

    def default(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            return _ext_array(obj.dtype.str, list(obj.shape), obj.tobytes())
        raise TypeError(type(obj))

    return msgpack.packb(header, default=default)
IMAGE_MAGIC = [
    b"",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",  # + width, height
    b"BM" + bytes(16),  # + width, height
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
]


def _declared_bytes(header: dict[Any, Any]) -> int | None:
    try:
        dims, itemsize = header["h"], np.dtype(header["d"]).itemsize
        # Only a list of ints declares a size. Anything else used to go through math.prod
        # too, where a nested list times a huge itemsize (h=[[2]], d="|V2147483647") is
        # list repetition: a 16 GiB list, 15 s per example, until it came out not an int.
        if not isinstance(dims, list) or not all(isinstance(d, int) for d in dims):
            return None
        size = math.prod(dims) * itemsize
    except Exception:
        return None
    return size if isinstance(size, int) and 0 <= size <= 1 << 16 else None


# How the payload part is made: (how, off_by, magic, dims, noise). Drawn independently of the
# header, then applied to it, so generation never depends on the drawn values' meaning.
payload_plans = st.tuples(
    st.sampled_from(["declared", "declared", "image", "noise"]),
    st.sampled_from([0, 0, -1, 1]),
    st.sampled_from(IMAGE_MAGIC),
    st.sampled_from([(2, 2), (1, 1), (65535, 65535), (0, 7), (2**31 - 1, 3)]),
    st.binary(max_size=64),
)


def _payload(header: dict[Any, Any], plan: tuple[str, int, bytes, tuple[int, int], bytes]) -> bytes:
    how, off_by, magic, dims, noise = plan
    declared = _declared_bytes(header)
    if how == "declared" and declared is not None:  # exactly, or one byte off, what is declared
        size = max(0, declared + off_by)
        return (noise * (size // max(1, len(noise)) + 1))[:size] if noise else bytes(size)
    if how == "image":  # an image codec's magic with absurd dimensions
        return magic + b"".join(d.to_bytes(4, "big") for d in dims) + noise
    return noise


# -- the property --------------------------------------------------------------------------
@contextlib.contextmanager
def _traced() -> Iterator[list[int]]:
    """Yields a list that holds, afterwards, the peak bytes allocated inside the block."""
    result = [0]
    tracemalloc.start()
    try:
        yield result
        result[0] = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _decode_or_refuse(parts: list[Any]) -> tuple[Incoming | None, np.ndarray | None]:
    """Decode like a receiver does; None when refused. Asserts the safety properties."""
    size = sum(len(p) for p in parts)
    incoming: Incoming | None = None
    frame: np.ndarray | None = None
    with _traced() as peak:
        try:
            incoming = decode(parts)
            if incoming.kind == FRAME:
                frame = decode_frame(incoming)
        except WireFormatError:
            incoming = frame = None
    assert peak[0] <= ALLOC_FACTOR * size + ALLOC_SLACK, (
        f"decoding {size} bytes allocated {peak[0]} bytes")
    if incoming is None:
        return None, None
    header = incoming.header
    assert header["v"] == 1 and header["k"] in (FRAME, END, REPLY)
    if frame is not None:
        assert isinstance(frame, np.ndarray)
        assert frame.shape == tuple(header["h"])
        if incoming.codec == "raw":
            assert frame.nbytes == memoryview(incoming.payload).nbytes
            assert isinstance(header["d"], list) or frame.dtype == np.dtype(header["d"])
    if "x" in header:
        assert isinstance(incoming.message, np.ndarray)
        assert incoming.message.nbytes == len(parts[2])
    return incoming, frame


@pytest.mark.timeout(60)
@FUZZ
@given(parts=st.lists(st.binary(max_size=80), max_size=5))
def test_random_bytes_are_refused_cleanly(parts):
    _decode_or_refuse(parts)


@pytest.mark.timeout(60)
@FUZZ
@given(header=headers, plan=payload_plans,
       layout=st.sampled_from(["frame", "frame", "with-x", "header-only", "extra"]),
       third=st.binary(max_size=32))
def test_absurd_headers_are_refused_cleanly(header, plan, layout, third):
    head = _pack(header)
    parts: list[Any] = [head, _payload(header, plan)]
    if layout == "with-x":
        parts.append(third)
    elif layout == "header-only":
        parts = [head]
    elif layout == "extra":
        parts += [b"", b"x"]
    _decode_or_refuse(parts)


@pytest.mark.timeout(60)
@FUZZ
@given(data=st.data())
def test_mutated_valid_messages_are_refused_or_exact(data):
    """Flip, cut and splice bytes of real messages: the result is refused or still exact."""
    frame = data.draw(hnp.arrays(np.uint8, hnp.array_shapes(max_dims=3, max_side=6)))
    message = data.draw(st.one_of(st.none(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=5),
                                  st.just(np.arange(3, dtype="<i2"))))
    parts = [bytes(memoryview(p)) for p in encode(Outgoing(FRAME, 5, frame, message))]
    index = data.draw(st.integers(0, len(parts) - 1))
    target = bytearray(parts[index])
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, len(target)))
        if action == "flip" and at < len(target):
            target[at] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del target[at:at + data.draw(st.integers(1, 8))]
        else:
            target[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    parts[index] = bytes(target)
    if data.draw(st.booleans()):
        parts = parts[:data.draw(st.integers(0, len(parts)))]
    _decode_or_refuse(parts)


def _header(**fields: Any) -> bytes:
    base: dict[str, Any] = {"v": 1, "k": FRAME, "s": 0, "t": 0.0}
    base.update(fields)
    return msgpack.packb(base)


# Each of these once escaped decode()/decode_frame() as ValueError, or must never allocate.
ABSURD_CASES = {
    "huge shape": [_header(d="<i4", h=[2**40, 2**40]), b""],
    "claims 16 MiB, sends 4 bytes": [_header(d="|u1", h=[4096, 4096]), b"abcd"],
    "negative dim": [_header(d="|u1", h=[-1, -4]), b"abcd"],
    "33 dims": [_header(d="|u1", h=[1] * 33), b"a"],
    "object dtype": [_header(d="O", h=[1]), bytes(8)],
    "object field": [_header(d=[["a", "|O"]], h=[1]), bytes(8)],
    "zero-size dtype S0": [_header(d="S0", h=[3]), b""],
    "zero-size dtype V0": [_header(d="V0", h=[0]), b""],
    "empty structured dtype": [_header(d=[], h=[1]), b""],
    "sub-array dtype": [_header(d="(2,)i4", h=[1]), bytes(8)],
    "empty sub-array dtype": [_header(d="(0,)i4", h=[1]), b""],
    "zero dim beside 2**63": [_header(d="<i4", h=[2**63, 0]), b""],
    "zero dim beside 2**62": [_header(d="<i4", h=[2**62, 0]), b""],
    "zero dim beside 2**64-1": [_header(d="<i4", h=[2**64 - 1, 0]), b""],
    "payload one byte short": [_header(d="<u2", h=[2, 2]), bytes(7)],
    "payload one byte long": [_header(d="<u2", h=[2, 2]), bytes(9)],
    "unknown version": [_header(v=2), b""],
    "version is an array": [_header(v=_ext_array("<i8", [3], bytes(24))), b""],
    "kind is an array": [_header(k=_ext_array("<i8", [3], bytes(24))), b""],
    "instance id is an array": [_header(d="|u1", h=[1], i=_ext_array("<i8", [3], bytes(24))),
                                b"a"],
    "dtype is an array (jpeg)": [_header(c="jpeg", d=_ext_array("<i8", [3], bytes(24)),
                                         h=[2, 2]), b"xx"],
    "jpeg colorspace is an array": [_header(c="jpeg", d="|u1", h=[2, 2],
                                            j=[_ext_array("<i8", [3], bytes(24)), True, True]),
                                    b"xx"],
    "unknown kind": [_header(k=7), b""],
    "unknown codec": [_header(c="zstd", d="|u1", h=[1]), b"a"],
    "codec not a string": [_header(c=[1], d="|u1", h=[1]), b"a"],
    "unknown ext type": [_header(d="|u1", h=[1], m=msgpack.ExtType(42, b"x")), b"a"],
    "bad embedded array": [_header(d="|u1", h=[1], m=_ext_array("<i4", [2], b"abc")), b"a"],
    "embedded array, body not bytes": [
        _header(d="|u1", h=[1], m=msgpack.ExtType(1, msgpack.packb(["|u1", [1], "x"]))), b"a"],
    "frame without payload": [_header(d="|u1", h=[1])],
    "four parts": [_header(d="|u1", h=[1]), b"a", b"", b""],
    "message array not sent": [_header(d="|u1", h=[1], x=["|u1", [1]]), b"a"],
    "header not a map": [msgpack.packb([1, 0, 0, 0.0]), b""],
    "header not msgpack": [b"\xc1\xc1\xc1", b""],
    "huge png claim": [_header(c="png", d="|u1", h=[65535, 65535]),
                       b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (65535).to_bytes(4, "big") * 2],
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", list(ABSURD_CASES))
def test_known_absurd_messages_raise_wire_format_error(name):
    parts = ABSURD_CASES[name]
    size = sum(len(p) for p in parts)
    with _traced() as peak, pytest.raises(WireFormatError):
        decode_frame(decode(parts))
    assert peak[0] <= ALLOC_FACTOR * size + ALLOC_SLACK


# -- round trip ----------------------------------------------------------------------------
def _same(a: Any, b: Any) -> bool:
    """Exact equality, arrays by dtype, shape and bytes, NaN equal to NaN."""
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and np.ascontiguousarray(a).tobytes() == b.tobytes())
    if isinstance(a, float):
        return isinstance(b, float) and (a == b or (math.isnan(a) and math.isnan(b)))
    if isinstance(a, (list, tuple)):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


any_dtype = st.one_of(hnp.scalar_dtypes(), hnp.array_dtypes(max_size=3))
any_array = hnp.arrays(any_dtype, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0,
                                                   max_side=5))
plain = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                  st.floats(), st.text(max_size=10), st.binary(max_size=10))
messages = st.recursive(
    st.one_of(plain, hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes(min_dims=0, max_side=3))),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6,
)


def _wire(parts: list[Any]) -> list[bytes]:
    """What the receiving socket hands over: independent copies of each part's bytes."""
    return [p.tobytes() if isinstance(p, np.ndarray) else bytes(p) for p in parts]


@pytest.mark.timeout(60)
@ROUND_TRIP
@given(frame=any_array, message=messages, seq=st.integers(0, 2**63), strided=st.booleans())
def test_frames_round_trip_exactly(frame, message, seq, strided):
    if strided and frame.ndim:
        frame = frame[::-1]  # non-contiguous input is sent contiguous, same values
    out = Outgoing(FRAME, seq, frame, message)
    out.extra["i"] = 1234
    incoming = decode(_wire(encode(out)))
    got = decode_frame(incoming)
    assert incoming.kind == FRAME and incoming.seq == seq and incoming.ts == out.ts
    assert _same(frame, got)
    assert _same(message, incoming.message)


@pytest.mark.timeout(60)
@ROUND_TRIP
@given(kind=st.sampled_from([END, REPLY]), message=messages, seq=st.integers(-1, 2**40))
def test_end_and_reply_round_trip_exactly(kind, message, seq):
    incoming = decode(_wire(encode(Outgoing(kind, seq, message=message))))
    assert incoming.kind == kind and incoming.seq == seq and incoming.payload is None
    assert _same(message, incoming.message)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("dtype", [np.dtype([]), np.dtype("V0"), np.dtype(object)])
def test_unsendable_dtypes_fail_at_the_sender(dtype):
    frame = np.zeros(2, dtype=dtype)
    with pytest.raises(PayloadError):
        encode(Outgoing(FRAME, 0, frame))
    with pytest.raises(PayloadError):
        encode(Outgoing(REPLY, 0, message={"a": frame}))


# -- forged images: containers that declare more than they carry (issue 16, finding 4) -----
FORGE_LIMIT = 256 * 1024  # a small decoded-size budget, so every claim above it is cheap
MIB = 1 << 20


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, depth: int = 8, colour: int = 0, extra: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra
            + _chunk(b"IDAT", zlib.compress(bytes(64))) + _chunk(b"IEND", b""))


def _sof(height: int, width: int, marker: int = 0xC0, precision: int = 8,
         components: int = 1) -> bytes:
    body = bytes([precision]) + struct.pack(">HH", height, width) + bytes([components])
    body += b"".join(bytes([i + 1, 0x11, 0]) for i in range(components))
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body


def _jpeg(height: int, width: int, marker: int = 0xC0, scans: int = 1, **sof: Any) -> bytes:
    sos = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + _sof(height, width, marker, **sof) + sos * scans + bytes(16) + b"\xff\xd9"


def _bmp(width: int, height: int, bits: int = 24, compression: int = 0, dib: int = 40,
         pixels: int | None = None) -> bytes:
    stride = (width * bits + 31) // 32 * 4
    size = stride * abs(height) if pixels is None else pixels
    info = struct.pack("<IiiHHI", dib, width, height, 1, bits, compression) + bytes(dib - 20)
    return b"BM" + struct.pack("<IHHI", 14 + dib + size, 0, 0, 14 + dib) + info + bytes(size)


def _forged(codec: str, payload: bytes, shape: list[int], descr: str = "|u1",
            **extra: Any) -> list[bytes]:
    if codec == "jpeg":
        extra.setdefault("j", ["GRAY" if len(shape) == 2 else "BGR", False, False])
    return [_header(c=codec, d=descr, h=shape, **extra), payload]


# (parts, refused): refused over the budget (FrameRefusedError), else malformed
FORGED_CASES = {
    "png claims 16384^2, declared to match": (
        _forged("png", _png(16384, 16384), [16384, 16384]), True),
    "png claims more than declared": (_forged("png", _png(4096, 4096), [8, 8]), False),
    "png with a palette": (_forged("png", _png(8, 8, colour=3, extra=_chunk(b"PLTE", bytes(3))),
                                   [8, 8, 3]), False),
    "png with tRNS (would decode 4 channels)": (
        _forged("png", _png(8, 8, colour=2, extra=_chunk(b"tRNS", bytes(6))), [8, 8, 3]), False),
    "png with a compressed text chunk (a 1 MiB bomb)": (
        _forged("png", _png(8, 8, extra=_chunk(b"zTXt", b"k\x00\x00" + zlib.compress(bytes(MIB)))),
                [8, 8]), False),
    "png 16-bit declared uint8": (_forged("png", _png(8, 8, depth=16), [8, 8]), False),
    "png gray-alpha": (_forged("png", _png(8, 8, colour=4), [8, 8, 2]), False),
    "png chunk walk runs off the end": (
        _forged("png", _png(8, 8)[:33] + struct.pack(">I", 2**31) + b"tEXt", [8, 8]), False),
    "jpeg claims 16384^2, declared to match": (
        _forged("jpeg", _jpeg(16384, 16384), [16384, 16384]), True),
    "jpeg claims more than declared": (_forged("jpeg", _jpeg(4096, 4096), [8, 8]), False),
    "jpeg colour fits only at 3 bytes a pixel": (
        _forged("jpeg", _jpeg(256, 256, components=3), [256, 256, 3]), True),
    "jpeg progressive, coefficients over budget": (
        _forged("jpeg", _jpeg(256, 512, 0xC2, components=1), [256, 512]), True),
    "jpeg progressive, 200 scans": (_forged("jpeg", _jpeg(8, 8, 0xC2, scans=200), [8, 8]), True),
    "jpeg arithmetic coding": (_forged("jpeg", _jpeg(8, 8, 0xC9), [8, 8]), False),
    "jpeg lossless": (_forged("jpeg", _jpeg(8, 8, 0xC3), [8, 8]), False),
    "jpeg 12-bit": (_forged("jpeg", _jpeg(8, 8, precision=12), [8, 8]), False),
    "jpeg height from DNL (0)": (_forged("jpeg", _jpeg(0, 8), [8, 8]), False),
    "jpeg two frame headers": (
        _forged("jpeg", b"\xff\xd8" + _sof(8, 8) + _jpeg(4096, 4096)[2:], [8, 8]), False),
    "jpeg without a frame header": (_forged("jpeg", b"\xff\xd8\xff\xda\x00\x02", [8, 8]), False),
    "jpeg of fill bytes only": (_forged("jpeg", b"\xff\xd8" + b"\xff" * 4096, [8, 8]), False),
    "jpeg band claims more rows": (
        _forged("jpeg", _jpeg(4096, 64) + _jpeg(64, 64), [128, 64],
                b=[[64, len(_jpeg(4096, 64))], [64, len(_jpeg(64, 64))]]), False),
    "jpeg bands over budget together": (
        _forged("jpeg", _jpeg(256, 512, components=3) * 2, [512, 512, 3],
                b=[[256, len(_jpeg(256, 512, components=3))]] * 2), True),
    "bmp claims 16384^2 with no pixels": (
        _forged("bmp", _bmp(16384, 16384, pixels=0), [16384, 16384, 3]), True),
    "bmp claims 4096^2 with no pixels": (
        _forged("bmp", _bmp(4096, 4096, bits=8, pixels=0), [4096, 4096]), True),
    "bmp run-length encoded": (_forged("bmp", _bmp(8, 8, bits=8, compression=1), [8, 8]), False),
    "bmp core header": (_forged("bmp", _bmp(8, 8, dib=12 + 8), [8, 8, 3]), False),
    "bmp truncated pixels": (_forged("bmp", _bmp(64, 64, pixels=100), [64, 64, 3]), False),
    "bmp 32-bit declared 3 channels": (_forged("bmp", _bmp(8, 8, bits=32), [8, 8, 3]), False),
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", list(FORGED_CASES))
def test_forged_images_are_refused_before_decoding(name):
    parts, refused = FORGED_CASES[name]
    size = sum(len(p) for p in parts)
    with _traced() as peak, pytest.raises(WireFormatError) as info:
        decode_frame(decode(parts), FORGE_LIMIT)
    assert isinstance(info.value, FrameRefusedError) == refused, info.value
    assert peak[0] <= ALLOC_FACTOR * size + ALLOC_SLACK


def _real_image(codec: str, shape: tuple[int, ...]) -> bytes:
    import cv2

    image = np.arange(math.prod(shape), dtype=np.uint8).reshape(shape)
    return cv2.imencode({"png": ".png", "bmp": ".bmp", "jpeg": ".jpg"}[codec], image)[1].tobytes()


# byte offsets of the fields a forger rewrites (width/height, type fields)
_PNG_FIELDS = [(16, 4), (20, 4), (24, 1), (25, 1)]
_BMP_FIELDS = [(18, 4), (22, 4), (28, 2), (30, 4), (14, 4), (10, 4)]


@pytest.mark.timeout(60)
@FUZZ
@given(data=st.data())
def test_forged_containers_never_decode_beyond_the_budget(data):
    """Real images with header fields rewritten, declared shapes to match or not: refused, or
    a frame of exactly the declared shape within the budget, and never a larger allocation."""
    codec = data.draw(st.sampled_from(["png", "bmp", "jpeg"]))
    shape = data.draw(st.sampled_from([(8, 8), (16, 24, 3), (8, 8, 4)] if codec != "jpeg"
                                      else [(8, 8), (16, 24, 3)]))
    payload = bytearray(_real_image(codec, shape))
    dims = st.one_of(st.integers(0, 70000), st.sampled_from([2**31 - 1, 2**32 - 1, 1, 8]))
    if codec == "jpeg":
        at = payload.index(b"\xff\xc0")
        fields = [(at + 5, 2), (at + 7, 2), (at + 1, 1), (at + 4, 1), (at + 9, 1)]
    else:
        fields = _PNG_FIELDS if codec == "png" else _BMP_FIELDS
    for offset, width in data.draw(st.lists(st.sampled_from(fields), max_size=3)):
        value = data.draw(dims) % (1 << (8 * width))
        payload[offset:offset + width] = value.to_bytes(width, "little" if codec == "bmp"
                                                        else "big")
    declared = data.draw(st.one_of(st.just(list(shape)),
                                   st.lists(st.integers(1, 70000), min_size=2, max_size=3)))
    if codec == "png" and data.draw(st.booleans()):
        # keep the CRC right, so libpng itself would accept the forged IHDR
        payload[29:33] = struct.pack(">I", zlib.crc32(bytes(payload[12:29])))
    parts = _forged(codec, bytes(payload), declared)
    frame = None
    with _traced() as peak, contextlib.suppress(WireFormatError):
        frame = decode_frame(decode(parts), FORGE_LIMIT)
    assert peak[0] <= 2 * FORGE_LIMIT + ALLOC_FACTOR * len(payload) + ALLOC_SLACK
    if frame is not None:
        assert list(frame.shape) == declared and frame.nbytes <= FORGE_LIMIT
