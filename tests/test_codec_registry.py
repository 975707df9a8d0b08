"""A codec registered from outside the package streams through a real receiver.

The toy codec is stateful on purpose: each frame is XORed with a key that advances per
frame, so a decoder that skips a frame (conflate decoding only what recv() hands out)
or that is shared between streams would give wrong pixels.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
import zmq

from netgear import NetGear
from netgear.codecs import Decoder, Encoder, new_encoder, register_codec
from netgear.core.wire import FRAME, Incoming, Outgoing, dtype_descr, encode

HOST = "127.0.0.1"
DECODERS: list[ToyDecoder] = []


class ToyEncoder(Encoder):
    def __init__(self, options: Any) -> None:
        self.key = 0

    def request_keyframe(self) -> None:
        self.key = 0

    def encode(self, frame: np.ndarray, out: Outgoing) -> None:
        out.payload = (frame ^ np.uint8(self.key)).tobytes()
        out.codec = "toy"
        out.extra.update(d=dtype_descr(frame.dtype), h=list(frame.shape), kf=self.key == 0)
        self.key = (self.key + 1) % 251


class ToyDecoder(Decoder):
    stateful = True

    def __init__(self, options: Any) -> None:
        self.key = 0
        self.closed = False
        DECODERS.append(self)

    def decode(self, incoming: Incoming, max_decoded_bytes: int) -> np.ndarray:
        if incoming.header.get("kf"):
            self.key = 0
        data = np.frombuffer(incoming.payload, np.uint8) ^ np.uint8(self.key)
        self.key = (self.key + 1) % 251
        return data.reshape(incoming.header["h"])

    def close(self) -> None:
        self.closed = True


register_codec("toy", ToyDecoder, ToyEncoder)


def _frames(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 255, (24, 32, 3), dtype=np.uint8) for _ in range(count)]


def _send_all(port: int, frames: list[np.ndarray], keyframe_at: int | None = None) -> None:
    encoder = new_encoder("toy", {})
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PAIR)
    try:
        sock.setsockopt(zmq.LINGER, 2000)
        sock.connect(f"tcp://{HOST}:{port}")
        for seq, frame in enumerate(frames):
            if seq == keyframe_at:
                encoder.request_keyframe()
            out = Outgoing(FRAME, seq, frame)
            out.extra["i"] = 77
            encoder.encode(frame, out)
            sock.send_multipart(encode(out))
    finally:
        sock.close()
        ctx.term()
        encoder.close()


@pytest.mark.parametrize("conflate", [False, True])
def test_toy_codec_registered_outside_streams_through_a_receiver(port: int,
                                                                 conflate: bool) -> None:
    DECODERS.clear()
    frames = _frames(30)
    rx = NetGear(address=HOST, port=port, receive_mode=True, conflate=conflate,
                 receive_timeout=10)
    try:
        _send_all(port, frames, keyframe_at=12)
        got: list[np.ndarray] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            frame = rx.recv()
            got.append(frame)
            if np.array_equal(frame, frames[-1]):
                break
        # conflate may skip frames, but every one handed out is exact
        assert got and all(any(np.array_equal(g, f) for f in frames) for g in got)
        assert np.array_equal(got[-1], frames[-1])
        if not conflate:
            assert len(got) == len(frames)
        assert len(DECODERS) == 1 and not DECODERS[0].closed  # one per stream, kept
    finally:
        rx.close()
    assert DECODERS[0].closed  # closed with the receiver
