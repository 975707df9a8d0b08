"""netgear: stream video frames and data between machines over ZeroMQ."""

from __future__ import annotations

from .errors import (
    ClosedError,
    DependencyError,
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
from .netgear import NetGear

__version__ = "0.1.0"

__all__ = [
    "ClosedError",
    "DependencyError",
    "NetGear",
    "NetGearError",
    "OptionError",
    "PayloadError",
    "PeerTimeoutError",
    "SecurityError",
    "SourceError",
    "TransportError",
    "UsageError",
    "WireFormatError",
    "__version__",
]
