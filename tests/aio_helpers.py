"""Runs the asyncio NetGear from sync test code, so the sync contract tests cover it too.

:class:`BlockingAsyncNetGear` has the sync class's interface; each call runs the async
instance's coroutine on one event loop in a background thread (shared by every
instance, as an application's loop would be) and blocks until it is done.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

from netgear.aio import NetGear as AsyncNetGear

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def loop() -> asyncio.AbstractEventLoop:
    """The background loop (started once, a daemon thread, never closed)."""
    global _loop
    with _lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="aio-tests", daemon=True).start()
        return _loop


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run_coroutine_threadsafe(coro, loop()).result()


class BlockingAsyncNetGear:
    """``netgear.NetGear``'s interface over a ``netgear.aio.NetGear``."""

    made = 0  # instances built, so a test can tell it really ran the async class

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        async def build() -> AsyncNetGear:
            return AsyncNetGear(*args, **kwargs)

        self.gear: AsyncNetGear = run(build())
        BlockingAsyncNetGear.made += 1
        self.settings = self.gear.settings

    @property
    def stats(self) -> dict[str, Any]:
        return self.gear.stats

    @property
    def closed(self) -> bool:
        return self.gear.closed

    def send(self, frame: Any, message: Any = None) -> Any:
        return run(self.gear.send(frame, message))

    def recv(self, return_data: Any = None) -> Any:
        return run(self.gear.recv(return_data))

    def close(self, kill: bool = False) -> None:
        run(self.gear.close(kill))

    def __enter__(self) -> BlockingAsyncNetGear:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
