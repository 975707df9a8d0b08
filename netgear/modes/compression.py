"""Frame compression: JPEG through simplejpeg, or JPEG/PNG/BMP through OpenCV.

The sender encodes in ``on_send``; the header names the codec (``c``: jpeg, png or
bmp) and the original frame (``d`` dtype, ``h`` shape, ``j`` JPEG colorspace and
decode flags), so any receiver decodes it back to the sender's exact shape without
being configured. The decoders live in :mod:`netgear.decoders`, registered when this
module is imported.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from ..decoders import COLORSPACES
from ..decoders import cv2_module as _cv2
from ..decoders import simplejpeg_module as _simplejpeg
from ..errors import OptionError, PayloadError
from ..jpegstrips import MAX_BANDS, WorkerPool, auto_threads, plan_bands, split
from ..options import Option, in_range, one_of
from ..settings import Settings
from ..wire import FRAME, Incoming, Outgoing, dtype_descr
from .base import Mode

__all__ = ["CompressionMode"]

logger = logging.getLogger(__name__)

FORMATS = (".jpg", ".png", ".bmp")
# What each cv2 format keeps losslessly or at all: dtypes and channel counts.
_CV2_DTYPES = {".jpg": ("uint8",), ".png": ("uint8", "uint16"), ".bmp": ("uint8",)}
_CV2_CHANNELS = {".jpg": (1, 3), ".png": (1, 3, 4), ".bmp": (1, 3, 4)}
_JPEG_SUBOPTIONS = ("jpeg_compression_quality", "jpeg_compression_fastdct",
                    "jpeg_compression_fastupsample", "jpeg_compression_colorsubsampling",
                    "jpeg_compression_threads")


def _check_jpeg(value: Any) -> str | None:
    if isinstance(value, str) and value.strip().upper() not in COLORSPACES:
        return "must be True, False or a colorspace: " + ", ".join(COLORSPACES)
    return None


def _check_format(value: str) -> str | None:
    return None if value.strip().lower() in FORMATS else "must be one of " + ", ".join(FORMATS)


def _check_param(value: Any) -> str | None:
    if isinstance(value, (list, tuple)) and (
        len(value) % 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return "a list must hold (cv2.IMWRITE_* flag, value) pairs of ints"
    return None


class CompressionMode(Mode):
    """Lossy JPEG (``jpeg_compression``) or OpenCV (``compression_format``) frame encoding."""

    key = "jpeg_compression"
    options: ClassVar[tuple[Option, ...]] = (
        Option("jpeg_compression", (bool, str), False,
               "True (BGR frames) or the frames' colorspace: encode frames as JPEG with "
               "simplejpeg. Off by default: frames travel lossless.", check=_check_jpeg),
        Option("jpeg_compression_quality", (float,), None,
               "JPEG quality, 10 to 100 (90 when unset). Needs jpeg_compression.",
               check=in_range(10, 100), nullable=True),
        Option("jpeg_compression_fastdct", (bool,), None,
               "Faster, slightly less exact DCT (True when unset). Needs jpeg_compression.",
               nullable=True),
        Option("jpeg_compression_fastupsample", (bool,), None,
               "Faster, blockier chroma upsampling when decoding (False when unset). Needs "
               "jpeg_compression.", nullable=True),
        Option("jpeg_compression_colorsubsampling", (str,), None,
               "JPEG chroma subsampling: '422' when unset (as vidgear: about a quarter smaller "
               "and faster than '444'), or '444', '420', '440', '411'. Needs jpeg_compression.",
               check=one_of("444", "422", "420", "440", "411"), nullable=True),
        Option("jpeg_compression_threads", (int,), None,
               "Cores a JPEG frame is coded on: a sender cuts each frame into this many "
               "horizontal bands encoded in parallel, a receiver decodes bands on up to this "
               "many threads. Unset: the usable cores, at most 4. 1 = one JPEG per frame. "
               "Needs jpeg_compression.",
               check=in_range(1, MAX_BANDS), nullable=True),
        Option("compression_format", (str,), None,
               "Encode frames with OpenCV: '.jpg' (lossy), '.png' or '.bmp' (lossless).",
               check=_check_format, nullable=True),
        Option("compression_param", (int, list, tuple), None,
               "With compression_format: an int (JPEG quality 0-100, PNG level 0-9) or a "
               "list of cv2.IMWRITE_* flag/value pairs.", check=_check_param, nullable=True),
    )

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        # any compression key turns the mode on, so validate() can refuse orphans loudly
        opts = settings.options
        return bool(opts.get(cls.key)) or any(
            opts.get(k) is not None for k in (*_JPEG_SUBOPTIONS, "compression_format",
                                              "compression_param"))

    @classmethod
    def validate(cls, settings: Settings, enabled: frozenset[str]) -> None:
        opts = settings.options
        jpeg, fmt = opts["jpeg_compression"], opts["compression_format"]
        if jpeg and fmt is not None:
            raise OptionError("jpeg_compression and compression_format both set: choose one "
                              "encoder", key="compression_format")
        for key in _JPEG_SUBOPTIONS:
            if opts[key] is not None and not jpeg:
                raise OptionError(f"option {key!r} needs jpeg_compression: vidgear compresses "
                                  "by default, netgear does not: add jpeg_compression=True",
                                  key=key)
        param = opts["compression_param"]
        if param is not None and fmt is None:
            raise OptionError("compression_param needs compression_format "
                              "('.jpg', '.png' or '.bmp')", key="compression_param")
        if isinstance(param, int) and not settings.receive_mode:
            fmt = fmt.strip().lower()
            limit = {".jpg": 100, ".png": 9}.get(fmt)
            if limit is None or not 0 <= param <= limit:
                allowed = f"0 to {limit}" if limit else "no int parameter"
                raise OptionError(f"compression_param={param} is invalid for {fmt}: it takes "
                                  f"{allowed}", key="compression_param")

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        opts = settings.options
        jpeg = opts["jpeg_compression"]
        self._jpeg = bool(jpeg)
        self._colorspace = jpeg.strip().upper() if isinstance(jpeg, str) else "BGR"
        quality = opts["jpeg_compression_quality"]
        self._quality = 90 if quality is None else round(quality)
        fastdct, fastups = opts["jpeg_compression_fastdct"], opts["jpeg_compression_fastupsample"]
        self._fastdct = True if fastdct is None else fastdct
        self._fastupsample = bool(fastups)
        self._subsampling = opts["jpeg_compression_colorsubsampling"] or "422"
        # receiver: explicitly given decode flags override what the sender asked for
        self._decode_flags = (fastdct, fastups)
        fmt = opts["compression_format"]
        self._format = fmt.strip().lower() if fmt is not None else None
        self._params: list[int] = []
        if settings.receive_mode:
            if self._format is not None or opts["jpeg_compression_quality"] is not None:
                logger.debug("encoding options have no effect on a receiver: each frame's "
                             "header names its codec")
        elif self._format is not None:
            self._params = _cv2_params(self._format, opts["compression_param"])
        elif self._jpeg:
            _simplejpeg()  # fail at construction, not at the first frame
        threads = opts["jpeg_compression_threads"]
        self._bands = auto_threads() if threads is None else threads
        self._pool = WorkerPool(self._bands, "netgear-jpeg-encode")

    def on_send(self, out: Outgoing) -> None:
        frame = out.frame
        if out.kind != FRAME or frame is None:
            return
        if not self._jpeg and self._format is None:
            return
        if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3) or frame.size == 0:
            raise PayloadError("compression needs a non-empty HxW or HxWxC frame, got "
                               f"{getattr(frame, 'shape', type(frame).__name__)}")
        channels = 1 if frame.ndim == 2 else frame.shape[2]
        if self._jpeg:
            out.payload, colorspace, layout = self._encode_jpeg(frame, channels)
            out.codec = "jpeg"
            out.extra["j"] = [colorspace, self._fastdct, self._fastupsample]
            if layout is not None:
                out.extra["b"] = layout
        else:
            out.payload, out.codec = self._encode_cv2(frame, channels)
            if out.codec == "jpeg":
                # OpenCV writes BGR (or gray) JPEGs, decoded by the same JPEG decoder
                out.extra["j"] = ["GRAY" if channels == 1 else "BGR", False, False]
        out.extra["d"] = dtype_descr(frame.dtype)
        out.extra["h"] = list(frame.shape)

    def on_recv(self, incoming: Incoming, verdict: str) -> str:
        meta = incoming.header.get("j")
        if incoming.codec == "jpeg" and isinstance(meta, list) and len(meta) == 3:
            fastdct, fastups = self._decode_flags
            meta[1] = meta[1] if fastdct is None else fastdct
            meta[2] = meta[2] if fastups is None else fastups
        return verdict

    def close(self) -> None:
        self._pool.close()

    def _encode_jpeg(self, frame: np.ndarray,
                     channels: int) -> tuple[bytes, str, list[list[int]] | None]:
        if frame.dtype != np.uint8:
            raise PayloadError(f"JPEG needs uint8 frames, got {frame.dtype}; convert the frame "
                               "or use compression_format='.png' (uint8/uint16, lossless)")
        cs = self._colorspace
        if channels == 1:
            cs = "GRAY"  # a one-channel frame can only be gray, whatever the option says
        elif len(cs) != channels:
            hint = " ('.png' keeps alpha)" if channels == 4 else ""
            raise PayloadError(f"jpeg_compression={cs!r} expects {len(cs)}-channel frames, got "
                               f"{channels} channels; set jpeg_compression to the frame's "
                               f"colorspace or use compression_format{hint}")
        image = np.ascontiguousarray(frame).reshape(frame.shape[0], frame.shape[1], channels)
        sub = "Gray" if cs == "GRAY" else self._subsampling
        encode_jpeg = _simplejpeg().encode_jpeg

        def encode(band: np.ndarray) -> bytes:
            return encode_jpeg(band, quality=self._quality, colorspace=cs,
                               colorsubsampling=sub, fastdct=self._fastdct)

        rows = plan_bands(image.shape[0], self._bands, sub)
        if len(rows) == 1:
            return encode(image), cs, None
        parts = self._pool.map(encode, split(image, rows))
        return b"".join(parts), cs, [[r, len(p)] for r, p in zip(rows, parts)]

    def _encode_cv2(self, frame: np.ndarray, channels: int) -> tuple[Any, str]:
        fmt = self._format
        assert fmt is not None
        if (frame.dtype.name not in _CV2_DTYPES[fmt] or not frame.dtype.isnative
                or channels not in _CV2_CHANNELS[fmt]):
            raise PayloadError(
                f"{fmt} keeps {'/'.join(_CV2_DTYPES[fmt])} frames with "
                f"{'/'.join(map(str, _CV2_CHANNELS[fmt]))} channels; got {frame.dtype} with "
                f"{channels} channels")
        image = frame.reshape(frame.shape[:2]) if channels == 1 else frame
        ok, buf = _cv2().imencode(fmt, image, self._params)
        if not ok:
            raise PayloadError(f"OpenCV could not encode the frame as {fmt}")
        return buf, {".jpg": "jpeg", ".png": "png", ".bmp": "bmp"}[fmt]


def _cv2_params(fmt: str, param: Any) -> list[int]:
    if param is None:
        return []
    if isinstance(param, int):
        cv2 = _cv2()
        flag = cv2.IMWRITE_JPEG_QUALITY if fmt == ".jpg" else cv2.IMWRITE_PNG_COMPRESSION
        return [flag, param]
    return [int(v) for v in param]
