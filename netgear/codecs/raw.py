"""The raw codec: the payload is the frame's bytes, the header its dtype and shape."""

from __future__ import annotations

import numpy as np

from ..core.wire import Incoming, array_from_buffer
from .base import Decoder, Options

__all__ = ["RawDecoder"]


class RawDecoder(Decoder):
    """A view of the payload, which max_frame_bytes already bounds: nothing to amplify."""

    def __init__(self, options: Options) -> None:
        pass

    def decode(self, incoming: Incoming, max_decoded_bytes: int) -> np.ndarray:
        header = incoming.header
        return array_from_buffer(incoming.payload, header.get("d"), header.get("h"))
