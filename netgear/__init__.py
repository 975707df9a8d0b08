"""netgear: stream video frames and data between machines over ZeroMQ."""

from __future__ import annotations

from .aio import NetGear as AsyncNetGear
from .core.frameinfo import FrameInfo
from .core.netgear import NetGear
from .errors import (
    ClosedError,
    DependencyError,
    FrameRefusedError,
    NetGearError,
    OptionError,
    PayloadError,
    PeerTimeoutError,
    SecurityError,
    SourceError,
    TransportError,
    UsageError,
    WireFormatError,
)
from .gears import CamGear, PiGear, TestPatternGear, VideoGear
from .helpers import build_montages, make_montage, reducer
from .imagezmq.api import ImageHub, ImageSender
from .modes.tap import TappedPacket

__version__ = "0.1.0"

__all__ = [
    "AsyncNetGear",
    "CamGear",
    "ClosedError",
    "DependencyError",
    "FrameInfo",
    "FrameRefusedError",
    "ImageHub",
    "ImageSender",
    "NetGear",
    "NetGearError",
    "OptionError",
    "PayloadError",
    "PeerTimeoutError",
    "PiGear",
    "SecurityError",
    "SourceError",
    "TappedPacket",
    "TestPatternGear",
    "TransportError",
    "UsageError",
    "VideoGear",
    "WireFormatError",
    "__version__",
    "build_montages",
    "make_montage",
    "reducer",
]
