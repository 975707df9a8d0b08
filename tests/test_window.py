"""send_window > 1: several REQ/REP frames in flight on a DEALER, still lossless and in order."""

from __future__ import annotations

import threading

import pytest
from peers import Peer, stamp, value_of

from netgear import NetGear, OptionError


def test_window_of_4_delivers_every_frame_in_order(port: int) -> None:
    rx = NetGear(address="127.0.0.1", port=port, pattern=1, receive_mode=True,
                 receive_timeout=10.0, bidirectional_mode=True)
    got: list[int] = []

    def receive() -> None:
        while (item := rx.recv(return_data="ok")) is not None:
            got.append(value_of(item[-1] if isinstance(item, tuple) else item))

    reader = threading.Thread(target=receive, daemon=True)
    reader.start()
    tx = NetGear(address="127.0.0.1", port=port, pattern=1, send_window=4,
                 bidirectional_mode=True)
    try:
        # the frame's buffer is reused at once: the window keeps its own copies
        frame = stamp(0, 640 * 480 * 3)
        answers = []
        for value in range(120):
            frame[:] = stamp(value, frame.size)
            answers.append(tx.send(frame))
        tx.close()
        reader.join(10)
    finally:
        tx.close()
        rx.close()
    assert got == list(range(120))
    # send() returns the data of the reply it collected: none until the window was full
    assert answers[:4] == [None] * 4 and answers[4:] == ["ok"] * 116
    assert tx.stats["sent"] == 120 and tx.stats["send_dropped"] == 0


def test_window_of_4_across_a_receiver_restart_loses_nothing(port: int) -> None:
    """The frames in flight when the receiver dies go again, in order, on a new socket."""
    # it stops reading after frame 25: 26..29 are then in flight, never answered
    first = Peer("receiver", 1, port, pause_at=25).wait_ready()
    second = None
    tx = NetGear(address="127.0.0.1", port=port, pattern=1, send_window=4,
                 request_timeout=0.5, max_retries=8)
    try:
        for value in range(30):
            tx.send(stamp(value))
        first.wait_for(lambda lines: "frame 25" in lines)
        first.kill()
        second = Peer("receiver", 1, port).wait_ready()
        for value in range(30, 60):
            tx.send(stamp(value))
        tx.close()
        second.wait_for(lambda lines: "end" in lines)
    finally:
        tx.close()
        first.kill()
        if second is not None:
            second.kill()
    assert first.values() == list(range(26))
    assert second.values() == list(range(26, 60)), "in-flight frames lost or out of order"


@pytest.mark.parametrize("pattern, options, words", [
    (0, {"bidirectional_mode": True}, "needs pattern 1"),
    (2, {}, "needs pattern 1"),
    (1, {"send_window": 65}, "between 0 and 64"),
])
def test_window_over_1_only_on_req_rep(pattern: int, options: dict, words: str,
                                       port: int) -> None:
    options.setdefault("send_window", 4)
    with pytest.raises(OptionError, match=words) as info:
        NetGear(port=port, pattern=pattern, **options)
    assert info.value.key == "send_window"
