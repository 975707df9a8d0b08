"""Fire-and-forget senders (PAIR, PUB/SUB) let the caller reuse its buffer at once.

The caller overwrites its array right after every send(); each frame carries its own
value in every byte, so a frame libzmq read after it was overwritten (zero-copy without
waiting for the tracker, or a recycled buffer still in flight) arrives with mixed values.
A guard for any faster copy strategy (a pool of owned buffers reused before its tracker
was done failed this test).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from netgear import NetGear

HOST = "127.0.0.1"
SHAPE = (480, 640, 3)  # 0.9 MB: over the pooled-copy threshold
FRAMES = 200


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pattern", [0, 2])
def test_buffer_reused_right_after_send_never_tears_a_frame(port: int, pattern: int) -> None:
    rx = NetGear(address=HOST, port=port, pattern=pattern, receive_mode=True,
                 receive_timeout=10, subscriber_timeout=None if pattern == 0 else 3)
    tx = NetGear(address=HOST, port=port, pattern=pattern)
    frame = np.zeros(SHAPE, np.uint8)
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
