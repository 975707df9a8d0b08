"""Sustained load: exact delivery where the pattern promises it, exact drop counts where not."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import free_port
from helpers import Collector
from peers import Peer, stamp, value_of

from netgear import NetGear

SENDERS, FRAMES = 4, 2000
# PUB/SUB frames big enough that the kernel's socket buffers hold only a few dozen: with tiny
# frames, megabytes of TCP buffer would absorb the whole run and nothing would be dropped
FRAME_BYTES = 64 * 1024


@pytest.mark.timeout(90)
def test_four_req_servers_into_one_multiserver_client_lose_nothing():
    ports = [free_port() for _ in range(SENDERS)]
    rx = NetGear(address="127.0.0.1", port=ports, pattern=1, receive_mode=True,
                 multiserver_mode=True)
    collector = Collector(rx, keep=lambda item: (item[0], value_of(item[1])))
    options = {"multiserver_mode": True, "request_timeout": 5.0, "max_retries": 3}
    servers = [Peer("sender", 1, port, count=FRAMES, quiet=1, options=options)
               for port in ports]
    try:
        for server in servers:
            server.wait_for(lambda lines: "done" in lines, 80)
        got = collector.join(10)  # all four ended: the client's recv() returned None
        stats = rx.stats
        # each peer prints its stats line just after 'done': read them before the kill below
        sent = [server.stats() for server in servers]
    finally:
        for server in servers:
            server.kill()
        rx.close()
    assert len(got) == SENDERS * FRAMES
    for port, server_stats in zip(ports, sent):
        values = [value for origin, value in got if origin == str(port)]
        assert values == list(range(FRAMES)), f"server {port}: lost, repeated or reordered"
        assert stats["streams"][str(port)]["dropped"] == 0
        assert server_stats["sent"] == FRAMES and server_stats["send_dropped"] == 0
    # the servers really ran side by side: their frames interleave at the client
    origins = [origin for origin, _ in got]
    switches = sum(a != b for a, b in zip(origins, origins[1:]))
    assert switches > SENDERS


@pytest.mark.timeout(60)
def test_overloaded_subscriber_counts_every_dropped_frame_exactly(port):
    # The subscriber takes 3 ms per frame; the publisher sends one every ~0.3 ms.
    rx = NetGear(address="127.0.0.1", port=port, pattern=2, receive_mode=True,
                 subscriber_timeout=10.0)
    received: list[int] = []
    ended = threading.Event()

    def consume() -> None:
        while (frame := rx.recv()) is not None:
            received.append(value_of(frame))
            if value_of(frame) >= 0:
                time.sleep(0.003)  # a slow consumer (probes are let through quickly)
        ended.set()

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    # a small send queue (16 frames) so the end-of-stream marker is not stuck behind seconds
    # of backlog when the publisher closes
    tx = NetGear(address="127.0.0.1", port=port, pattern=2, queue_bytes=16 * FRAME_BYTES)
    try:
        # subscribe: probe values -1, -2, ... carry sequence numbers 0, 1, ...
        probe = 0
        deadline = time.monotonic() + 10
        while not received:
            assert time.monotonic() < deadline, "no subscription"
            tx.send(stamp(-1 - probe, size=FRAME_BYTES))
            probe += 1
            time.sleep(0.02)
        for value in range(FRAMES):
            tx.send(stamp(value, size=FRAME_BYTES))
            time.sleep(0.0003)
        sent = tx.stats["sent"]
        closed_at = time.monotonic()
        tx.close()  # END carries the next sequence number: frames lost at the tail count too
        assert ended.wait(15)
        # ended by END, well before 10 s of silence would have ended it
        assert time.monotonic() - closed_at < 5
        stats = rx.stats["streams"][str(port)]
    finally:
        tx.close()
        rx.close()
    first_seq = -1 - received[0]  # the first frame this subscriber saw
    frames = [v for v in received if v >= 0]
    assert frames == sorted(set(frames))  # in order, none twice
    assert 0 < len(frames) < FRAMES  # overloaded: some arrive, many are dropped
    assert stats["frames"] == len(received)
    assert len(received) + stats["dropped"] == sent - first_seq
