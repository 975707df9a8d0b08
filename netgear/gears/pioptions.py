"""PiGear's option layer: legacy picamera option names translated to picamera2 controls.

Pure data and checks, no camera: the table lives in :data:`OPTION_MAP` and
``docs/gears/pigear.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..errors import OptionError

__all__ = ["OPTION_MAP", "PiSettings", "map_options", "check_number", "resolve_enums"]


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
    sensor_mode: int | None = None
    controls: dict[str, Any] = field(default_factory=dict)


def check_number(key: str, value: Any, low: float, high: float) -> float:
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
            if check_number(key, value, 0, 12800):
                ctl["AnalogueGain"] = float(value) / 100.0
        elif key == "shutter_speed":
            if check_number(key, value, 0, 1e9):
                ctl["ExposureTime"] = int(value)
        elif key == "exposure_mode":
            name = _choice(key, value, {"off": 0, **_EXPOSURE})
            ctl["AeEnable"] = name != "off"
            if _EXPOSURE.get(name):
                member = _EXPOSURE[name]
                number = _EXPOSURE_VALUES[member]
                ctl["AeExposureMode"] = _Enum("AeExposureModeEnum", member, number)
        elif key == "exposure_compensation":
            ctl["ExposureValue"] = check_number(key, value, -25, 25) * 8.0 / 25.0
        elif key == "awb_mode":
            name = _choice(key, value, {"off": 0, **_AWB})
            ctl["AwbEnable"] = name != "off"
            if name != "off":
                ctl["AwbMode"] = _Enum("AwbModeEnum", _AWB[name], _AWB_VALUES[_AWB[name]])
        elif key == "awb_gains":
            gains = value if isinstance(value, (tuple, list)) else (value, value)
            if len(gains) != 2:
                raise OptionError("PiGear option 'awb_gains' needs (red, blue)", key)
            ctl["ColourGains"] = tuple(check_number(key, g, 0, 32) for g in gains)
        elif key == "meter_mode":
            member, number = _METER[_choice(key, value, _METER)]
            ctl["AeMeteringMode"] = _Enum("AeMeteringModeEnum", member, number)
        elif key == "brightness":
            ctl["Brightness"] = (check_number(key, value, 0, 100) - 50.0) / 50.0
        elif key in ("contrast", "saturation", "sharpness"):
            ctl[key.capitalize()] = 1.0 + check_number(key, value, -100, 100) / 100.0
        elif key == "sensor_mode":
            out.sensor_mode = None if value is None else int(check_number(key, value, 0, 64))
        else:
            raise OptionError(
                f"PiGear option {key!r} has no picamera2 mapping; supported options: "
                f"{', '.join(OPTION_MAP)}, or native picamera2 controls such as 'AnalogueGain'",
                key,
            )
    return out


def resolve_enums(controls: dict[str, Any]) -> dict[str, Any]:
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
