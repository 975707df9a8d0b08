"""The codec interface: an encoder and a decoder per stream, each with a lifetime.

A codec turns a frame into a payload plus header keys (:class:`Encoder`) and back
(:class:`Decoder`). Both are created at first use, one per stream, live as long as the
stream and are released by ``close()``, so a codec may keep state between frames (a video
codec's reference pictures) and own worker threads (JPEG's bands). A stateless codec
simply ignores that. Codecs are registered in :mod:`netgear.codecs.registry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ..core.wire import Incoming, Outgoing

__all__ = ["Decoder", "Encoder", "Options"]

Options = Mapping[str, Any]  # the NetGear instance's validated options


class Encoder:
    """Encodes one stream's frames; created at the first frame, closed with the sender."""

    def encode(self, frame: np.ndarray, out: Outgoing) -> None:
        """Set ``out.payload``, ``out.codec`` and the header keys the decoder needs."""
        raise NotImplementedError

    def request_keyframe(self) -> None:
        """Make the next frame decodable on its own (a peer joined or lost frames).

        Every frame of a stateless codec already is, so the default does nothing.
        """

    def close(self) -> None:
        """Release threads and state. Idempotent and bounded."""


class Decoder:
    """Decodes one stream's frames; created at its first frame, closed with the receiver."""

    # True: every frame must pass through decode() in order (a video decoder), so a
    # conflating receiver decodes in its reader thread instead of only the frame it hands
    # out. False: any frame decodes on its own.
    stateful: ClassVar[bool] = False

    def decode(self, incoming: Incoming, max_decoded_bytes: int) -> np.ndarray | None:
        """The frame, refusing (FrameRefusedError) before allocating over the budget.

        A stateful decoder returns None for a frame it cannot show yet (no reference
        picture: it waits for a keyframe); the receiver skips it and counts it in the
        stream's ``skipped``.
        """
        raise NotImplementedError

    def needs_keyframe(self, incoming: Incoming) -> bool:
        """True when ``incoming`` cannot be shown for want of a reference picture.

        Asked before decoding, so a replying receiver can ask its sender for a keyframe
        in the reply. Stateless decoders never need one.
        """
        return False

    def close(self) -> None:
        """Release threads and state. Idempotent and bounded."""
