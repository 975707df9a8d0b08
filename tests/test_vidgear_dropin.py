"""vidgear's NetGear usage patterns, run against netgear unchanged (issue 17).

Written from vidgear's documented API: one thread calls ``server.send(...)`` and then
``client.recv(...)``; ``close(kill=True)``; a client with ``request_timeout``/``max_retries``
and no server. No test here waits out a timeout: each asserts its time is far below
``request_timeout`` (4 s by default).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import zmq
from conftest import free_port
from peers import Peer, stamp, value_of

from netgear import NetGear, PeerTimeoutError

HOST = "127.0.0.1"
FAST = 1.0  # seconds: a loop that waited for even one request_timeout (4 s) fails


def frame(n: int) -> np.ndarray:
    return np.full((24, 32, 3), n % 256, np.uint8)


class Gears:
    """Builds NetGear instances and closes every one of them in ``close()``."""

    def __init__(self) -> None:
        self.made: list[NetGear] = []

    def __call__(self, port: Any, **kwargs: Any) -> NetGear:
        gear = NetGear(address=HOST, port=port, **kwargs)
        self.made.append(gear)
        return gear

    def close(self) -> None:
        for gear in reversed(self.made):
            gear.close(kill=True)


@pytest.fixture
def gears() -> Iterator[Gears]:
    made = Gears()
    try:
        yield made
    finally:
        made.close()


def wait_connected(server: NetGear) -> None:
    """Until every socket of a multi-client server reaches its client (POLLOUT), bounded.

    Which client gets a frame depends on who is connected; this fixes the rotation.
    """
    deadline = time.monotonic() + 10
    for channel in server._half.transport.channels:
        while not channel.sock.poll(50, zmq.POLLOUT):
            assert time.monotonic() < deadline, f"client {channel.label} never connected"


# -- one thread: send, then recv ------------------------------------------------------------
@pytest.mark.timeout(30)
@pytest.mark.parametrize("pattern", [0, 1])
def test_plain_send_then_recv_in_one_thread(gears: Gears, port: int, pattern: int) -> None:
    client = gears(port, pattern=pattern, receive_mode=True)
    server = gears(port, pattern=pattern)
    start = time.monotonic()
    for n in range(20):
        assert server.send(frame(n)) is None
        np.testing.assert_array_equal(client.recv(), frame(n))
    assert time.monotonic() - start < FAST


@pytest.mark.timeout(30)
@pytest.mark.parametrize("pattern", [0, 1])
def test_the_frame_buffer_may_be_reused_while_the_frame_is_in_flight(
        gears: Gears, port: int, pattern: int) -> None:
    # send() returns before the reply: it must have kept its own copy of the frame
    client = gears(port, pattern=pattern, receive_mode=True, bidirectional_mode=True)
    server = gears(port, pattern=pattern, bidirectional_mode=True)
    buffer = np.zeros((240, 320, 3), np.uint8)  # one buffer, as a camera loop reuses it
    for n in range(6):
        buffer[:] = n
        server.send(buffer)
        buffer[:] = 255  # overwritten before the client has read the frame
        _, got = client.recv()
        assert int(got.min()) == int(got.max()) == n


@pytest.mark.timeout(30)
@pytest.mark.parametrize("pattern", [0, 1])
def test_bidirectional_in_one_thread(gears: Gears, port: int, pattern: int) -> None:
    # seed 004's example, single-threaded: send() returns what the client passed with the
    # previous frame (the reply to this frame is collected by the next send())
    client = gears(port, pattern=pattern, receive_mode=True, bidirectional_mode=True)
    server = gears(port, pattern=pattern, bidirectional_mode=True)
    start = time.monotonic()
    returned = []
    for n in range(10):
        returned.append(server.send(frame(n), message=f"hello {n}"))
        message, got = client.recv(return_data=f"thanks {n}")
        assert message == f"hello {n}"
        np.testing.assert_array_equal(got, frame(n))
    assert time.monotonic() - start < FAST
    assert returned == [None] + [f"thanks {n}" for n in range(9)]


@pytest.mark.timeout(30)
def test_multiserver_in_one_thread(gears: Gears) -> None:
    ports = [free_port(), free_port()]
    client = gears(tuple(ports), pattern=1, receive_mode=True, multiserver_mode=True)
    servers = [gears(p, pattern=1, multiserver_mode=True) for p in ports]
    start = time.monotonic()
    for n in range(10):
        for port, server in zip(ports, servers):
            server.send(frame(n))
            got_port, got = client.recv()
            assert got_port == str(port)
            np.testing.assert_array_equal(got, frame(n))
    assert time.monotonic() - start < FAST


@pytest.mark.timeout(30)
def test_multiclient_in_one_thread(gears: Gears) -> None:
    ports = [free_port(), free_port()]
    clients = [gears(p, pattern=1, receive_mode=True, multiclient_mode=True) for p in ports]
    server = gears(ports, pattern=1, multiclient_mode=True)
    wait_connected(server)
    start = time.monotonic()
    results = []
    for n in range(10):
        for index, client in enumerate(clients):  # round-robin, in port order
            results.append(server.send(frame(2 * n + index)))
            np.testing.assert_array_equal(client.recv(return_data=n), frame(2 * n + index))
    assert time.monotonic() - start < FAST
    # vidgear's shape: (client port, that client's return data), here one frame late
    assert results[:2] == [None, None]
    assert results[2:] == [(str(ports[i % 2]), i // 2 - 1) for i in range(2, 20)]


@pytest.mark.timeout(30)
def test_lockstep_window_zero_needs_a_concurrent_receiver(gears: Gears, port: int) -> None:
    # send_window=0 is netgear's strict lockstep: send() waits for this frame's own reply,
    # so one thread cannot send then recv; it gives up after the retry budget.
    gears(port, pattern=1, receive_mode=True)
    server = gears(port, pattern=1, send_window=0, request_timeout=0.2, max_retries=0)
    with pytest.raises(PeerTimeoutError):
        server.send(frame(0))


# -- close(kill=...) -------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_close_kill_returns_at_once_where_close_waits_for_the_peer(gears: Gears) -> None:
    timings = {}
    for kill in (False, True):
        port = free_port()
        gears(port, pattern=1, receive_mode=True)
        server = gears(port, pattern=1)
        server.send(frame(0))
        start = time.monotonic()
        # nobody reads frame 0: close() waits (bounded) for its reply, kill=True does not
        server.close(kill=kill)
        timings[kill] = time.monotonic() - start
        assert server.closed
    assert timings[True] < 0.2, timings
    assert 0.5 < timings[False] < 2.5, timings  # END_TIMEOUT, bounded


@pytest.mark.timeout(30)
@pytest.mark.parametrize("options", [{}, {"multiserver_mode": True}])
def test_one_thread_closes_the_server_then_the_client_without_waiting(
        gears: Gears, port: int, options: dict[str, Any]) -> None:
    # vidgear's order: server.close(), then the client sees the end of the stream
    client_port = (port,) if options else port
    client = gears(client_port, pattern=1, receive_mode=True, **options)
    server = gears(port, pattern=1, **options)
    start = time.monotonic()
    for n in range(3):
        server.send(frame(n))
        assert client.recv() is not None
    server.close()  # collects frame 2's reply (already there) and queues the end-of-stream
    assert client.recv() is None
    client.close()
    assert time.monotonic() - start < FAST
    assert server.stats["sent"] == 3 and server.stats["send_dropped"] == 0


@pytest.mark.timeout(30)
def test_close_kill_on_a_receiver_blocked_in_recv(gears: Gears, port: int) -> None:


    client = gears(port, pattern=1, receive_mode=True)
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.append(client.recv()), daemon=True)
    reader.start()
    start = time.monotonic()
    client.close(kill=True)
    reader.join(5)
    assert not reader.is_alive() and got == [None]
    assert time.monotonic() - start < FAST


# -- vidgear's retry options on a receiver -----------------------------------------------------
@pytest.mark.timeout(30)
def test_retry_options_on_a_receiver_without_a_server_end_the_stream(gears: Gears,
                                                                      port: int) -> None:
    # vidgear's client gives up and recv() returns None; here after request_timeout x
    # (max_retries + 1) of silence, the sender's budget
    client = gears(port, pattern=1, receive_mode=True, request_timeout=0.2, max_retries=1)
    start = time.monotonic()
    assert client.recv() is None
    assert 0.35 < time.monotonic() - start < 2.0


@pytest.mark.timeout(30)
def test_receive_timeout_wins_over_retry_options(gears: Gears, port: int) -> None:
    client = gears(port, pattern=1, receive_mode=True, request_timeout=30, max_retries=3,
                   receive_timeout=0.2)
    with pytest.raises(PeerTimeoutError):
        client.recv()


@pytest.mark.timeout(30)
def test_retry_budget_restarts_with_every_frame(gears: Gears, port: int) -> None:
    client = gears(port, pattern=1, receive_mode=True, request_timeout=0.3, max_retries=0)
    server = gears(port, pattern=1)
    for n in range(3):
        server.send(frame(n))
        np.testing.assert_array_equal(client.recv(), frame(n))
    server.close(kill=True)
    assert client.recv() is None


# -- two processes --------------------------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("options", [{}, {"bidirectional_mode": True}])
def test_two_processes_server_here_client_there(port: int, options: dict[str, Any]) -> None:
    with Peer("receiver", 1, port, options=options) as client:
        client.wait_ready()
        server = NetGear(address=HOST, port=port, pattern=1, **options)
        try:
            start = time.monotonic()
            for n in range(30):
                server.send(stamp(n))
            assert time.monotonic() - start < 5.0
        finally:
            server.close()  # collects the last reply, then END
        client.wait_for(lambda lines: "end" in lines)
        assert client.values() == list(range(30))


@pytest.mark.timeout(60)
def test_two_processes_client_here_server_there(port: int) -> None:
    client = NetGear(address=HOST, port=port, pattern=1, receive_mode=True)
    try:
        with Peer("sender", 1, port, count=30, quiet=1) as server:
            got = []
            while (item := client.recv()) is not None:
                got.append(value_of(item))
            assert got == list(range(30))
            assert server.stats()["sent"] == 30
    finally:
        client.close()


@pytest.mark.timeout(60)
def test_two_processes_multiserver_servers_there_client_here() -> None:
    ports = [free_port(), free_port()]
    client = NetGear(address=HOST, port=tuple(ports), pattern=1, receive_mode=True,
                     multiserver_mode=True, receive_timeout=20)  # a guard, never reached
    servers = [Peer("sender", 1, p, count=15, quiet=1, options={"multiserver_mode": True})
               for p in ports]
    try:
        got: dict[str, list[int]] = {}
        ends = 0
        while sum(map(len, got.values())) < 30 or ends == 0:
            # None: every server that had joined has closed (one may finish before the
            # other process has even started); the stream goes on when the next one joins
            item = client.recv()
            if item is None:
                ends += 1
                continue
            port, payload = item
            got.setdefault(port, []).append(value_of(payload))
        assert got == {str(p): list(range(15)) for p in ports}
        assert all(server.stats()["sent"] == 15 for server in servers)
    finally:
        for server in servers:
            server.kill()
        client.close()


# -- the return-shape table of docs/migration-vidgear.md ------------------------------------
def _row(mode: str, pattern: int, message: str | None) -> Any:
    return pytest.param(mode, pattern, message, id=f"{mode}-p{pattern}-{message}")


SHAPES = [_row("plain", p, None) for p in (0, 1, 2)] + [
    _row(mode, pattern, message)
    for mode, patterns in (("bidirectional", (0, 1)), ("multiserver", (1, 2)),
                           ("multiserver+bidirectional", (1,)), ("multiclient", (1, 2)),
                           ("multiclient+bidirectional", (1,)))
    for pattern in patterns for message in (None, "hi")
    if message is None or mode != "multiclient"  # multi-client alone carries no message
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("mode", "pattern", "message"), SHAPES)
def test_return_shapes_match_vidgear(gears: Gears, port: int, mode: str, pattern: int,
                                     message: str | None) -> None:
    options = {f"{m}_mode": True for m in mode.split("+") if m != "plain"}
    client_port: Any = (port,) if "multiserver" in mode else port
    server_port: Any = [port] if "multiclient" in mode else port
    client = gears(client_port, pattern=pattern, receive_mode=True, **options)
    server = gears(server_port, pattern=pattern, **options)
    replies = pattern != 2 and ("bidirectional" in mode or "multiclient" in mode)

    def expected(n: int) -> Any:
        f = frame(n)
        if "multiserver" in mode:
            return (str(port), f) if message is None else (str(port), message, f)
        return (message, f) if "bidirectional" in mode else f

    def same(got: Any, want: Any) -> bool:
        if isinstance(want, tuple):
            return (isinstance(got, tuple) and len(got) == len(want)
                    and all(same(g, w) for g, w in zip(got, want)))
        return bool(np.array_equal(got, want)) if isinstance(want, np.ndarray) else got == want

    if pattern == 2:  # frames before the subscription lands are dropped: keep sending


        stop, results = threading.Event(), []

        def publish() -> None:
            while not stop.wait(0.01):
                results.append(server.send(frame(7), message=message))

        pump = threading.Thread(target=publish, daemon=True)
        pump.start()
        try:
            assert same(client.recv(), expected(7))
        finally:
            stop.set()
            pump.join(5)
        assert results and all(r is None for r in results)
        return
    sent = [server.send(frame(0), message=message)]
    got = client.recv(return_data="d0") if replies else client.recv()
    assert same(got, expected(0))
    sent.append(server.send(frame(1), message=message))
    assert same(client.recv(), expected(1))
    reply = "d0" if replies else None
    if "multiclient" in mode:
        reply = (str(port), "d0")
    assert sent == [None, reply]  # send_window=1: the first frame's answer, one send() later
