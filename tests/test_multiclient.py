"""Multi-client mode: one server, many clients; REQ/REP spreads frames, PUB/SUB broadcasts."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import numpy as np
import pytest
import zmq
from conftest import free_port

from netgear import NetGear, OptionError, PeerTimeoutError

HOST = "127.0.0.1"


class Receiver:
    """A multi-client client receiving in a thread until recv() returns None."""

    def __init__(self, port: int, pattern: int,
                 return_data: Callable[[int], Any] | None = None, **options: Any) -> None:
        self.port = str(port)
        self.gear = NetGear(address=HOST, port=port, pattern=pattern, receive_mode=True,
                            multiclient_mode=True, receive_timeout=10.0, **options)
        self.items: list[Any] = []
        self.error: BaseException | None = None
        self._return_data = return_data
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                if self._return_data is None:
                    item = self.gear.recv()
                else:
                    item = self.gear.recv(return_data=self._return_data(len(self.items)))
                if item is None:
                    break
                self.items.append(item[-1].copy() if isinstance(item, tuple) else item.copy())
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def seqs(self) -> list[int]:
        return [int(f[0, 0, 0]) for f in self.items]

    def join(self, timeout: float = 10.0) -> list[int]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"client {self.port} did not end"
        self.gear.close()
        if self.error is not None:
            raise self.error
        return self.seqs()


def frame(seq: int) -> np.ndarray:
    return np.full((16, 16, 3), seq % 256, np.uint8)


def server_for(ports: list[int], pattern: int, **options: Any) -> NetGear:
    return NetGear(address=HOST, port=ports, pattern=pattern, multiclient_mode=True, **options)


@pytest.mark.timeout(20)
def test_reqrep_spreads_frames_round_robin_and_close_reaches_every_client() -> None:
    ports = [free_port() for _ in range(3)]
    clients = [Receiver(p, 1) for p in ports]
    server = server_for(ports, 1)
    time.sleep(0.3)  # let all three connect, so the rotation sees them all from frame 0
    for seq in range(30):
        # vidgear's shape: (client port, its return data); None while nothing was collected
        result = server.send(frame(seq))
        assert result is None or (result[0] in {str(p) for p in ports} and result[1] is None)
    server.close()
    got = [c.join() for c in clients]  # each recv() returned None
    assert sorted(s for g in got for s in g) == list(range(30))
    assert all(len(g) >= 5 for g in got), [len(g) for g in got]


@pytest.mark.timeout(20)
def test_pubsub_broadcasts_every_frame_to_every_client() -> None:
    ports = [free_port(), free_port()]
    clients = [Receiver(p, 2) for p in ports]
    server = server_for(ports, 2)
    seq, deadline = 0, time.monotonic() + 10
    # PUB/SUB drops what is sent before a subscriber is connected, so stream until both
    # have frames, like a camera would.
    while min(len(c.items) for c in clients) < 5:
        assert time.monotonic() < deadline
        server.send(frame(seq))
        seq += 1
        time.sleep(0.005)
    for extra in range(5):
        server.send(frame(seq + extra))
        time.sleep(0.005)  # paced: a PUB socket drops frames beyond its small queue
    server.close()
    for client in clients:
        got = client.join()
        assert got == sorted(got)
        assert got[-5:] == [(seq + n) % 256 for n in range(5)]  # nothing lost once connected


@pytest.mark.timeout(20)
def test_bidirectional_send_returns_the_client_port_and_its_data_for_that_frame() -> None:
    ports = [free_port(), free_port()]
    # each client returns (its port, how many frames it has received before this one)
    clients = [Receiver(p, 1, lambda n, p=p: [str(p), n], bidirectional_mode=True)
               for p in ports]
    server = server_for(ports, 1, bidirectional_mode=True, send_window=0)  # lockstep
    time.sleep(0.3)
    per_client: dict[str, int] = {}
    for seq in range(20):
        port, data = server.send(frame(seq), message=seq)
        assert port in {str(p) for p in ports}
        assert data == [port, per_client.get(port, 0)]
        per_client[port] = per_client.get(port, 0) + 1
    server.close()
    for client in clients:
        client.join()
    assert sorted(per_client.values()) == [10, 10]


@pytest.mark.timeout(20)
def test_a_client_that_is_not_running_is_skipped() -> None:
    up, down = free_port(), free_port()
    first = Receiver(up, 1)
    # lockstep: every frame is acknowledged before send() returns, so the late client has
    # all of its frames when it leaves (with send_window=1 its last one could be in flight)
    server = server_for([up, down], 1, request_timeout=1.0, max_retries=1, send_window=0)
    time.sleep(0.2)
    start = time.monotonic()
    for seq in range(8):
        server.send(frame(seq))
    assert time.monotonic() - start < 1.0  # never waited on the absent client
    late = Receiver(down, 1)
    time.sleep(0.3)
    for seq in range(8, 16):
        server.send(frame(seq))
    late.gear.close()  # the late client leaves again
    late.join()
    time.sleep(0.2)
    start = time.monotonic()
    for seq in range(16, 24):
        server.send(frame(seq))
    assert time.monotonic() - start < 1.0
    server.close()
    got_up, got_late = first.join(), late.seqs()
    assert got_late and set(got_late) <= set(range(8, 16))
    assert sorted(got_up + got_late) == list(range(24))


@pytest.mark.timeout(20)
def test_a_client_that_stops_answering_costs_one_frame_not_the_stream() -> None:
    good, stuck = free_port(), free_port()
    client = Receiver(good, 1)
    context = zmq.Context()
    mute = context.socket(zmq.REP)  # takes requests and never answers
    mute.bind(f"tcp://{HOST}:{stuck}")
    server = server_for([good, stuck], 1, request_timeout=0.3, max_retries=0)
    try:
        time.sleep(0.3)
        results = [server.send(frame(seq)) for seq in range(6)]
        # no PeerTimeoutError: the good client takes the rest
        assert all(r is None or r[1] is None for r in results), results
        assert server.stats["send_dropped"] >= 1
    finally:
        server.close()
        mute.close(linger=0)
        context.term()
    # after close(): with send_window=1 the good client's last frame may still have been
    # in flight when the sends returned
    assert len(client.join()) >= 3


@pytest.mark.timeout(10)
def test_with_no_client_at_all_send_times_out_bounded() -> None:
    server = server_for([free_port(), free_port()], 1, request_timeout=0.2, max_retries=0)
    start = time.monotonic()
    with pytest.raises(PeerTimeoutError):
        server.send(frame(0))
    assert time.monotonic() - start < 2.0
    server.close()


P, Q = "5566", "5567"


@pytest.mark.parametrize(("kwargs", "key", "phrase"), [
    ({"port": (P, Q), "pattern": 0}, "pattern", "pattern 1"),
    ({"port": P, "pattern": 0, "receive_mode": True}, "pattern", "pattern 1"),
    ({"port": (P, Q), "pattern": 1, "receive_mode": True}, "port", "single port"),
    ({"port": P, "pattern": 1}, "port", "list/tuple"),
    ({"port": (P, Q), "pattern": 2, "bidirectional_mode": True}, "pattern", "PUB/SUB"),
])
def test_invalid_combinations_raise_option_error(kwargs: dict[str, Any], key: str,
                                                 phrase: str) -> None:
    with pytest.raises(OptionError, match=phrase) as info:
        NetGear(address=HOST, multiclient_mode=True, **kwargs)
    assert info.value.key == key


@pytest.mark.parametrize("receive_mode", [False, True])
def test_both_multi_modes_together_are_refused(receive_mode: bool) -> None:
    with pytest.raises(OptionError, match="cannot be enabled together"):
        NetGear(address=HOST, port=(P, Q), pattern=1, receive_mode=receive_mode,
                multiclient_mode=True, multiserver_mode=True)
