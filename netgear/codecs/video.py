"""H.264/HEVC as a NetGear codec: the :mod:`netgear.video` engine behind the codec interface.

The payload is one encoded picture (Annex B); header key ``y`` carries its
:class:`~netgear.video.VideoMeta` (coded size, the shape that was sent, keyframe flag,
packet number), which the receiver validates before any decoder or buffer is sized from
it. The decoder is stateful: it returns ``None`` (the receiver skips the message and
counts it) until a keyframe gives it a reference, and a malformed or undecodable packet
raises :class:`WireFormatError` after resetting it, so no broken picture is ever returned.
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import numpy as np

from ..core.wire import Incoming, Outgoing
from ..errors import FrameRefusedError, PayloadError, WireFormatError
from ..video import VideoDecoder, VideoEncoder, VideoMeta
from .base import Decoder, Encoder, Options

__all__ = ["META_KEY", "VideoCodecDecoder", "VideoCodecEncoder", "packet_meta"]

META_KEY = "y"  # header key of the packet's VideoMeta
# Without video_gop, a keyframe at least this often (sender's clock): a late subscriber
# waits about this long whatever the frame rate. The engine's own GOP is only a backstop.
KEYFRAME_INTERVAL = 1.0
# ... and where every receiver can ask for one (REQ/REP, PAIR): they do when they lack a
# reference, so the clock is only a backstop. Each keyframe is a burst the size of a JPEG
# frame, which on a slow link costs latency (the 20 Mbit/s field benchmark: p95 400-575 ms
# with one a second against 190-245 ms with one per 20 s).
ASKED_KEYFRAME_INTERVAL = 10.0
_BACKSTOP_GOP = 600


def packet_meta(incoming: Incoming) -> VideoMeta:
    """The packet's validated meta; WireFormatError when missing, forged or inconsistent."""
    meta = VideoMeta.from_dict(incoming.header.get(META_KEY))
    if meta.codec != incoming.codec:
        raise WireFormatError(f"video header says {meta.codec}, frame header says "
                              f"{str(incoming.codec)[:20]}")
    return meta


class VideoCodecEncoder(Encoder):
    """One :class:`VideoEncoder` for the sender's stream (shared by every peer it feeds).

    ``intra_only``: every frame is a keyframe, for senders that spread consecutive frames
    over different receivers (REQ/REP multi-client), where no receiver sees a P-frame's
    reference.
    """

    def __init__(self, options: Options, intra_only: bool = False,
                 receivers_ask: bool = False) -> None:
        gop = options.get("video_gop")
        self._receivers_ask = receivers_ask
        self._timed = gop is None and not intra_only
        self._engine = VideoEncoder(options["video_codec"], bitrate=options.get("video_bitrate"),
                                    gop=_BACKSTOP_GOP if self._timed else gop,
                                    preset=options.get("video_preset"),
                                    encoder=options.get("video_encoder") or "auto")
        self._intra_only = intra_only
        self._last_key = -math.inf

    @property
    def name(self) -> str:
        """The FFmpeg encoder in use (e.g. ``libx264``, ``h264_v4l2m2m``)."""
        return self._engine.name

    def encode(self, frame: np.ndarray, out: Outgoing) -> None:
        now = time.monotonic()
        every = ASKED_KEYFRAME_INTERVAL if self._receivers_ask else KEYFRAME_INTERVAL
        due = self._intra_only or (self._timed and now - self._last_key >= every)
        packets = self._engine.encode(frame, keyframe=due)
        if not packets:
            raise PayloadError(f"video encoder {self._engine.name} held the frame back "
                               "(it buffers frames); use video_encoder='auto' or "
                               f"{'libx264' if self._engine.codec == 'h264' else 'libx265'!r}")
        # One packet per frame with these settings; a size change may first flush what a
        # hardware encoder still held for the old size, which no receiver needs any more.
        packet = packets[-1]
        if packet.keyframe:
            self._last_key = now
        out.payload = packet.data
        out.codec = packet.meta.codec
        out.extra[META_KEY] = packet.meta.to_dict()

    def request_keyframe(self) -> None:
        self._engine.force_keyframe()

    def close(self) -> None:
        self._engine.close()


class VideoCodecDecoder(Decoder):
    """One stream's :class:`VideoDecoder`; every packet must reach it in order."""

    stateful: ClassVar[bool] = True

    def __init__(self, options: Options) -> None:
        self._engine = VideoDecoder()

    def needs_keyframe(self, incoming: Incoming) -> bool:
        """True when this packet cannot be shown for want of a reference (ask the sender)."""
        try:
            return self._engine.would_skip(packet_meta(incoming))
        except WireFormatError:
            return False  # decode() refuses it and resets; the next good packet asks

    def decode(self, incoming: Incoming, max_decoded_bytes: int) -> np.ndarray | None:
        try:
            meta = packet_meta(incoming)
        except WireFormatError:
            self._refuse()
            raise
        # the picture FFmpeg allocates (4:2:0) plus the BGR frame handed out
        needed = meta.width * meta.height * 3 // 2 + math.prod(meta.shape)
        if needed > max_decoded_bytes:
            self._refuse()
            raise FrameRefusedError(f"a {meta.width}x{meta.height} {meta.codec} frame needs "
                                    f"{needed} bytes to decode, over max_decoded_bytes="
                                    f"{max_decoded_bytes}")
        errors = self._engine.errors
        frame = self._engine.decode(_payload(incoming.payload), meta)
        if frame is None and self._engine.errors > errors:
            raise WireFormatError(f"video packet refused: {self._engine.last_error}")
        return frame

    def stats(self) -> dict[str, int]:
        return self._engine.stats()

    def _refuse(self) -> None:
        self._engine.errors += 1
        self._engine.reset()  # the stream cannot go on from a packet we did not decode

    def close(self) -> None:
        self._engine.close()


def _payload(payload: Any) -> Any:
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return payload
    raise WireFormatError(f"video payload of type {type(payload).__name__}")
