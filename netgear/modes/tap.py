"""Packet tap: a receiver also hands each frame's encoded payload to a callable.

``recv()`` returns decoded pixels; a hub that records an H.264 stream wants the packet
that came off the wire, to store it without encoding it again, and a viewer wants to know
each stream's codec and bytes. ``packet_tap=f`` calls ``f(TappedPacket)`` on the thread
that called ``recv()``, for every frame ``recv()`` is about to return, right after its
payload decoded. A frame that did not decode (garbage, or a video frame waiting for a
keyframe) is never tapped, so the packets a tap sees of a video stream always form a
decodable chain: after a loss the next one is a keyframe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..codecs.video import packet_meta
from ..core.options import Option
from ..core.settings import Settings
from ..core.wire import Incoming
from ..errors import OptionError
from ..video import CODECS as VIDEO_CODECS
from ..video import VideoMeta
from .base import Mode

__all__ = ["PacketTapMode", "TappedPacket"]


@dataclass(frozen=True)
class TappedPacket:
    """One received frame as it travelled, handed to ``packet_tap``.

    Attributes:
        stream: The port it arrived on (a multi-server receiver's stream key).
        codec: ``"raw"``, ``"jpeg"``, ``"h264"``, ``"hevc"``, ...
        payload: The encoded bytes as received. Valid during the call only: copy it
            (``bytes(packet.payload)``) to keep it.
        frame: The decoded frame ``recv()`` returns.
        message: The message sent with the frame, or None.
        video: For H.264/HEVC, the packet's validated :class:`~netgear.video.VideoMeta`
            (keyframe flag, coded size, shape sent, packet number); else None.
        sent_at: The sender's ``time.time()`` when it sent the frame.
    """

    stream: str
    codec: str
    payload: memoryview
    frame: np.ndarray
    message: Any
    video: VideoMeta | None
    sent_at: float


def _check_callable(value: Any) -> str | None:
    return None if callable(value) else "must be a callable taking one TappedPacket"


class PacketTapMode(Mode):
    """``packet_tap=f``: a receiver calls ``f(TappedPacket)`` for each frame it returns."""

    key = "packet_tap"
    options: ClassVar[tuple[Option, ...]] = (
        Option("packet_tap", (object,), None,
               "Receivers: a callable f(packet) called on recv()'s thread for every frame "
               "recv() returns, after it decoded, with a netgear.TappedPacket (stream, codec, "
               "the payload as received, the frame, its VideoMeta for H.264/HEVC). For "
               "recording video without re-encoding. Not with conflate.",
               check=_check_callable, nullable=True),
    )

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return settings.options.get(cls.key) is not None

    @classmethod
    def validate(cls, settings: Settings, enabled: frozenset[str]) -> None:
        if not settings.receive_mode:
            raise OptionError("packet_tap is for receivers (receive_mode=True): it sees the "
                              "frames recv() returns", key=cls.key)
        if settings.options["conflate"]:
            raise OptionError("packet_tap and conflate both set: conflate skips frames, so a "
                              "tap could not see a video stream's every packet; drop one",
                              key=cls.key)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._tap: Callable[[TappedPacket], Any] = settings.options[self.key]

    def shape_result(self, incoming: Incoming, result: Any) -> Any:
        # _deliver calls this only after the payload decoded, so incoming.frame is set
        video = packet_meta(incoming) if incoming.codec in VIDEO_CODECS else None
        frame = incoming.frame if incoming.frame is not None else np.empty(0, np.uint8)
        payload = memoryview(b"" if incoming.payload is None else incoming.payload)
        self._tap(TappedPacket(incoming.source, incoming.codec, payload, frame,
                               incoming.message, video, incoming.ts))
        return result
