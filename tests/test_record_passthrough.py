"""Recording from the wire: an H.264 stream is stored as it arrived, without an encoder."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import free_port
from video_helpers import psnr, scene
from web_helpers import wait_for

from netgear import NetGear
from netgear.cli import main
from netgear.record import Recorder, SegmentWriter
from netgear.record.hub import RecordingHub
from netgear.video import VideoEncoder

SIZE = (320, 240)
FRAMES = 24
# dB against the frames sent. Passthrough keeps the sender's encode (~35 dB on this noisy
# content at netgear's default quality); re-encoding at CRF 23 loses a generation (~30).
MIN_PSNR = {True: 33.0, False: 27.0}


def _events(root: Path) -> list[dict]:
    return [json.loads(line) for path in sorted((root / "events").glob("*.jsonl"))
            for line in path.read_text().splitlines()]


def _mp4_packets(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [p.size for p in container.demux(video=0) if p.size]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("passthrough", [True, False], ids=["passthrough", "reencode"])
def test_h264_stream_is_recorded_without_an_encoder(tmp_path, passthrough):
    port = free_port()
    frames = scene(*SIZE, FRAMES)
    wire: list[int] = []  # a tap of our own beside the hub's: payload sizes as received
    hub = RecordingHub(Recorder(tmp_path), [port], passthrough=passthrough,
                       address="127.0.0.1", pattern=1,
                       packet_tap=lambda p: wire.append(p.payload.nbytes)).start()
    sender = NetGear(address="127.0.0.1", port=port, pattern=1, multiserver_mode=True,
                     video_codec="h264")
    try:
        for frame in frames:
            sender.send(frame, message="door")
        status = wait_for(lambda: (s := hub.recorder.status()["streams"].get(str(port)))
                          and s["frames"] == FRAMES and s, timeout=15)
        # counted while the stream is live: a stream that left is no longer in the status
        assert status["encoders_opened"] == (0 if passthrough else 1)
        sender.close()
        sender = None
        wait_for(lambda: any(e["event"] == "segment_closed" for e in _events(tmp_path)),
                 timeout=15)
    finally:
        if sender is not None:
            sender.close()
        hub.close()
    (path,) = sorted((tmp_path / "door").glob("*/*.mp4"))
    opened = next(e for e in _events(tmp_path) if e["event"] == "segment_opened")
    assert opened["passthrough"] is passthrough and opened["codec"] == "h264"
    # the segment plays: every frame decodes and matches what was sent
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(decoded) == FRAMES
    quality = [psnr(sent, got) for sent, got in zip(frames, decoded)]
    assert min(quality) > MIN_PSNR[passthrough], quality
    sizes = _mp4_packets(path)
    assert len(wire) == FRAMES and len(sizes) == FRAMES
    diffs = [abs(a - b) for a, b in zip(sizes, wire)]
    if passthrough:
        # the file holds the packets that crossed the wire: Annex B start codes became MP4
        # length prefixes, a byte or so per NAL unit
        assert max(diffs) <= 8, list(zip(sizes, wire))
    else:
        assert sum(diffs) > 0.05 * sum(wire)  # a different encode


@pytest.mark.timeout(60)
def test_late_joiner_records_from_a_keyframe(tmp_path):
    """PUB/SUB: the hub joins a running stream; what it records starts on a keyframe and
    every recorded frame plays (the tap only sees packets that decoded)."""
    port = free_port()
    frames = scene(*SIZE, 12)
    stop = threading.Event()
    sender = NetGear(address="127.0.0.1", port=port, pattern=2, multiserver_mode=True,
                     video_codec="h264", video_gop=6)

    def publish() -> None:
        i = 0
        while not stop.wait(1 / 30):
            sender.send(frames[i % len(frames)], message="yard")
            i += 1

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    hub = RecordingHub(Recorder(tmp_path), [port], address="127.0.0.1", pattern=2).start()
    try:
        status = wait_for(lambda: (s := hub.recorder.status()["streams"].get(str(port)))
                          and s["frames"] >= 20 and s, timeout=20)
        assert status["encoders_opened"] == 0
    finally:
        stop.set()
        thread.join(5)
        hub.close()  # finishes the segment
        sender.close()
    (path,) = sorted((tmp_path / "yard").glob("*/*.mp4"))
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
        assert packets[0].is_keyframe
    with av.open(str(path)) as container:
        decoded = list(container.decode(video=0))
    assert len(decoded) == len(packets) >= 20
    sidecar = json.loads(path.with_name(path.name + ".json").read_text())
    assert sidecar["frames"] == len(decoded) and sidecar["complete"] is True


@pytest.mark.timeout(20)
def test_reencode_flag_needs_record(capsys):
    assert main(["view", "--port", str(free_port()), "--reencode"]) == 1
    assert "--reencode needs --record DIR" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_a_packet_the_queue_drops_skips_to_the_next_keyframe(tmp_path):
    """Flooding a one-packet queue loses packets; what is recorded still decodes to exactly
    the pictures of the whole stream: after a lost packet nothing is written until a
    keyframe (a P-frame without its reference would decode to a different picture)."""
    count, gop = 120, 10
    frames = scene(*SIZE, count, seed=3)
    encoder = VideoEncoder("h264", gop=gop)
    try:
        packets = [p for frame in frames for p in encoder.encode(frame)]
    finally:
        encoder.close()
    assert len(packets) == count
    start = 1_000_000.0

    def pictures(path: Path) -> dict[int, np.ndarray]:
        with av.open(str(path)) as container:
            return {round(f.pts * f.time_base * 15): f.to_ndarray(format="bgr24")
                    for f in container.decode(video=0)}

    whole = SegmentWriter(tmp_path / "whole", "all")  # every packet: the reference
    for i, p in enumerate(packets):
        whole.write_packet(p.data, p.keyframe, start + i / 15, "h264", *SIZE)
    whole.close()
    reference = pictures(whole.path)
    assert len(reference) == count

    rec = Recorder(tmp_path / "rec", queue_frames=1).start()
    accepted: list[bool] = []
    try:
        for i, p in enumerate(packets):
            # bursts of three into a one-packet queue lose packets in the middle of GOPs;
            # between bursts the writer catches up, so recording goes on
            accepted.append(rec.add_packet("cam", p.data, p.keyframe, pts=start + i / 15,
                                           width=p.meta.width, height=p.meta.height))
            if i % 3 == 2:
                wait_for(lambda: rec.status()["streams"]["cam"]["frames"] == sum(accepted),
                         timeout=10, every=0.002)
        status = rec.status()["streams"]["cam"]
    finally:
        rec.close()
    assert status["lost"] == accepted.count(False) > 0
    # losses were followed by recording again (from a keyframe)
    resumed = [i for i in range(1, count) if accepted[i] and not accepted[i - 1]]
    assert resumed and all(packets[i].keyframe for i in resumed)
    (path,) = sorted((tmp_path / "rec" / "cam").glob("*/*.mp4"))
    recorded = pictures(path)
    assert sorted(recorded) == [i for i, ok in enumerate(accepted) if ok]
    wrong = [i for i, image in recorded.items() if not np.array_equal(image, reference[i])]
    assert wrong == []
