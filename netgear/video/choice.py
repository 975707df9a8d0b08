"""Which FFmpeg encoder a :class:`~netgear.video.VideoEncoder` uses, and how it is set up.

``encoder="auto"`` tries the hardware encoders FFmpeg knows for the codec, in the order
below, and keeps the first one that really opens and encodes a small frame here: having
the encoder compiled in says nothing about the device (no GPU, no /dev/video*, no driver),
and opening is the only honest test. libx264/libx265 (bundled with PyAV) always open.
Probe results are cached per process, so only the first encoder pays for them.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..errors import OptionError
from ._av import load_av

logger = logging.getLogger(__name__)

SOFTWARE = {"h264": "libx264", "hevc": "libx265"}
HARDWARE = {
    # Raspberry Pi 4 (V4L2 mem2mem), NVIDIA NVENC, Intel Quick Sync, VA-API
    "h264": ("h264_v4l2m2m", "h264_nvenc", "h264_qsv", "h264_vaapi"),
    "hevc": ("hevc_v4l2m2m", "hevc_nvenc", "hevc_qsv", "hevc_vaapi"),
}
# Rate control when no bitrate is given: constant quality. x264's own default (CRF 23)
# smooths camera texture and noise to ~33 dB PSNR; CRF 16 keeps >= 35 dB on noisy camera
# content (benchmarks/codecs_bench.py) at under a tenth of JPEG q90's bytes. x265 needs a
# slightly higher CRF for the same quality.
DEFAULT_CRF = {"h264": 16, "hevc": 18}
DEFAULT_PRESET = {"libx264": "veryfast", "libx265": "ultrafast"}
_PROBE_SIZE = (256, 144)  # small, yet above the minimum size of every hardware encoder

_probed: dict[str, bool] = {}
_probe_lock = threading.Lock()


@dataclass(frozen=True)
class Settings:
    codec: str
    bitrate: int | None
    gop: int
    preset: str | None
    fps: Fraction
    threads: int


def fallback_bitrate(width: int, height: int, fps: Fraction) -> int:
    """Bits/s for encoders without constant-quality mode: 0.1 bit per pixel, at least 200k.

    Live camera content at this rate looks close to CRF 23 (1280x720 at 15 fps: 1.4 Mbit/s).
    """
    return max(200_000, int(width * height * float(fps) * 0.1))


def configure(ctx: Any, name: str, settings: Settings, width: int, height: int) -> None:
    """Low-latency setup of an unopened encoder context: no B-frames, one packet per frame."""
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = pixel_format(ctx.codec)
    ctx.color_range = 2  # full range (JPEG): what the encoder's pictures hold
    ctx.time_base = 1 / settings.fps
    ctx.framerate = settings.fps
    ctx.gop_size = settings.gop
    ctx.max_b_frames = 0
    ctx.thread_count = settings.threads
    bitrate = settings.bitrate
    if bitrate is not None:
        ctx.bit_rate = bitrate
    options: dict[str, str] = {}
    family = name.split("_")[-1] if "_" in name else name
    if name in ("libx264", "libx265"):
        options.update({"preset": settings.preset or DEFAULT_PRESET[name],
                        "tune": "zerolatency", "forced-idr": "1"})
        if bitrate is None:
            options["crf"] = str(DEFAULT_CRF[settings.codec])
        elif name == "libx264":  # a one-second VBV buffer keeps the rate near the target
            options.update({"maxrate": str(bitrate), "bufsize": str(bitrate)})
        if name == "libx265":
            # x265 prints to stderr on its own; library code stays quiet
            kbps = None if bitrate is None else bitrate // 1000
            vbv = "" if kbps is None else f":vbv-maxrate={kbps}:vbv-bufsize={kbps}"
            options["x265-params"] = "log-level=none" + vbv
    elif family == "nvenc":
        options.update({"tune": "ull", "zerolatency": "1", "forced-idr": "1", "delay": "0",
                        "preset": settings.preset or "p2"})
        if bitrate is None:
            options.update({"rc": "vbr", "cq": str(DEFAULT_CRF[settings.codec])})
        else:
            options["rc"] = "cbr"
    elif family == "qsv":
        options.update({"forced_idr": "1", "async_depth": "1",
                        "preset": settings.preset or "veryfast"})
    if bitrate is None and not (name.startswith("lib") or family == "nvenc"):
        ctx.bit_rate = fallback_bitrate(width, height, settings.fps)
    ctx.options = options


def pixel_format(codec: Any) -> str:
    """yuv420p where the encoder takes it (software, NVENC, V4L2), else nv12 (QSV)."""
    formats = [f.name for f in (codec.video_formats or ())]
    if not formats or "yuv420p" in formats:
        return "yuv420p"
    return "nv12" if "nv12" in formats else formats[0]


def check_name(codec: str, name: str) -> None:
    """An explicit ``video_encoder`` must be an FFmpeg encoder of ``codec`` in this PyAV."""
    av = load_av()
    try:
        found = av.codec.Codec(name, "w")
    except Exception as exc:  # UnknownCodecError; PyAV has no narrower public base
        raise OptionError(
            f"video_encoder={name!r} is not an encoder in this FFmpeg build; use 'auto' or "
            f"{SOFTWARE[codec]!r}", key="video_encoder") from exc
    if found.id != av.codec.Codec(codec, "w").id:
        raise OptionError(f"video_encoder={name!r} does not encode {codec}; use 'auto' or "
                          f"{SOFTWARE[codec]!r}", key="video_encoder")


def probe(name: str, settings: Settings) -> bool:
    """True if ``name`` opens and encodes a small frame on this machine (cached)."""
    with _probe_lock:
        if name not in _probed:
            _probed[name] = _try_open(name, settings)
        return _probed[name]


def choose(settings: Settings, encoder: str) -> str:
    """The encoder to use: ``encoder`` itself if it opens, or the first that opens for 'auto'."""
    if encoder != "auto":
        check_name(settings.codec, encoder)
        if not probe(encoder, settings):
            raise OptionError(f"video_encoder={encoder!r} does not open on this machine (no "
                              f"device or driver); use 'auto' or {SOFTWARE[settings.codec]!r}",
                              key="video_encoder")
        return encoder
    for name in HARDWARE[settings.codec]:
        if probe(name, settings):
            logger.info("video: using hardware encoder %s", name)
            return name
    name = SOFTWARE[settings.codec]
    logger.info("video: no hardware %s encoder opens here, using %s", settings.codec, name)
    return name


def _try_open(name: str, settings: Settings) -> bool:
    av = load_av()
    try:
        ctx = av.CodecContext.create(name, "w")
        configure(ctx, name, settings, *_PROBE_SIZE)
        ctx.open()
        frame = av.VideoFrame(*_PROBE_SIZE, "yuv420p")
        if ctx.pix_fmt != "yuv420p":
            frame = frame.reformat(format=ctx.pix_fmt)
        frame.pts = 0
        packets = list(ctx.encode(frame)) + list(ctx.encode(None))
    except Exception as exc:  # any failure (FFmpegError, OSError, ValueError) means "not here"
        logger.debug("video: encoder %s does not open here: %s", name, exc)
        return False
    return bool(packets)
