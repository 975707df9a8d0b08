"""The viewer's Starlette app: ``/`` page, ``/montage.mjpg`` MJPEG, ``/montage.jpg``, ``/stats``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

from ..errors import DependencyError
from .hub import MontageHub
from .page import PAGE

__all__ = ["BOUNDARY", "MAX_FPS", "create_app"]

MAX_FPS = 15.0  # montage frames per second per client: plenty to watch, cheap on 2 cores
BOUNDARY = "netgearframe"


def _starlette() -> Any:
    try:
        import starlette  # noqa: F401
    except ImportError as exc:
        raise DependencyError("the web viewer needs starlette and uvicorn: "
                              "pip install netgear[web]") from exc


def create_app(hub: MontageHub, max_fps: float = MAX_FPS,
               stopping: threading.Event | None = None) -> Any:
    """Build the ASGI app serving ``hub``. ``stopping`` ends open MJPEG streams when set."""
    _starlette()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    stop = stopping or threading.Event()
    period = 1.0 / max_fps

    async def index(request: Request) -> Response:
        return HTMLResponse(PAGE)

    async def stats(request: Request) -> Response:
        return JSONResponse(hub.stats(), headers={"Cache-Control": "no-store"})

    async def frames() -> AsyncIterator[bytes]:
        last = b""
        while not stop.is_set():
            # composing + encoding takes milliseconds: keep it off the event loop so /stats
            # and other clients stay responsive
            data = await run_in_threadpool(hub.montage_jpeg, max_fps)
            if data is not last:
                last = data
                yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                       f"Content-Length: {len(data)}\r\n\r\n").encode() + data + b"\r\n"
            await asyncio.sleep(period)

    async def montage(request: Request) -> Response:
        return StreamingResponse(
            frames(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def snapshot(request: Request) -> Response:
        data = await run_in_threadpool(hub.montage_jpeg, max_fps)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    return Starlette(routes=[
        Route("/", index),
        Route("/montage.jpg", snapshot),
        Route("/stats", stats),
        Route("/montage.mjpg", montage),
    ])
