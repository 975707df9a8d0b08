"""What travels next to each video packet: plain values a msgpack header can carry.

A packet's bytes alone do not say which codec made them, what shape the sender's frame
had before it was padded to even sides, or whether a packet was lost on the way. The
receiver needs all three to return exactly the frame that was sent or nothing, so every
packet carries a :class:`VideoMeta`. ``to_dict()`` gives short keys for the wire;
``from_dict()`` validates what a peer sent, so a forged header is refused before any
decoder or buffer is sized from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import WireFormatError

__all__ = ["CODECS", "MAX_SIDE", "VideoMeta", "VideoPacket", "coded_size"]

CODECS = ("h264", "hevc")
# Larger than any camera we serve (8K is 7680x4320) and far below what would let a forged
# header make the receiver allocate gigabytes.
MAX_SIDE = 8192
_MAX_SEQ = 2**63 - 1
_MIN_SIDE = {"hevc": 16}


def coded_size(shape: tuple[int, ...], codec: str = "h264") -> tuple[int, int]:
    """(width, height) the encoder codes a frame of ``shape`` at.

    4:2:0 chroma has one sample per 2x2 pixels, so each side is rounded up to even; x265
    also refuses pictures smaller than its 16-pixel coding unit. The padding repeats the
    edge and the decoder crops it off again.
    """
    low = _MIN_SIDE.get(codec, 2)
    height, width = shape[0], shape[1]
    return max(low, width + (width & 1)), max(low, height + (height & 1))


@dataclass(frozen=True)
class VideoMeta:
    """Describes one encoded packet.

    Attributes:
        codec: ``"h264"`` or ``"hevc"``.
        width: Coded width (even; at least 16 for HEVC).
        height: Coded height (even; at least 16 for HEVC).
        shape: The shape of the frame that was sent: ``(h, w)`` for grayscale,
            ``(h, w, 1)`` or ``(h, w, 3)``. The decoder returns exactly this shape.
        keyframe: The packet decodes on its own (an IDR picture with its parameter sets).
        seq: Packet number within the stream, from 0, one per packet; a gap means a loss.
    """

    codec: str
    width: int
    height: int
    shape: tuple[int, ...]
    keyframe: bool
    seq: int

    def to_dict(self) -> dict[str, Any]:
        """Short-keyed plain values for a msgpack header."""
        return {"c": self.codec, "w": self.width, "h": self.height, "s": list(self.shape),
                "k": self.keyframe, "q": self.seq}

    @classmethod
    def from_dict(cls, value: Any) -> VideoMeta:
        """Validate a header a peer sent; raises :class:`WireFormatError` naming the bad field."""
        if not isinstance(value, dict):
            raise WireFormatError(f"video header must be a map, got {type(value).__name__}")
        codec = value.get("c")
        if codec not in CODECS:
            raise WireFormatError(f"video header: unknown codec {str(codec)[:20]!r}")
        width, height = _side(value.get("w"), "w"), _side(value.get("h"), "h")
        shape = value.get("s")
        if (not isinstance(shape, (list, tuple)) or len(shape) not in (2, 3)
                or not all(_is_int(n) and 0 < n <= MAX_SIDE for n in shape)
                or (len(shape) == 3 and shape[2] not in (1, 3))):
            raise WireFormatError(f"video header: bad frame shape {str(shape)[:40]!r}")
        shape = tuple(shape)
        if coded_size(shape, codec) != (width, height):
            raise WireFormatError(
                f"video header: shape {shape} does not fit coded size {width}x{height}")
        keyframe, seq = value.get("k"), value.get("q")
        if not isinstance(keyframe, bool):
            raise WireFormatError("video header: keyframe flag 'k' must be a bool")
        if not _is_int(seq) or not 0 <= seq <= _MAX_SEQ:
            raise WireFormatError(f"video header: bad sequence number {str(seq)[:30]!r}")
        return cls(codec, width, height, shape, keyframe, seq)


@dataclass(frozen=True)
class VideoPacket:
    """One encoded frame: ``data`` (Annex B bytes) and its :class:`VideoMeta`.

    Keyframes are self-contained: they carry the codec's parameter sets (SPS/PPS, and VPS
    for HEVC) in-band, so no separate extradata ever has to reach the decoder.
    """

    data: bytes
    meta: VideoMeta

    @property
    def keyframe(self) -> bool:
        return self.meta.keyframe


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _side(value: Any, key: str) -> int:
    if not _is_int(value) or not 2 <= value <= MAX_SIDE or value & 1:
        raise WireFormatError(f"video header: bad coded size {key}={str(value)[:20]!r}")
    return value
