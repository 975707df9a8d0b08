"""Hostile input to the video decoder, and its memory over a long stream.

Whatever a peer sends as a video packet and header, ``VideoDecoder.decode`` returns
``None`` (counted) or an array of exactly the shape the header declares; it never raises,
and a real stream decodes correctly right after. Over 10k frames, with size changes and
resets that rebuild the FFmpeg contexts, memory stays flat: no codec handle leaks.
"""

from __future__ import annotations

import numpy as np
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from video_helpers import psnr, scene

from netgear.video import VideoDecoder, VideoEncoder

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def stream() -> tuple[list[np.ndarray], list]:
    frames = scene(96, 64, 6)
    encoder = VideoEncoder("h264", threads=1)
    try:
        return frames, [encoder.encode(f)[0] for f in frames]
    finally:
        encoder.close()


_value = st.one_of(st.none(), st.booleans(), st.integers(-2**64, 2**64), st.text(max_size=8),
                   st.binary(max_size=8), st.lists(st.integers(-5, 10000), max_size=4))
_metas = st.one_of(
    _value,
    st.dictionaries(st.sampled_from("cwhskqx"), _value, max_size=7),
    st.fixed_dictionaries({"c": st.sampled_from(["h264", "hevc", "vp9"]),
                           "w": st.integers(0, 10000), "h": st.integers(0, 10000),
                           "s": st.lists(st.integers(0, 10000), min_size=2, max_size=3),
                           "k": st.booleans(), "q": st.integers(-1, 2**64)}),
)


def _check(decoder: VideoDecoder, data, meta) -> None:
    out = decoder.decode(data, meta)
    if out is not None:  # it decoded: then it has the shape the (valid) header declared
        assert isinstance(meta, dict) and out.dtype == np.uint8
        assert out.shape == tuple(meta["s"])


def _still_serves(decoder: VideoDecoder, frames, packets) -> None:
    decoder.reset()
    for frame, packet in zip(frames, packets):
        out = decoder.decode(packet.data, packet.meta)
        assert out is not None and psnr(frame, out) >= 30.0


@FUZZ
@given(data=st.binary(max_size=3000), meta=_metas)
def test_arbitrary_bytes_and_headers_never_raise(stream, data, meta):
    frames, packets = stream
    decoder = VideoDecoder(threads=1)
    try:
        _check(decoder, data, meta)
        _still_serves(decoder, frames, packets)
    finally:
        decoder.close()


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1,
                      max_size=6),
       index=st.integers(0, 5), cut=st.none() | st.integers(0, 10**6))
def test_mutated_real_packets_are_dropped_or_decoded_never_raise(stream, flips, index, cut):
    frames, packets = stream
    decoder = VideoDecoder(threads=1)
    try:
        for packet in packets[:index]:  # a decoder in the middle of a stream
            decoder.decode(packet.data, packet.meta)
        data = bytearray(packets[index].data)
        for at, mask in flips:
            data[at % len(data)] ^= mask
        if cut is not None:
            data = data[: cut % (len(data) + 1)]
        _check(decoder, bytes(data), packets[index].meta.to_dict())
        _still_serves(decoder, frames, packets)
    finally:
        decoder.close()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_ten_thousand_frames_keep_memory_flat():
    rng = np.random.default_rng(3)
    sizes = [(48, 64), (40, 56), (33, 47)]  # size changes rebuild the FFmpeg contexts
    base = rng.integers(0, 256, (48, 64, 3), np.uint8)
    encoder, decoder = VideoEncoder("h264", gop=30, threads=1), VideoDecoder(threads=1)
    process = psutil.Process()
    try:
        baseline = None
        for i in range(10_000):
            if i == 1_000:
                baseline = process.memory_info().rss  # after warm-up (allocator pools)
            h, w = sizes[(i // 500) % len(sizes)]
            frame = np.roll(base, i, axis=1)[:h, :w]
            for packet in encoder.encode(frame):
                if i % 997 == 0:
                    decoder.reset()  # a restart: a fresh context at the next keyframe
                out = decoder.decode(packet.data, packet.meta)
                assert out is None or out.shape == (h, w, 3)
            if i % 250 == 0:  # whole codec pairs opened and closed, too
                VideoEncoder("h264", threads=1).close()
                VideoDecoder(threads=1).close()
        growth = process.memory_info().rss - baseline
        assert decoder.decoded > 9_000
        assert growth < 8 * MIB, f"RSS grew {growth / MIB:.1f} MiB over 9k frames"
    finally:
        encoder.close()
        decoder.close()


# -- through NetGear: a raw ZeroMQ peer sends forged video messages ------------------------
def _hostile(meta: dict, payload: bytes) -> list[tuple[str, object, bytes, object]]:
    """(name, meta, payload, header codec) of forged packets around a real one."""
    flipped = bytearray(payload)
    for at in range(20, len(flipped), 7):
        flipped[at] ^= 0x5A
    return [
        ("garbage keyframe", {**meta, "k": True}, bytes(range(256)) * 4, "h264"),
        ("bit-flipped keyframe", meta, bytes(flipped), "h264"),
        ("truncated keyframe", meta, payload[: len(payload) // 3], "h264"),
        ("no video header", None, payload, "h264"),
        ("codec mismatch", meta, payload, "hevc"),
        ("shape does not fit", {**meta, "s": [999, 999, 3]}, payload, "h264"),
        ("odd coded size", {**meta, "w": 161}, payload, "h264"),
        ("8K over the budget", {**meta, "w": 8192, "h": 8192, "s": [8192, 8192, 3]},
         payload, "h264"),
        ("empty payload", meta, b"", "h264"),
        ("bad keyframe flag", {**meta, "k": "yes"}, payload, "h264"),
    ]


@pytest.mark.timeout(60)
def test_forged_video_messages_are_dropped_counted_and_the_receiver_keeps_serving():
    import zmq
    from conftest import free_port
    from video_helpers import video_message, video_packets

    from netgear import NetGear

    frames = scene(160, 120, 8)
    packets = video_packets(frames, video_gop=4)  # keyframes at 0 and 4
    hostile = _hostile(*packets[0])
    port = free_port()
    rx = NetGear(address="127.0.0.1", port=port, pattern=0, receive_mode=True,
                 receive_timeout=10.0, max_decoded_bytes=64 * MIB)
    ctx = zmq.Context()
    peer = ctx.socket(zmq.PAIR)
    seq = iter(range(10**6))
    try:
        peer.connect(f"tcp://127.0.0.1:{port}")
        for meta, data in packets[:2]:  # a stream in progress
            peer.send_multipart(video_message(next(seq), meta, data))
        shown = [rx.recv(), rx.recv()]
        for _name, meta, data, codec in hostile:
            peer.send_multipart(video_message(next(seq), meta, data, codec))
        for meta, data in packets[2:]:  # P-frames on a reset decoder, then a keyframe
            peer.send_multipart(video_message(next(seq), meta, data))
        shown += [rx.recv() for _ in range(4)]
        stats = rx.stats
    finally:
        peer.close(0)
        ctx.term()
        rx.close()
    for frame, out in zip(frames[:2] + frames[4:], shown):
        assert psnr(frame, out) >= 30.0  # nothing forged, nothing half-decoded came out
    entry = stats["streams"][str(port)]
    assert stats["bad_messages"] + stats["refused"] == len(hostile)
    assert stats["refused"] == 1  # the 8K one: over max_decoded_bytes before decoding
    # the decoder was reset: frames 2 and 3 had no reference any more
    assert entry["skipped"] == 2 and entry["frames"] == 4 + 2


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_netgear_video_stream_keeps_memory_flat_and_close_stops_the_codec_threads():
    import os
    import time

    from conftest import free_port

    from netgear import NetGear

    def threads() -> int:
        return len(os.listdir("/proc/self/task"))

    frames = scene(160, 120, 16)
    before = threads()
    port = free_port()
    rx = NetGear(address="127.0.0.1", port=port, pattern=1, receive_mode=True,
                 receive_timeout=20.0)
    tx = NetGear(address="127.0.0.1", port=port, pattern=1, video_codec="h264", video_gop=30)
    process = psutil.Process()
    baseline = None
    try:
        for i in range(2_000):
            if i == 300:
                baseline = process.memory_info().rss  # after warm-up (allocator pools)
            frame = frames[i % len(frames)]
            tx.send(frame if i < 1_000 else frame[:90, :130])  # a size change half-way
            assert rx.recv().shape == (frame.shape if i < 1_000 else (90, 130, 3))
        growth = process.memory_info().rss - baseline
        assert threads() > before  # x264's and FFmpeg's threads, libzmq's
        start = time.monotonic()
        tx.close()
        rx.close()
        took = time.monotonic() - start
    finally:
        tx.close()
        rx.close()
    assert growth < 8 * MIB, f"RSS grew {growth / MIB:.1f} MiB over 1,700 frames"
    assert took < 3.0
    assert threads() == before  # every codec and libzmq thread joined
