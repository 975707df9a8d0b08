"""Bounded memory: a stalled receiver never makes a sender queue without limit, and a long
stream does not make a receiver grow."""

from __future__ import annotations

import threading
import time

import numpy as np
import psutil
import pytest
from peers import stamp, value_of

from netgear import NetGear, PeerTimeoutError

MIB = 1024 * 1024


def _rss() -> int:
    return psutil.Process().memory_info().rss


def _subscribe(tx: NetGear, rx: NetGear, frame_bytes: int, timeout: float = 10.0) -> None:
    """PUB/SUB handshake from one thread: publish probes until the subscriber reads one.

    ``rx`` needs ``receive_timeout`` so each recv() here gives up quickly.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tx.send(stamp(-1, size=frame_bytes))
        try:
            if rx.recv() is not None:
                return
        except PeerTimeoutError:
            continue
    raise AssertionError("no subscription")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("copy", [False, True], ids=["lent", "copied"])
def test_pair_sender_facing_a_stalled_receiver_blocks_then_times_out(port, copy):
    frame = np.full(MIB, 7, np.uint8)
    rx = NetGear(address="127.0.0.1", port=port, pattern=0, receive_mode=True)  # never reads
    tx = NetGear(address="127.0.0.1", port=port, pattern=0, queue_bytes=8 * MIB,
                 request_timeout=0.3, max_retries=1, copy=copy)
    try:
        baseline = _rss()
        accepted = 0
        with pytest.raises(PeerTimeoutError):
            while accepted < 100:
                started = time.monotonic()
                tx.send(frame)
                accepted += 1
        blocked = time.monotonic() - started
        growth = _rss() - baseline
        # copied: 8 frames of send queue (8 MiB // 1 MiB), 4 at the receiver, plus what the
        # kernel's socket buffers hold; lent (the default for 1 MiB PAIR frames): send()
        # returns once a frame is in the kernel, so the send queue holds none. Not the 100.
        assert (8 if copy else 1) <= accepted <= 24, accepted
        assert growth < 48 * MIB, f"grew by {growth / MIB:.0f} MiB"
        assert 0.5 <= blocked < 2.0  # two waits of request_timeout (one retry), then the error
    finally:
        start = time.monotonic()
        tx.close()  # its END is never acknowledged: bounded anyway
        rx.close()
        assert time.monotonic() - start < 2.0


@pytest.mark.timeout(30)
def test_pair_frames_accepted_by_send_reach_a_receiver_that_was_only_slow(port):
    """A receiver that pauses (GC, a slow frame) must not make accepted frames vanish.

    send() may block, or give up with PeerTimeoutError; but a frame it accepted is delivered
    once the receiver reads again.
    """
    rx = NetGear(address="127.0.0.1", port=port, pattern=0, receive_mode=True)
    tx = NetGear(address="127.0.0.1", port=port, pattern=0, queue_bytes=8 * MIB,
                 request_timeout=0.3, max_retries=1)
    received: list[int] = []

    def consume() -> None:
        time.sleep(1.5)  # paused, then reads everything
        while (frame := rx.recv()) is not None:
            received.append(value_of(frame))

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    accepted, refused = [], []
    try:
        for value in range(40):
            try:
                tx.send(stamp(value, size=MIB))
                accepted.append(value)
            except PeerTimeoutError:
                refused.append(value)
        tx.close()
        worker.join(5)  # the END (or rx.close() below) ends the consumer
    finally:
        tx.close()
        rx.close()
    lost = sorted(set(accepted) - set(received))
    assert not lost, (f"send() accepted {len(accepted)} frames (refused {len(refused)}), "
                      f"the receiver got {len(received)}; lost without a trace: {lost}")


@pytest.mark.timeout(30)
def test_pub_sender_facing_a_stalled_subscriber_keeps_going_without_growing(port):
    frame_bytes = MIB
    rx = NetGear(address="127.0.0.1", port=port, pattern=2, receive_mode=True,
                 receive_timeout=0.05)
    tx = NetGear(address="127.0.0.1", port=port, pattern=2, queue_bytes=8 * MIB)
    try:
        _subscribe(tx, rx, frame_bytes)  # subscribed; from here on the subscriber never reads
        frame = np.full(frame_bytes, 3, np.uint8)
        for _ in range(20):  # fill every queue on the way first
            tx.send(frame)
        baseline = _rss()
        start = time.monotonic()
        for _ in range(300):  # 300 MiB offered
            tx.send(frame)
        elapsed = time.monotonic() - start
        growth = _rss() - baseline
        assert elapsed < 5.0  # never blocked on the stalled subscriber
        assert growth < 24 * MIB, f"grew by {growth / MIB:.0f} MiB"
        assert tx.stats["sent"] >= 321
    finally:
        tx.close()
        rx.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pattern", [0, 1, 2])
def test_receiver_memory_is_flat_over_20000_frames(pattern, port):
    total, warmup, size = 20_000, 2_000, 8 * 1024
    options = {"receive_timeout": 0.05} if pattern == 2 else {}
    rx = NetGear(address="127.0.0.1", port=port, pattern=pattern, receive_mode=True, **options)
    tx = NetGear(address="127.0.0.1", port=port, pattern=pattern)
    samples: dict[str, int] = {}
    count = [0]
    done = threading.Event()

    def consume() -> None:
        while True:
            try:
                frame = rx.recv()
            except PeerTimeoutError:
                continue
            if frame is None:
                break
            if value_of(frame) >= 0:
                count[0] += 1
                if count[0] == warmup:
                    samples["warm"] = _rss()
        samples["end"] = _rss()
        done.set()

    try:
        if pattern == 2:
            _subscribe(tx, rx, size)
        worker = threading.Thread(target=consume, daemon=True)
        worker.start()
        frame = stamp(0, size=size)
        for value in range(total):
            frame[:8] = np.frombuffer(np.int64(value).tobytes(), np.uint8)
            tx.send(frame)
            if pattern == 2 and value % 64 == 0:
                time.sleep(0.001)  # PUB/SUB drops under overload; keep most frames arriving
        tx.close()
        assert done.wait(20)
    finally:
        tx.close()
        rx.close()
    if pattern != 2:
        assert count[0] == total
    assert count[0] > warmup
    growth = samples["end"] - samples["warm"]
    assert growth < 4 * MIB, f"receiver grew by {growth / MIB:.1f} MiB over {count[0]} frames"
