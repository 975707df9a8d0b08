"""Codecs: how a frame becomes a payload and back (raw, JPEG, OpenCV's formats).

``base`` holds the Encoder/Decoder interface, ``registry`` the names a header may carry,
one module per codec family. A receiver keeps one decoder per stream, a sender one
encoder; both are created at first use and closed with their NetGear.
"""

from .base import Decoder, Encoder, Options
from .registry import (
    CODECS,
    codec_names,
    decode_frame,
    new_decoder,
    new_encoder,
    register_codec,
)

__all__ = ["CODECS", "Decoder", "Encoder", "Options", "codec_names", "decode_frame",
           "new_decoder", "new_encoder", "register_codec"]
