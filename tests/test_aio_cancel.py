"""Cancelling the asyncio NetGear's recv() and send() at random points (issue 14).

Sender and receiver run in one event loop. Each call is started as a task and cancelled
after a random delay (often before it got its turn, sometimes while it waits or while
the worker encodes, sends or decodes). What arrives must be exactly what was sent,
once each, in order: frames whose send() returned are all there (PAIR, REQ/REP); a
cancelled send's frame arrives whole or not at all; and the REQ/REP pair still works
afterwards (a plain exchange, then a clean end of stream). The sender rewrites one
buffer for every frame, so a cancelled send() that returned while the frame was still
being read would show up as a torn or repeated frame.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import numpy as np
import pytest

from netgear.aio import NetGear

HOST = "127.0.0.1"
COUNT = 40
DELAYS = (0.0, 0.0, 0.0002, 0.001, 0.003, 0.01)  # seconds before the cancel (0: at once)


def frame(n: int) -> np.ndarray:
    return np.full((120, 160, 3), (n * 6) % 256, np.uint8)


def value_of(got: np.ndarray) -> int:
    """The frame's number; raises on a torn or corrupted frame (JPEG: within 2 levels)."""
    mean = float(got.mean())
    value = round(mean / 6)
    assert abs(got.astype(int) - value * 6).max() <= 2, "corrupted frame"
    return value


async def cancelled_at_random(call: Any, rng: random.Random) -> tuple[bool, Any]:
    """(True, result) if ``call`` finished before its random cancel, else (False, None)."""
    task = asyncio.ensure_future(call)
    await asyncio.sleep(rng.choice(DELAYS))
    if not task.done():
        task.cancel()
    try:
        return True, await task
    except asyncio.CancelledError:
        return False, None


async def stream(pattern: int, port: int, seed: int, **options: Any) -> None:
    rng = random.Random(seed)
    rx = NetGear(address=HOST, port=port, pattern=pattern, receive_mode=True,
                 receive_timeout=10.0, **options)
    tx = NetGear(address=HOST, port=port, pattern=pattern, **options)
    received: list[int] = []
    try:
        if pattern == 2:  # PUB/SUB: wait until the subscription reached the publisher
            while True:
                await tx.send(frame(0))
                try:
                    got = await asyncio.wait_for(rx.recv(), 0.2)
                except asyncio.TimeoutError:
                    continue
                assert value_of(got) == 0
                break

        async def receive() -> None:
            while True:
                done, got = await cancelled_at_random(rx.recv(), rng)
                if not done:
                    continue
                if got is None:
                    return
                received.append(value_of(got))

        receiving = asyncio.ensure_future(receive())
        sent: list[int] = []
        buffer = frame(0)  # one buffer, rewritten for every frame as a camera's would be
        for n in range(1, COUNT + 1):
            buffer[...] = frame(n)
            done, _ = await cancelled_at_random(tx.send(buffer), rng)
            if done:
                sent.append(n)
            if pattern == 2:
                await asyncio.sleep(0.002)  # a steady stream, not a flood of PUB drops
        if pattern == 1:
            # the REQ socket is in the right state: a plain frame goes through
            await asyncio.wait_for(tx.send(frame(COUNT + 1)), 5.0)
            sent.append(COUNT + 1)
        await asyncio.wait_for(tx.close(), 5.0)
        await asyncio.wait_for(receiving, 10.0)  # the end of stream reached the receiver
    finally:
        await tx.close()
        await rx.close()
    assert received == sorted(set(received)), "a frame arrived twice or out of order"
    assert set(received) <= set(range(COUNT + 2))
    if pattern != 2:
        assert set(sent) <= set(received), "a frame whose send() returned was lost"
    assert len(received) >= COUNT // 4  # the test did stream


@pytest.mark.timeout(40)
@pytest.mark.parametrize(("pattern", "options"), [
    (0, {}), (1, {}), (1, {"send_window": 0}), (2, {}), (0, {"jpeg_compression": True}),
], ids=["pair", "reqrep", "reqrep-lockstep", "pubsub", "pair-jpeg"])
def test_cancelling_calls_at_random_never_loses_duplicates_or_corrupts(
        pattern: int, options: dict[str, Any], port: int) -> None:
    for seed in range(2):
        asyncio.run(stream(pattern, port, seed, **options))
