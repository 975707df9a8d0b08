"""ViewerServer: the viewer app on uvicorn, in a background thread, with a bounded stop."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Optional

from ..errors import DependencyError, TransportError
from .app import MAX_FPS, create_app
from .hub import MontageHub

__all__ = ["ViewerServer"]

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 3.0
START_TIMEOUT = 10.0


class ViewerServer:
    """Serve ``hub`` over HTTP on ``host:port`` (``port=0`` picks a free port).

    The listening socket is bound in the constructor, so :attr:`port` is known (and a busy
    port fails) before anything starts. :meth:`stop` returns within a few seconds even
    while browsers hold MJPEG streams open.
    """

    def __init__(self, hub: MontageHub, host: str = "127.0.0.1", port: int = 8000,
                 max_fps: float = MAX_FPS) -> None:
        try:
            import uvicorn
        except ImportError as exc:
            raise DependencyError("the web viewer needs starlette and uvicorn: "
                                  "pip install netgear[web]") from exc
        self._stopping = threading.Event()
        app = create_app(hub, max_fps=max_fps, stopping=self._stopping)
        self._sock = _listen(host, port)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        # log_config=None: a library must not install logging handlers; uvicorn's records
        # go wherever the application sends the rest
        config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False,
                                lifespan="off", timeout_graceful_shutdown=1,
                                timeout_keep_alive=2)
        self._server = uvicorn.Server(config)
        self._thread: Optional[threading.Thread] = None
        self.error: Optional[BaseException] = None

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}/"

    def start(self) -> ViewerServer:
        self._thread = threading.Thread(target=self._run, name="netgear-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                raise TransportError("the web viewer did not start within "
                                     f"{START_TIMEOUT:g} s")
            time.sleep(0.02)
        if self.error is not None:
            raise TransportError(f"the web viewer failed to start: {self.error}")
        return self

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # reported by start()/stop(); a thread cannot raise
            self.error = exc
            logger.error("web viewer stopped: %s", exc)

    def stop(self) -> None:
        """End open streams, stop uvicorn and close the socket; bounded."""
        self._stopping.set()
        self._server.should_exit = True
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT)
            if self._thread.is_alive():
                # still waiting on a connection: cancel it outright
                self._server.force_exit = True
                self._thread.join(STOP_TIMEOUT)
        self._sock.close()

    def __enter__(self) -> ViewerServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48):  # EADDRINUSE on Linux / macOS
            raise TransportError(f"web port {port} on {host} is already in use; pick another "
                                 "with --web-port (0 picks a free one)") from exc
        raise TransportError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock
