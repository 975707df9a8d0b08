"""ViewerServer: the viewer app on uvicorn, in a background thread, with a bounded stop."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import DependencyError, OptionError, TransportError
from .access import TOKEN_ENV, allowed_hosts_for, is_loopback
from .app import MAX_FPS, MAX_STREAMS, SEND_TIMEOUT, create_app
from .guard import GuardCounters, RateLimitFilter, guarded_protocol
from .hub import MontageHub

__all__ = ["ViewerServer"]

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 3.0
START_TIMEOUT = 10.0
MAX_CONNECTIONS = 64  # a browser tab uses 2-3; the cap bounds file descriptors and memory
HEADER_TIMEOUT = 10.0  # seconds to send a complete request head (also the idle limit)
MIN_TOKEN = 8
ACCEPT_BATCH = 128
# loggers a connection flood could make chatty; rate-limited while a viewer runs
H11_MAX_HEAD = 8 * 1024  # bytes of request line + headers; the viewer's requests need ~1 KiB
# (a logger's filters do not apply to its children's records, hence every module by name)
NOISY_LOGGERS = ("asyncio", "uvicorn", "uvicorn.error", "netgear.web.app", "netgear.web.hub",
                 "netgear.web.server", "netgear.web.guard")


class ViewerServer:
    """Serve ``hub`` over HTTP on ``host:port`` (``port=0`` picks a free port).

    The listening socket is bound in the constructor, so :attr:`port` is known (and a busy
    port fails) before anything starts. :meth:`stop` returns within a few seconds even
    while browsers hold MJPEG streams open.

    ``recordings_dir``: the output folder of ``netgear record``; the viewer lists, plays
    and reads the event log of what is there (None: no recordings UI). It is only read.
    """

    def __init__(self, hub: MontageHub, host: str = "127.0.0.1", port: int = 8000,
                 max_fps: float = MAX_FPS, *, token: Optional[str] = None,
                 allowed_hosts: Sequence[str] = (), max_connections: int = MAX_CONNECTIONS,
                 max_streams: int = MAX_STREAMS, header_timeout: float = HEADER_TIMEOUT,
                 send_timeout: float = SEND_TIMEOUT,
                 recordings_dir: Optional[Union[str, os.PathLike[str]]] = None) -> None:
        try:
            import uvicorn
        except ImportError as exc:
            raise DependencyError("the web viewer needs starlette and uvicorn: "
                                  "pip install netgear[web]") from exc
        _check_limits(max_connections, max_streams, header_timeout, send_timeout)
        _check_recordings(recordings_dir)
        self.public = not is_loopback(host)
        if token is not None and len(token) < MIN_TOKEN:
            raise OptionError(f"the web viewer's token is {len(token)} characters; use at "
                              f"least {MIN_TOKEN} (e.g. python -c \"import secrets; "
                              "print(secrets.token_urlsafe())\")", key="token")
        if self.public and not token:
            # checked before anything binds: the montage must never be open to the network
            raise OptionError(
                f"the web viewer on {host or '*'} would be reachable from other machines; give "
                f"it an access token (--web-token, or the {TOKEN_ENV} environment variable; "
                "ViewerServer(token=...)) or bind --web-host 127.0.0.1", key="token")
        self._stopping = threading.Event()
        self.counters = GuardCounters()
        self.allowed_hosts = allowed_hosts_for(host, allowed_hosts)
        app = create_app(hub, max_fps=max_fps, stopping=self._stopping, token=token,
                         allowed_hosts=self.allowed_hosts, max_streams=max_streams,
                         send_timeout=send_timeout, counters=self.counters,
                         recordings_dir=recordings_dir)
        self._sock = _listen(host, port)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        if self.public:
            logger.warning("web viewer listening on %s:%d, beyond this machine: anyone who can "
                           "reach it and holds the token sees every stream (no TLS: use it on "
                           "trusted networks, or behind a TLS proxy)", host or "*", self.port)
        self.log_filter = RateLimitFilter()
        # log_config=None: a library must not install logging handlers; uvicorn's records
        # go wherever the application sends the rest
        config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False,
                                lifespan="off", timeout_graceful_shutdown=1,
                                timeout_keep_alive=2,
                                # ours caps connections (evicting slowloris first); this one
                                # bounds request tasks, and 503s at >= limit: one above ours
                                limit_concurrency=max_connections + 1,
                                # asyncio accepts up to `backlog` sockets per loop turn before
                                # the cap can close any: uvicorn's 2048 meets EMFILE first
                                backlog=ACCEPT_BATCH,
                                h11_max_incomplete_event_size=H11_MAX_HEAD,
                                http=guarded_protocol(max_connections, header_timeout,
                                                      self.counters))
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
        for name in NOISY_LOGGERS:
            logging.getLogger(name).addFilter(self.log_filter)
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
        for name in NOISY_LOGGERS:
            logging.getLogger(name).removeFilter(self.log_filter)

    def __enter__(self) -> ViewerServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _check_limits(max_connections: int, max_streams: int, header_timeout: float,
                  send_timeout: float) -> None:
    if not isinstance(max_connections, int) or max_connections < 2:
        raise OptionError(f"max_connections={max_connections!r} must be a whole number of at "
                          "least 2 (a page and its stream)", key="max_connections")
    if not isinstance(max_streams, int) or not 1 <= max_streams <= max_connections:
        raise OptionError(f"max_streams={max_streams!r} must be between 1 and max_connections"
                          f"={max_connections}", key="max_streams")
    for key, value in (("header_timeout", header_timeout), ("send_timeout", send_timeout)):
        if not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            raise OptionError(f"{key}={value!r} must be a number of seconds above 0",
                              key=key)


def _check_recordings(recordings_dir: Any) -> None:
    if recordings_dir is None:
        return
    if not isinstance(recordings_dir, (str, os.PathLike)) or not str(recordings_dir):
        raise OptionError(f"recordings_dir={recordings_dir!r} must be a folder path (the "
                          "--out of netgear record) or None", key="recordings_dir")
    path = Path(recordings_dir).expanduser()
    # a folder the recorder has not created yet is fine: the page says so until it exists
    if path.exists() and not path.is_dir():
        raise OptionError(f"recordings_dir={str(recordings_dir)!r} is a file, not a folder; "
                          "give the --out folder of netgear record", key="recordings_dir")


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
    sock.listen(ACCEPT_BATCH)
    sock.setblocking(False)
    return sock
