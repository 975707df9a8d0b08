"""Fire-and-forget senders (PAIR, PUB/SUB) let the caller reuse its buffer at once.

The caller overwrites its array right after every send(); each frame carries its own
value in every byte, so a frame libzmq read after it was overwritten (zero-copy without
waiting for the tracker, or a recycled buffer still in flight) arrives with mixed values.
PAIR lends libzmq frames of LEND_BYTES or more (zero-copy, send() waits until libzmq has
written them) and copies smaller ones; PUB/SUB always copies. A guard for any faster copy
strategy (a pool of owned buffers reused before its tracker was done failed this test;
so did lending without the wait).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from netgear import ClosedError, NetGear, PeerTimeoutError
from netgear.core.sender import LEND_BYTES

HOST = "127.0.0.1"
SHAPE = (480, 640, 3)  # 0.9 MB: PAIR lends it
SMALL = (240, 320, 3)  # 0.2 MB: PAIR copies it
FRAMES = 200


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("pattern", "shape"), [(0, SHAPE), (0, SMALL), (2, SHAPE)],
                         ids=["pair-lent", "pair-copied", "pub-copied"])
def test_buffer_reused_right_after_send_never_tears_a_frame(port: int, pattern: int,
                                                            shape: tuple[int, ...]) -> None:
    assert (np.prod(shape) >= LEND_BYTES) == (shape == SHAPE)  # both PAIR paths covered
    rx = NetGear(address=HOST, port=port, pattern=pattern, receive_mode=True,
                 receive_timeout=10, subscriber_timeout=None if pattern == 0 else 3)
    tx = NetGear(address=HOST, port=port, pattern=pattern)
    frame = np.zeros(shape, np.uint8)
    got: list[int] = []
    torn: list[tuple[int, int]] = []

    def read() -> None:
        while True:
            out = rx.recv()
            if out is None:
                return
            lo, hi = int(out.min()), int(out.max())
            if lo != hi:
                torn.append((lo, hi))
            elif lo:
                got.append(lo)

    reader = threading.Thread(target=read, daemon=True)
    try:
        if pattern == 2:  # wait until the subscription is through before counting
            while True:
                tx.send(frame)
                if rx.recv() is not None:
                    break
        reader.start()
        for value in range(1, FRAMES + 1):
            frame[:] = value % 251 + 1
            tx.send(frame)
            frame[:] = 0  # the caller reuses its buffer at once
        tx.close()
        reader.join(30)
        assert not reader.is_alive()
    finally:
        tx.close()
        rx.close()
    assert torn == [], f"torn frames (min, max): {torn[:5]}"
    assert got, "nothing arrived"
    if pattern == 0:  # PAIR loses nothing
        assert got == [v % 251 + 1 for v in range(1, FRAMES + 1)]


@pytest.mark.timeout(60)
def test_a_lent_frame_nobody_reads_stays_queued_and_later_frames_are_copied(port: int) -> None:
    """A receiver that stops reading: the lent frame's send() times out without dropping
    anything (no socket rebuild), and while that frame is still queued the next frames are
    copied, so their buffer can be reused at once. Everything arrives once it reads again.
    """
    rx = NetGear(address=HOST, port=port, pattern=0, receive_mode=True, receive_timeout=10)
    tx = NetGear(address=HOST, port=port, pattern=0, request_timeout=0.3, max_retries=0)
    accepted: list[int] = []
    try:
        stuck = None
        for value in range(1, 200):  # fresh arrays until the queues on the way are full
            try:
                tx.send(np.full(SHAPE, value, np.uint8))
            except PeerTimeoutError as exc:
                assert "still being read" in str(exc)
                stuck = value
                break
            accepted.append(value)
        assert stuck is not None, "a receiver that never reads took 199 frames"
        reused = np.zeros(SHAPE, np.uint8)
        after = [stuck + 1 + i for i in range(3)]
        for value in after:
            reused[:] = value
            tx.send(reused)  # copied: returns at once though nothing is read
            reused[:] = 0
        got = []
        while len(got) < len(accepted) + 1 + len(after):
            out = rx.recv()
            assert out is not None
            lo, hi = int(out.min()), int(out.max())
            assert lo == hi, f"torn frame (min {lo}, max {hi})"
            got.append(lo)
    finally:
        tx.close()
        rx.close()
    # the frame whose send() timed out was not dropped: it arrives in its place
    assert got == [*accepted, stuck, *after]


@pytest.mark.timeout(30)
def test_inproc_pair_copies_so_one_thread_can_send_then_receive() -> None:
    """Over inproc the receiver's array is the sender's buffer itself, which libzmq lets go
    of only when the receiving side drops it: a lent frame would block send() until then."""
    rx = NetGear(address="pairperf", port="1", protocol="inproc", pattern=0,
                 receive_mode=True, receive_timeout=5)
    tx = NetGear(address="pairperf", port="1", protocol="inproc", pattern=0,
                 request_timeout=0.5, max_retries=0)
    frame = np.zeros(SHAPE, np.uint8)
    try:
        kept = []
        for value in (1, 2, 3):
            frame[:] = value
            tx.send(frame)  # would time out waiting for the receiver if lent
            frame[:] = 0
            kept.append(rx.recv())  # still held while the next frames go
        assert [(int(k.min()), int(k.max())) for k in kept] == [(1, 1), (2, 2), (3, 3)]
    finally:
        tx.close()
        rx.close()


@pytest.mark.timeout(30)
def test_close_from_another_thread_ends_a_lent_frames_wait_promptly(port: int) -> None:
    rx = NetGear(address=HOST, port=port, pattern=0, receive_mode=True)  # never reads
    tx = NetGear(address=HOST, port=port, pattern=0, request_timeout=30, max_retries=0)
    sent: list[int] = []
    failed: list[BaseException] = []

    def send() -> None:
        try:
            while len(sent) < 500:  # until the queues on the way are full, then it waits
                tx.send(np.full(SHAPE, 1, np.uint8))
                sent.append(1)
        except ClosedError:
            pass
        except BaseException as exc:
            failed.append(exc)

    worker = threading.Thread(target=send, daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait until send() is stuck on a lent frame
            before = len(sent)
            worker.join(0.5)
            if len(sent) == before:
                break
        assert worker.is_alive() and 0 < len(sent) < 500
        started = time.monotonic()
        tx.close()
        worker.join(2.0)
        took = time.monotonic() - started
        assert not worker.is_alive() and took < 2.0, took
        assert failed == []
    finally:
        tx.close()
        rx.close()
