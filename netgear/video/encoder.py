"""VideoEncoder: BGR/grayscale numpy frames in, H.264/HEVC packets out, one per frame.

Live-video settings: no B-frames and zero-latency tuning, so every ``encode()`` returns
the packet of the frame it was given (software encoders always; a hardware encoder may
hold a frame back, and then returns an empty list). Frames become full-range 4:2:0
pictures (swscale, area-averaged chroma); the stream is tagged full range, and the
decoder converts back with the same matrix, so colours round-trip.
"""

from __future__ import annotations

import logging
import math
import threading
from fractions import Fraction
from typing import Any

import cv2
import numpy as np

from ..codecs.jpegstrips import auto_threads
from ..errors import ClosedError, OptionError, PayloadError
from ._av import load_av
from .choice import SOFTWARE, Settings, choose, configure
from .meta import CODECS, MAX_SIDE, VideoMeta, VideoPacket, coded_size

__all__ = ["VideoEncoder", "check_frame"]

logger = logging.getLogger(__name__)

_FULL_RANGE = 2  # AVCOL_RANGE_JPEG: 0..255, what BGR frames use
_PARAMETER_SETS = {"h264": (7,), "hevc": (32, 33, 34)}  # SPS (+PPS); VPS/SPS/PPS


class VideoEncoder:
    """Encodes one stream of frames as H.264 or HEVC.

    Args:
        codec: ``"h264"`` or ``"hevc"``.
        bitrate: Target bits/s. ``None`` (default): constant quality (CRF 16 for H.264,
            18 for HEVC), which spends bits where the picture needs them.
        gop: Frames between forced keyframes. ``None``: about one second (``fps_hint``).
        preset: Encoder speed/size preset. ``None``: ``veryfast`` (x264),
            ``ultrafast`` (x265).
        encoder: ``"auto"`` (the first hardware encoder that opens, else libx264/libx265)
            or an FFmpeg encoder name such as ``"libx264"`` or ``"h264_v4l2m2m"``.
        fps_hint: The stream's frame rate, for rate control and the default ``gop``.
        threads: Encoder threads (x264/x265 slice threads: no added latency).
            ``None``: the cores this process may use, at most 4.

    Input frames: ``uint8`` ``(h, w, 3)`` BGR, or grayscale ``(h, w)`` / ``(h, w, 1)``
    (coded as luma with neutral chroma and returned in the same shape). Any size up to
    8192 per side; odd sides are padded and cropped back by the decoder. BGRA and other
    dtypes raise :class:`~netgear.errors.PayloadError`.

    Not thread-safe for concurrent ``encode()`` calls; ``force_keyframe()`` and ``close()``
    may be called from any thread.
    """

    def __init__(self, codec: str = "h264", bitrate: int | None = None, gop: int | None = None,
                 preset: str | None = None, encoder: str = "auto", fps_hint: float = 30.0,
                 threads: int | None = None) -> None:
        if codec not in CODECS:
            raise OptionError(f"video_codec={codec!r} is not supported; use 'h264' or 'hevc'",
                              key="video_codec")
        _check_int("video_bitrate", bitrate, 10_000, 1_000_000_000)
        _check_int("video_gop", gop, 1, 100_000)
        _check_int("threads", threads, 1, 64)
        if preset is not None and (not isinstance(preset, str) or not preset.isidentifier()):
            raise OptionError(f"video_preset={preset!r} must be a preset name such as "
                              "'veryfast'", key="video_preset")
        if not isinstance(encoder, str) or not encoder:
            raise OptionError(f"video_encoder={encoder!r} must be 'auto' or an FFmpeg "
                              "encoder name", key="video_encoder")
        if (isinstance(fps_hint, bool) or not isinstance(fps_hint, (int, float))
                or not math.isfinite(fps_hint) or not 0.1 <= fps_hint <= 1000):
            raise OptionError(f"fps_hint={fps_hint!r} must be a number of frames/s in "
                              "0.1..1000", key="fps_hint")
        self._av = load_av()
        fps = Fraction(fps_hint).limit_denominator(1001)
        self._settings = Settings(codec, bitrate, gop or max(1, round(fps_hint)), preset, fps,
                                  threads or auto_threads())
        self.codec = codec
        self.name = choose(self._settings, encoder)
        self._auto = encoder == "auto"
        self._lock = threading.Lock()
        self._ctx: Any = None
        self._scaler = self._av.video.reformatter.VideoReformatter()
        self._size: tuple[int, int] | None = None
        self._shapes: dict[int, tuple[int, ...]] = {}  # pts -> shape sent, until its packet
        self._pts = self._seq = 0
        self._force = False
        self._closed = False
        self.frames = self.keyframes = self.bytes = 0

    def encode(self, frame: np.ndarray, keyframe: bool = False) -> list[VideoPacket]:
        """Encode one frame; ``keyframe=True`` makes it an IDR picture.

        The first frame, and the first after a size change, is always a keyframe.
        """
        channels = check_frame(frame)
        shape = frame.shape
        size = coded_size(shape, self.codec)
        with self._lock:
            if self._closed:
                raise ClosedError("VideoEncoder is closed")
            out: list[VideoPacket] = []
            if size != self._size:
                if self._ctx is not None:  # frames a hardware encoder still holds
                    out += self._packets(self._ctx.encode(None))
                self._open(size)
            picture = _picture(self._av, self._scaler, frame, channels, size,
                               self._ctx.pix_fmt)
            picture.pts = self._pts
            if keyframe or self._force:
                picture.pict_type = self._av.video.frame.PictureType.I
                self._force = False
            self._shapes[self._pts] = shape
            self._pts += 1
            return out + self._packets(self._ctx.encode(picture))

    def force_keyframe(self) -> None:
        """Make the next encoded frame a keyframe (a receiver asked, or a client joined)."""
        with self._lock:
            self._force = True

    def close(self) -> None:
        """Free the encoder and stop its threads. Idempotent; waits at most for one frame."""
        with self._lock:
            self._closed = True
            self._ctx = self._scaler = None  # freeing them joins FFmpeg's/x264's threads
            self._shapes.clear()

    def _open(self, size: tuple[int, int]) -> None:
        try:
            ctx = self._new_context(self.name, size)
        except Exception as exc:  # av.FFmpegError: the encoder refuses this size
            software = SOFTWARE[self.codec]
            if not self._auto or self.name == software:
                raise PayloadError(f"{self.name} cannot encode {size[0]}x{size[1]} frames "
                                   f"({exc}); use video_encoder='auto' or "
                                   f"{software!r}") from exc
            # a hardware encoder that opened at the probe size may still refuse this one
            # (a Pi's V4L2 encoder stops at 1920x1080)
            logger.warning("video: %s cannot encode %dx%d frames (%s); using %s", self.name,
                           size[0], size[1], exc, software)
            self.name = software
            ctx = self._new_context(software, size)
        self._ctx, self._size = ctx, size
        self._shapes.clear()

    def _new_context(self, name: str, size: tuple[int, int]) -> Any:
        ctx = self._av.CodecContext.create(name, "w")
        configure(ctx, name, self._settings, *size)
        ctx.open()
        return ctx

    def _packets(self, packets: Any) -> list[VideoPacket]:
        width, height = self._size or (0, 0)
        out = []
        for packet in packets:
            shape = self._shapes.pop(packet.pts, None) if packet.pts is not None else None
            if shape is None:
                continue  # not a frame of this size (cannot happen with these settings)
            data = bytes(packet)
            key = bool(packet.is_keyframe)
            if key:
                data = _self_contained(data, self._ctx.extradata, self.codec)
                self.keyframes += 1
            out.append(VideoPacket(data, VideoMeta(self.codec, width, height, shape, key,
                                                   self._seq)))
            self._seq += 1
            self.frames += 1
            self.bytes += len(data)
        return out


def check_frame(frame: Any) -> int:
    """Validate a frame for video coding; returns its channel count (1 or 3)."""
    if not isinstance(frame, np.ndarray):
        raise PayloadError(f"video codecs encode numpy arrays, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise PayloadError(f"video codecs take uint8 frames, got {frame.dtype}: convert "
                           "(e.g. np.clip(frame, 0, 255).astype(np.uint8)) or send without "
                           "video_codec")
    channels = frame.shape[2] if frame.ndim == 3 else (1 if frame.ndim == 2 else 0)
    if channels == 4:
        raise PayloadError("video codecs carry no alpha channel: send frame[:, :, :3] (BGR), "
                           "or send without video_codec to keep alpha")
    if channels not in (1, 3):
        raise PayloadError(f"video codecs take (h, w), (h, w, 1) or (h, w, 3) frames, got "
                           f"shape {frame.shape}")
    height, width = frame.shape[:2]
    if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE):
        raise PayloadError(f"frame size {width}x{height} is outside 1..{MAX_SIDE} per side")
    return channels


def _picture(av: Any, scaler: Any, frame: np.ndarray, channels: int, size: tuple[int, int],
             pix_fmt: str) -> Any:
    """The frame as a full-range 4:2:0 picture of the coded ``size`` (edges repeated to pad)."""
    height, width = frame.shape[:2]
    pad_x, pad_y = size[0] - width, size[1] - height
    image = np.ascontiguousarray(frame)
    if channels == 1:
        image = image.reshape(height, width)
    if pad_x or pad_y:  # odd or tiny sides; repeating the edge costs few bits
        image = cv2.copyMakeBorder(image, 0, pad_y, 0, pad_x, cv2.BORDER_REPLICATE)
    if channels == 1:
        # luma is the gray image itself, bit for bit; chroma neutral
        rows = image.shape[0]
        i420 = np.full((rows * 3 // 2, image.shape[1]), 128, np.uint8)
        i420[:rows] = image
        picture = av.VideoFrame.from_ndarray(i420, format="yuv420p")
        picture.color_range = _FULL_RANGE
        if pix_fmt != "yuv420p":
            picture = scaler.reformat(picture, format=pix_fmt, threads=1)
        return picture
    # Area-averaged chroma and full range: on noisy camera content ~1.3 dB better than
    # point-sampled, limited-range conversion, for no extra bits.
    return scaler.reformat(av.VideoFrame.from_ndarray(image, format="bgr24"), format=pix_fmt,
                           interpolation="AREA", dst_color_range="JPEG", threads=1)


def _self_contained(data: bytes, extradata: bytes | None, codec: str) -> bytes:
    """Put the parameter sets in front of a keyframe that lacks them.

    x264/x265 repeat them in every keyframe; some hardware encoders (V4L2 on a Pi) emit
    them once, as extradata, and a late joiner could never start decoding.
    """
    if not extradata or not extradata.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")):
        return data
    wanted = _PARAMETER_SETS[codec]
    start = data.find(b"\x00\x00\x01")
    for _ in range(16):  # parameter sets come first, before the picture's slices
        if start < 0 or start + 3 >= len(data):
            break
        header = data[start + 3]
        nal = header & 0x1F if codec == "h264" else (header >> 1) & 0x3F
        if nal in wanted:
            return data
        if (codec == "h264" and 1 <= nal <= 5) or (codec == "hevc" and nal < 32):
            break  # the first slice: no parameter sets before it
        start = data.find(b"\x00\x00\x01", start + 3)
    return extradata + data


def _check_int(key: str, value: Any, low: int, high: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise OptionError(f"{key}={value!r} must be an integer in {low}..{high} (or None for "
                          "the default)", key=key if key.startswith("video") else None)
