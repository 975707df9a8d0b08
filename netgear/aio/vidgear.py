"""vidgear's ``NetGear_Async`` usage on top of :class:`netgear.aio.NetGear`.

``launch()``, ``recv_generator()``, ``config["generator"]`` (a custom async source),
``transceive_data()``, ``task``, ``loop`` and ``close(skip_loop=False)`` behave as
vidgear's documented examples expect, so they run with only the import changed. Both
ends must be netgear: the wire format is netgear's, not vidgear's msgpack one. What
differs is listed in docs/migration-vidgear.md.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import AsyncGenerator
from typing import Any

import numpy as np

from ..core.options import CORE_OPTIONS
from ..errors import UsageError
from ..gears import VideoGear
from ..modes import MODES
from .netgear import NetGear

__all__ = ["DEFAULT_TIMEOUT", "NetGear_Async"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 15.0  # vidgear's receiver timeout when ``timeout`` is not given


class NetGear_Async:  # vidgear's name, so its examples run unchanged
    """vidgear's ``NetGear_Async``: a frame source (or your async generator) to a client.

    Send mode streams ``config["generator"]`` (a VideoGear over ``source`` unless you
    set your own async generator) once ``launch()`` made ``task``; receive mode yields
    frames from ``recv_generator()``. ``timeout`` (seconds, 15 when 0) bounds a
    client's wait for each frame (``PeerTimeoutError``, a ``TimeoutError``) and a
    server's wait for each reply. Options netgear's NetGear knows go to it; the others
    go to the VideoGear when there is a ``source``.
    """

    def __init__(self, address: str | None = None, port: Any = None, protocol: str = "tcp",
                 pattern: int = 0, receive_mode: bool = False, timeout: float = 0.0,
                 source: Any = None, stream_mode: bool = False, colorspace: str | None = None,
                 resolution: tuple[int, int] = (640, 480), framerate: float = 25,
                 time_delay: float = 0, logging: bool = False, enablePiCamera: bool = False,
                 **options: Any) -> None:
        known = {name for spec in CORE_OPTIONS + tuple(o for m in MODES for o in m.options)
                 for name in (spec.key, *spec.aliases)}
        feeds_stream = source is not None and not receive_mode
        # the rest are the source's (vidgear passes them to its VideoGear)
        mine = {k: v for k, v in options.items() if k in known or not feeds_stream}
        wait = float(timeout) if timeout else DEFAULT_TIMEOUT
        self._bidirectional = bool(mine.get("bidirectional_mode"))
        if receive_mode:
            mine.setdefault("receive_timeout", wait)
        else:
            mine.setdefault("request_timeout", wait)
            if self._bidirectional:
                # vidgear hands a frame's reply to the generator's next transceive_data():
                # lockstep gives exactly that (send_window=1 would lag one frame more)
                mine.setdefault("send_window", 0)
        self._stream: VideoGear | None = None
        if feeds_stream:
            extra = {k: v for k, v in options.items() if k not in mine}
            if stream_mode:
                extra["stream_mode"] = True
            self._stream = VideoGear(source=source, enablePiCamera=enablePiCamera,
                                     resolution=resolution, framerate=framerate,
                                     colorspace=colorspace, logging=logging,
                                     time_delay=time_delay, **extra)
        try:
            self._gear = NetGear(address, port, protocol, pattern, receive_mode, logging,
                                 **mine)
        except BaseException:
            if self._stream is not None:
                self._stream.stop()
            raise
        self._receive_mode = receive_mode
        self._replies: deque[Any] = deque()  # transceive_data's queue, as vidgear's
        self.config: dict[str, Any] = {}
        if not receive_mode:
            self.config["generator"] = (None if self._stream is None
                                        else self._frames(self._stream))
        self.task: asyncio.Task[None] | None = None
        self._close_task: asyncio.Future[None] | None = None  # close(skip_loop=True)'s
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = asyncio.new_event_loop()

    def launch(self) -> NetGear_Async:
        """Send mode: make ``task``, which streams ``config["generator"]``. Returns self."""
        if not self._receive_mode:
            self.task = self.loop.create_task(self._serve())
        return self

    async def recv_generator(self) -> AsyncGenerator[Any, None]:
        """Receive mode: each frame (``(data, frame)`` in bidirectional mode) until the end."""
        if not self._receive_mode:
            raise UsageError("recv_generator() is for receive_mode=True; a server streams "
                             "config['generator'] after launch()")
        while True:
            answer = (self._replies.popleft() if self._bidirectional and self._replies
                      else None)
            item = await self._gear.recv(return_data=answer)
            if item is None:
                return
            yield item

    async def transceive_data(self, data: Any = None) -> Any:
        """Bidirectional mode. Client: queue ``data`` for the reply to the next frame.
        Server: the oldest reply not yet taken, or None."""
        if not self._bidirectional:
            raise UsageError("transceive_data() needs bidirectional_mode=True on both ends")
        if self._receive_mode:
            self._replies.append(data)
            return None
        return self._replies.popleft() if self._replies else None

    def close(self, skip_loop: bool = False) -> None:
        """Stop the source, end the stream and release everything, then close ``loop``.

        With ``skip_loop=True`` (from inside the running loop) the closing is scheduled
        as a task on it instead, and the loop is left open.
        """
        if skip_loop:
            self._close_task = asyncio.ensure_future(self._terminate())
            return
        self.loop.run_until_complete(self._terminate())
        self.loop.close()

    async def _terminate(self) -> None:
        if self._stream is not None:
            await asyncio.to_thread(self._stream.stop)
        if self.task is not None and not self.task.done():
            self.task.cancel()  # a send in progress finishes with its frame first
            await asyncio.gather(self.task, return_exceptions=True)
        await self._gear.close()
        self._replies.clear()

    async def _serve(self) -> None:
        source = self.config.get("generator")
        if not inspect.isasyncgen(source):
            raise UsageError("config['generator'] must be an async generator (an `async def` "
                             f"function with `yield`, called), got {type(source).__name__}")
        async for item in source:
            message = None
            if self._bidirectional and isinstance(item, tuple) and len(item) == 2:
                message, item = item
            reply = await self._gear.send(item, message)
            if self._bidirectional:
                self._replies.append(reply)

    @staticmethod
    async def _frames(stream: VideoGear) -> AsyncGenerator[np.ndarray, None]:
        stream.start()
        while (frame := await asyncio.to_thread(stream.read)) is not None:
            yield frame
