"""The asyncio NetGear: the sync class's validation, modes, codecs and link, awaited.

Construction builds a sync :class:`netgear.core.netgear.NetGear` (every option checked
the same way, before any socket opens) and keeps it. Receiving runs the sync receiver's
own steps (``_take``: parse, judge, reply; ``_deliver``: decode, shape) on the event
loop, waiting for input with the link's loop waits (:mod:`netgear.link.zmq.aio`);
everything else that can block or burn CPU runs on this instance's one worker thread
and is awaited: sends (with their retries and Lazy Pirate rebuilds), decoding any codec
but raw, the conflate reader's hand-off, and close(). See docs/aio.md.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from ..core.netgear import NetGear as SyncNetGear
from ..core.receiver import _SKIP, Receiver
from ..errors import ClosedError
from ..link.zmq.aio import Watch, receive_now
from ..modes import DELIVER, FINISH

__all__ = ["CLOSE_WAIT", "YIELD_EVERY", "NetGear"]

logger = logging.getLogger(__name__)

# longest close() waits for a call in progress to notice it (a send interrupted by the
# closing flag leaves within one poll slice; a decode is milliseconds)
CLOSE_WAIT = 5.0
YIELD_EVERY = 0.005  # seconds a stream of queued frames may keep the loop to one recv()


class NetGear:
    """``netgear.NetGear`` for asyncio: same arguments, options, modes and errors.

    ``await send(frame, message)``, ``await recv(return_data)``, ``await close()``,
    ``async with`` and ``async for frame in receiver`` (ends with the stream). One
    instance serves one event loop; calls from several tasks take turns.
    """

    def __init__(self, address: str | None = None, port: Any = None, protocol: str = "tcp",
                 pattern: int = 0, receive_mode: bool = False, logging: bool = False,
                 **options: Any) -> None:
        self._sync = SyncNetGear(address, port, protocol, pattern, receive_mode, logging,
                                 **options)
        self.settings = self._sync.settings
        self._closed = False
        self._turn = asyncio.Lock()  # one call at a time touches the sockets
        half = self._sync._half
        # the loop's watch on a receiver's sockets (a sender's waits are the worker's)
        self._watch = Watch(half.channels) if isinstance(half, Receiver) else None
        if self._watch is not None:
            # Dropped unclosed: stop watching before the sync finalizer closes the sockets
            # (a stale loop reader on a reused descriptor number would break its new owner).
            # Weakref callbacks run before the instance's attributes are released.
            weakref.finalize(self, self._watch.release)
        # a cancelled recv()'s frame, already taken off the socket: the next recv() gets it
        self._kept: asyncio.Future[Any] | None = None
        self._yielded_at = float("-inf")  # loop time recv() last let other tasks run
        self._worker = concurrent.futures.ThreadPoolExecutor(1, "netgear-aio")

    @property
    def stats(self) -> dict[str, Any]:
        return self._sync.stats

    @property
    def closed(self) -> bool:
        return self._closed

    async def send(self, frame: np.ndarray | None, message: Any = None) -> Any:
        """Send one frame; returns what the sync ``send()`` returns. Send mode only.

        Cancelling it before the frame went to the worker sends nothing; once it has, the
        cancellation takes effect when the sync send is done with the frame (sent whole,
        or given up within its timeouts; ``close()`` cuts that short), so the array is
        free again when ``send()`` returns or raises, and a REQ socket never holds half
        an exchange. The reply data of a cancelled send is dropped.
        """
        self._sync._check_send(frame, message)
        async with self._turn:
            if self._closed:
                raise ClosedError("this NetGear is closed")
            return await _finish_first(self._run(self._sync.send, frame, message))

    async def recv(self, return_data: Any = None, info: bool = False) -> Any:
        """The next frame (or mode-shaped tuple); None once the stream has ended.

        ``info=True`` returns a :class:`~netgear.FrameInfo`, as the sync ``recv()``.

        Cancelling it never loses a frame: one already taken off the socket (being
        decoded) is what the next ``recv()`` returns.
        """
        half = self._sync._check_recv(return_data)
        async with self._turn:
            if self._kept is not None:
                kept, self._kept = self._kept, None
                return await self._keep_on_cancel(kept)
            if self._closed:
                return None
            if half.conflate:  # the sync reader thread keeps the newest; wait for it there
                return await self._keep_on_cancel(self._run(self._sync.recv, return_data,
                                                            info))
            return await self._receive(half, return_data, info)

    async def _receive(self, half: Receiver, return_data: Any, info: bool) -> Any:
        stopped = half.closing.is_set
        # A frame already queued is returned without suspending, as asyncio.Queue.get()
        # does (a loop iteration per frame costs several percent at 640x480), but a steady
        # stream must not starve the loop's other tasks: yield every YIELD_EVERY seconds.
        # This is the only await before a message is taken; between taking it
        # (receive_now) and replying to it (_take) nothing may be cancelled, or a REP
        # socket is left owing a reply.
        loop = asyncio.get_running_loop()
        if loop.time() - self._yielded_at >= YIELD_EVERY:
            await asyncio.sleep(0)
            self._yielded_at = loop.time()
        while True:
            if self._closed:
                return None
            got = receive_now(half.transport, half.channels, half.copy)
            if got is None:
                assert self._watch is not None  # built for every receiver
                if not await self._watch.wait(half.wait, stopped):
                    if self._closed or stopped():
                        return None
                    # a wait that ended with input queued is no timeout (same as sync)
                    got = receive_now(half.transport, half.channels, half.copy)
                    if got is None:
                        return half._timed_out()
                else:
                    continue
            verdict, incoming = half._take(*got, return_data)
            if verdict == FINISH:
                return None
            if verdict != DELIVER or incoming is None:
                continue
            if incoming.codec == "raw":  # a view of the payload: nothing to offload
                result = half._deliver(incoming, info)
            else:
                result = await self._keep_on_cancel(self._run(half._deliver, incoming, info))
            if result is not _SKIP:
                return result

    async def close(self, kill: bool = False) -> None:
        """End the stream and release everything, as the sync ``close()`` (same bounds).

        Idempotent. A call in progress in another task returns (recv() None, send()
        ClosedError or its result) first. Cancelling close() does not stop it: the
        sockets are released all the same.
        """
        if self._closed:
            return
        self._closed = True
        self._sync._closing.set()  # interrupts a send in the worker within one poll slice
        if self._kept is not None:  # never collected: its outcome is of no use now
            self._kept.add_done_callback(_discard)
        if self._watch is not None:
            self._watch.wake()
        try:
            await asyncio.wait_for(self._turn.acquire(), CLOSE_WAIT)
        except asyncio.TimeoutError:
            logger.warning("close(): a call still runs after %gs; closing anyway", CLOSE_WAIT)
        else:
            self._turn.release()
        if self._watch is not None:  # on the loop's thread, before the sockets close
            self._watch.release()
        try:
            await _finish_first(self._run(self._sync.close, kill))
        finally:
            # its last job is done, so the thread is only exiting: joining it is quick, and
            # close() leaves no thread behind
            self._worker.shutdown(wait=True)

    async def __aenter__(self) -> NetGear:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        frame = await self.recv()
        if frame is None:
            raise StopAsyncIteration
        return frame

    def _run(self, call: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().run_in_executor(self._worker, call, *args)

    async def _keep_on_cancel(self, work: asyncio.Future[Any]) -> Any:
        """Await ``work``; if cancelled, keep it for the next recv() instead of losing it."""
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            if not work.done() or not work.cancelled():
                self._kept = work
            raise


def _discard(work: asyncio.Future[Any]) -> None:
    if not work.cancelled():
        work.exception()  # retrieved, so asyncio does not log it as never retrieved


async def _finish_first(work: asyncio.Future[Any]) -> Any:
    """Await ``work`` to its end even when cancelled, then let the cancellation through
    (whatever ``work`` returned or raised is then dropped)."""
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(work)
        except asyncio.CancelledError:
            if not work.done():
                cancelled = True
                continue
            work.add_done_callback(_discard)
            raise
        except Exception:
            if cancelled:
                raise asyncio.CancelledError from None
            raise
        if cancelled:
            raise asyncio.CancelledError
        return result
