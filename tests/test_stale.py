"""No stale frames: with ``conflate=True`` a slow consumer always gets a recent frame.

A fast sender stamps the time into each frame; the consumer sleeps per frame. Without
conflate the frames it gets grow older and older (they wait in the queues); with conflate
their age stays bounded by about one consumer step.
"""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest
from conftest import free_port
from peers import age_of, stamp

from netgear import NetGear, NetGearError, PeerTimeoutError

FRAME_BYTES = 64 * 1024
STEP = 0.06  # the consumer's time per frame
WATCH = 1.5  # seconds of consuming measured


class FastSender:
    """Streams stamped frames every ``interval`` from a thread until stopped."""

    def __init__(self, gear: NetGear, interval: float = 0.004) -> None:
        self.gear = gear
        self.interval = interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        value = 0
        while not self.stop.is_set():
            try:
                self.gear.send(stamp(value, size=FRAME_BYTES))
            except PeerTimeoutError:
                continue  # the queue stayed full for request_timeout: try the next frame
            except NetGearError:
                if self.stop.is_set():
                    return  # closed while blocked on a full queue
                raise
            value += 1
            time.sleep(self.interval)

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(5)


def _consume(rx: NetGear, seconds: float) -> list[tuple[object, float]]:
    """(stream, age) of each frame a slow consumer gets during ``seconds``."""
    got = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        item = rx.recv()
        assert item is not None
        stream, frame = item if isinstance(item, tuple) else (None, item)
        got.append((stream, age_of(frame)))
        time.sleep(STEP)
    return got


def _watch(pattern: int, conflate: bool) -> list[float]:
    port = free_port()
    rx = NetGear(address="127.0.0.1", port=port, pattern=pattern, receive_mode=True,
                 conflate=conflate)
    tx = NetGear(address="127.0.0.1", port=port, pattern=pattern, request_timeout=0.2,
                 max_retries=0)
    sender = FastSender(tx)
    try:
        rx.recv()  # the stream is flowing (PUB/SUB: subscribed)
        ages = [age for _, age in _consume(rx, WATCH)]
    finally:
        sender.halt()
        tx.close()
        rx.close()
    return ages


def _p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


@pytest.mark.timeout(40)
@pytest.mark.parametrize("pattern", [0, 2])
def test_conflate_keeps_frames_fresh_where_a_queue_makes_them_stale(pattern):
    fresh = _watch(pattern, conflate=True)
    queued = _watch(pattern, conflate=False)
    assert len(fresh) >= 10 and len(queued) >= 10
    # conflate: about one consumer step old, whatever the backlog
    assert _p95(fresh) < 0.25, f"conflated frames up to {max(fresh):.3f}s old"
    assert max(fresh[len(fresh) // 2:]) < 0.25  # and it does not creep up
    # without it, the frames handed out wait in the queues longer and longer
    late = queued[-5:]
    assert min(late) > 0.5, f"queued frames only {min(late):.3f}s old"
    assert np.mean(late) > np.mean(queued[:5]) + 0.4


@pytest.mark.timeout(30)
def test_multiserver_conflate_returns_the_newest_per_stream_and_streams_take_turns():
    port_a, port_b = free_port(), free_port()
    rx = NetGear(address="127.0.0.1", port=[port_a, port_b], pattern=2, receive_mode=True,
                 multiserver_mode=True, conflate=True)
    servers = [NetGear(address="127.0.0.1", port=p, pattern=2, multiserver_mode=True)
               for p in (port_a, port_b)]
    senders = [FastSender(gear) for gear in servers]
    try:
        seen: set[object] = set()
        deadline = time.monotonic() + 10
        while seen != {str(port_a), str(port_b)}:  # both servers subscribed and flowing
            assert time.monotonic() < deadline, f"only {seen} flowing"
            seen.add(rx.recv()[0])
        got = _consume(rx, WATCH)
    finally:
        for sender in senders:
            sender.halt()
        for gear in servers:
            gear.close()
        rx.close()
    ages = [age for _, age in got]
    streams = [stream for stream, _ in got]
    assert _p95(ages) < 0.25, f"conflated frames up to {max(ages):.3f}s old"
    # both always have a newer frame waiting, so they alternate: neither starves the other
    assert streams.count(str(port_a)) >= 8 and streams.count(str(port_b)) >= 8
    longest_run = max(len(list(run)) for _, run in itertools.groupby(streams))
    assert longest_run <= 2, streams
    assert rx.stats["conflated"] > len(got)  # older frames were skipped, and counted
