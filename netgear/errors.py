"""The netgear exception tree.

Every error netgear raises derives from :class:`NetGearError`. Errors caused by
bad user input also derive from :class:`ValueError`, so code written for
vidgear's ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "ClosedError",
    "DependencyError",
    "FrameRefusedError",
    "NetGearError",
    "OptionError",
    "PayloadError",
    "PeerTimeoutError",
    "SecurityError",
    "SourceError",
    "TransportError",
    "UsageError",
    "WireFormatError",
]


class NetGearError(Exception):
    """Base class of every error raised by netgear."""


class OptionError(NetGearError, ValueError):
    """A constructor argument or option is unknown, mistyped, out of range or conflicting.

    ``key`` names the offending option (or constructor argument) when there is one.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class UsageError(NetGearError, ValueError):
    """A method was called in a way the instance's configuration does not allow.

    For example ``send()`` on a receiver, or ``return_data`` without bidirectional mode.
    """


class PayloadError(NetGearError, ValueError):
    """A frame or message cannot be encoded (wrong type, object dtype, unserializable value)."""


class TransportError(NetGearError):
    """The network layer failed (bind/connect refused, socket error). Wraps ``zmq.ZMQError``."""


class PeerTimeoutError(TransportError, TimeoutError):
    """The peer did not answer within ``request_timeout`` after ``max_retries`` retries."""


class ClosedError(NetGearError):
    """The instance was already closed."""


class WireFormatError(NetGearError):
    """A received message does not follow the netgear wire format; it is dropped."""


class FrameRefusedError(WireFormatError):
    """A received frame is well formed but over a receiver limit (``max_decoded_bytes``, a
    codec outside ``accepted_codecs``); it is dropped and counted in ``stats['refused']``."""


class SecurityError(NetGearError):
    """Secure mode could not be set up. netgear never falls back to plain text."""


class SourceError(NetGearError):
    """A video source (camera, file, URL) cannot be opened or read."""


class DependencyError(NetGearError, ImportError):
    """An optional dependency needed for the requested feature is not installed."""
