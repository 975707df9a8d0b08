"""Routes of the stream pages and the recordings: pages, JSON, per-stream MJPEG, files.

``create_app`` mounts them behind the same Host and token middleware as the montage.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from .hub import MontageHub
from .pages import RECORDINGS_PAGE, STREAM_PAGE
from .recordings import MAX_LISTED, Recordings

__all__ = ["stream_routes"]

NO_STORE = {"Cache-Control": "no-store"}
MAX_EVENTS = 100
CHUNK = 64 * 1024


def _first_bytes(path: Path, size: int) -> Iterator[bytes]:
    """At most ``size`` bytes of ``path``: a segment still being written grows meanwhile."""
    with path.open("rb") as fh:
        while size > 0:
            chunk = fh.read(min(CHUNK, size))
            if not chunk:
                return
            size -= len(chunk)
            yield chunk


def stream_routes(hub: MontageHub, recordings: Optional[Recordings], mjpeg: Any) -> list[Any]:
    """The routes; ``mjpeg`` is the app's MJPEG endpoint (it reads the ``port`` parameter)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import (
        FileResponse,
        HTMLResponse,
        JSONResponse,
        PlainTextResponse,
        Response,
        StreamingResponse,
    )
    from starlette.routing import Route

    def view(port: str) -> Optional[dict[str, Any]]:
        return next((s for s in hub.snapshot() if s["port"] == port), None)

    def unknown(port: str) -> Response:
        return PlainTextResponse(f"no stream on port {port[:16]!r}; the streams are on ports "
                                 f"{', '.join(hub.ports)}", status_code=404)

    def names(stream: dict[str, Any]) -> tuple[str, ...]:
        # the recorder names a stream's folder after its name, or its port when it has none
        return tuple(dict.fromkeys((stream["name"], stream["port"])))

    async def page(request: Request) -> Response:
        port = request.path_params["port"]
        return HTMLResponse(STREAM_PAGE) if view(port) else unknown(port)

    class Live:  # a class, so starlette hands it the raw ASGI call the MJPEG endpoint needs
        async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
            port = scope["path_params"]["port"]
            if view(port) is None:
                await unknown(port)(scope, receive, send)
            else:
                await mjpeg(scope, receive, send)

    async def stream_json(request: Request) -> Response:
        port = request.path_params["port"]
        stream = view(port)
        if stream is None:
            return unknown(port)
        doc: dict[str, Any] = {"stream": stream, "samples": hub.history.samples(port),
                               "recordings": recordings is not None, "recorder_error": None}
        if recordings is None:
            doc["events"] = hub.history.events((port,), MAX_EVENTS)
        else:
            wanted = names(stream)
            doc["events"] = await run_in_threadpool(recordings.events, wanted, MAX_EVENTS)
            doc["recorder_error"] = await run_in_threadpool(recordings.status, wanted)
        return JSONResponse(doc, headers=NO_STORE)

    async def events(request: Request) -> Response:
        if recordings is None:
            found = hub.history.events((), MAX_EVENTS)
        else:
            stream = request.query_params.get("stream")
            wanted = (stream,) if stream else ()
            found = await run_in_threadpool(recordings.events, wanted, MAX_EVENTS)
        return JSONResponse({"events": found}, headers=NO_STORE)

    async def listing(request: Request) -> Response:
        if recordings is None:
            return JSONResponse({"enabled": False, "segments": [], "error": None},
                                headers=NO_STORE)
        stream = request.query_params.get("stream")
        wanted: tuple[str, ...] = ()
        if stream:
            known = view(stream)  # a port: its name and port, else a folder name as given
            wanted = names(known) if known else (stream,)
        segments = await run_in_threadpool(recordings.segments, wanted, MAX_LISTED)
        error = await run_in_threadpool(recordings.status, wanted)
        return JSONResponse({"enabled": True, "segments": segments, "error": error,
                             "limit": MAX_LISTED}, headers=NO_STORE)

    async def recordings_page(request: Request) -> Response:
        if recordings is None:
            return PlainTextResponse("no recordings folder is configured (netgear view "
                                     "--recordings DIR)", status_code=404)
        return HTMLResponse(RECORDINGS_PAGE)

    async def file(request: Request) -> Response:
        path = None
        if recordings is not None:
            path = await run_in_threadpool(recordings.resolve, request.path_params["path"])
        if path is None:
            return PlainTextResponse("no such recording", status_code=404)
        headers = {"Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff"}
        media_type = Recordings.media_type(path)
        if request.method == "GET" and "range" not in request.headers:
            # FileResponse would read a growing segment to its end, past the Content-Length
            # it announced; send the size it had when asked
            try:
                size = path.stat().st_size
            except OSError:
                return PlainTextResponse("no such recording", status_code=404)
            headers.update({"Content-Length": str(size), "Accept-Ranges": "bytes"})
            return StreamingResponse(_first_bytes(path, size), media_type=media_type,
                                     headers=headers)
        # Range requests (206, 416; bounded by the size at the start) and HEAD
        return FileResponse(path, media_type=media_type, headers=headers)

    return [
        Route("/stream/{port}", page),
        Route("/stream/{port}/live.mjpg", Live()),
        Route("/api/streams/{port}", stream_json),
        Route("/api/events", events),
        Route("/api/recordings", listing),
        Route("/recordings", recordings_page),
        Route("/files/{path:path}", file, methods=["GET", "HEAD"]),
    ]
