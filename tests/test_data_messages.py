"""Data-only messages (``send(None, message=...)``) on every pattern, and ``recv(info=True)``."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from netgear import FrameInfo, NetGear, PayloadError, UsageError

HOST = "127.0.0.1"
IMAGE = np.arange(12 * 16 * 3, dtype=np.uint8).reshape(12, 16, 3)
EVENT = {"node": "porch", "event": "motion", "state": True}


def _exchange(tx: NetGear, rx: NetGear, items: list[tuple[Any, Any]], pattern: int,
              info: bool = False) -> list[Any]:
    """Send ``items`` ((frame, message) pairs) from a thread; what ``rx`` got, in order.

    PUB/SUB loses what goes out before the subscription: the first item is repeated
    until one copy arrives, and its extra copies are skipped.
    """
    got: list[Any] = []
    first_seen = threading.Event()
    errors: list[BaseException] = []

    def pump() -> None:
        try:
            if pattern == 2:
                while not first_seen.is_set():
                    tx.send(*items[0])
                    first_seen.wait(0.02)
                rest = items[1:]
            else:
                rest = items
            for frame, message in rest:
                tx.send(frame, message=message)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while len(got) < len(items) and time.monotonic() < deadline and not errors:
        item = rx.recv(info=info)
        first_seen.set()
        if pattern == 2 and len(got) == 1 and _same(item, got[0]):
            continue  # another copy of the repeated first item
        got.append(item)
    thread.join(10)
    if errors:
        raise errors[0]
    return got


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, FrameInfo):
        return a.message == b.message and (a.frame is None) == (b.frame is None)
    return repr(a[:-1]) == repr(b[:-1]) and (a[-1] is None) == (b[-1] is None)


CASES = [
    # (pattern, receiver options, sender options, what recv() returns for (frame, message))
    (0, {"bidirectional_mode": True}, {"bidirectional_mode": True}, "bidi"),
    (1, {"bidirectional_mode": True}, {"bidirectional_mode": True}, "bidi"),
    (1, {"multiserver_mode": True}, {"multiserver_mode": True, "stream_name": "cam"}, "hub"),
    (2, {"multiserver_mode": True}, {"multiserver_mode": True, "stream_name": "cam"}, "hub"),
    (1, {"multiserver_mode": True, "port_list": True}, {"multiserver_mode": True}, "ports"),
    (2, {"multiserver_mode": True, "jpeg_compression": True},
     {"multiserver_mode": True, "stream_name": "cam", "jpeg_compression": True}, "hub"),
]


@pytest.mark.parametrize(("pattern", "rx_opts", "tx_opts", "shape"), CASES)
def test_data_only_messages_arrive_in_the_usual_shape(port: int, pattern: int,
                                                      rx_opts: dict[str, Any],
                                                      tx_opts: dict[str, Any],
                                                      shape: str) -> None:
    rx_opts = dict(rx_opts)
    rx_port: Any = (port,) if rx_opts.pop("port_list", False) else port
    rx = NetGear(address=HOST, port=rx_port, pattern=pattern, receive_mode=True,
                 receive_timeout=10.0, **rx_opts)
    tx = NetGear(address=HOST, port=port, pattern=pattern, **tx_opts)
    items = [(IMAGE, "hello"), (None, EVENT), (IMAGE, None), (None, "bye")]
    try:
        got = _exchange(tx, rx, items, pattern)
    finally:
        tx.close()
        rx.close()
    assert len(got) == len(items)
    name = {"hub": "cam", "ports": str(port)}.get(shape)
    for (frame, message), item in zip(items, got):
        assert item[-1] is None if frame is None else item[-1].shape == IMAGE.shape
        if shape == "bidi":
            assert item[0] == message
        elif message is None:
            assert item[0] == name and len(item) == 2
        else:
            assert item[:2] == (name, message) and len(item) == 3
    if not rx_opts.get("jpeg_compression"):
        assert np.array_equal(got[0][-1], IMAGE)


@pytest.mark.parametrize("pattern", [1, 2])
def test_recv_info_gives_name_sequence_times_and_message(port: int, pattern: int) -> None:
    rx = NetGear(address=HOST, port=port, pattern=pattern, receive_mode=True,
                 multiserver_mode=True, receive_timeout=10.0)
    tx = NetGear(address=HOST, port=port, pattern=pattern, multiserver_mode=True,
                 stream_name="porch")
    before = time.time()
    try:
        got = _exchange(tx, rx, [(IMAGE, "first"), (None, EVENT), (IMAGE, None)], pattern,
                        info=True)
    finally:
        tx.close()
        rx.close()
    assert all(isinstance(i, FrameInfo) and i.name == "porch" for i in got)
    assert [i.message for i in got] == ["first", EVENT, None]
    assert got[1].frame is None and np.array_equal(got[2].frame, IMAGE)
    seqs = [i.sequence for i in got]
    assert seqs == sorted(seqs) and seqs[2] == seqs[1] + 1  # data messages are numbered too
    for item in got:
        assert before <= item.sent_at <= item.received_at <= time.time()
        assert 0 <= item.latency < 5


def test_recv_info_on_a_plain_receiver_names_the_port(port: int) -> None:
    rx = NetGear(address=HOST, port=port, pattern=1, receive_mode=True, receive_timeout=10.0)
    tx = NetGear(address=HOST, port=port, pattern=1)
    try:
        item = _exchange(tx, rx, [(IMAGE, None)], 1, info=True)[0]
    finally:
        tx.close()
        rx.close()
    assert item.name == str(port) and item.message is None and item.sequence == 0


def test_send_none_needs_a_message_and_a_mode_that_carries_it(port: int) -> None:
    plain = NetGear(address=HOST, port=port, pattern=2)
    carrier = NetGear(address=HOST, port=port, pattern=2, multiserver_mode=True)
    try:
        with pytest.raises(UsageError, match="multiserver_mode"):
            plain.send(None, message="event")
        with pytest.raises(PayloadError, match="needs a message"):
            carrier.send(None)
        with pytest.raises(PayloadError, match="numpy array"):
            carrier.send([1, 2, 3])  # type: ignore[arg-type]
    finally:
        plain.close(kill=True)
        carrier.close(kill=True)
