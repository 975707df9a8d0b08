"""PyAV, imported only when a video codec is actually used (it is an optional extra)."""

from __future__ import annotations

from typing import Any

from ..errors import DependencyError

_EXTRA = "netgear[video]"


def load_av() -> Any:
    """The ``av`` module, or :class:`DependencyError` naming the extra that installs it."""
    try:
        import av
    except ImportError as exc:
        raise DependencyError(
            f"video codecs need PyAV (FFmpeg with libx264/libx265): "
            f"pip install '{_EXTRA}' (or pip install av)") from exc
    return av
