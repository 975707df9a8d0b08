"""JPEG: simplejpeg encoder and decoder, whole frames or parallel bands (jpegstrips).

The header names the original frame (``d`` dtype, ``h`` shape, ``j`` colorspace and
decode flags, ``b`` bands). The decoder checks the declared shape, then the JPEG's own
header (:mod:`netgear.codecs.imageinfo`), against the receiver's ``max_decoded_bytes`` before
it allocates anything, and checks that the two agree. Each encoder and decoder owns the
thread pool its bands are coded on, started at first need and joined by ``close()``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core.wire import Incoming, Outgoing
from ..errors import DependencyError, FrameRefusedError, PayloadError, WireFormatError
from .base import Decoder, Encoder, Options
from .imageinfo import ImageInfo, check_budget, jpeg_info
from .jpegstrips import WorkerPool, auto_threads, check_layout, plan_bands, split

__all__ = ["COLORSPACES", "JpegDecoder", "JpegEncoder", "declared_frame", "simplejpeg_module"]

COLORSPACES = ("BGR", "RGB", "GRAY", "BGRX", "RGBX", "XBGR", "XRGB",
               "BGRA", "RGBA", "ABGR", "ARGB", "CMYK")


def simplejpeg_module() -> Any:
    try:
        import simplejpeg
    except ImportError as exc:
        raise DependencyError("jpeg_compression needs simplejpeg: pip install simplejpeg") from exc
    return simplejpeg


def _threads(options: Options) -> int:
    threads = options.get("jpeg_compression_threads")
    return auto_threads() if threads is None else threads


class JpegDecoder(Decoder):
    """One stream's JPEG decoder; banded frames are decoded on its own pool."""

    def __init__(self, options: Options) -> None:
        self.flags = (options.get("jpeg_compression_fastdct"),
                      options.get("jpeg_compression_fastupsample"))
        self.pool = WorkerPool(_threads(options), "netgear-jpeg-decode")

    def decode(self, incoming: Incoming, max_decoded_bytes: int) -> np.ndarray:
        return _decode_jpeg(incoming, max_decoded_bytes, self.pool, self.flags)

    def close(self) -> None:
        self.pool.close()


class JpegEncoder(Encoder):
    """simplejpeg, cutting each frame into bands coded in parallel on its own pool."""

    def __init__(self, options: Options) -> None:
        jpeg = options.get("jpeg_compression")
        self.colorspace = jpeg.strip().upper() if isinstance(jpeg, str) else "BGR"
        quality = options.get("jpeg_compression_quality")
        self.quality = 90 if quality is None else round(quality)
        fastdct = options.get("jpeg_compression_fastdct")
        self.fastdct = True if fastdct is None else fastdct
        self.fastupsample = bool(options.get("jpeg_compression_fastupsample"))
        self.subsampling = options.get("jpeg_compression_colorsubsampling") or "422"
        self.bands = _threads(options)
        self.pool = WorkerPool(self.bands, "netgear-jpeg-encode")
        self.encode_jpeg = simplejpeg_module().encode_jpeg

    def encode(self, frame: np.ndarray, out: Outgoing) -> None:
        channels = 1 if frame.ndim == 2 else frame.shape[2]
        out.payload, colorspace, layout = self._encode(frame, channels)
        out.codec = "jpeg"
        out.extra["j"] = [colorspace, self.fastdct, self.fastupsample]
        if layout is not None:
            out.extra["b"] = layout

    def close(self) -> None:
        self.pool.close()

    def _encode(self, frame: np.ndarray,
                channels: int) -> tuple[bytes, str, list[list[int]] | None]:
        if frame.dtype != np.uint8:
            raise PayloadError(f"JPEG needs uint8 frames, got {frame.dtype}; convert the frame "
                               "or use compression_format='.png' (uint8/uint16, lossless)")
        cs = self.colorspace
        if channels == 1:
            cs = "GRAY"  # a one-channel frame can only be gray, whatever the option says
        elif len(cs) != channels:
            hint = " ('.png' keeps alpha)" if channels == 4 else ""
            raise PayloadError(f"jpeg_compression={cs!r} expects {len(cs)}-channel frames, got "
                               f"{channels} channels; set jpeg_compression to the frame's "
                               f"colorspace or use compression_format{hint}")
        image = np.ascontiguousarray(frame).reshape(frame.shape[0], frame.shape[1], channels)
        sub = "Gray" if cs == "GRAY" else self.subsampling
        encode_jpeg = self.encode_jpeg

        def encode(band: np.ndarray) -> bytes:
            return encode_jpeg(band, quality=self.quality, colorspace=cs,
                               colorsubsampling=sub, fastdct=self.fastdct)

        rows = plan_bands(image.shape[0], self.bands, sub)
        if len(rows) == 1:
            return encode(image), cs, None
        parts = self.pool.map(encode, split(image, rows))
        return b"".join(parts), cs, [[r, len(p)] for r, p in zip(rows, parts)]


def declared_frame(incoming: Incoming, limit: int) -> tuple[tuple[int, ...], np.dtype]:
    """The original frame's shape and dtype from the header, checked before any decoding."""
    header = incoming.header
    shape, descr = header.get("h"), header.get("d")
    if (not isinstance(shape, list) or len(shape) not in (2, 3)
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
            or descr not in ("|u1", np.dtype(np.uint16).str)):
        raise WireFormatError(f"bad shape {shape!r} or dtype {descr!r} for a "
                              f"{incoming.codec} frame")
    dtype = np.dtype(descr)
    size = math.prod(shape) * dtype.itemsize
    if size > limit:
        raise FrameRefusedError(f"refused a {incoming.codec} frame of shape {shape}: "
                                f"{size} bytes decoded, over max_decoded_bytes={limit}")
    return tuple(shape), dtype



def _decode_jpeg(incoming: Incoming, limit: int, pool: WorkerPool | None,
                 flags: tuple[bool | None, bool | None]) -> np.ndarray:
    shape, dtype = declared_frame(incoming, limit)
    meta = incoming.header.get("j")
    if (dtype != np.uint8 or not isinstance(meta, list) or len(meta) != 3
            or meta[0] not in COLORSPACES or not all(isinstance(f, bool) for f in meta[1:])):
        raise WireFormatError(f"bad JPEG description {meta!r}")
    # a receiver's own decode flags override what the sender asked for
    meta = [meta[0], *(asked if mine is None else mine for asked, mine in zip(meta[1:], flags))]
    colorspace, fastdct, fastupsample = meta
    channels = 1 if len(shape) == 2 else shape[2]
    if channels != len(colorspace.replace("GRAY", "G")):
        raise WireFormatError(f"JPEG colorspace {colorspace} does not fit shape {list(shape)}")
    simplejpeg = simplejpeg_module()
    layout = incoming.header.get("b")
    if layout is not None:
        return _decode_bands(incoming, layout, shape, channels, meta, limit, pool)
    data = memoryview(incoming.payload).cast("B")
    info = jpeg_info(data)
    if (info.height, info.width) != shape[:2]:
        raise WireFormatError(f"JPEG is {info.height}x{info.width}, header says {list(shape)}")
    check_budget(info, limit, "a jpeg frame")
    try:
        height, width = simplejpeg.decode_jpeg_header(data)[:2]
        if (height, width) != shape[:2]:
            raise WireFormatError(f"JPEG is {height}x{width}, header says {list(shape)}")
        image = simplejpeg.decode_jpeg(data, colorspace=colorspace,
                                       fastdct=fastdct, fastupsample=fastupsample)
    except ValueError as exc:
        raise WireFormatError(f"JPEG payload cannot be decoded: {exc}") from exc
    return image.reshape(shape)


def _decode_bands(incoming: Incoming, layout: Any, shape: tuple[int, ...], channels: int,
                  meta: list[Any], limit: int, pool: WorkerPool | None) -> np.ndarray:
    """Decode each band straight into its rows of one array, on the decoder's pool."""
    simplejpeg = simplejpeg_module()
    colorspace, fastdct, fastupsample = meta
    payload = memoryview(incoming.payload).cast("B")
    bands = check_layout(layout, shape[0], payload.nbytes)
    pieces, cost, start = [], 0, 0
    for rows, size in bands:
        data = payload[start:start + size]
        info = jpeg_info(data)
        if (info.height, info.width) != (rows, shape[1]):
            raise WireFormatError(f"a JPEG band is {info.height}x{info.width}, not "
                                  f"{rows}x{shape[1]}")
        pieces.append(data)
        cost, start = cost + info.cost, start + size
    # the bands are decoded at once, each with its own work buffers
    check_budget(ImageInfo(shape[0], shape[1], channels, 1, cost), limit, "a banded jpeg frame")
    image = np.empty((shape[0], shape[1], channels), np.uint8)
    jobs, top = [], 0
    for (rows, _), data in zip(bands, pieces):
        jobs.append((data, image[top:top + rows], rows))
        top += rows

    def decode(job: tuple[memoryview, np.ndarray, int]) -> None:
        data, target, rows = job
        try:
            if tuple(simplejpeg.decode_jpeg_header(data)[:2]) != (rows, shape[1]):
                raise WireFormatError(f"a JPEG band is not {rows}x{shape[1]}")
            simplejpeg.decode_jpeg(data, colorspace=colorspace, fastdct=fastdct,
                                   fastupsample=fastupsample, buffer=target)
        except ValueError as exc:
            raise WireFormatError(f"JPEG band cannot be decoded: {exc}") from exc

    if pool is None:
        for job in jobs:
            decode(job)
    else:
        pool.map(decode, jobs)
    return image.reshape(shape)
