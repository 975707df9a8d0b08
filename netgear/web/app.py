"""The viewer's Starlette app: ``/`` page, ``/montage.mjpg`` MJPEG, ``/montage.jpg``, ``/stats``,
and the stream/recording routes of :mod:`netgear.web.routes`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any, Optional, Union

from ..errors import DependencyError
from .guard import GuardCounters
from .hub import MontageHub
from .page import PAGE

__all__ = ["BOUNDARY", "MAX_FPS", "MAX_STREAMS", "SEND_TIMEOUT", "create_app"]

logger = logging.getLogger(__name__)

MAX_FPS = 15.0  # montage frames per second per client: plenty to watch, cheap on 2 cores
BOUNDARY = "netgearframe"
MAX_STREAMS = 16  # concurrent MJPEG clients; each costs an encode share and a socket buffer
SEND_TIMEOUT = 10.0  # seconds an MJPEG part may wait for a client that stopped reading


def _starlette() -> Any:
    try:
        import starlette  # noqa: F401
    except ImportError as exc:
        raise DependencyError("the web viewer needs starlette and uvicorn: "
                              "pip install netgear[web]") from exc


class _Mjpeg:
    """Raw ASGI endpoint: StreamingResponse cannot time out a send or drop its connection.

    Serves the montage, or one stream's frames when the route has a ``port`` path parameter;
    both share the ``max_streams`` cap.
    """

    def __init__(self, hub: MontageHub, max_fps: float, stop: threading.Event,
                 max_streams: int, send_timeout: float, counters: GuardCounters) -> None:
        self.hub, self.max_fps, self.stop = hub, max_fps, stop
        self.max_streams, self.send_timeout, self.counters = max_streams, send_timeout, counters
        self.active = 0  # only touched on the event loop

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import PlainTextResponse

        if self.active >= self.max_streams:
            self.counters.add("streams_refused")
            await PlainTextResponse(f"too many montage streams (max {self.max_streams}); "
                                    "try again later", status_code=503,
                                    headers={"Retry-After": "5"})(scope, receive, send)
            return
        self.active += 1
        try:
            await self._stream(scope, receive, send, run_in_threadpool)
        finally:
            self.active -= 1

    async def _stream(self, scope: dict[str, Any], receive: Any, send: Any,
                      offload: Any) -> None:
        period = 1.0 / self.max_fps
        # a closed browser tab makes send() a silent no-op: watch for the disconnect, or the
        # loop would go on encoding for nobody
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", f"multipart/x-mixed-replace; boundary={BOUNDARY}".encode()),
                (b"cache-control", b"no-store"), (b"pragma", b"no-cache")]})
            last = b""
            while not self.stop.is_set() and not gone.done():
                # composing + encoding takes milliseconds: keep it off the event loop so
                # /stats and other clients stay responsive
                data = await offload(self._render, scope)
                if data is not None and data is not last:
                    last = data
                    part = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(data)}\r\n\r\n").encode() + data + b"\r\n"
                    try:
                        await asyncio.wait_for(send({"type": "http.response.body", "body": part,
                                                     "more_body": True}), self.send_timeout)
                    except asyncio.TimeoutError:
                        await self._drop(scope, gone)
                        return
                await asyncio.sleep(period)
            if not gone.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()

    def _render(self, scope: dict[str, Any]) -> Optional[bytes]:
        port = scope.get("path_params", {}).get("port")
        if port is None:
            return self.hub.montage_jpeg(self.max_fps)
        return self.hub.stream_jpeg(port, self.max_fps)  # None until the stream's first frame

    async def _drop(self, scope: dict[str, Any], gone: asyncio.Future[None]) -> None:
        # The client stopped reading: free its buffers now rather than keep montages queued
        # for it until the kernel gives up on the connection.
        self.counters.add("streams_dropped")
        logger.info("dropped an MJPEG client that read nothing for %g s", self.send_timeout)
        ext = scope.get("extensions", {}).get("netgear.abort")
        if ext is not None:
            ext["abort"]()
            # returning before the server saw the disconnect reads as an unfinished
            # response to uvicorn (an ERROR record per client)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(gone), 1.0)


async def _disconnected(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def create_app(hub: MontageHub, max_fps: float = MAX_FPS,
               stopping: Optional[threading.Event] = None, *, token: Optional[str] = None,
               allowed_hosts: Optional[Sequence[str]] = None, max_streams: int = MAX_STREAMS,
               send_timeout: float = SEND_TIMEOUT,
               counters: Optional[GuardCounters] = None,
               recordings_dir: Optional[Union[str, os.PathLike[str]]] = None) -> Any:
    """Build the ASGI app serving ``hub``. ``stopping`` ends open MJPEG streams when set.

    ``allowed_hosts``: Host header names answered (None: any, for mounting in a larger
    app that checks them itself). ``token``: required on every request when given.
    ``recordings_dir``: a ``netgear record`` output folder to list and play (None: no
    recordings UI). Every route sits behind the same Host and token checks.
    """
    _starlette()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    from .access import TokenMiddleware
    from .recordings import Recordings
    from .routes import stream_routes

    stop = stopping or threading.Event()
    guard = counters or GuardCounters()

    async def index(request: Request) -> Response:
        return HTMLResponse(PAGE)

    async def stats(request: Request) -> Response:
        doc = hub.stats()
        doc["web"] = guard.as_dict()
        return JSONResponse(doc, headers={"Cache-Control": "no-store"})

    async def snapshot(request: Request) -> Response:
        data = await run_in_threadpool(hub.montage_jpeg, max_fps)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    middleware = []
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts),
                                     www_redirect=False))
    if token:
        middleware.append(Middleware(TokenMiddleware, token=token, counters=guard))
    mjpeg = _Mjpeg(hub, max_fps, stop, max_streams, send_timeout, guard)
    recordings = None if recordings_dir is None else Recordings(recordings_dir)
    return Starlette(middleware=middleware, routes=[
        Route("/", index),
        Route("/montage.jpg", snapshot),
        Route("/stats", stats),
        Route("/montage.mjpg", mjpeg),
        *stream_routes(hub, recordings, mjpeg),
    ])
