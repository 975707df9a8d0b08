"""The H.264/HEVC engine (netgear.video) with real libx264/libx265 through PyAV.

What must hold: frames come back as they were sent (shape, dtype, >= 35 dB on camera-like
content); keyframes come when asked for; a decoder without a reference (late join, lost
packet, garbage) returns nothing rather than a broken picture, counts it, and recovers at
the next keyframe; close() is idempotent and stops FFmpeg's threads.
"""

from __future__ import annotations

import os
import sys

import msgpack
import numpy as np
import pytest
from video_helpers import psnr, scene

from netgear.errors import ClosedError, DependencyError, OptionError, PayloadError
from netgear.video import VideoDecoder, VideoEncoder, VideoMeta
from netgear.video.encoder import _self_contained

# Below 640x480 this content codes at 33-35 dB; a frame decoded on a wrong reference is
# far below (test_without_the_gap_check...), so 32 dB tells right from wrong.
GOOD = 32.0


def _one(encoder: VideoEncoder, frame: np.ndarray, keyframe: bool = False):
    packets = encoder.encode(frame, keyframe=keyframe)
    assert len(packets) == 1, "low-latency settings give one packet per frame"
    return packets[0]


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_round_trip_keeps_shape_and_quality_on_camera_content(codec):
    frames = scene(640, 480, 12)
    encoder, decoder = VideoEncoder(codec), VideoDecoder()
    try:
        assert encoder.name == {"h264": "libx264", "hevc": "libx265"}[codec]
        keyflags = []
        for frame in frames:
            packet = _one(encoder, frame)
            keyflags.append(packet.keyframe)
            out = decoder.decode(packet.data, packet.meta)
            assert out is not None and out.shape == frame.shape and out.dtype == np.uint8
            assert psnr(frame, out) >= 35.0
        assert keyflags[0] and not any(keyflags[1:])  # the first frame only (gop: 30)
        assert decoder.stats() == {"decoded": 12, "skipped": 0, "lost": 0, "errors": 0}
        # P-frames of a slowly moving scene cost far less than the keyframe
        assert encoder.bytes < 12 * 921_600 / 20
    finally:
        encoder.close()
        decoder.close()


def test_meta_survives_msgpack_and_is_validated():
    encoder = VideoEncoder("h264")
    try:
        packet = _one(encoder, scene(33, 17, 1)[0])
    finally:
        encoder.close()
    wire = msgpack.unpackb(msgpack.packb(packet.meta.to_dict()))
    assert VideoMeta.from_dict(wire) == packet.meta
    assert packet.meta.shape == (17, 33, 3) and (packet.meta.width, packet.meta.height) == (34, 18)


def test_keyframes_on_demand_and_every_gop_frames():
    frames = scene(160, 120, 14)
    encoder = VideoEncoder("h264", gop=5)
    try:
        flags = [_one(encoder, f).keyframe for f in frames[:8]]
        assert flags == [True, False, False, False, False, True, False, False]
        assert _one(encoder, frames[8], keyframe=True).keyframe  # asked for
        encoder.force_keyframe()  # e.g. a receiver's ack asked, or a client joined
        assert _one(encoder, frames[9]).keyframe
        assert not _one(encoder, frames[10]).keyframe  # a request is one keyframe, not more
    finally:
        encoder.close()


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_late_joiner_waits_for_a_keyframe_and_counts_skips(codec):
    frames = scene(320, 240, 12)
    encoder = VideoEncoder(codec, gop=100)
    try:
        packets = [_one(encoder, f, keyframe=(i == 7)) for i, f in enumerate(frames)]
    finally:
        encoder.close()
    late = VideoDecoder()
    try:
        assert late.waiting_for_keyframe
        for packet in packets[3:7]:  # joined mid-stream: P-frames without their reference
            assert late.decode(packet.data, packet.meta.to_dict()) is None
        assert late.skipped == 4 and late.errors == 0 and late.waiting_for_keyframe
        for i in range(7, 12):
            out = late.decode(packets[i].data, packets[i].meta.to_dict())
            assert out is not None and psnr(frames[i], out) >= GOOD
        assert not late.waiting_for_keyframe and late.decoded == 5
    finally:
        late.close()


def test_a_lost_packet_never_yields_a_corrupt_frame_and_decoding_resumes_at_a_keyframe():
    frames = scene(320, 240, 16)
    encoder = VideoEncoder("h264", gop=10)
    try:
        packets = [_one(encoder, f) for f in frames]
    finally:
        encoder.close()
    assert [p.keyframe for p in packets].count(True) == 2  # frames 0 and 10
    decoder = VideoDecoder()
    try:
        shown = {}
        for i, packet in enumerate(packets):
            if i == 4:
                continue  # lost on the way
            out = decoder.decode(packet.data, packet.meta)
            if out is not None:
                shown[i] = out
        assert sorted(shown) == [0, 1, 2, 3, *range(10, 16)]
        assert decoder.lost == 1 and decoder.skipped == 5  # 5..9 had no valid reference
        for i, out in shown.items():
            assert psnr(frames[i], out) >= GOOD, i
    finally:
        decoder.close()


def test_without_the_gap_check_ffmpeg_would_show_a_broken_picture():
    """Why the decoder tracks sequence numbers: FFmpeg itself returns the smeared frame."""
    import av

    frames = scene(320, 240, 8)
    encoder = VideoEncoder("h264", gop=100)
    try:
        packets = [_one(encoder, f) for f in frames]
    finally:
        encoder.close()
    raw = av.CodecContext.create("h264", "r")
    worst = 99.0
    for i, packet in enumerate(packets):
        if i == 2:
            continue
        for picture in raw.decode(av.Packet(packet.data)):
            if i > 2:
                image = picture.to_ndarray(format="bgr24", src_color_range="JPEG",
                                           dst_color_range="JPEG")
                worst = min(worst, psnr(frames[i], image))
    assert worst < 25.0, worst  # visibly wrong, yet returned without an error


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_garbage_and_forged_packets_are_counted_reset_and_serving_continues(codec):
    frames = scene(320, 240, 6)
    encoder = VideoEncoder(codec)
    decoder = VideoDecoder()
    rng = np.random.default_rng(5)
    try:
        good = _one(encoder, frames[0])
        assert decoder.decode(good.data, good.meta) is not None
        meta = _one(encoder, frames[1]).meta.to_dict()
        bigger = VideoEncoder(codec)
        try:  # a real keyframe whose parameter sets declare more pixels than the header
            big = _one(bigger, scene(640, 480, 1)[0]).data
        finally:
            bigger.close()
        attacks = [
            (rng.integers(0, 256, 5000, np.uint8).tobytes(), {**meta, "k": True}),
            (good.data[: len(good.data) // 3], {**meta, "k": True}),  # truncated keyframe
            (bytes(b ^ 0x5A for b in good.data), {**meta, "k": True}),
            (good.data, {**meta, "k": True, "w": 640, "h": 480, "s": [480, 640, 3]}),  # size lie
            (big, {**meta, "k": True}),
            (good.data, {**meta, "c": "vp9"}),
            (good.data, {**meta, "k": True, "c": "hevc" if codec == "h264" else "h264"}),
            (good.data, {**meta, "k": True, "s": [8192, 8192, 3], "w": 8192, "h": 8192}),
            (good.data, {**meta, "w": 100000}),
            (good.data, "not a map"),
            (b"", meta),
            (12345, meta),
        ]
        for data, forged in attacks:
            assert decoder.decode(data, forged) is None
            assert decoder.waiting_for_keyframe
        assert decoder.errors == len(attacks) and decoder.last_error
        recovered = []
        for i, frame in enumerate(frames[2:]):
            packet = _one(encoder, frame, keyframe=(i == 0))  # a keyframe, then P-frames
            out = decoder.decode(packet.data, packet.meta)
            recovered.append(out is not None and psnr(frame, out) >= GOOD)
        assert all(recovered)
    finally:
        encoder.close()
        decoder.close()


@pytest.mark.parametrize("codec", ["h264", "hevc"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5, 3), (17, 33), (33, 17, 1), (241, 321, 3)])
def test_any_size_comes_back_in_the_shape_sent(codec, shape):
    base = scene(max(shape[1], 16), max(shape[0], 16), 1)[0][: shape[0], : shape[1]]
    frame = base if len(shape) == 3 and shape[2] == 3 else \
        base[:, :, 1].reshape(shape)  # green channel as a gray frame
    encoder, decoder = VideoEncoder(codec), VideoDecoder()
    try:
        packet = _one(encoder, np.ascontiguousarray(frame))
        out = decoder.decode(packet.data, packet.meta)
        assert out is not None and out.shape == shape and out.flags.c_contiguous
        if frame.size >= 1000:
            assert psnr(frame, out) >= GOOD
        else:  # a few pixels: no PSNR to speak of, but close
            assert np.abs(out.astype(int) - frame).mean() < 12
    finally:
        encoder.close()
        decoder.close()


def test_size_change_mid_stream_starts_with_a_keyframe():
    big, small = scene(320, 240, 4), scene(256, 144, 4, seed=1)
    encoder, decoder = VideoEncoder("h264"), VideoDecoder()
    try:
        for frames in (big, small, big):
            for i, frame in enumerate(frames):
                packet = _one(encoder, frame)
                assert packet.keyframe == (i == 0)
                out = decoder.decode(packet.data, packet.meta)
                assert out is not None and out.shape == frame.shape
                assert psnr(frame, out) >= GOOD
        assert decoder.errors == decoder.skipped == 0
    finally:
        encoder.close()
        decoder.close()


def test_gray_frames_come_back_gray_and_bgra_and_other_dtypes_are_refused():
    frames = scene(320, 240, 3)
    encoder, decoder = VideoEncoder("h264"), VideoDecoder()
    try:
        gray = np.ascontiguousarray(frames[0][:, :, 1])
        packet = _one(encoder, gray)
        out = decoder.decode(packet.data, packet.meta)
        assert out.shape == (240, 320) and psnr(gray, out) >= GOOD
        bgra = np.dstack([frames[1], np.full((240, 320), 255, np.uint8)])
        with pytest.raises(PayloadError, match=r"alpha.*frame\[:, :, :3\]"):
            encoder.encode(bgra)
        for bad in (frames[1].astype(np.float32), frames[1].astype(np.uint16),
                    frames[1].astype(np.int8)):
            with pytest.raises(PayloadError, match=f"uint8 frames, got {bad.dtype}"):
                encoder.encode(bad)
        for bad in (np.zeros((0, 4, 3), np.uint8), np.zeros((4, 4, 2), np.uint8),
                    np.zeros((4,), np.uint8), np.zeros((8200, 2), np.uint8), [[1, 2]]):
            with pytest.raises(PayloadError):
                encoder.encode(bad)
        packet = _one(encoder, frames[2])  # refusals leave the stream intact
        assert decoder.decode(packet.data, packet.meta).shape == (240, 320, 3)
    finally:
        encoder.close()
        decoder.close()


def test_bitrate_mode_stays_near_the_target():
    frames = scene(320, 240, 60)
    target = 300_000
    encoder = VideoEncoder("h264", bitrate=target, fps_hint=30)
    try:
        for frame in frames:
            _one(encoder, frame)
        rate = encoder.bytes * 8 / (len(frames) / 30)
    finally:
        encoder.close()
    assert 0.4 * target < rate < 2.0 * target, rate


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"codec": "vp8"}, "video_codec"),
    ({"bitrate": 10}, "video_bitrate"),
    ({"bitrate": 1.5e6}, "video_bitrate"),
    ({"gop": 0}, "video_gop"),
    ({"gop": True}, "video_gop"),
    ({"preset": "very fast; rm"}, "video_preset"),
    ({"encoder": ""}, "video_encoder"),
    ({"encoder": "no_such_encoder"}, "video_encoder"),
    ({"encoder": "libx265"}, "video_encoder"),  # an HEVC encoder for H.264
    ({"fps_hint": 0}, "fps_hint"),
])
def test_bad_options_raise_option_error_naming_the_option(kwargs, key):
    with pytest.raises(OptionError, match=key) as info:
        VideoEncoder(**kwargs)
    if key.startswith("video"):
        assert info.value.key == key


def test_a_hardware_encoder_that_does_not_open_here_is_an_option_error():
    from fractions import Fraction

    from netgear.video.choice import Settings, probe

    if probe("h264_nvenc", Settings("h264", None, 30, None, Fraction(30), 1)):
        pytest.skip("this machine has a working NVENC")
    with pytest.raises(OptionError, match=r"h264_nvenc.*does not open"):
        VideoEncoder("h264", encoder="h264_nvenc")


def test_keyframes_are_self_contained_even_if_the_encoder_keeps_headers_aside():
    """Some hardware encoders (V4L2 on a Pi) emit SPS/PPS once, as extradata."""
    frames = scene(160, 120, 2)
    encoder = VideoEncoder("h264")
    try:
        packet = _one(encoder, frames[0])
    finally:
        encoder.close()
    data = packet.data
    slice_at = data.find(b"\x00\x00\x01\x65")  # the IDR slice, after SPS/PPS/SEI
    assert slice_at > 0
    slice_at -= data[slice_at - 1] == 0  # a 4-byte start code
    headers, bare = data[:slice_at], data[slice_at:]
    fixed = _self_contained(bare, headers, "h264")
    assert fixed == headers + bare
    assert _self_contained(data, headers, "h264") == data  # already has them: untouched
    decoder = VideoDecoder()
    try:
        assert decoder.decode(bare, packet.meta) is None and decoder.errors == 1
        out = decoder.decode(fixed, packet.meta)
        assert out is not None and psnr(frames[0], out) >= GOOD
    finally:
        decoder.close()


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_close_is_idempotent_and_stops_the_codec_threads():
    frames = scene(640, 480, 3)
    before = _threads()
    encoder, decoder = VideoEncoder("h264", threads=4), VideoDecoder(threads=4)
    for frame in frames:
        packet = _one(encoder, frame)
        assert decoder.decode(packet.data, packet.meta) is not None
    assert _threads() > before  # x264's and the decoder's slice threads
    encoder.close()
    decoder.close()
    assert _threads() == before
    encoder.close()
    decoder.close()  # idempotent
    with pytest.raises(ClosedError):
        encoder.encode(frames[0])
    with pytest.raises(ClosedError):
        decoder.decode(packet.data, packet.meta)


def test_without_pyav_constructing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # what `import av` sees when not installed
    with pytest.raises(DependencyError, match=r"netgear\[video\]"):
        VideoEncoder("h264")
    with pytest.raises(DependencyError, match=r"netgear\[video\]"):
        VideoDecoder()
    with pytest.raises(ImportError):  # DependencyError is an ImportError too
        VideoDecoder()
