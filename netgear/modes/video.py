"""Video mode: frames travel as H.264 or HEVC (``video_codec``), through PyAV.

The sender owns one encoder for its stream (shared by every peer it feeds), created at
construction so a missing PyAV or a bad ``video_encoder`` fails before any socket opens.
The receiver needs no option: each frame's header names its codec, and the receiver
keeps one stateful decoder per stream (:mod:`netgear.codecs.video`). Keyframes come on
the first frame, after a size change, on request (:meth:`request_keyframe`, which the
sender calls when a receiver's reply asks, after a Lazy Pirate rebuild, and when a
subscriber or client joins) and by the clock (``video_gop``).
"""

from __future__ import annotations

import logging
from typing import ClassVar

from ..codecs.video import VideoCodecEncoder
from ..core.options import Option, in_range, one_of
from ..core.settings import Settings
from ..core.wire import FRAME, Outgoing
from ..errors import OptionError
from ..video import CODECS
from .base import EncoderMode

__all__ = ["VideoMode"]

logger = logging.getLogger(__name__)

_SUBOPTIONS = ("video_bitrate", "video_gop", "video_preset")


def _check_encoder(value: str) -> str | None:
    if not value.strip() or not value.replace("_", "").isalnum():
        return "must be 'auto' or an FFmpeg encoder name such as 'libx264' or 'h264_nvenc'"
    return None


def _check_preset(value: str) -> str | None:
    return None if value.isidentifier() else "must be a preset name such as 'veryfast'"


class VideoMode(EncoderMode):
    """``video_codec="h264"`` or ``"hevc"``: the sender encodes frames as video."""

    key = "video_codec"
    keyframes = True
    options: ClassVar[tuple[Option, ...]] = (
        Option("video_codec", (str,), None,
               "Sender: 'h264' or 'hevc' encodes frames as video through PyAV (the extra "
               "netgear[video]); a few percent of JPEG's bytes on camera content. Receivers "
               "need no option: they read the codec from each frame.",
               check=one_of(*CODECS), nullable=True),
        Option("video_bitrate", (int,), None,
               "With video_codec: target bits/s (10000 to 10**9). None: constant quality "
               "(CRF 16 for H.264, 18 for HEVC, >= 35 dB PSNR on camera content).",
               check=in_range(10_000, 1_000_000_000), nullable=True),
        Option("video_gop", (int,), None,
               "With video_codec: frames between forced keyframes, the longest a late "
               "PUB/SUB subscriber waits for a picture. None: a keyframe every second on PUB/SUB; "
               "every 10 s on REQ/REP and PAIR, whose receivers ask for one when they need "
               "it.",
               check=in_range(1, 100_000), nullable=True),
        Option("video_preset", (str,), None,
               "With video_codec: the encoder's speed/size preset. None: 'veryfast' "
               "(libx264), 'ultrafast' (libx265).", check=_check_preset, nullable=True),
        Option("video_encoder", (str,), "auto",
               "With video_codec: 'auto' uses the first hardware encoder that opens here "
               "(V4L2 on a Pi, NVENC, QSV, VA-API) and falls back to libx264/libx265; or an "
               "FFmpeg encoder name.", check=_check_encoder),
    )

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        # any video key turns the mode on, so validate() can refuse orphans loudly
        opts = settings.options
        return (opts.get(cls.key) is not None or opts.get("video_encoder", "auto") != "auto"
                or any(opts.get(k) is not None for k in _SUBOPTIONS))

    @classmethod
    def validate(cls, settings: Settings, enabled: frozenset[str]) -> None:
        opts = settings.options
        if opts["video_codec"] is None:
            orphan = next((k for k in _SUBOPTIONS if opts[k] is not None), "video_encoder")
            raise OptionError(f"option {orphan!r} needs video_codec='h264' or 'hevc'",
                              key=orphan)
        for other in ("jpeg_compression", "compression_format"):
            if opts.get(other):
                raise OptionError(f"video_codec and {other} both set: a frame has one codec; "
                                  f"drop {other} (video_codec compresses far more)", key=other)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        if settings.receive_mode:
            logger.debug("video options have no effect on a receiver: each frame's header "
                         "names its codec")
            return
        # REQ/REP multi-client spreads consecutive frames over the clients: none of them
        # holds the previous frame a P-frame builds on, so each frame must stand alone.
        opts = settings.options
        intra = bool(opts.get("multiclient_mode")) and settings.policy.replies \
            and len(settings.ports) > 1
        # REQ/REP and PAIR receivers ask for a keyframe when they need one (reply/notice)
        self._encoder = VideoCodecEncoder(opts, intra_only=intra,
                                          receivers_ask=settings.policy.two_way)
        logger.debug("video: %s through %s%s", opts["video_codec"], self._encoder.name,
                     " (every frame a keyframe: frames alternate between clients)"
                     if intra else "")

    def on_send(self, out: Outgoing) -> None:
        if out.kind != FRAME or out.frame is None or self._encoder is None:
            return
        self._encoder.encode(out.frame, out)
