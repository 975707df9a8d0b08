"""Frame compression: JPEG through simplejpeg, or JPEG/PNG/BMP through OpenCV.

The sender encodes in ``on_send``; the header names the codec (``c``: jpeg, png or
bmp) and the original frame (``d`` dtype, ``h`` shape, ``j`` JPEG colorspace and
decode flags), so any receiver decodes it back to the sender's exact shape without
being configured. The encoders and decoders live in :mod:`netgear.codecs`; this mode
owns the options and the sender's encoder (created at the first frame, closed here).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from ..codecs.jpeg import COLORSPACES, JpegEncoder, simplejpeg_module
from ..codecs.jpegstrips import MAX_BANDS
from ..codecs.opencv import FORMATS, OpenCVEncoder
from ..core.options import Option, in_range, one_of
from ..core.settings import Settings
from ..core.wire import FRAME, Outgoing, dtype_descr
from ..errors import OptionError, PayloadError
from .base import EncoderMode

__all__ = ["CompressionMode"]

logger = logging.getLogger(__name__)

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


class CompressionMode(EncoderMode):
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
        self._jpeg = bool(opts["jpeg_compression"])
        self._format = opts["compression_format"]
        if settings.receive_mode:
            if self._format is not None or opts["jpeg_compression_quality"] is not None:
                logger.debug("encoding options have no effect on a receiver: each frame's "
                             "header names its codec")
        elif self._format is not None:
            self._encoder = OpenCVEncoder(opts)  # checks compression_param now
        elif self._jpeg:
            simplejpeg_module()  # fail at construction, not at the first frame

    def on_send(self, out: Outgoing) -> None:
        frame = out.frame
        if out.kind != FRAME or frame is None:
            return
        if not self._jpeg and self._format is None:
            return
        if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3) or frame.size == 0:
            raise PayloadError("compression needs a non-empty HxW or HxWxC frame, got "
                               f"{getattr(frame, 'shape', type(frame).__name__)}")
        if self._encoder is None:
            self._encoder = JpegEncoder(self.settings.options)  # its band pool starts lazily
        self._encoder.encode(frame, out)
        out.extra["d"] = dtype_descr(frame.dtype)
        out.extra["h"] = list(frame.shape)
