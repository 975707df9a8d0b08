"""Sender over the in-memory link: what goes out, when it waits, what it returns."""

from __future__ import annotations

import numpy as np
import pytest

from netgear.core.sender import Sender
from netgear.core.wire import END, FRAME, decode
from netgear.errors import PeerTimeoutError

from .fakes import answer_with, compose

FRAME_A = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)


def _sender(pattern: int = 0, port: object = "5555", **options: object):
    half, link, modes = compose(False, pattern, port, **options)
    assert isinstance(half, Sender)
    return half, link, modes


def test_pair_sends_frames_in_order_without_waiting() -> None:
    tx, link, _ = _sender(0)
    for _ in range(3):
        assert tx.send(FRAME_A, None) is None
    sent = [decode(p) for p in link.channels[0].sent]
    assert [m.seq for m in sent] == [0, 1, 2] and all(m.kind == FRAME for m in sent)
    assert np.array_equal(np.frombuffer(sent[0].payload, np.uint8).reshape(2, 4, 3), FRAME_A)
    assert tx.stats.sent == 3


def test_the_callers_buffer_may_change_right_after_send() -> None:
    tx, link, _ = _sender(0)
    frame = FRAME_A.copy()
    tx.send(frame, None)
    frame[:] = 0
    assert np.frombuffer(decode(link.channels[0].sent[0]).payload, np.uint8).sum() == FRAME_A.sum()


def test_noblock_drops_a_frame_the_queue_cannot_take() -> None:
    tx, link, _ = _sender(2, flag=1)
    link.channels[0].busy = True
    tx.send(FRAME_A, None)
    assert tx.stats.send_dropped == 1 and tx.stats.sent == 0


def test_full_queue_without_noblock_raises() -> None:
    tx, link, _ = _sender(0)
    link.channels[0].busy = True
    with pytest.raises(PeerTimeoutError):
        tx.send(FRAME_A, None)


def test_reqrep_lockstep_waits_for_each_reply() -> None:
    tx, link, _ = _sender(1, send_window=0)
    link.channels[0].answer = answer_with()
    tx.send(FRAME_A, None)
    assert tx.stats.sent == 1 and link.channels[0].in_flight == 0


def test_reqrep_unanswered_request_raises_after_the_retry_budget() -> None:
    tx, link, _ = _sender(1, send_window=0, max_retries=2, request_timeout=0.01)
    with pytest.raises(PeerTimeoutError, match="after 2 retries"):
        tx.send(FRAME_A, None)
    assert link.channels[0].rebuilds == 2
    assert len(link.channels[0].sent) == 3  # the first try and two resends


def test_send_window_returns_the_previous_frames_data() -> None:
    tx, link, _ = _sender(1, bidirectional_mode=True)
    replies = iter(["first", "second", "third"])
    channel = link.channels[0]
    channel.answer = lambda parts: answer_with(next(replies))(parts)
    assert tx.send(FRAME_A, "a") is None  # posted, its reply collected at the next send
    assert channel.in_flight == 1
    assert tx.send(FRAME_A, "b") == "first"
    assert tx.send(FRAME_A, "c") == "second"


def test_bidirectional_lockstep_returns_this_frames_data() -> None:
    tx, link, _ = _sender(0, bidirectional_mode=True, send_window=0)
    link.channels[0].answer = answer_with({"ok": 1})
    assert tx.send(FRAME_A, "hello") == {"ok": 1}
    assert decode(link.channels[0].sent[0]).message == "hello"


@pytest.mark.parametrize(("pattern", "acknowledged"), [(0, True), (1, False), (2, False)])
def test_end_of_stream_is_acknowledged_only_where_the_pattern_says(pattern: int,
                                                                   acknowledged: bool) -> None:
    tx, link, _ = _sender(pattern)
    channel = link.channels[0]
    channel.answer = answer_with()
    tx.end()
    if acknowledged:
        assert [decode(p).kind for p in channel.sent] == [END] and not channel.ended
    else:
        assert [decode(p).kind for p in channel.ended] == [END] and not channel.sent


def test_end_collects_the_reply_still_due_first() -> None:
    tx, link, _ = _sender(1, bidirectional_mode=True)
    channel = link.channels[0]
    channel.answer = answer_with("x")
    tx.send(FRAME_A, None)
    tx.end()
    assert channel.in_flight == 0 and tx.stats.sent == 1
    assert [decode(p).kind for p in channel.ended] == [END]


@pytest.mark.parametrize("limit", [100])
def test_frame_over_max_frame_bytes_is_refused_before_sending(limit: int) -> None:
    from netgear.errors import PayloadError
    tx, link, _ = _sender(0, max_frame_bytes=1024)
    with pytest.raises(PayloadError, match="max_frame_bytes"):
        tx.send(np.zeros(2048, np.uint8), None)
    assert link.channels[0].sent == []


# -- keyframes for a stateful codec (video_codec) ---------------------------------------
def _keyframes(link) -> list[int]:
    sent = [decode(p) for p in link.channels[0].sent]
    return [m.seq for m in sent if m.kind == FRAME and m.header["y"]["k"]]


def _asking_for(seqs: set[int]):
    """A REQ/REP peer whose reply to each frame in ``seqs`` asks for a keyframe."""
    from netgear.core.wire import KEYFRAME_REQUEST, REPLY, Outgoing, encode

    def answer(parts):
        seq = decode(parts).seq
        out = Outgoing(REPLY, seq)
        if seq in seqs:
            out.extra[KEYFRAME_REQUEST] = True
        return encode(out)

    return answer


VIDEO_FRAME = np.zeros((16, 16, 3), np.uint8)


def test_a_burst_of_keyframe_requests_costs_one_keyframe() -> None:
    pytest.importorskip("av")
    tx, link, _ = _sender(1, video_codec="h264", video_gop=1000)
    link.channels[0].answer = _asking_for({1, 2})
    for _ in range(6):
        tx.send(VIDEO_FRAME, None)
    # reply 1 is read in send(2), after frame 2 was encoded: frame 3 is the keyframe, and
    # reply 2's request (about a frame sent before it was asked for) is already answered
    assert _keyframes(link) == [0, 3]
    assert tx.stats.keyframe_requests == 1


def test_a_pair_receivers_notice_a_join_and_a_rebuild_each_bring_a_keyframe() -> None:
    pytest.importorskip("av")
    from netgear.core.wire import KEYFRAME_REQUEST, REPLY

    from .fakes import message

    tx, link, _ = _sender(0, video_codec="h264", video_gop=1000)
    channel = link.channels[0]
    tx.send(VIDEO_FRAME, None)
    tx.send(VIDEO_FRAME, None)
    channel.inbox.append(message(REPLY, 1, **{KEYFRAME_REQUEST: True}))  # about frame 1
    tx.send(VIDEO_FRAME, None)  # frame 2: read the notice first, so this one is a keyframe
    tx.send(VIDEO_FRAME, None)
    channel.joins += 1
    tx.send(VIDEO_FRAME, None)  # frame 4
    channel.rebuilds += 1
    tx.send(VIDEO_FRAME, None)  # frame 5
    tx.send(VIDEO_FRAME, None)
    assert _keyframes(link) == [0, 2, 4, 5]
    assert tx.stats.keyframe_requests == 3


def test_a_raw_sender_asks_for_no_keyframes() -> None:
    tx, link, _ = _sender(0)
    tx.send(FRAME_A, None)
    link.channels[0].rebuilds += 1
    link.channels[0].inbox.append(b"not even a message")
    tx.send(FRAME_A, None)
    assert tx.stats.keyframe_requests == 0 and len(link.channels[0].inbox) == 1


def test_a_dropped_video_frame_makes_the_next_one_a_keyframe() -> None:
    pytest.importorskip("av")
    tx, link, _ = _sender(0, flag=1, video_codec="h264", video_gop=1000)
    tx.send(VIDEO_FRAME, None)
    link.channels[0].busy = True
    tx.send(VIDEO_FRAME, None)  # frame 1: dropped (flag=NOBLOCK, queue full)
    link.channels[0].busy = False
    tx.send(VIDEO_FRAME, None)  # frame 2 would build on frame 1, which nobody got
    tx.send(VIDEO_FRAME, None)
    assert tx.stats.send_dropped == 1
    assert _keyframes(link) == [0, 2]
