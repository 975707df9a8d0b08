"""Malformed and oversized messages from a raw ZeroMQ peer, in every pattern.

The receiver drops each malformed message, counts it in ``stats["bad_messages"]``, logs a
bounded number of warnings (not one per message), answers every request on REQ/REP so the
peer is never stuck, and keeps delivering good frames exactly. A message larger than
``max_frame_bytes`` is refused by libzmq before anything is allocated for it.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import psutil
import pytest
import zmq
from helpers import PROBE, Collector, await_subscription, wait_until
from peers import bad_messages, good_message, stamp
from zmq.utils.monitor import recv_monitor_message

import netgear  # noqa: F401  (registers every codec, as an application importing netgear does)
from netgear import NetGear
from netgear.codecs import decode_frame
from netgear.core.wire import REPLY, decode
from netgear.errors import WireFormatError

N_BAD = 360
RAW_SOCKET = {0: zmq.PAIR, 1: zmq.REQ, 2: zmq.PUB}
PROBE_SENDER = 555  # instance id of the raw peer's subscription probes


def _raw_peer(ctx: zmq.Context, pattern: int, port: int) -> zmq.Socket:
    sock = ctx.socket(RAW_SOCKET[pattern])
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 100_000)  # the raw peer itself never drops what it sends
    sock.setsockopt(zmq.SNDTIMEO, 5000)  # and never blocks a test for good
    sock.setsockopt(zmq.RECONNECT_IVL, -1)  # once refused, it stays away
    sock.connect(f"tcp://127.0.0.1:{port}")
    return sock


def _raw_subscribe(raw: zmq.Socket, collector: Collector, timeout: float = 10.0) -> None:
    """PUB drops what it sends before the subscription arrives: probe until one gets through."""
    deadline = time.monotonic() + timeout
    seq = 0
    while not collector.probed.wait(0.05):
        assert time.monotonic() < deadline, "no subscription from the receiver"
        raw.send_multipart(good_message(seq, PROBE, sender=PROBE_SENDER))
        seq += 1


def _send(raw: zmq.Socket, pattern: int, parts: list[bytes]) -> None:
    raw.send_multipart(parts)
    if pattern == 1:
        # REQ/REP: every request is answered, a malformed one too, so the peer is never stuck
        assert raw.poll(5000, zmq.POLLIN), "the receiver did not answer a request"
        assert decode(raw.recv_multipart()).kind == REPLY


@pytest.mark.timeout(10)
def test_every_generated_bad_message_is_malformed():
    """The flood below counts on each of its messages being refused by the decoder."""
    for parts in bad_messages(N_BAD):
        with pytest.raises(WireFormatError):
            decode_frame(decode(parts))


@pytest.mark.timeout(40)
@pytest.mark.parametrize("pattern", [0, 1, 2])
def test_flood_of_bad_messages_is_counted_and_the_receiver_keeps_serving(pattern, port, caplog):
    caplog.set_level(logging.WARNING, logger="netgear")
    rx = NetGear(address="127.0.0.1", port=port, pattern=pattern, receive_mode=True)
    collector = Collector(rx)
    ctx = zmq.Context()
    raw = _raw_peer(ctx, pattern, port)
    tx = None
    try:
        if pattern == 2:
            _raw_subscribe(raw, collector)
        for parts in bad_messages(N_BAD):
            _send(raw, pattern, parts)
        # a well-formed message from the same peer, queued behind the bad ones: once it is
        # delivered, every bad one has been dealt with
        marker = stamp(1)
        _send(raw, pattern, good_message(N_BAD, marker))
        assert wait_until(lambda: len(collector.items) == 1, 10), collector.items
        np.testing.assert_array_equal(collector.items[0], marker)
        assert rx.stats["bad_messages"] == N_BAD
        # messages whose header parsed but whose payload did not are not frames either
        stream = rx.stats["streams"][str(port)]
        assert stream["frames"] == 1 + collector.probes
        assert stream["bytes"] == marker.nbytes + collector.probes * PROBE.nbytes
        raw.close()
        if pattern == 0:
            # a PAIR receiver takes one peer at a time, and refuses a new one (whose first
            # frames are then lost) until it has noticed the previous one left
            time.sleep(0.5)

        # and a real NetGear sender is served as if nothing happened
        tx = NetGear(address="127.0.0.1", port=port, pattern=pattern, request_timeout=1.0,
                     max_retries=5)
        if pattern == 2:
            collector.probed.clear()  # the raw peer's probes set it; this sender needs its own
            await_subscription(tx, collector)
        frame = stamp(2, size=4096)
        tx.send(frame)
        tx.close()  # end of stream: the receiver's recv() returns None
        got = collector.join(10)
    finally:
        raw.close()
        if tx is not None:
            tx.close()
        rx.close()
        ctx.term()
    assert len(got) == 2
    np.testing.assert_array_equal(got[1], frame)
    assert rx.stats["bad_messages"] == N_BAD
    warnings = [r for r in caplog.records
                if r.name.startswith("netgear") and r.levelno >= logging.WARNING]
    # logged, but a flood of N_BAD messages must not become N_BAD log records
    assert 1 <= len(warnings) <= 32, [r.getMessage() for r in warnings]


def _wait_for_disconnect(monitor: zmq.Socket, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while monitor.poll(max(1, int((deadline - time.monotonic()) * 1000))):
        if recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED:
            return True
        if time.monotonic() > deadline:
            break
    return False


@pytest.mark.timeout(40)
@pytest.mark.parametrize("pattern", [0, 1, 2])
def test_message_above_max_frame_bytes_is_refused_without_allocating_it(pattern, port):
    limit = 64 * 1024
    rx = NetGear(address="127.0.0.1", port=port, pattern=pattern, receive_mode=True,
                 max_frame_bytes=limit)
    collector = Collector(rx)
    big = np.ones(64 * 1024 * 1024, np.uint8)  # touched now, so already in the baseline RSS
    ctx = zmq.Context()
    raw = _raw_peer(ctx, pattern, port)
    monitor = raw.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    tx = None
    try:
        if pattern == 2:
            _raw_subscribe(raw, collector)
        elif pattern == 0:
            raw.send_multipart(good_message(0, stamp(0)))  # the pipe is up
            assert wait_until(lambda: len(collector.items) == 1, 10)
        process = psutil.Process()
        baseline = process.memory_info().rss
        header = good_message(1, big[:1])[0]  # any header; the payload part is the problem
        raw.send_multipart([header, big], copy=False)
        # libzmq reads the announced size, sees it exceeds the limit and drops the peer
        assert _wait_for_disconnect(monitor, 10), "the oversized message was not refused"
        time.sleep(0.2)  # anything the receiver would still do with it happens now
        growth = process.memory_info().rss - baseline
        assert growth < 16 * 1024 * 1024, f"receiver grew by {growth} bytes"
        raw.disable_monitor()
        raw.close()

        tx = NetGear(address="127.0.0.1", port=port, pattern=pattern, request_timeout=1.0,
                     max_retries=5, max_frame_bytes=limit)
        if pattern == 2:
            collector.probed.clear()  # the raw peer's probes set it; this sender needs its own
            await_subscription(tx, collector)
        frame = stamp(2, size=limit // 2)
        tx.send(frame)
        tx.close()
        got = collector.join(10)
    finally:
        monitor.close()
        raw.close()
        if tx is not None:
            tx.close()
        rx.close()
        ctx.term()
    assert all(item.nbytes < limit for item in got)  # the big one never arrived
    np.testing.assert_array_equal(got[-1], frame)
    assert rx.stats["bad_messages"] == 0  # refused by libzmq, never seen as a message
