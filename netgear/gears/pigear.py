"""PiGear: Raspberry Pi camera modules through picamera2 (libcamera), read on a background thread.

picamera2 is imported only when a PiGear is created, so ``import netgear`` works everywhere.
The legacy picamera option names of vidgear/imutils are translated to picamera2 controls; the
table lives in :data:`OPTION_MAP` and ``docs/gears/pigear.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

import numpy as np

from ..errors import DependencyError, OptionError, SourceError
from ._threaded import ThreadedGear
from .pioptions import OPTION_MAP, PiSettings, check_number, map_options, resolve_enums

__all__ = ["OPTION_MAP", "PiGear", "PiSettings", "map_options"]

_INSTALL_HINT = (
    "PiGear needs picamera2: pip install picamera2 "
    "(on Raspberry Pi OS prefer: sudo apt install python3-picamera2)"
)


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
        colorspace: str | None = None,
        logging: bool = False,
        time_delay: float = 0,
        *,
        camera_num: int = 0,
        camera_factory: Callable[..., Any] | None = None,
        transform_factory: Callable[..., Any] | None = None,
        **options: Any,
    ) -> None:
        try:
            width, height = (int(v) for v in resolution)
        except (TypeError, ValueError):
            raise OptionError(f"resolution must be (width, height), not {resolution!r}",
                              "resolution") from None
        fps = check_number("framerate", framerate, 0.01, 1000)
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

    def _configure(self, make_transform: Callable[..., Any] | None) -> None:
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
                cam.set_controls(resolve_enums(settings.controls))
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

    def _grab(self) -> np.ndarray | None:
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
