"""Decoders of compressed frames (JPEG, PNG, BMP), registered with :mod:`netgear.codecs`.

The header names the codec and the original frame (``d`` dtype, ``h`` shape, ``j`` JPEG
colorspace and decode flags, ``b`` JPEG bands). Each decoder checks the declared shape,
then the container's own header (:mod:`netgear.imageinfo`), against the receiver's
``max_decoded_bytes`` before the decoder allocates anything, and checks that the two agree.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .codecs import register_decoder
from .errors import DependencyError, FrameRefusedError, WireFormatError
from .imageinfo import ImageInfo, bmp_info, check_budget, jpeg_info, png_info
from .jpegstrips import check_layout
from .wire import Incoming

__all__ = ["COLORSPACES", "cv2_module", "simplejpeg_module"]

COLORSPACES = ("BGR", "RGB", "GRAY", "BGRX", "RGBX", "XBGR", "XRGB",
               "BGRA", "RGBA", "ABGR", "ARGB", "CMYK")


def simplejpeg_module() -> Any:
    try:
        import simplejpeg
    except ImportError as exc:
        raise DependencyError("jpeg_compression needs simplejpeg: pip install simplejpeg") from exc
    return simplejpeg


def cv2_module() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise DependencyError("compression_format needs OpenCV: "
                              "pip install opencv-python-headless") from exc
    return cv2


def _declared(incoming: Incoming, limit: int) -> tuple[tuple[int, ...], np.dtype]:
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


def _decode_jpeg(incoming: Incoming, limit: int) -> np.ndarray:
    shape, dtype = _declared(incoming, limit)
    meta = incoming.header.get("j")
    if (dtype != np.uint8 or not isinstance(meta, list) or len(meta) != 3
            or meta[0] not in COLORSPACES or not all(isinstance(f, bool) for f in meta[1:])):
        raise WireFormatError(f"bad JPEG description {meta!r}")
    colorspace, fastdct, fastupsample = meta
    channels = 1 if len(shape) == 2 else shape[2]
    if channels != len(colorspace.replace("GRAY", "G")):
        raise WireFormatError(f"JPEG colorspace {colorspace} does not fit shape {list(shape)}")
    simplejpeg = simplejpeg_module()
    layout = incoming.header.get("b")
    if layout is not None:
        return _decode_bands(incoming, layout, shape, channels, meta, limit)
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
                  meta: list[Any], limit: int) -> np.ndarray:
    """Decode each band straight into its rows of one array, on the receiver's pool."""
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

    pool = incoming.pool
    if pool is None:
        for job in jobs:
            decode(job)
    else:
        pool.map(decode, jobs)
    return image.reshape(shape)


def _decode_cv2(incoming: Incoming, limit: int) -> np.ndarray:
    shape, dtype = _declared(incoming, limit)
    data = memoryview(incoming.payload).cast("B")
    info = (png_info if incoming.codec == "png" else bmp_info)(data)
    channels = 1 if len(shape) == 2 else shape[2]
    if (info.height, info.width, info.channels, info.itemsize) != (*shape[:2], channels,
                                                                   dtype.itemsize):
        raise WireFormatError(f"{incoming.codec} image of {info.height}x{info.width}x"
                              f"{info.channels} ({8 * info.itemsize}-bit) does not match "
                              f"header {dtype} {list(shape)}")
    check_budget(info, limit, f"a {incoming.codec} frame")
    cv2 = cv2_module()
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != dtype or image.size != math.prod(shape):
        raise WireFormatError(f"{incoming.codec} payload does not decode to {dtype} "
                              f"{list(shape)}")
    return image.reshape(shape)


register_decoder("jpeg", _decode_jpeg)
register_decoder("png", _decode_cv2)
register_decoder("bmp", _decode_cv2)
