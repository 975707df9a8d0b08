"""PiGear: Raspberry Pi camera modules through picamera2 (libcamera), read on a background thread.

picamera2 is imported only when a PiGear is created, so ``import netgear`` works everywhere.
The legacy picamera option names of vidgear/imutils are translated to picamera2 controls; the
table lives in :data:`OPTION_MAP` and ``docs/gears/pigear.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from netgear.errors import DependencyError, OptionError, SourceError
from netgear.gears._threaded import ThreadedGear

__all__ = ["OPTION_MAP", "PiGear", "PiSettings", "map_options"]

_INSTALL_HINT = (
    "PiGear needs picamera2: pip install picamera2 "
    "(on Raspberry Pi OS prefer: sudo apt install python3-picamera2)"
)


class _Enum(NamedTuple):
    """A libcamera enum member by name, resolved when the camera opens (libcamera may be absent)."""

    enum: str
    member: str
    value: int  # libcamera's numeric value, used when libcamera itself cannot be imported


_AWB = {
    "auto": "Auto", "sunlight": "Daylight", "daylight": "Daylight", "flash": "Daylight",
    "cloudy": "Cloudy", "shade": "Cloudy", "tungsten": "Tungsten", "fluorescent": "Fluorescent",
    "incandescent": "Incandescent", "horizon": "Incandescent", "indoor": "Indoor",
}
_AWB_VALUES = {"Auto": 0, "Incandescent": 1, "Tungsten": 2, "Fluorescent": 3, "Indoor": 4,
               "Daylight": 5, "Cloudy": 6}
_EXPOSURE = {"auto": None, "night": "Long", "nightpreview": "Long", "verylong": "Long",
             "sports": "Short"}
_EXPOSURE_VALUES = {"Normal": 0, "Short": 1, "Long": 2}
_METER = {"average": ("CentreWeighted", 0), "spot": ("Spot", 1), "matrix": ("Matrix", 2)}

#: Legacy picamera option -> what PiGear sets in picamera2 (documented in docs/gears/pigear.md).
OPTION_MAP: dict[str, str] = {
    "hflip": "Transform(hflip=1) in the camera configuration",
    "vflip": "Transform(vflip=1) in the camera configuration",
    "rotation": "0 or 180 only: 180 = Transform(hflip=1, vflip=1)",
    "iso": "AnalogueGain = iso / 100 (0 = automatic)",
    "shutter_speed": "ExposureTime in microseconds (0 = automatic)",
    "exposure_mode": "auto -> AeEnable=True, off -> AeEnable=False, "
                     "night/nightpreview/verylong -> AeExposureMode=Long, sports -> Short",
    "exposure_compensation": "ExposureValue = value * 8 / 25 (-25..25 -> -8..8)",
    "awb_mode": "off -> AwbEnable=False; otherwise AwbMode: " + ", ".join(
        f"{k}->{v}" for k, v in _AWB.items()),
    "awb_gains": "ColourGains = (red, blue)",
    "meter_mode": "AeMeteringMode: average->CentreWeighted, spot->Spot, matrix->Matrix",
    "brightness": "Brightness = (value - 50) / 50 (0..100 -> -1..1)",
    "contrast": "Contrast = 1 + value / 100 (-100..100 -> 0..2)",
    "saturation": "Saturation = 1 + value / 100 (-100..100 -> 0..2)",
    "sharpness": "Sharpness = 1 + value / 100 (-100..100 -> 0..2)",
    "sensor_mode": "index into Picamera2.sensor_modes, passed as the raw stream size/format",
}


@dataclass
class PiSettings:
    """Where the options end up: the configuration's transform, set_controls(), the sensor mode."""

    hflip: bool = False
    vflip: bool = False
    sensor_mode: Optional[int] = None
    controls: dict[str, Any] = field(default_factory=dict)


def _number(key: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise OptionError(f"PiGear option {key!r} needs a number, not {value!r}", key)
    if not low <= value <= high:
        raise OptionError(f"PiGear option {key!r}={value!r} is outside {low:g}..{high:g}", key)
    return float(value)


def _choice(key: str, value: Any, allowed: Mapping[str, Any]) -> str:
    name = str(value).strip().lower()
    if name not in allowed:
        raise OptionError(f"PiGear option {key}={value!r} has no picamera2 equivalent; "
                          f"supported values: {', '.join(allowed)}", key)
    return name


def map_options(options: Mapping[str, Any]) -> PiSettings:
    """Translate legacy picamera options (and native CamelCase picamera2 controls) to settings.

    Raises :class:`OptionError` naming the key for anything without a mapping.
    """
    out = PiSettings()
    ctl = out.controls
    for key, value in options.items():
        if key[:1].isupper() and not key.isupper():
            ctl[key] = value  # native picamera2 control, checked against the camera on open
        elif key in ("hflip", "vflip"):
            setattr(out, key, bool(value))
        elif key == "rotation":
            if value not in (0, 180):
                raise OptionError("PiGear option 'rotation' supports 0 or 180 with picamera2 "
                                  "(rotate 90/270 with cv2.rotate instead)", key)
            if value == 180:
                out.hflip, out.vflip = not out.hflip, not out.vflip
        elif key == "iso":
            if _number(key, value, 0, 12800):
                ctl["AnalogueGain"] = float(value) / 100.0
        elif key == "shutter_speed":
            if _number(key, value, 0, 1e9):
                ctl["ExposureTime"] = int(value)
        elif key == "exposure_mode":
            name = _choice(key, value, {"off": 0, **_EXPOSURE})
            ctl["AeEnable"] = name != "off"
            if _EXPOSURE.get(name):
                member = _EXPOSURE[name]
                number = _EXPOSURE_VALUES[member]
                ctl["AeExposureMode"] = _Enum("AeExposureModeEnum", member, number)
        elif key == "exposure_compensation":
            ctl["ExposureValue"] = _number(key, value, -25, 25) * 8.0 / 25.0
        elif key == "awb_mode":
            name = _choice(key, value, {"off": 0, **_AWB})
            ctl["AwbEnable"] = name != "off"
            if name != "off":
                ctl["AwbMode"] = _Enum("AwbModeEnum", _AWB[name], _AWB_VALUES[_AWB[name]])
        elif key == "awb_gains":
            gains = value if isinstance(value, (tuple, list)) else (value, value)
            if len(gains) != 2:
                raise OptionError("PiGear option 'awb_gains' needs (red, blue)", key)
            ctl["ColourGains"] = tuple(_number(key, g, 0, 32) for g in gains)
        elif key == "meter_mode":
            member, number = _METER[_choice(key, value, _METER)]
            ctl["AeMeteringMode"] = _Enum("AeMeteringModeEnum", member, number)
        elif key == "brightness":
            ctl["Brightness"] = (_number(key, value, 0, 100) - 50.0) / 50.0
        elif key in ("contrast", "saturation", "sharpness"):
            ctl[key.capitalize()] = 1.0 + _number(key, value, -100, 100) / 100.0
        elif key == "sensor_mode":
            out.sensor_mode = None if value is None else int(_number(key, value, 0, 64))
        else:
            raise OptionError(
                f"PiGear option {key!r} has no picamera2 mapping; supported options: "
                f"{', '.join(OPTION_MAP)}, or native picamera2 controls such as 'AnalogueGain'",
                key,
            )
    return out


def _load_picamera2() -> Callable[..., Any]:
    try:
        from picamera2 import Picamera2
    except ImportError as exc:
        raise DependencyError(_INSTALL_HINT) from exc
    return Picamera2


def _load_transform() -> Callable[..., Any]:
    try:
        from libcamera import Transform
    except ImportError as exc:
        raise DependencyError(_INSTALL_HINT + " (libcamera's Transform is missing)") from exc
    return Transform


def _resolve_enums(controls: dict[str, Any]) -> dict[str, Any]:
    try:
        from libcamera import controls as lc_controls
    except ImportError:
        lc_controls = None
    resolved = {}
    for key, value in controls.items():
        if isinstance(value, _Enum):
            enum = getattr(lc_controls, value.enum, None) if lc_controls is not None else None
            value = getattr(enum, value.member, value.value) if enum is not None else value.value
        resolved[key] = value
    return resolved


class PiGear(ThreadedGear):
    """Read a Raspberry Pi camera module with picamera2; read() returns the newest BGR frame.

    Args:
        resolution: ``(width, height)`` of the delivered frames.
        framerate: frames per second requested from the sensor.
        colorspace: optional cv2 conversion name, e.g. ``"COLOR_BGR2GRAY"``.
        logging: log at INFO instead of DEBUG.
        time_delay: seconds start() waits before returning (sensor warm-up).
        camera_num: which camera on boards with several.
        camera_factory: callable ``(camera_num) -> Picamera2``-like object; default
            ``picamera2.Picamera2`` (a test stand-in goes here).
        transform_factory: callable ``(hflip=, vflip=) -> Transform``; default libcamera's.
        **options: legacy picamera options (see :data:`OPTION_MAP`) or native picamera2 controls.

    Raises:
        DependencyError: picamera2 is not installed.
        OptionError: an option has no picamera2 mapping or a bad value.
        SourceError: the camera cannot be opened or configured.
    """

    def __init__(
        self,
        resolution: tuple[int, int] = (640, 480),
        framerate: float = 30,
        colorspace: Optional[str] = None,
        logging: bool = False,
        time_delay: float = 0,
        *,
        camera_num: int = 0,
        camera_factory: Optional[Callable[..., Any]] = None,
        transform_factory: Optional[Callable[..., Any]] = None,
        **options: Any,
    ) -> None:
        try:
            width, height = (int(v) for v in resolution)
        except (TypeError, ValueError):
            raise OptionError(f"resolution must be (width, height), not {resolution!r}",
                              "resolution") from None
        fps = _number("framerate", framerate, 0.01, 1000)
        self.settings = map_options(options)
        super().__init__(live=True, colorspace=colorspace, verbose=logging,
                         time_delay=time_delay, name=f"PiGear({camera_num})")
        self.resolution = (width, height)
        self._fps = fps
        factory = camera_factory if camera_factory is not None else _load_picamera2()
        make_transform = transform_factory if transform_factory is not None else None
        if make_transform is None and (self.settings.hflip or self.settings.vflip):
            make_transform = _load_transform()
        self._camera: Any = None
        self._camera_started = False
        try:
            self._camera = factory(camera_num)
        except Exception as exc:
            raise SourceError(f"cannot open Raspberry Pi camera {camera_num}: {exc}") from exc
        try:
            self._configure(make_transform)
        except BaseException:
            self._release()
            raise

    def _configure(self, make_transform: Optional[Callable[..., Any]]) -> None:
        cam, settings = self._camera, self.settings
        frame_us = round(1_000_000 / self._fps)
        kwargs: dict[str, Any] = {
            # picamera2's "RGB888" is stored B,G,R per pixel: exactly OpenCV's BGR.
            "main": {"size": self.resolution, "format": "RGB888"},
            "controls": {"FrameDurationLimits": (frame_us, frame_us)},
        }
        if make_transform is not None:
            kwargs["transform"] = make_transform(hflip=int(settings.hflip),
                                                 vflip=int(settings.vflip))
        if settings.sensor_mode is not None:
            modes = list(getattr(cam, "sensor_modes", []) or [])
            if settings.sensor_mode >= len(modes):
                raise OptionError(f"sensor_mode={settings.sensor_mode} but this camera has "
                                  f"{len(modes)} sensor modes (0..{len(modes) - 1})", "sensor_mode")
            mode = modes[settings.sensor_mode]
            # str() also turns newer picamera2's SensorFormat objects into the format name.
            kwargs["raw"] = {"size": tuple(mode["size"]), "format": str(mode["format"])}
        known = getattr(cam, "camera_controls", None)
        if isinstance(known, Mapping) and known:
            unknown = sorted(k for k in settings.controls if k not in known)
            if unknown:
                raise OptionError(f"this camera has no control {unknown[0]!r}; it supports: "
                                  f"{', '.join(sorted(known))}", unknown[0])
        try:
            cam.configure(cam.create_video_configuration(**kwargs))
            if settings.controls:
                cam.set_controls(_resolve_enums(settings.controls))
        except OptionError:
            raise
        except Exception as exc:
            raise SourceError(f"cannot configure Raspberry Pi camera: {exc}") from exc

    @property
    def framerate(self) -> float:
        return self._fps

    @property
    def camera(self) -> Any:
        """The underlying Picamera2 object for advanced use."""
        return self._camera

    def start(self) -> PiGear:
        with self._state_lock:
            must_start = not self._camera_started and not self._stopped
            self._camera_started = True
        if must_start:
            try:
                self._camera.start()
            except Exception as exc:
                raise SourceError(f"cannot start Raspberry Pi camera: {exc}") from exc
        return super().start()

    def _grab(self) -> Optional[np.ndarray]:
        return self._camera.capture_array("main")

    def _release(self) -> None:
        cam = self._camera
        if cam is None:
            return
        try:
            if self._camera_started:
                cam.stop()
        finally:
            close = getattr(cam, "close", None)
            if close is not None:
                close()
