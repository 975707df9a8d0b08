"""The codec registry: which decoder (and encoder) stands behind each codec name.

The receiver picks the decoder named in the header (``c``, "raw" when absent), so it
never has to be told in advance that a sender compresses. Adding a codec is one file
with its Encoder/Decoder and one ``register_codec`` line at the bottom of this module
(or a call from outside the package, as the tests do).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np

from ..core.wire import Incoming
from ..errors import FrameRefusedError, OptionError, WireFormatError
from .base import Decoder, Encoder, Options
from .imageinfo import DEFAULT_MAX_DECODED_BYTES
from .jpeg import JpegDecoder
from .opencv import ImageFileDecoder
from .raw import RawDecoder
from .video import VideoCodecDecoder, VideoCodecEncoder

__all__ = ["CODECS", "CodecEntry", "codec_names", "decode_frame", "new_decoder",
           "new_encoder", "register_codec"]


@dataclass(frozen=True)
class CodecEntry:
    name: str
    decoder: Callable[[Options], Decoder]
    encoder: Callable[[Options], Encoder] | None = None


_REGISTRY: dict[str, CodecEntry] = {}


def register_codec(name: str, decoder: Callable[[Options], Decoder],
                   encoder: Callable[[Options], Encoder] | None = None) -> None:
    """Make ``name`` decodable (and encodable, given ``encoder``) by every NetGear."""
    if not isinstance(name, str) or not name or len(name) > 32:
        raise OptionError(f"a codec name must be a short non-empty string, got {name!r}",
                          key="codec")
    _REGISTRY[name] = CodecEntry(name, decoder, encoder)


def codec_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def new_decoder(name: str, options: Options) -> Decoder:
    """A fresh decoder for one stream of codec ``name``; WireFormatError when unknown."""
    entry = _REGISTRY.get(name) if isinstance(name, str) else None
    if entry is None:
        raise WireFormatError(f"unknown codec {name!r}")
    return entry.decoder(options)


def new_encoder(name: str, options: Options) -> Encoder:
    entry = _REGISTRY.get(name)
    if entry is None or entry.encoder is None:
        raise OptionError(f"no encoder registered for codec {name!r}; known: "
                          f"{', '.join(n for n, e in _REGISTRY.items() if e.encoder)}",
                          key="codec")
    return entry.encoder(options)


def check_accepted(codec: object, accepted: Collection[str] | None) -> None:
    if not isinstance(codec, str) or codec not in _REGISTRY:
        raise WireFormatError(f"unknown codec {codec!r}")
    if accepted is not None and codec not in accepted:
        raise FrameRefusedError(f"refused a {codec} frame: accepted_codecs is "
                                f"{sorted(accepted)}")


def decode_frame(incoming: Incoming, max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
                 accepted: Collection[str] | None = None) -> np.ndarray | None:
    """Decode one frame with a throw-away decoder (tests, one-off tools); the receiver
    keeps one decoder per stream instead. FrameRefusedError when over a receiver limit;
    None for a video frame that needs earlier ones (only a keyframe decodes alone)."""
    check_accepted(incoming.codec, accepted)
    decoder = new_decoder(incoming.codec, {})
    try:
        return decoder.decode(incoming, max_decoded_bytes)
    finally:
        decoder.close()


# The built-in codecs; options.accepted_codecs lists these names.
register_codec("raw", RawDecoder)
register_codec("jpeg", JpegDecoder)
register_codec("png", ImageFileDecoder)
register_codec("bmp", ImageFileDecoder)
register_codec("h264", VideoCodecDecoder, VideoCodecEncoder)
register_codec("hevc", VideoCodecDecoder, VideoCodecEncoder)

# What netgear senders write in the header's ``c`` key ("raw" when it is absent).
CODECS = codec_names()
