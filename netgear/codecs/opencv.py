"""OpenCV's image formats (legacy ``compression_format``): '.jpg', '.png', '.bmp'.

The encoder writes the frame with ``cv2.imencode``; '.jpg' output is a plain JPEG, read
back by the JPEG decoder. PNG and BMP are decoded here, after the container's own header
(:mod:`netgear.codecs.imageinfo`) was checked against the declared frame and the receiver's
``max_decoded_bytes``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core.wire import Incoming, Outgoing
from ..errors import DependencyError, PayloadError, WireFormatError
from .base import Decoder, Encoder, Options
from .imageinfo import bmp_info, check_budget, png_info
from .jpeg import declared_frame

__all__ = ["FORMATS", "ImageFileDecoder", "OpenCVEncoder", "cv2_module"]

FORMATS = (".jpg", ".png", ".bmp")
# What each cv2 format keeps losslessly or at all: dtypes and channel counts.
_CV2_DTYPES = {".jpg": ("uint8",), ".png": ("uint8", "uint16"), ".bmp": ("uint8",)}
_CV2_CHANNELS = {".jpg": (1, 3), ".png": (1, 3, 4), ".bmp": (1, 3, 4)}


def cv2_module() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise DependencyError("compression_format needs OpenCV: "
                              "pip install opencv-python-headless") from exc
    return cv2


class ImageFileDecoder(Decoder):
    """PNG and BMP frames (stateless)."""

    def __init__(self, options: Options) -> None:
        pass

    def decode(self, incoming: Incoming, max_decoded_bytes: int) -> np.ndarray:
        return _decode_cv2(incoming, max_decoded_bytes)


class OpenCVEncoder(Encoder):
    """``compression_format`` with ``compression_param``."""

    def __init__(self, options: Options) -> None:
        self.format: str = options["compression_format"].strip().lower()
        self.params = _cv2_params(self.format, options.get("compression_param"))

    def encode(self, frame: np.ndarray, out: Outgoing) -> None:
        channels = 1 if frame.ndim == 2 else frame.shape[2]
        out.payload, out.codec = self._encode(frame, channels)
        if out.codec == "jpeg":
            # OpenCV writes BGR (or gray) JPEGs, decoded by the same JPEG decoder
            out.extra["j"] = ["GRAY" if channels == 1 else "BGR", False, False]

    def _encode(self, frame: np.ndarray, channels: int) -> tuple[Any, str]:
        fmt = self.format
        if (frame.dtype.name not in _CV2_DTYPES[fmt] or not frame.dtype.isnative
                or channels not in _CV2_CHANNELS[fmt]):
            raise PayloadError(
                f"{fmt} keeps {'/'.join(_CV2_DTYPES[fmt])} frames with "
                f"{'/'.join(map(str, _CV2_CHANNELS[fmt]))} channels; got {frame.dtype} with "
                f"{channels} channels")
        image = frame.reshape(frame.shape[:2]) if channels == 1 else frame
        ok, buf = cv2_module().imencode(fmt, image, self.params)
        if not ok:
            raise PayloadError(f"OpenCV could not encode the frame as {fmt}")
        return buf, {".jpg": "jpeg", ".png": "png", ".bmp": "bmp"}[fmt]



def _cv2_params(fmt: str, param: Any) -> list[int]:
    if param is None:
        return []
    if isinstance(param, int):
        cv2 = cv2_module()
        flag = cv2.IMWRITE_JPEG_QUALITY if fmt == ".jpg" else cv2.IMWRITE_PNG_COMPRESSION
        return [flag, param]
    return [int(v) for v in param]


def _decode_cv2(incoming: Incoming, limit: int) -> np.ndarray:
    shape, dtype = declared_frame(incoming, limit)
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
