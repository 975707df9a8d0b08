"""Frame codecs: how a payload becomes an array on the receiving side.

The receiver picks the decoder named in the header, so it never has to be told
in advance that a sender compresses. Modes that add codecs register their
decoders here at import time. Each decoder gets the receiver's decoded-size
budget and refuses, before decoding, a payload whose container header declares
more (see :mod:`netgear.imageinfo`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np

from .errors import FrameRefusedError, WireFormatError
from .imageinfo import DEFAULT_MAX_DECODED_BYTES
from .wire import Incoming, array_from_buffer

__all__ = ["CODECS", "decode_frame", "register_decoder"]

# What netgear senders write in the header's ``c`` key ("raw" when it is absent).
CODECS = ("raw", "jpeg", "png", "bmp")
Decoder = Callable[[Incoming, int], np.ndarray]
_DECODERS: dict[str, Decoder] = {}


def register_decoder(name: str, decoder: Decoder) -> None:
    _DECODERS[name] = decoder


def decode_frame(incoming: Incoming, max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
                 accepted: Collection[str] | None = None) -> np.ndarray:
    """The frame of ``incoming``; :class:`FrameRefusedError` when over a receiver limit."""
    codec = incoming.codec
    decoder = _DECODERS.get(codec) if isinstance(codec, str) else None
    if decoder is None:
        raise WireFormatError(f"unknown codec {codec!r}")
    if accepted is not None and codec not in accepted:
        raise FrameRefusedError(f"refused a {codec} frame: accepted_codecs is "
                                f"{sorted(accepted)}")
    return decoder(incoming, max_decoded_bytes)


def _decode_raw(incoming: Incoming, max_decoded_bytes: int) -> np.ndarray:
    # A view of the payload, which max_frame_bytes already bounds: nothing to amplify.
    header = incoming.header
    return array_from_buffer(incoming.payload, header.get("d"), header.get("h"))


register_decoder("raw", _decode_raw)
