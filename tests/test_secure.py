"""Secure mode end to end: CURVE StoneHouse/IronHouse over real loopback sockets, fail closed."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import free_port
from secure_helpers import (
    FAST,
    MARKER,
    Forwarder,
    auth_threads,
    closing,
    deliver,
    frames,
    receiver,
    sender,
)

from netgear import NetGear, PeerTimeoutError
from netgear.security import allow_client, generate_keys

# -- matching keys -----------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("level", [1, 2], ids=["stonehouse", "ironhouse"])
@pytest.mark.parametrize("pattern", [0, 1, 2])
def test_matching_keys_pass_exact_frames(tmp_path: Path, port: int, pattern: int,
                                         level: int) -> None:
    rx = receiver(port, pattern, tmp_path, level)
    tx = sender(port, pattern, tmp_path, level)
    # 4 frames: a REQ/REP receiver's send queue is 4 deep in the core today, and libzmq's
    # REP silently drops a later reply when that queue looks full, costing a retry
    sent = frames(4)
    with closing(tx, rx):
        got = deliver(tx, rx, sent, pattern)
    assert len(got) == len(sent)
    for a, b in zip(got, sent):
        assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.timeout(20)
def test_ipc_protocol_is_secured_too(tmp_path: Path) -> None:
    keys, address = tmp_path / "keys", str(tmp_path / "sock")
    rx = NetGear(address=address, port="a", protocol="ipc", receive_mode=True, secure_mode=2,
                 custom_cert_location=str(keys), receive_timeout=5.0)
    tx = NetGear(address=address, port="a", protocol="ipc", secure_mode=2,
                 custom_cert_location=str(keys))
    with closing(tx, rx):
        assert np.array_equal(deliver(tx, rx, frames(1), 0)[0], frames(1)[0])


@pytest.mark.timeout(20)
@pytest.mark.parametrize("level", [0, 1, 2], ids=["plain", "stonehouse", "ironhouse"])
def test_frames_are_not_readable_on_the_wire(tmp_path: Path, port: int, level: int) -> None:
    relay = Forwarder(port)
    keys = tmp_path if level else None
    marked = np.frombuffer(MARKER * 64, dtype=np.uint8).reshape(32, -1)
    rx = receiver(port, 1, keys, level)
    tx = sender(relay.port, 1, keys, level)
    try:
        with closing(tx, rx):
            assert np.array_equal(deliver(tx, rx, [marked, marked], 1)[1], marked)
    finally:
        relay.close()
    assert len(relay.seen) > marked.nbytes  # the relay really carried the frames
    assert (MARKER in relay.seen) == (level == 0)


# -- fail closed -------------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("pattern", [0, 1])
@pytest.mark.parametrize("intruder", ["foreign-keys", "plain"])
def test_refused_sender_times_out_and_receiver_sees_nothing(
        tmp_path: Path, port: int, pattern: int, intruder: str) -> None:
    rx = receiver(port, pattern, tmp_path / "ours", 1, receive_timeout=0.8)
    keys = tmp_path / "theirs" if intruder == "foreign-keys" else None
    tx = sender(port, pattern, keys, 1, **FAST)
    with closing(tx, rx):
        started = time.monotonic()
        with pytest.raises(PeerTimeoutError):
            tx.send(frames(1)[0])
        assert time.monotonic() - started < 3
        with pytest.raises(PeerTimeoutError):
            rx.recv()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("intruder", ["foreign-keys", "plain"])
def test_refused_publisher_gets_nothing_through(tmp_path: Path, port: int,
                                                intruder: str) -> None:
    rx = receiver(port, 2, tmp_path / "ours", 1, receive_timeout=1.0)
    tx = sender(port, 2, tmp_path / "theirs" if intruder == "foreign-keys" else None, 1)
    stop = threading.Event()

    def pump() -> None:  # PUB never blocks, so it keeps publishing into the void
        while not stop.is_set():
            tx.send(frames(1)[0])
            time.sleep(0.02)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        with pytest.raises(PeerTimeoutError):
            rx.recv()
    finally:
        stop.set()
        thread.join(5)
        tx.close()
        rx.close()


@pytest.mark.timeout(20)
def test_secure_sender_refuses_a_plain_receiver(tmp_path: Path, port: int) -> None:
    rx = receiver(port, 1, None, receive_timeout=0.8)
    tx = sender(port, 1, tmp_path, 1, **FAST)
    with closing(tx, rx):
        with pytest.raises(PeerTimeoutError):
            tx.send(frames(1)[0])
        with pytest.raises(PeerTimeoutError):
            rx.recv()


@pytest.mark.timeout(20)
def test_ironhouse_refuses_unlisted_sender_until_allowed(tmp_path: Path, port: int) -> None:
    ours, theirs = tmp_path / "receiver", tmp_path / "sender"
    generate_keys(ours)
    (theirs / "public").mkdir(parents=True)
    # the sender knows the receiver's public key, which is all StoneHouse asks for
    shutil.copy(ours / "public" / "server.key", theirs / "public" / "server.key")
    rx = receiver(port, 1, ours, 2, receive_timeout=0.5)
    with closing(rx):
        tx = sender(port, 1, theirs, 2, **FAST)
        with closing(tx):
            with pytest.raises(PeerTimeoutError):
                tx.send(frames(1)[0])
            with pytest.raises(PeerTimeoutError):
                rx.recv()
            # allowed/ is re-read on each handshake: no receiver restart needed
            allow_client(ours, theirs / "public" / "client.key")
            sent = frames(2, seed=5)
            assert all(np.array_equal(a, b) for a, b in zip(deliver(tx, rx, sent, 1), sent))


@pytest.mark.timeout(20)
def test_stonehouse_lets_in_any_sender_that_knows_the_server_key(tmp_path: Path,
                                                                 port: int) -> None:
    ours, theirs = tmp_path / "receiver", tmp_path / "sender"
    generate_keys(ours)
    (theirs / "public").mkdir(parents=True)
    shutil.copy(ours / "public" / "server.key", theirs / "public" / "server.key")
    rx = receiver(port, 0, ours, 1)
    tx = sender(port, 0, theirs, 1)
    with closing(tx, rx):
        assert np.array_equal(deliver(tx, rx, frames(1), 0)[0], frames(1)[0])


@pytest.mark.timeout(20)
def test_dead_authenticator_lets_nobody_in(tmp_path: Path, port: int) -> None:
    rx = receiver(port, 0, tmp_path, 1, receive_timeout=0.8)
    with closing(rx):
        rx._modes[0].close()  # simulate the ZAP thread dying under a live receiver
        tx = sender(port, 0, tmp_path, 1, **FAST)
        with closing(tx):
            with pytest.raises(PeerTimeoutError):
                tx.send(frames(1)[0])
            with pytest.raises(PeerTimeoutError):
                rx.recv()


# -- lifecycle ---------------------------------------------------------------------------


@pytest.mark.timeout(25)
def test_reqrep_sender_survives_receiver_restart(tmp_path: Path, port: int) -> None:
    # send_window=0: each send() reads its reply before returning. With one frame in flight
    # the reply to sent[0] may still be unread when the first receiver closes; libzmq's REQ
    # then drops it and the retry delivers sent[0] again to the new receiver (documented).
    # What this test checks is the rebuild with the keys, so it keeps the lockstep order.
    tx = sender(port, 1, tmp_path, 2, request_timeout=0.5, max_retries=10, send_window=0)
    rx = receiver(port, 1, tmp_path, 2)
    sent = frames(3, seed=9)
    with closing(tx):
        with closing(rx):
            assert np.array_equal(deliver(tx, rx, sent[:1], 1)[0], sent[0])
        # receiver gone: the next send times out, rebuilds its socket (keys re-applied by
        # the hook) and gets through once a new receiver with the same keys is up
        result: list[Any] = []
        thread = threading.Thread(target=lambda: result.append(tx.send(sent[1])), daemon=True)
        thread.start()
        time.sleep(1.2)
        rx = receiver(port, 1, tmp_path, 2)
        with closing(rx):
            assert np.array_equal(rx.recv(), sent[1])
            thread.join(5)
            assert result == [None]
            assert tx._transport.channels[0].rebuilds >= 1
            assert np.array_equal(deliver(tx, rx, sent[2:], 1)[0], sent[2])


@pytest.mark.timeout(25)
def test_two_secure_pairs_in_one_process(tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    patterns = [0, 2]  # many frames each, so no REQ/REP (see the 4-frame note above)
    rxs = [receiver(ports[0], 0, tmp_path / "a", 1), receiver(ports[1], 2, tmp_path / "b", 2)]
    txs = [sender(ports[0], 0, tmp_path / "a", 1), sender(ports[1], 2, tmp_path / "b", 2)]
    assert auth_threads() >= 2
    results: dict[int, Any] = {}

    def run(i: int) -> None:
        try:
            results[i] = deliver(txs[i], rxs[i], frames(20, seed=i), patterns[i])
        except BaseException as exc:
            results[i] = exc

    with closing(*txs, *rxs):
        threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
    for i in (0, 1):
        assert not isinstance(results[i], BaseException), results[i]
        assert all(np.array_equal(a, b) for a, b in zip(results[i], frames(20, seed=i)))


@pytest.mark.timeout(15)
def test_close_stops_the_authenticator_and_is_idempotent(tmp_path: Path, port: int) -> None:
    before = auth_threads()
    rx = receiver(port, 0, tmp_path, 2)
    assert auth_threads() == before + 1
    started = time.monotonic()
    rx.close()
    rx.close()
    assert time.monotonic() - started < 2
    assert auth_threads() == before
