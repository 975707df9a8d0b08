"""Each mode's hooks over the in-memory link."""

from __future__ import annotations

import numpy as np
import pytest

from netgear.core.wire import FRAME, decode
from netgear.errors import OptionError

from .fakes import answer_with, compose, message

FRAME_A = np.arange(64 * 48 * 3, dtype=np.uint32).astype(np.uint8).reshape(64, 48, 3)


def test_multiclient_picks_ready_clients_in_turn_and_skips_others() -> None:
    tx, link, _ = compose(False, 1, ["5566", "5567", "5568"], multiclient_mode=True,
                          send_window=0)
    for channel in link.channels:
        channel.answer = answer_with("ok")
    link.channels[1].connected = False
    results = [tx.send(FRAME_A, None) for _ in range(4)]
    assert [r[0] for r in results] == ["5566", "5568", "5566", "5568"]
    assert link.channels[1].sent == []


def test_multiclient_drops_a_frame_when_another_client_can_go_on() -> None:
    tx, link, _ = compose(False, 1, ["5566", "5567"], multiclient_mode=True, send_window=0,
                          max_retries=0)
    link.channels[1].answer = answer_with("ok")
    assert tx.send(FRAME_A, None) is None  # 5566 never answers: dropped, not raised
    assert tx.stats.send_dropped == 1


def test_multiserver_tags_frames_with_the_servers_port_and_client_shapes_them() -> None:
    tx, link, _ = compose(False, 2, "5566", multiserver_mode=True)
    tx.send(FRAME_A, None)
    assert decode(link.channels[0].sent[0]).header["p"] == "5566"
    rx, rlink, _ = compose(True, 2, ["5566", "5567"], multiserver_mode=True,
                           receive_timeout=1)
    rlink.channels[0].inbox.append(message(FRAME, 0, FRAME_A, p="5566"))
    port, frame = rx.receive(None)
    assert port == "5566" and np.array_equal(frame, FRAME_A)


def test_multiserver_drops_a_port_tag_from_another_socket() -> None:
    rx, rlink, _ = compose(True, 2, ["5566", "5567"], multiserver_mode=True,
                           receive_timeout=1)
    rlink.channels[0].inbox.extend([message(FRAME, 0, FRAME_A, p="5567"),
                                    message(FRAME, 1, FRAME_A, p="5566")])
    assert rx.receive(None)[0] == "5566"
    assert rx.stats.forged == 1


@pytest.mark.parametrize(("options", "codec"), [
    ({"jpeg_compression": True}, "jpeg"),
    ({"jpeg_compression": True, "jpeg_compression_threads": 2}, "jpeg"),
    ({"compression_format": ".png"}, "png"),
    ({"compression_format": ".bmp"}, "bmp"),
])
def test_compression_encodes_and_any_receiver_decodes(options: dict, codec: str) -> None:
    tx, link, modes = compose(False, 0, **options)
    tx.send(FRAME_A, None)
    parts = link.channels[0].sent[0]
    assert decode(parts).codec == codec
    rx, rlink, _ = compose(True, 0, receive_timeout=1)
    rlink.channels[0].inbox.append(parts)
    frame = rx.receive(None)
    assert frame.shape == FRAME_A.shape
    if codec != "jpeg":
        assert np.array_equal(frame, FRAME_A)  # lossless
    for mode in modes:
        mode.close()
    rx.stop(grace=False)


def test_receiver_decode_flags_come_from_its_own_options() -> None:
    tx, link, _ = compose(False, 0, jpeg_compression=True, jpeg_compression_fastdct=True)
    tx.send(FRAME_A, None)
    rx, rlink, _ = compose(True, 0, receive_timeout=1, jpeg_compression=True,
                           jpeg_compression_fastdct=False)
    rlink.channels[0].inbox.append(link.channels[0].sent[0])
    rx.receive(None)
    decoder = rx.decoders[("5555", "jpeg")]
    assert decoder.flags == (False, None)
    rx.stop(grace=False)


def test_bidirectional_is_refused_on_pubsub() -> None:
    with pytest.raises(OptionError, match="bidirectional_mode"):
        compose(False, 2, bidirectional_mode=True)


def test_multi_modes_together_are_refused_once() -> None:
    with pytest.raises(OptionError, match="cannot be enabled together"):
        compose(True, 1, ["5566", "5567"], multiserver_mode=True, multiclient_mode=True)
