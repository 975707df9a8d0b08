"""video_codec with the other modes (issue 11): conflate keeps the decoder in sync and hands
out the newest frame; multi-server keeps one decoder per server; bidirectional return frames
stay raw; secure mode composes. Small frame counts: each test is about one interaction.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port
from helpers import Collector, wait_until
from secure_helpers import receiver, sender
from video_helpers import index_of, psnr, stamped
from video_peer import LOOP, sent_frames

from netgear import NetGear

HOST = "127.0.0.1"
GOOD = 30.0
FRAMES = sent_frames()
VIDEO = {"video_codec": "h264", "video_gop": 100_000}  # keyframes only when needed


def frame(i: int) -> np.ndarray:
    return stamped(FRAMES[i % LOOP], i)


def good(image: np.ndarray, i: int | None = None) -> bool:
    index = index_of(image)
    return (i is None or index == i) and psnr(frame(index), image) >= GOOD


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pattern", [0, 2])
def test_conflate_returns_the_newest_frame_and_the_decoder_stays_in_sync(pattern):
    port = free_port()
    rx = NetGear(address=HOST, port=port, pattern=pattern, receive_mode=True, conflate=True,
                 receive_timeout=20)
    tx = NetGear(address=HOST, port=port, pattern=pattern, **VIDEO)
    count = 30
    try:
        if pattern == 2:  # publish until the subscription is there (then a keyframe comes)
            i = 0
            while rx.stats["streams"].get(str(port), {}).get("frames", 0) < 1:
                tx.send(frame(i))
                i += 1
                time.sleep(0.01)  # a camera's pace, not a synchronisation
            start = i
        else:
            start = 0
        skipped = rx.stats["streams"].get(str(port), {}).get("skipped", 0)  # before a keyframe
        for i in range(start, start + count):
            tx.send(frame(i))
        newest = start + count - 1
        # the reader decodes every frame as it arrives; recv() is only called afterwards
        assert wait_until(lambda: rx.stats["streams"][str(port)]["last_seq"] == newest, 20)
        got = rx.recv()
        stats = rx.stats
    finally:
        tx.close()
        rx.close()
    assert good(got, newest)  # the newest, decoded on the right references
    entry = stats["streams"][str(port)]
    assert stats["conflated"] >= count - 2
    assert entry["skipped"] == skipped  # none since: the decoder never lost sync


@pytest.mark.timeout(60)
def test_multiserver_client_keeps_one_decoder_per_server():
    ports = [free_port(), free_port()]
    rx = NetGear(address=HOST, port=ports, pattern=1, receive_mode=True, multiserver_mode=True,
                 receive_timeout=20)
    servers = [NetGear(address=HOST, port=p, pattern=1, multiserver_mode=True, **VIDEO)
               for p in ports]
    got: dict[str, list[np.ndarray]] = {str(p): [] for p in ports}
    count = 8

    def feed(gear: NetGear, base: int) -> None:
        for i in range(count):
            gear.send(frame(base + i))

    threads = [threading.Thread(target=feed, args=(s, 100 * k), daemon=True)
               for k, s in enumerate(servers)]
    try:
        for thread in threads:
            thread.start()
        while sum(len(v) for v in got.values()) < 2 * count:
            port, image = rx.recv()
            got[port].append(image)
        for thread in threads:
            thread.join(20)
        stats = rx.stats
    finally:
        for server in servers:
            server.close()
        rx.close()
    for k, p in enumerate(ports):  # interleaved streams, each decoded on its own references
        assert [index_of(f) for f in got[str(p)]] == [100 * k + i for i in range(count)]
        assert all(good(f) for f in got[str(p)])
        assert stats["streams"][str(p)]["skipped"] == 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pattern", [0, 1])
def test_bidirectional_return_frames_stay_raw(pattern):
    port = free_port()
    rx = NetGear(address=HOST, port=port, pattern=pattern, receive_mode=True,
                 bidirectional_mode=True, receive_timeout=20)
    tx = NetGear(address=HOST, port=port, pattern=pattern, bidirectional_mode=True,
                 send_window=0, **VIDEO)
    back = [np.random.default_rng(i).integers(0, 256, (24, 32, 3), np.uint8) for i in range(4)]
    returned, received, ended = [], [], []

    def serve() -> None:
        for i in range(4):
            message, image = rx.recv(return_data=back[i])
            received.append((message, image))
        ended.append(rx.recv())  # the end of stream, acknowledged at once

    thread = threading.Thread(target=serve, daemon=True)
    try:
        thread.start()
        for i in range(4):
            returned.append(tx.send(frame(i), message=f"frame {i}"))
        tx.close()
        thread.join(20)
    finally:
        tx.close()
        rx.close()
    assert ended == [None] and len(received) == 4
    for i, (data, (message, image)) in enumerate(zip(returned, received)):
        assert message == f"frame {i}" and good(image, i)
        assert data.dtype == np.uint8 and np.array_equal(data, back[i])  # bit-exact, raw


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pattern", [1, 2])
def test_secure_mode_composes_with_video(tmp_path: Path, pattern):
    port = free_port()
    rx = receiver(port, pattern, tmp_path, 2, receive_timeout=20)
    tx = sender(port, pattern, tmp_path, 2, **VIDEO)
    collector = Collector(rx)
    try:
        i = 0
        while len(collector.items) < 4 and i < 2000:
            tx.send(frame(i))
            i += 1
            if pattern == 2:
                time.sleep(0.01)  # a camera's pace, not a synchronisation
        assert wait_until(lambda: len(collector.items) >= 4, 20)
    finally:
        tx.close()
        got = collector.join(20)
        rx.close()
    assert all(good(f) for f in got)
