"""Frame codecs: how a payload becomes an array on the receiving side.

The receiver picks the decoder named in the header, so it never has to be told
in advance that a sender compresses. Modes that add codecs register their
decoders here at import time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import WireFormatError
from .wire import Incoming, array_from_buffer

__all__ = ["decode_frame", "register_decoder"]

Decoder = Callable[[Incoming], np.ndarray]
_DECODERS: dict[str, Decoder] = {}


def register_decoder(name: str, decoder: Decoder) -> None:
    _DECODERS[name] = decoder


def decode_frame(incoming: Incoming) -> np.ndarray:
    decoder = _DECODERS.get(incoming.codec) if isinstance(incoming.codec, str) else None
    if decoder is None:
        raise WireFormatError(f"unknown codec {incoming.codec!r}")
    return decoder(incoming)


def _decode_raw(incoming: Incoming) -> np.ndarray:
    header = incoming.header
    return array_from_buffer(incoming.payload, header.get("d"), header.get("h"))


register_decoder("raw", _decode_raw)
