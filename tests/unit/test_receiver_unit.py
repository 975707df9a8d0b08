"""Receiver over the in-memory link: judging, answering, decoding, ending."""

from __future__ import annotations

import numpy as np

from netgear.core.receiver import Receiver
from netgear.core.wire import END, FRAME, REPLY, decode

from .fakes import compose, message

FRAME_A = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)


def _receiver(pattern: int = 0, port: object = "5555", **options: object):
    half, link, modes = compose(True, pattern, port, **options)
    assert isinstance(half, Receiver)
    return half, link, modes


def test_frames_are_delivered_in_order_and_end_returns_none() -> None:
    rx, link, _ = _receiver(0, receive_timeout=1)
    inbox = link.channels[0].inbox
    inbox.extend([message(FRAME, 0, FRAME_A), message(FRAME, 1, FRAME_A + 1),
                  message(END, 2)])
    assert np.array_equal(rx.receive(None), FRAME_A)
    assert np.array_equal(rx.receive(None), FRAME_A + 1)
    assert rx.receive(None) is None
    # PAIR acknowledges END (so the sender may close), but not frames
    assert [decode(p).kind for p in link.channels[0].replies] == [REPLY]


def test_reqrep_answers_every_request_and_drops_a_retry() -> None:
    rx, link, _ = _receiver(1, receive_timeout=1)
    inbox = link.channels[0].inbox
    inbox.extend([message(FRAME, 0, FRAME_A), message(FRAME, 0, FRAME_A),
                  message(FRAME, 1, FRAME_A + 2)])
    assert np.array_equal(rx.receive(None), FRAME_A)
    assert np.array_equal(rx.receive(None), FRAME_A + 2)  # the retried seq 0 was skipped
    assert [decode(p).seq for p in link.channels[0].replies] == [0, 0, 1]
    assert rx.stats.duplicates == 1


def test_malformed_message_is_counted_and_skipped() -> None:
    rx, link, _ = _receiver(0, receive_timeout=1)
    link.channels[0].inbox.extend([[b"\x00garbage"], message(FRAME, 0, FRAME_A)])
    assert np.array_equal(rx.receive(None), FRAME_A)
    assert rx.stats.bad_messages == 1


def test_end_from_a_sender_that_never_sent_a_frame_is_forged() -> None:
    rx, link, _ = _receiver(0, receive_timeout=1)
    link.channels[0].inbox.extend([message(FRAME, 0, FRAME_A, instance=1),
                                   message(END, 1, instance=2),
                                   message(FRAME, 1, FRAME_A + 3, instance=1)])
    rx.receive(None)
    assert np.array_equal(rx.receive(None), FRAME_A + 3)
    assert rx.stats.forged == 1


def test_bidirectional_returns_message_and_frame_and_replies_with_data() -> None:
    rx, link, _ = _receiver(1, bidirectional_mode=True, receive_timeout=1)
    out = message(FRAME, 0, FRAME_A)
    link.channels[0].inbox.append(out)
    msg, frame = rx.receive("back")
    assert msg is None and np.array_equal(frame, FRAME_A)
    assert decode(link.channels[0].replies[0]).message == "back"


def test_one_decoder_per_stream_closed_by_stop() -> None:
    rx, link, _ = _receiver(2, port=["5566", "5567"], multiserver_mode=True,
                            receive_timeout=1)
    first, second = link.channels
    first.inbox.append(message(FRAME, 0, FRAME_A, p="5566"))
    second.inbox.append(message(FRAME, 0, FRAME_A, p="5567"))
    got = {rx.receive(None)[0], rx.receive(None)[0]}
    assert got == {"5566", "5567"}
    assert set(rx.decoders) == {("5566", "raw"), ("5567", "raw")}
    rx.stop(grace=False)
    assert rx.decoders == {}
