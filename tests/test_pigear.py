"""PiGear against a stand-in Picamera2: option mapping, frames, stop, missing dependency."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np
import pytest

from netgear.errors import DependencyError, OptionError, SourceError
from netgear.gears import PiGear, VideoGear
from netgear.gears.pigear import OPTION_MAP, map_options

SEED_OPTIONS = {
    "hflip": True,
    "exposure_mode": "auto",
    "iso": 800,
    "exposure_compensation": 15,
    "awb_mode": "horizon",
    "sensor_mode": 0,
}
SENSOR_MODES = [
    {"size": (640, 480), "format": "SRGGB10_CSI2P", "unpacked": "SRGGB10", "bit_depth": 10},
    {"size": (1640, 1232), "format": "SRGGB10_CSI2P", "unpacked": "SRGGB10", "bit_depth": 10},
]


class FakeTransform:
    def __init__(self, hflip: int = 0, vflip: int = 0) -> None:
        self.hflip, self.vflip = hflip, vflip


class FakePicamera2:
    """Records what PiGear asks of the camera; capture_array numbers its frames."""

    instances: ClassVar[list[FakePicamera2]] = []
    period = 0.002

    def __init__(self, camera_num: int = 0) -> None:
        self.camera_num = camera_num
        self.calls: list[tuple[str, Any]] = []
        self.sensor_modes = SENSOR_MODES
        self.camera_controls: dict[str, tuple] = {}
        self.count = 0
        self.hang: Optional[threading.Event] = None
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("create_video_configuration", kwargs))
        return {"made_by": "fake", **kwargs}

    def configure(self, config: dict[str, Any]) -> None:
        self.calls.append(("configure", config))

    def set_controls(self, controls: dict[str, Any]) -> None:
        self.calls.append(("set_controls", dict(controls)))

    def start(self) -> None:
        self.calls.append(("start", None))

    def capture_array(self, name: str = "main") -> np.ndarray:
        if self.hang is not None:
            self.hang.wait(10)
        time.sleep(self.period)
        width, height = self.config["main"]["size"]
        frame = np.zeros((height, width, 3), np.uint8)
        frame[0, 0, 0], frame[0, 0, 1] = self.count % 256, self.count // 256
        self.count += 1
        return frame

    def stop(self) -> None:
        self.calls.append(("stop", None))

    def close(self) -> None:
        self.calls.append(("close", None))

    # -- helpers for the asserts
    def called(self, name: str) -> list[Any]:
        return [arg for call, arg in self.calls if call == name]

    @property
    def config(self) -> dict[str, Any]:
        return self.called("configure")[-1]

    @property
    def controls(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for arg in self.called("set_controls"):
            merged.update(arg)
        return merged


def pigear(**kwargs: Any) -> tuple[PiGear, FakePicamera2]:
    gear = PiGear(camera_factory=FakePicamera2, transform_factory=FakeTransform, **kwargs)
    return gear, gear.camera


def index(frame: np.ndarray) -> int:
    return int(frame[0, 0, 0]) + 256 * int(frame[0, 0, 1])


def test_seed_options_map_onto_picamera2() -> None:
    gear, cam = pigear(resolution=(640, 480), framerate=60, logging=True, **SEED_OPTIONS)
    config = cam.config
    assert config["main"] == {"size": (640, 480), "format": "RGB888"}
    assert config["controls"] == {"FrameDurationLimits": (16667, 16667)}
    assert (config["transform"].hflip, config["transform"].vflip) == (1, 0)
    assert config["raw"] == {"size": (640, 480), "format": "SRGGB10_CSI2P"}
    assert cam.controls == {
        "AeEnable": True,
        "AnalogueGain": 8.0,
        "ExposureValue": pytest.approx(4.8),
        "AwbEnable": True,
        "AwbMode": 1,  # libcamera AwbModeEnum.Incandescent: the warmest preset
    }
    assert cam.called("start") == []  # the camera starts with the gear, not before
    gear.stop()
    assert cam.called("close")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"brightness": 75}, {"Brightness": 0.5}),
        ({"contrast": -50}, {"Contrast": 0.5}),
        ({"saturation": 100}, {"Saturation": 2.0}),
        ({"sharpness": 0}, {"Sharpness": 1.0}),
        ({"exposure_mode": "off"}, {"AeEnable": False}),
        ({"exposure_mode": "sports"}, {"AeEnable": True, "AeExposureMode": 1}),
        ({"exposure_mode": "night"}, {"AeEnable": True, "AeExposureMode": 2}),
        ({"exposure_compensation": -25}, {"ExposureValue": -8.0}),
        ({"awb_mode": "off"}, {"AwbEnable": False}),
        ({"awb_mode": "sunlight"}, {"AwbEnable": True, "AwbMode": 5}),
        ({"awb_mode": "cloudy"}, {"AwbEnable": True, "AwbMode": 6}),
        ({"awb_gains": (1.5, 2.0)}, {"ColourGains": (1.5, 2.0)}),
        ({"shutter_speed": 10000}, {"ExposureTime": 10000}),
        ({"iso": 0}, {}),
        ({"meter_mode": "spot"}, {"AeMeteringMode": 1}),
        ({"AnalogueGain": 3.0}, {"AnalogueGain": 3.0}),
    ],
)
def test_each_option_mapping(options: dict[str, Any], expected: dict[str, Any]) -> None:
    gear, cam = pigear(**options)
    assert cam.controls.keys() == expected.keys()
    for key, value in expected.items():
        assert np.allclose(cam.controls[key], value), key
    assert bool(cam.called("set_controls")) == bool(expected)
    gear.stop()


def test_rotation_and_flips_become_a_transform() -> None:
    settings = map_options({"rotation": 180})
    assert (settings.hflip, settings.vflip) == (True, True)
    settings = map_options({"hflip": True, "rotation": 180})
    assert (settings.hflip, settings.vflip) == (False, True)
    gear, cam = pigear(vflip=True)
    assert (cam.config["transform"].hflip, cam.config["transform"].vflip) == (0, 1)
    gear.stop()


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"led": True}, "led"),
        ({"HWFAILURE_TIMEOUT": 2.0}, "HWFAILURE_TIMEOUT"),
        ({"awb_mode": "greyworld"}, "awb_mode"),
        ({"exposure_mode": "fireworks"}, "exposure_mode"),
        ({"exposure_compensation": 30}, "exposure_compensation"),
        ({"rotation": 90}, "rotation"),
        ({"iso": -1}, "iso"),
        ({"brightness": "bright"}, "brightness"),
        ({"meter_mode": "backlit"}, "meter_mode"),
    ],
)
def test_options_without_a_mapping_are_refused(options: dict[str, Any], key: str) -> None:
    with pytest.raises(OptionError, match=key) as info:
        pigear(**options)
    assert info.value.key == key


def test_unknown_option_lists_the_supported_ones() -> None:
    with pytest.raises(OptionError) as info:
        map_options({"video_stabilization": True})
    message = str(info.value)
    assert "video_stabilization" in message
    assert all(name in message for name in OPTION_MAP)


def test_sensor_mode_and_native_controls_are_checked_against_the_camera() -> None:
    gear, cam = pigear(sensor_mode=1)
    assert cam.config["raw"]["size"] == (1640, 1232)
    gear.stop()
    with pytest.raises(OptionError, match="sensor_mode"):
        pigear(sensor_mode=2)

    class PickyCamera(FakePicamera2):
        def __init__(self, camera_num: int = 0) -> None:
            super().__init__(camera_num)
            self.camera_controls = {"AnalogueGain": (1.0, 16.0, 1.0)}

    with pytest.raises(OptionError, match="LensPosition"):
        PiGear(camera_factory=PickyCamera, LensPosition=1.0)
    assert PickyCamera.instances[-1].called("close")  # a refused camera is released


@pytest.mark.timeout(15)
def test_frames_are_newest_first_and_colorspace_applies() -> None:
    gear, cam = pigear(resolution=(64, 48))
    gear.start()
    assert cam.called("start")
    first = index(gear.read())
    time.sleep(0.1)
    second = index(gear.read())
    assert gear.read().shape == (48, 64, 3)
    assert second - first >= 5  # the frames in between were dropped, not queued
    gear.stop()
    assert cam.called("stop") and cam.called("close")
    grey, _ = pigear(resolution=(64, 48), colorspace="COLOR_BGR2GRAY")
    assert grey.start().read().shape == (48, 64)
    grey.stop()


@pytest.mark.timeout(15)
def test_stop_is_prompt_while_the_camera_hangs() -> None:
    gear, cam = pigear(resolution=(32, 24))
    cam.hang = threading.Event()
    gear.start()
    results: list[Any] = []
    reader = threading.Thread(target=lambda: results.append(gear.read()))
    reader.start()
    time.sleep(0.1)
    started = time.monotonic()
    gear.stop()
    reader.join(1.0)
    assert time.monotonic() - started < 1.0 and results == [None]
    assert not cam.called("close")  # never closed under a driver call still in progress
    cam.hang.set()
    gear._thread.join(2)
    assert cam.called("close")


def test_camera_that_fails_to_open_is_a_source_error() -> None:
    def broken(camera_num: int) -> Any:
        raise RuntimeError("Camera __init__ sequence did not complete.")

    with pytest.raises(SourceError, match="did not complete"):
        PiGear(camera_factory=broken)


def test_missing_picamera2_is_a_dependency_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` fail
    with pytest.raises(DependencyError, match="pip install picamera2") as info:
        PiGear()
    assert "python3-picamera2" in str(info.value)
    assert isinstance(info.value, ImportError)


def test_importing_netgear_gears_never_imports_picamera2(tmp_path: Path) -> None:
    (tmp_path / "picamera2.py").write_text("raise SystemExit('imported picamera2 too early')\n")
    code = "import netgear.gears, netgear.gears.pigear, netgear.gears.videogear; print('ok')"
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, cwd=root, env={"PYTHONPATH": f"{tmp_path}:{root}"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.timeout(15)
def test_videogear_enable_picamera_uses_pigear() -> None:
    stream = VideoGear(enablePiCamera=True, resolution=(64, 48), framerate=30,
                       camera_factory=FakePicamera2, transform_factory=FakeTransform,
                       hflip=True).start()
    assert isinstance(stream.stream, PiGear)
    assert stream.read().shape == (48, 64, 3)
    assert stream.stream.camera.config["controls"] == {"FrameDurationLimits": (33333, 33333)}
    stream.stop()
