"""Live montage viewer: a receiver hub plus an optional web page (``pip install netgear[web]``).

:class:`MontageHub` needs only the core dependencies. :func:`create_app` and
:class:`ViewerServer` import starlette/uvicorn when called, and raise
:class:`netgear.DependencyError` when they are missing.
"""

from __future__ import annotations

from typing import Any

from .hub import MontageHub, StreamView

__all__ = ["MontageHub", "StreamView", "ViewerServer", "create_app"]


def __getattr__(name: str) -> Any:
    # Lazy: importing netgear.web must not need starlette or uvicorn.
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "ViewerServer":
        from .server import ViewerServer

        return ViewerServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
