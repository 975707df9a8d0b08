"""The asyncio NetGear's own promises: the loop never blocks, close() wakes waiters."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable
from typing import Any

import numpy as np
import pytest
import zmq
from conftest import free_port

import netgear
from netgear import PeerTimeoutError
from netgear.aio import NetGear
from netgear.codecs import Decoder, register_codec
from netgear.core.wire import FRAME, Incoming, Outgoing, dtype_descr, encode

HOST = "127.0.0.1"
SLOW = 0.6  # seconds each slow step takes; the loop must keep ticking meanwhile


class SlowDecoder(Decoder):
    def __init__(self, options: Any) -> None:
        pass

    def decode(self, incoming: Incoming, max_decoded_bytes: int) -> np.ndarray:
        time.sleep(SLOW)  # stands for a big JPEG/video decode
        return np.frombuffer(incoming.payload, np.uint8).reshape(incoming.header["h"])


register_codec("aio-slow", SlowDecoder)


async def longest_stall(work: Awaitable[Any]) -> tuple[float, Any]:
    """Run ``work`` while a heartbeat ticks; the longest gap between ticks, and its result."""
    gaps: list[float] = []

    async def beat() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    heart = asyncio.ensure_future(beat())
    try:
        result: Any = await work
    except Exception as exc:
        result = exc
    finally:
        heart.cancel()
    return max(gaps), result


def test_async_netgear_is_exported() -> None:
    assert netgear.AsyncNetGear is NetGear


@pytest.mark.timeout(20)
def test_a_slow_decode_and_a_waiting_send_do_not_block_the_loop(port: int) -> None:
    async def main() -> None:
        async with NetGear(address=HOST, port=port, receive_mode=True,
                           receive_timeout=10.0) as rx:
            ctx = zmq.Context()
            sock = ctx.socket(zmq.PAIR)
            try:
                sock.connect(f"tcp://{HOST}:{port}")
                out = Outgoing(FRAME, 0, None)
                out.payload, out.codec = bytes(range(12)), "aio-slow"
                out.extra.update(d=dtype_descr(np.dtype(np.uint8)), h=[3, 4], i=5)
                sock.send_multipart(encode(out))
                stall, got = await longest_stall(rx.recv())
            finally:
                sock.close(0)
                ctx.term()
        assert isinstance(got, np.ndarray) and got.shape == (3, 4)
        assert stall < SLOW * 0.7, f"the loop stalled {stall:.2f}s in recv()"
        # a REQ send with nobody to answer waits out its timeout in the worker
        async with NetGear(address=HOST, port=port, pattern=1, request_timeout=SLOW,
                           max_retries=0) as tx:
            stall, error = await longest_stall(tx.send(np.zeros((2, 2), np.uint8)))
            await tx.close(kill=True)
        assert isinstance(error, PeerTimeoutError)
        assert stall < SLOW * 0.7, f"the loop stalled {stall:.2f}s in send()"

    asyncio.run(main())


@pytest.mark.timeout(20)
@pytest.mark.parametrize("conflate", [False, True])
def test_close_from_another_task_ends_a_waiting_recv_and_async_for(port: int,
                                                                   conflate: bool) -> None:
    async def main() -> None:
        rx = NetGear(address=HOST, port=port, pattern=2, receive_mode=True, conflate=conflate)
        frames: list[Any] = []

        async def iterate() -> None:
            async for item in rx:
                frames.append(item)

        task = asyncio.ensure_future(iterate())
        await asyncio.sleep(0.2)
        start = time.monotonic()
        await rx.close()
        await asyncio.wait_for(task, 2.0)
        assert time.monotonic() - start < 1.5
        assert frames == [] and rx.closed
        assert await rx.recv() is None

    asyncio.run(main())


@pytest.mark.timeout(20)
def test_a_timed_out_wait_for_then_the_next_recv_gets_the_frame(port: int) -> None:
    async def main() -> None:
        async with NetGear(address=HOST, port=port, pattern=1, receive_mode=True) as rx, \
                NetGear(address=HOST, port=port, pattern=1, send_window=0) as tx:
            for n in range(3):
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(rx.recv(), 0.05)
                sending = asyncio.ensure_future(tx.send(np.full((4, 4), n, np.uint8)))
                got = await asyncio.wait_for(rx.recv(), 5.0)
                assert int(got[0, 0]) == n
                await asyncio.wait_for(sending, 5.0)

    asyncio.run(main())


@pytest.mark.timeout(20)
def test_receivers_dropped_unclosed_leave_the_loop_usable() -> None:
    """Their sockets close in the sync finalizer; the loop's watch on them must go first,
    or a stale reader on a reused descriptor number breaks the loop's next connections."""
    from netgear import NetGear as SyncNetGear

    async def main() -> None:
        for _ in range(20):
            port = free_port()
            rx = NetGear(address=HOST, port=port, receive_mode=True)
            tx = SyncNetGear(address=HOST, port=port)
            tx.send(np.zeros((4, 4), np.uint8))
            assert await asyncio.wait_for(rx.recv(), 5.0) is not None
            tx.close(kill=True)
            del rx, tx
            gc.collect()
        server = await asyncio.start_server(echo_ok, HOST, 0)
        try:
            for _ in range(10):
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(HOST, server.sockets[0].getsockname()[1]), 2.0)
                assert await asyncio.wait_for(reader.read(), 2.0) == b"ok"
                writer.close()
        finally:
            server.close()

    asyncio.run(main())


async def echo_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"ok")
    await writer.drain()
    writer.close()


@pytest.mark.timeout(20)
def test_a_cancelled_send_waits_for_its_exchange_and_close_cuts_it_short(port: int) -> None:
    async def main() -> None:
        tx = NetGear(address=HOST, port=port, pattern=1, request_timeout=30, max_retries=3)
        sending = asyncio.ensure_future(tx.send(np.zeros((4, 4), np.uint8)))
        await asyncio.sleep(0.3)
        sending.cancel()
        await asyncio.sleep(0.3)
        # the REQ exchange is still under way in the worker: the cancellation waits for it
        assert not sending.done()
        start = time.monotonic()
        await asyncio.wait_for(tx.close(), 5.0)
        with pytest.raises(asyncio.CancelledError):
            await sending
        # close() interrupts the exchange within a poll slice, then gives the END its
        # bounded second (no receiver): far below request_timeout x retries (120 s)
        assert time.monotonic() - start < 3.0
        assert tx.closed

    asyncio.run(main())


@pytest.mark.parametrize("pattern", [0, 1])
def test_info_and_data_only_messages_as_in_the_sync_api(pattern: int) -> None:
    # the async recv() shapes through the sync receiver's own step (PUB/SUB: test_data_messages)
    port = free_port()
    frame = np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)

    async def main() -> list[Any]:
        async with NetGear(address=HOST, port=port, pattern=pattern, receive_mode=True,
                           receive_timeout=10, bidirectional_mode=True) as rx:
            tx = NetGear(address=HOST, port=port, pattern=pattern, bidirectional_mode=True)
            try:
                sending = asyncio.ensure_future(asyncio.gather(
                    tx.send(frame, message="first"), tx.send(None, message={"event": "door"})))
                got = [await rx.recv(info=True), await rx.recv()]
                await sending
            finally:
                await tx.close()
        return got

    info, data_only = asyncio.run(main())
    assert isinstance(info, netgear.FrameInfo)
    assert np.array_equal(info.frame, frame) and info.message == "first"
    assert info.sequence >= 0 and info.latency >= 0
    # a data-only message: the usual result shape, with None as the frame
    assert data_only == ({"event": "door"}, None)
