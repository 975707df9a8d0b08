"""Secure mode combined with the bidirectional, multi-server, multi-client and compression modes."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port
from secure_helpers import closing, collect, deliver, frames, receiver, sender

from netgear.modes import MODES


def needs(key: str) -> pytest.MarkDecorator:
    # the other modes land separately; until one is registered its combination is skipped
    return pytest.mark.skipif(key not in {m.key for m in MODES}, reason=f"{key} not registered")


@needs("bidirectional_mode")
@pytest.mark.timeout(20)
@pytest.mark.parametrize("pattern", [0, 1])
def test_secure_bidirectional(tmp_path: Path, port: int, pattern: int) -> None:
    rx = receiver(port, pattern, tmp_path, 2, bidirectional_mode=True)
    tx = sender(port, pattern, tmp_path, 2, bidirectional_mode=True)
    sent = frames(3)
    with closing(tx, rx):
        thread, got = collect(rx, 3, return_data="ack")
        replies = [tx.send(frame, message=i) for i, frame in enumerate(sent)]
        thread.join(10)
    # send_window=1: each send() returns the previous frame's answer; close() collects the last
    assert replies == [None, "ack", "ack"]
    assert [m for m, _ in got] == [0, 1, 2]
    assert all(np.array_equal(f, s) for (_, f), s in zip(got, sent))


@needs("multiserver_mode")
@pytest.mark.timeout(20)
def test_secure_multiserver(tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    rx = receiver(ports, 1, tmp_path, 2, multiserver_mode=True)  # type: ignore[arg-type]
    txs = [sender(p, 1, tmp_path, 2, multiserver_mode=True) for p in ports]
    with closing(*txs, rx):
        thread, got = collect(rx, 6)
        pumps = [threading.Thread(target=lambda t=t, i=i: [t.send(f) for f in frames(3, i)])
                 for i, t in enumerate(txs)]
        for pump in pumps:
            pump.start()
        for pump in pumps:
            pump.join(10)
        thread.join(10)
    by_port = {str(p): [f for q, f in got if q == str(p)] for p in ports}
    for i, p in enumerate(ports):
        assert all(np.array_equal(a, b) for a, b in zip(by_port[str(p)], frames(3, i)))
        assert len(by_port[str(p)]) == 3


@needs("multiclient_mode")
@pytest.mark.timeout(20)
def test_secure_multiclient(tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    rxs = [receiver(p, 1, tmp_path, 2, multiclient_mode=True) for p in ports]
    tx = sender(ports, 1, tmp_path, 2, multiclient_mode=True)  # type: ignore[arg-type]
    sent = frames(4)
    with closing(*rxs):
        collectors = [collect(rx, 4) for rx in rxs]
        with closing(tx):  # its close() ends the stream at every client
            for frame in sent:
                tx.send(frame)
        for thread, _ in collectors:
            thread.join(10)
    got = [f for _, items in collectors for f in items]
    assert len(got) == 4
    assert all(any(np.array_equal(g, s) for s in sent) for g in got)


@needs("jpeg_compression")
@pytest.mark.timeout(20)
def test_secure_with_jpeg_compression(tmp_path: Path, port: int) -> None:
    rx = receiver(port, 1, tmp_path, 1)
    tx = sender(port, 1, tmp_path, 1, jpeg_compression=True)
    frame = np.full((32, 48, 3), 120, dtype=np.uint8)
    with closing(tx, rx):
        got = deliver(tx, rx, [frame], 1)[0]
    assert got.shape == frame.shape and np.abs(got.astype(int) - 120).max() < 8
