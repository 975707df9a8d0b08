"""Recording (issue 15): MP4 segments that play, passthrough without an encoder, SIGKILL
safety, retention, the event log, write errors, JPEG files, and the record CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import free_port
from test_browser import browser  # noqa: F401 - the headless Chromium fixture
from web_helpers import wait_for

from netgear import NetGear
from netgear.cli import main
from netgear.errors import OptionError, PeerTimeoutError
from netgear.record import Recorder, Retention, SegmentWriter, safe_name
from netgear.record.hub import RecordingHub

SCRIPT = Path(sys.executable).with_name("netgear")
MIN_PSNR = 30.0  # dB; libx264 at CRF 23 gives ~40 on these frames, a broken pipeline < 15


def make_frame(i: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """A smooth gradient with a block that moves one step per frame."""
    width, height = size
    x = np.linspace(0, 200, width, dtype=np.float32)
    y = np.linspace(0, 50, height, dtype=np.float32)[:, None]
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:, :, 0] = (x + y).astype(np.uint8)
    frame[:, :, 1] = (200 - x + y).astype(np.uint8)
    frame[:, :, 2] = 90
    left = (i * 6) % (width - 40)
    frame[100:140, left:left + 40] = (30, 220, 250)
    return frame


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def decode(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def segments(root: Path, stream: str) -> list[Path]:
    return sorted((root / stream).glob("*/*.mp4"))


def encode_packets(count: int, size=(320, 240), gop: int = 15):
    """H.264 packets we encode ourselves: what a stream would carry once issue 11 lands."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = size[0], size[1], "yuv420p"
    ctx.time_base = Fraction(1, 15)
    ctx.gop_size = gop
    ctx.options = {"tune": "zerolatency", "preset": "veryfast", "x264-params": "scenecut=0"}
    packets = []
    for i in range(count):
        frame = av.VideoFrame.from_ndarray(make_frame(i, size), format="bgr24")
        frame.pts = i
        packets += [(bytes(p), p.is_keyframe) for p in ctx.encode(frame)]
    packets += [(bytes(p), p.is_keyframe) for p in ctx.encode(None)]
    return packets


def events(root: Path) -> list[dict]:
    lines = []
    for path in sorted((root / "events").glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines()]
    return lines


# -- SegmentWriter ---------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(320, 240), (321, 241)])
def test_segments_play_every_frame_and_match_what_was_sent(tmp_path, size):
    writer = SegmentWriter(tmp_path, "cam", segment_seconds=1.0)
    sent = [make_frame(i, size) for i in range(40)]
    t0 = time.time()
    try:
        for i, frame in enumerate(sent):
            writer.write_frame(frame, t0 + i / 15)  # 15 fps: a new segment every 15 frames
    finally:
        writer.close()
    files = segments(tmp_path, "cam")
    assert len(files) == 3
    decoded = []
    for path in files:
        frames = decode(path)
        assert frames[0].key_frame, f"{path.name} does not start on a keyframe"
        decoded += [f.to_ndarray(format="bgr24") for f in frames]
        info = json.loads(path.with_name(path.name + ".json").read_text())
        assert info["complete"] is True and info["frames"] == len(frames)
        assert info["codec"] == "h264"
    assert len(decoded) == len(sent)
    width, height = size
    for got, want in zip(decoded, sent):
        assert got.shape[:2] == (height + height % 2, width + width % 2)  # padded to even
        assert psnr(got[:height, :width], want) > MIN_PSNR
    assert writer.encoders_opened == 3


def test_passthrough_muxes_packets_without_an_encoder(tmp_path):
    packets = encode_packets(45, gop=15)
    assert sum(k for _, k in packets) == 3
    writer = SegmentWriter(tmp_path, "h264cam", segment_seconds=1.0)
    t0 = time.time()
    try:
        for i, (data, key) in enumerate(packets):
            assert writer.write_packet(data, key, t0 + i / 15, "h264", 320, 240)
            assert writer._vstream.codec_context is None  # a mux-only stream: no codec
    finally:
        writer.close()
    assert writer.encoders_opened == 0
    files = segments(tmp_path, "h264cam")
    assert len(files) == 3  # cut on the keyframes, once a second had passed
    # Copied, not re-encoded: the file decodes to exactly what the packets decode to.
    reference = av.CodecContext.create("h264", "r")
    want = []
    for data, _ in packets:
        want += [f.to_ndarray(format="bgr24") for f in reference.decode(av.Packet(data))]
    want += [f.to_ndarray(format="bgr24") for f in reference.decode(None)]
    got = [f.to_ndarray(format="bgr24") for path in files for f in decode(path)]
    assert len(got) == len(want) == 45
    assert all(np.array_equal(g, w) for g, w in zip(got, want))


def test_passthrough_skips_packets_before_the_first_keyframe(tmp_path):
    packets = encode_packets(20, gop=10)
    writer = SegmentWriter(tmp_path, "late", segment_seconds=60)
    try:
        written = [writer.write_packet(d, k, None, "h264", 320, 240) for d, k in packets[3:]]
    finally:
        writer.close()
    assert written[:7] == [False] * 7 and all(written[7:])
    assert len(decode(segments(tmp_path, "late")[0])) == 10
    with pytest.raises(OptionError, match="'h264' or 'hevc'"):
        writer.write_packet(b"x", True, None, "vp9", 320, 240)


def test_bad_writer_options_name_the_option(tmp_path):
    with pytest.raises(OptionError, match="segment_seconds"):
        SegmentWriter(tmp_path, "x", segment_seconds=0)
    with pytest.raises(OptionError, match="crf"):
        Recorder(tmp_path, crf=80)
    with pytest.raises(OptionError, match="format"):
        Recorder(tmp_path, format="avi")
    with pytest.raises(OptionError, match="max_age_s"):
        Retention(max_age_s=-1)


def test_safe_name_rule():
    assert safe_name("5566") == "5566"
    assert safe_name("front door/cam #2") == "front_door_cam_2"
    assert safe_name("../../etc") == "etc"
    assert safe_name("events") == "stream_events"
    assert safe_name("...") == "stream"
    assert len(safe_name("x" * 500)) == 64


# -- crash safety -----------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_sigkilled_recorder_leaves_a_playable_segment(tmp_path):
    port = free_port()
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "netgear.cli"]
    proc = subprocess.Popen([*cmd, "record", "--port", str(port), "--address", "127.0.0.1",
                             "--out", str(tmp_path), "--segment-seconds", "600"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sender = None
    try:
        sender = NetGear(address="127.0.0.1", port=port, pattern=1, multiserver_mode=True)
        for i in range(30):
            sender.send(make_frame(i))  # REQ/REP: each send returns once received

        # the muxer writes a frame's fragment when the next frame arrives (it needs its
        # duration): the newest frame is the one a kill can lose
        def on_disk():
            files = segments(tmp_path, str(port))
            return files and len(decode(files[0])) == 29
        wait_for(on_disk, timeout=20, every=0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        (path,) = segments(tmp_path, str(port))
        info = json.loads(path.with_name(path.name + ".json").read_text())
        assert info["complete"] is False  # never closed: no trailer was written
        frames = [f.to_ndarray(format="bgr24") for f in decode(path)]
        assert len(frames) == 29
        assert all(psnr(f, make_frame(i)) > MIN_PSNR for i, f in enumerate(frames))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if sender is not None:
            sender.close()


# -- retention --------------------------------------------------------------------------------
def _media(root: Path, stream: str, name: str, size: int, age: float) -> Path:
    path = root / stream / "2026-01-01" / f"{stream}_{name}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    path.with_name(path.name + ".json").write_text("{}")
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def test_retention_by_age_keeps_the_segment_being_written(tmp_path):
    old = _media(tmp_path, "a", "1", 100, age=7200)
    live = _media(tmp_path, "a", "2", 100, age=7000)  # old, but still being written
    new = _media(tmp_path, "b", "3", 100, age=10)
    deleted = Retention(max_age_s=3600).apply(tmp_path, protect=[live])
    assert deleted == [old]
    assert not old.exists() and not old.with_name(old.name + ".json").exists()
    assert live.exists() and new.exists()


def test_retention_by_size_per_stream_and_total_deletes_oldest_first(tmp_path):
    a = [_media(tmp_path, "a", str(i), 1000, age=100 - i) for i in range(5)]
    b = [_media(tmp_path, "b", str(i), 1000, age=50 - i) for i in range(3)]
    deleted = Retention(max_bytes_per_stream=3000).apply(tmp_path)
    assert deleted == a[:2]
    deleted = Retention(max_bytes_total=4000).apply(tmp_path)
    assert deleted == [a[2], a[3]]  # the oldest overall, whichever stream
    assert [p.exists() for p in a + b] == [False] * 4 + [True] * 4
    Retention(max_bytes_total=1).apply(tmp_path, protect=[b[2]])
    assert [p for p in a + b if p.exists()] == [b[2]]
    assert (tmp_path / "a").is_dir() and not (tmp_path / "a" / "2026-01-01").exists()


def test_recorder_applies_retention_while_recording(tmp_path):
    rec = Recorder(tmp_path, segment_seconds=0.2, retention=Retention(max_bytes_per_stream=1))
    rec.start()
    try:
        t0 = time.time()
        for i in range(60):
            rec.add_frame("cam", make_frame(i), when=t0 + i / 30)  # a segment per 6 frames
            wait_for(lambda: rec._streams["cam"].queue.empty(), timeout=10, every=0.01)
        opened = [e for e in events(tmp_path) if e["event"] == "segment_opened"]
        assert len(opened) == 10
        left = wait_for(lambda: len(segments(tmp_path, "cam")) == 1 and segments(tmp_path, "cam"),
                        timeout=20, every=0.1)
        assert left[0] == rec._streams["cam"].writer.path  # only the one being written
    finally:
        rec.close()


# -- hub: events, errors, jpeg ------------------------------------------------------------------
def _hub(tmp_path, ports, **kw):
    rec = Recorder(tmp_path, stale_after=kw.pop("stale_after", 1.0), **kw)
    return RecordingHub(rec, ports, address="127.0.0.1", pattern=1, stale_after=1.0).start()


def _sender(port):
    return NetGear(address="127.0.0.1", port=port, pattern=1, multiserver_mode=True)


@pytest.mark.timeout(60)
def test_event_log_records_join_message_stale_live_segments_and_leave(tmp_path):
    port = free_port()
    hub = _hub(tmp_path, [port])
    sender = _sender(port)
    try:
        for i in range(5):
            sender.send(make_frame(i), message="cam1")
        sender.send(make_frame(5), message="motion at the door")
        sender.send(np.zeros(0, np.uint8), message="door closed")  # a text alone
        wait_for(lambda: hub_frames(hub, port) == 7, timeout=10)
        assert hub.montage().shape[:2] == (240, 320)  # still the last picture
        assert hub.snapshot()[0]["name"] == "motion at the door"  # not renamed by the text
        key = str(port)
        wait_for(lambda: any(e["event"] == "stale" for e in events(tmp_path)), timeout=15)
        sender.send(make_frame(6), message="cam1")
        wait_for(lambda: any(e["event"] == "live" for e in events(tmp_path)), timeout=10)
        sender.close()
        sender = None
        wait_for(lambda: any(e["event"] == "segment_closed" for e in events(tmp_path)),
                 timeout=10)
        log = events(tmp_path)
        kinds = [e["event"] for e in log if e["stream"] == key]
        assert kinds == ["joined", "segment_opened", "message", "message", "stale", "live",
                         "left", "segment_closed"]
        joined, message, alone = log[0], log[2], log[3]
        assert joined["name"] == "cam1" and joined["folder"] == "cam1"
        assert message["text"] == "motion at the door"
        assert alone["text"] == "door closed"
        assert log[-1]["frames"] == 7
        assert all(isinstance(e["ts"], float) for e in log)
        (path,) = segments(tmp_path, "cam1")
        assert len(decode(path)) == 7
        assert hub.stats()["recording"]["ok"] is True
    finally:
        if sender is not None:
            sender.close()
        hub.close()


@pytest.mark.timeout(60)
def test_unwritable_stream_folder_is_an_error_status_and_receiving_goes_on(tmp_path):
    bad, good = free_port(), free_port()
    (tmp_path / "blocked").write_text("a file where the stream's folder should be")
    hub = _hub(tmp_path, [bad, good], retry_after=60)
    senders = [_sender(bad), _sender(good)]
    try:
        for i in range(10):
            senders[0].send(make_frame(i), message="blocked")
            senders[1].send(make_frame(i), message="fine")
        status = wait_for(lambda: (s := hub.stats()["recording"])["error"] and s, timeout=10)
        assert status["ok"] is False
        assert "cannot record stream 'blocked'" in status["error"]
        assert str(tmp_path) in status["error"]
        assert status["streams"][str(bad)]["state"] == "error"
        assert status["streams"][str(good)]["error"] is None
        wait_for(lambda: hub_frames(hub, bad) == 10, timeout=10)  # receiving went on
        errors = [e for e in events(tmp_path) if e["event"] == "error"]
        assert errors and errors[0]["stream"] == str(bad)
        wait_for(lambda: status_frames(hub, good) == 10, timeout=10)
    finally:
        for sender in senders:
            sender.close()
        hub.close()
    assert len(decode(segments(tmp_path, "fine")[0])) == 10


def hub_frames(hub, port):
    return {s["port"]: s for s in hub.snapshot()}[str(port)]["frames"]


def status_frames(hub, port):
    return hub.recorder.status()["streams"].get(str(port), {}).get("frames")


@pytest.mark.timeout(60)
def test_jpeg_format_keeps_a_file_per_frame_by_date(tmp_path):
    port = free_port()
    hub = _hub(tmp_path, [port], format="jpeg")
    sender = _sender(port)
    try:
        for i in range(8):
            sender.send(make_frame(i))
        wait_for(lambda: status_frames(hub, port) == 8, timeout=10)
    finally:
        sender.close()
        hub.close()
    (day,) = (tmp_path / str(port)).iterdir()
    assert day.name == time.strftime("%Y-%m-%d")
    files = sorted(day.glob("*.jpg"))
    assert len(files) == 8 and not list(day.glob(".*"))
    import cv2

    for i, path in enumerate(files):
        assert path.name.startswith(f"{port}_")
        assert psnr(cv2.imread(str(path)), make_frame(i)) > MIN_PSNR


# -- CLI ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, expected", [
    (["record", "--port", "5566"], "--out"),
    (["record", "--out", "x", "--max-bytes", "lots"], "not a size like 500M"),
    (["record", "--out", "x", "--max-age", "3x"], "not a duration"),
    (["record", "--out", "x", "--format", "avi"], "invalid choice"),
])
def test_record_argument_errors(argv, expected, capsys):
    assert main(argv) == 2
    assert expected in capsys.readouterr().err


def test_view_retention_flags_need_record(capsys):
    assert main(["view", "--port", str(free_port()), "--max-age", "7d"]) == 1
    assert "--max-age needs --record DIR" in capsys.readouterr().err


def test_record_bad_crf_is_one_line(tmp_path, capsys):
    assert main(["record", "--out", str(tmp_path), "--crf", "99", "--port",
                 str(free_port())]) == 1
    assert "--crf 99 is outside 0-51" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_view_record_records_while_serving_the_page(tmp_path, capsys):
    port = free_port()
    stop = threading.Event()

    def send():
        # the viewer stops first: its last unanswered frame ends this sender quickly
        sender = NetGear(address="127.0.0.1", port=port, pattern=1, multiserver_mode=True,
                         request_timeout=2.0, max_retries=0)
        try:
            i = 0
            while not stop.is_set():
                sender.send(make_frame(i), message="door")
                i += 1
                stop.wait(1 / 15)
        except PeerTimeoutError:
            pass
        finally:
            sender.close()

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    try:
        code = main(["view", "--address", "127.0.0.1", "--port", str(port), "--web-port", "0",
                     "--seconds", "4", "--stats-every", "0", "--record", str(tmp_path),
                     "--segment-seconds", "1"])
    finally:
        stop.set()
        thread.join(10)
    assert code == 0, capsys.readouterr().err
    files = segments(tmp_path, "door")
    assert len(files) >= 2
    assert all(decode(p) for p in files)
    assert all(json.loads(p.with_name(p.name + ".json").read_text())["complete"] for p in files)


@pytest.mark.timeout(60)
def test_disk_full_is_an_error_status_and_receiving_goes_on(tmp_path):
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    port = free_port()
    hub = sender = None
    try:
        hub = _hub(disk, [port], retry_after=60)
        sender = _sender(port)
        rng = np.random.default_rng(1)
        for _ in range(40):  # noise does not compress: ~100 kB a frame fills 256 kB fast
            sender.send(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), message="noisy")
        status = wait_for(lambda: (s := hub.stats()["recording"])["error"] and s, timeout=15)
        assert "No space left on device" in status["error"]
        assert "cannot record stream 'noisy'" in status["error"]
        assert status["streams"][str(port)]["state"] == "error"
        sender.send(make_frame(0), message="noisy")  # receiving still works
        wait_for(lambda: hub_frames(hub, port) == 41, timeout=10)
    finally:
        if sender is not None:
            sender.close()
        if hub is not None:
            hub.close()
        subprocess.run(["umount", str(disk)], check=False)


# -- browser ------------------------------------------------------------------------------------
PLAYER = """<html><body><video id=v muted src="SRC"></video><div id=r></div><script>
const v = document.getElementById('v'), r = document.getElementById('r');
v.addEventListener('error', () => { r.textContent = 'error ' + (v.error && v.error.code); });
v.addEventListener('ended', () => {
  r.textContent = 'ended ' + v.getVideoPlaybackQuality().totalVideoFrames + ' ' + v.videoWidth;
});
v.play().catch(e => { r.textContent = 'refused ' + e; });
</script></body></html>"""


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_chromium_plays_finished_and_killed_segments(tmp_path, browser):  # noqa: F811
    import shutil as sh

    writer = SegmentWriter(tmp_path, "cam", segment_seconds=600)
    t0 = time.time()
    for i in range(45):
        writer.write_frame(make_frame(i), t0 + i / 15)
    sh.copy(writer.path, tmp_path / "killed.mp4")  # as a SIGKILL would leave it
    writer.close()
    sh.copy(writer.path, tmp_path / "finished.mp4")
    for name, frames in (("finished", 45), ("killed", 44)):
        page = tmp_path / f"{name}.html"
        page.write_text(PLAYER.replace("SRC", f"{name}.mp4"))
        browser.get(page.as_uri())
        result = wait_for(lambda: browser.find_element("id", "r").text, timeout=20,
                          every=0.2)
        assert result == f"ended {frames} 320", name


def test_jpeg_frames_in_one_millisecond_each_keep_their_file(tmp_path):
    from netgear.record.jpeg import JpegWriter

    writer = JpegWriter(tmp_path, "cam")
    when = time.time()
    for i in range(4):  # the same stamp four times: no file may replace another
        writer.write_frame(make_frame(i), when)
    (day,) = (tmp_path / "cam").iterdir()
    assert len(list(day.glob("*.jpg"))) == 4
