"""CamGear, TestPatternGear and VideoGear against real video files and fake live devices."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np
import pytest

from netgear.errors import ClosedError, OptionError, SourceError, UsageError
from netgear.gears import CamGear, TestPatternGear, VideoGear
from netgear.gears import camgear as camgear_module

FRAMES = 30
STEP = 8  # grey level of frame i is i * STEP; survives MJPG compression well enough to order


def make_video(path: Path, frames: int = FRAMES, size: tuple[int, int] = (64, 48)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), (i * STEP) % 256, np.uint8))
    writer.release()
    return path


def frame_number(frame: np.ndarray) -> int:
    return round(float(frame.mean()) / STEP)


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.avi")


def read_all(gear: Any, limit: int = 1000) -> list[np.ndarray]:
    frames = []
    for _ in range(limit):
        frame = gear.read()
        if frame is None:
            return frames
        frames.append(frame)
    raise AssertionError("stream never ended")


class FakeCapture:
    """A live device: frames numbered 0, 1, 2... every ``period`` s; ``hang`` blocks read()."""

    def __init__(self, period: float = 0.002, hang: Optional[threading.Event] = None) -> None:
        self.period, self.hang = period, hang
        self.count, self.released, self.props = 0, False, {}

    def isOpened(self) -> bool:
        return True

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = value
        return True

    def get(self, prop: int) -> float:
        return self.props.get(prop, 0.0)

    def read(self) -> tuple[bool, Optional[np.ndarray]]:
        if self.hang is not None:
            self.hang.wait(10)
            return False, None
        time.sleep(self.period)
        frame = np.full((4, 4, 3), 0, np.uint8)
        frame.flat[:4] = np.frombuffer(np.uint32(self.count).tobytes(), np.uint8)
        self.count += 1
        return True, frame

    def release(self) -> None:
        self.released = True


def fake_index(frame: np.ndarray) -> int:
    return int(np.frombuffer(frame.flat[:4].tobytes(), np.uint32)[0])


@pytest.fixture
def fake_device(monkeypatch: pytest.MonkeyPatch) -> list[FakeCapture]:
    made: list[FakeCapture] = []

    def open_capture(source: Any, backend: int, **kw: Any) -> FakeCapture:
        made.append(FakeCapture(**kw))
        return made[-1]

    monkeypatch.setattr(camgear_module, "_open_capture", open_capture)
    return made


@pytest.mark.timeout(15)
def test_camgear_file_reads_every_frame_in_order_then_none(video: Path) -> None:
    gear = CamGear(source=str(video)).start()
    frames = read_all(gear)
    assert [frame_number(f) for f in frames] == list(range(FRAMES))
    assert frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    assert gear.read() is None and gear.read() is None
    gear.stop()
    assert not gear.live


@pytest.mark.timeout(15)
def test_camgear_file_never_drops_with_a_slow_reader(
    video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CamGear, "QUEUE_SIZE", 2)
    gear = CamGear(source=video).start()  # a Path works too
    numbers = []
    while (frame := gear.read()) is not None:
        numbers.append(frame_number(frame))
        if len(numbers) % 10 == 0:
            time.sleep(0.05)  # the reader thread fills the 2-frame queue and must wait
    gear.stop()
    assert numbers == list(range(FRAMES))


@pytest.mark.timeout(15)
def test_camgear_stop_is_prompt_while_the_reader_thread_waits_on_a_full_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CamGear, "QUEUE_SIZE", 2)
    gear = CamGear(source=str(make_video(tmp_path / "long.avi", frames=60))).start()
    time.sleep(0.2)  # nobody reads: the thread is parked on the full queue
    started = time.monotonic()
    gear.stop()
    assert time.monotonic() - started < 1.0
    assert gear._thread is not None and not gear._thread.is_alive()
    assert gear.read() is None


@pytest.mark.timeout(15)
def test_camgear_stop_is_prompt_while_read_blocks(fake_device: list[FakeCapture]) -> None:
    hang = threading.Event()
    gear = CamGear(source=0)
    fake_device[0].hang = hang  # the device delivers nothing: read() must block
    gear.start()
    results: list[Any] = []
    reader = threading.Thread(target=lambda: results.append(gear.read()))
    reader.start()
    time.sleep(0.2)
    assert reader.is_alive()
    started = time.monotonic()
    gear.stop()
    reader.join(1.0)
    assert time.monotonic() - started < 1.0
    assert not reader.is_alive() and results == [None]
    assert gear.read() is None
    hang.set()  # the driver returns: the abandoned thread releases the device itself
    gear._thread.join(2)
    assert fake_device[0].released


@pytest.mark.timeout(15)
def test_camgear_live_source_returns_the_newest_frame(fake_device: list[FakeCapture]) -> None:
    gear = CamGear(source=0).start()
    assert gear.live
    first = fake_index(gear.read())
    time.sleep(0.15)  # ~75 frames are produced meanwhile; only the newest is kept
    second = fake_index(gear.read())
    assert second - first >= 10
    seen = [fake_index(gear.read()) for _ in range(5)]
    assert seen == sorted(set(seen)) and seen[0] > second  # never the same frame twice
    assert fake_device[0].count - seen[-1] <= 3  # no growing lag
    gear.stop()


def test_camgear_cap_prop_options_are_applied(fake_device: list[FakeCapture]) -> None:
    gear = CamGear(source=0, CAP_PROP_FRAME_WIDTH=320, CAP_PROP_FPS=15)
    assert fake_device[0].props == {cv2.CAP_PROP_FRAME_WIDTH: 320.0, cv2.CAP_PROP_FPS: 15.0}
    assert gear.framerate == 15.0
    gear.stop()
    assert fake_device[0].released


@pytest.mark.parametrize(
    ("options", "key"),
    [({"CAP_PROP_NOT_A_THING": 1}, "CAP_PROP_NOT_A_THING"), ({"resolution": (1, 2)}, "resolution"),
     ({"CAP_PROP_FPS": "fast"}, "CAP_PROP_FPS")],
)
def test_camgear_rejects_bad_options(video: Path, options: dict, key: str) -> None:
    with pytest.raises(OptionError, match=key) as info:
        CamGear(source=str(video), **options)
    assert info.value.key == key
    assert isinstance(info.value, ValueError)  # vidgear callers catch ValueError


def test_camgear_unopenable_source_names_the_source(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.mp4")
    with pytest.raises(SourceError, match=r"nope\.mp4"):
        CamGear(source=missing)


@pytest.mark.timeout(15)
def test_camgear_colorspace(video: Path) -> None:
    gear = CamGear(source=str(video), colorspace="COLOR_BGR2GRAY").start()
    frames = read_all(gear)
    gear.stop()
    assert len(frames) == FRAMES and frames[0].shape == (48, 64)
    with pytest.raises(OptionError, match="COLOR_NOPE"):
        CamGear(source=str(video), colorspace="COLOR_NOPE")


@pytest.mark.timeout(15)
def test_gear_lifecycle(video: Path) -> None:
    gear = CamGear(source=str(video))
    with pytest.raises(UsageError):
        gear.read()
    assert gear.start() is gear and gear.start() is gear
    gear.stop()
    gear.stop()
    assert gear.read() is None
    with pytest.raises(ClosedError):
        gear.start()
    with CamGear(source=str(video)) as ctx:
        assert len(list(ctx)) == FRAMES


@pytest.mark.timeout(15)
def test_time_delay_waits_in_start(video: Path) -> None:
    started = time.monotonic()
    gear = CamGear(source=str(video), time_delay=0.3).start()
    assert time.monotonic() - started >= 0.29
    gear.stop()


# -- TestPatternGear ---------------------------------------------------------------------


@pytest.mark.timeout(15)
def test_testpattern_frames_limit_and_counter() -> None:
    gear = TestPatternGear(resolution=(160, 120), framerate=0, frames=7).start()
    frames = read_all(gear)
    assert len(frames) == 7 and frames[0].shape == (120, 160, 3)
    assert [TestPatternGear.frame_index(f) for f in frames] == list(range(7))
    assert not np.array_equal(frames[0], frames[1])  # it moves
    gear.stop()


def test_testpattern_barcode_survives_jpeg_and_grey() -> None:
    gear = TestPatternGear(resolution=(320, 240), framerate=0, colorspace="COLOR_BGR2GRAY").start()
    for _ in range(1234):
        gear.read()
    frame = gear.read()
    assert frame.ndim == 2 and TestPatternGear.frame_index(frame) == 1234
    frame = TestPatternGear((320, 240)).render(987654)
    ok, jpg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    assert TestPatternGear.frame_index(cv2.imdecode(jpg, cv2.IMREAD_COLOR)) == 987654


def test_testpattern_is_deterministic_without_timestamp() -> None:
    a = TestPatternGear((64, 48), timestamp=False).render(42)
    b = TestPatternGear((64, 48), timestamp=False).render(42)
    assert np.array_equal(a, b)


@pytest.mark.timeout(15)
def test_testpattern_is_paced_and_stop_interrupts_the_wait() -> None:
    gear = TestPatternGear((64, 48), framerate=50, frames=11).start()
    started = time.monotonic()
    assert len(read_all(gear)) == 11
    assert 0.18 <= time.monotonic() - started < 1.0  # 10 periods of 20 ms
    slow = TestPatternGear((64, 48), framerate=0.5).start()
    slow.read()
    results: list[Any] = []
    reader = threading.Thread(target=lambda: results.append(slow.read()))
    reader.start()
    time.sleep(0.1)
    started = time.monotonic()
    slow.stop()
    reader.join(1.0)
    assert time.monotonic() - started < 1.0 and results == [None]


def test_testpattern_fast_enough_for_benchmarks() -> None:
    gear = TestPatternGear((640, 480), framerate=0, frames=200).start()
    started = time.monotonic()
    assert len(read_all(gear)) == 200
    assert time.monotonic() - started < 2.0  # well over 100 fps even on a loaded CI core


def test_testpattern_options() -> None:
    gear = TestPatternGear(CAP_PROP_FRAME_WIDTH=80, CAP_PROP_FRAME_HEIGHT=60, CAP_PROP_FPS=0,
                           CAP_PROP_FRAME_COUNT=2).start()
    assert [f.shape for f in read_all(gear)] == [(60, 80, 3)] * 2
    with pytest.raises(OptionError, match="CAP_PROP_BRIGHTNESS"):
        TestPatternGear(CAP_PROP_BRIGHTNESS=3)
    with pytest.raises(OptionError):
        TestPatternGear(resolution=(0, 10))
    with pytest.raises(OptionError):
        TestPatternGear(framerate=-1)
    with pytest.raises(UsageError):
        TestPatternGear().read()


@pytest.mark.timeout(15)
def test_camgear_and_videogear_accept_testpattern() -> None:
    gear = CamGear(source="testpattern", CAP_PROP_FRAME_WIDTH=96, CAP_PROP_FRAME_HEIGHT=64,
                   CAP_PROP_FPS=0, CAP_PROP_FRAME_COUNT=6).start()
    frames = read_all(gear)
    gear.stop()
    assert [TestPatternGear.frame_index(f) for f in frames] == list(range(6))
    assert frames[0].shape == (64, 96, 3)
    stream = VideoGear(source="testpattern", resolution=(96, 64), framerate=0, frames=4).start()
    assert isinstance(stream.stream, TestPatternGear)
    assert [TestPatternGear.frame_index(f) for f in read_all(stream)] == [0, 1, 2, 3]
    stream.stop()


@pytest.mark.timeout(15)
def test_camgear_testpattern_stop_is_prompt_while_paced() -> None:
    gear = CamGear(source="testpattern", CAP_PROP_FPS=0.5).start()
    assert gear.read() is not None
    started = time.monotonic()
    gear.stop()
    assert time.monotonic() - started < 1.0
    assert gear.read() is None


# -- VideoGear -----------------------------------------------------------------------------


@pytest.mark.timeout(15)
def test_videogear_file_like_the_seed_examples(video: Path) -> None:
    stream = VideoGear(source=str(video)).start()
    numbers = []
    while True:
        frame = stream.read()
        if frame is None:
            break
        numbers.append(frame_number(frame))
    stream.stop()
    assert numbers == list(range(FRAMES))
    assert isinstance(stream.stream, CamGear)


def test_videogear_rejects_what_it_cannot_do(video: Path) -> None:
    with pytest.raises(OptionError, match="stabilize"):
        VideoGear(source=str(video), stabilize=True)
    with pytest.raises(OptionError, match="CAP_PROP_NOPE"):
        VideoGear(source=str(video), CAP_PROP_NOPE=1)
