"""Multi-server mode: many servers, one client, each frame tagged with its server's port."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import numpy as np
import pytest
from conftest import free_port

from netgear import NetGear, OptionError, PeerTimeoutError

HOST = "127.0.0.1"


class Bg:
    """Run ``fn`` in a daemon thread; ``result()`` joins (bounded) and re-raises its error."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self._fn = fn
        self._thread = threading.Thread(target=self._run, args=args, daemon=True)
        self._thread.start()

    def _run(self, *args: Any) -> None:
        try:
            self.value = self._fn(*args)
        except BaseException as exc:  # surfaced by result()
            self.error = exc

    def result(self, timeout: float = 15.0) -> Any:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"still running after {timeout}s"
        if self.error is not None:
            raise self.error
        return self.value


def frame(server: int, seq: int) -> np.ndarray:
    image = np.zeros((24, 32, 3), np.uint8)
    image[..., 0], image[..., 1] = server, seq % 256
    return image


def client_for(ports: list[int], pattern: int, **options: Any) -> NetGear:
    return NetGear(address=HOST, port=tuple(ports), pattern=pattern, receive_mode=True,
                   multiserver_mode=True, receive_timeout=10.0, **options)


def serve(port: int, index: int, pattern: int, count: int, until: threading.Event | None = None,
          message: Callable[[int], Any] | None = None, **options: Any) -> int:
    """Send ``count`` frames (and, with ``until``, keep going until it is set); then close."""
    server = NetGear(address=HOST, port=str(port), pattern=pattern, multiserver_mode=True,
                     **options)
    deadline = time.monotonic() + 10
    sent = 0
    try:
        while sent < count or (until is not None and not until.is_set()):
            assert time.monotonic() < deadline, "the client never saw enough frames"
            server.send(frame(index, sent), message=message(sent) if message else None)
            sent += 1
            if until is not None:
                time.sleep(0.005)  # a steady stream, not a flood of PUB/SUB drops
    finally:
        server.close()
    return sent


def collect(client: NetGear, everyone: threading.Event | None = None, ports: Any = (),
            enough: int = 5) -> list[tuple[Any, ...]]:
    """recv() until None; set ``everyone`` once ``enough`` frames came from each of ``ports``.

    Servers stream until then: one that finished before another joined would (by design)
    end the stream, since the client only waits for servers that have joined.
    """
    items: list[tuple[Any, ...]] = []
    counts = dict.fromkeys(map(str, ports), 0)
    try:
        while (item := client.recv()) is not None:
            items.append((*item[:-1], item[-1].copy()))
            counts[item[0]] = counts.get(item[0], 0) + 1
            if everyone is not None and min(counts.values()) >= enough:
                everyone.set()
    finally:
        client.close()
    return items


@pytest.mark.timeout(30)
@pytest.mark.parametrize("pattern", [1, 2])
def test_every_server_reaches_the_client_then_the_stream_ends(pattern: int) -> None:
    ports = [free_port() for _ in range(3)]
    everyone = threading.Event()
    client = Bg(collect, client_for(ports, pattern), everyone, ports)
    servers = [Bg(serve, p, i, pattern, 10, everyone) for i, p in enumerate(ports)]
    sent = [s.result() for s in servers]
    items = client.result()  # returned None: every joined server closed
    assert {item[0] for item in items} == {str(p) for p in ports}
    for index, port in enumerate(ports):
        mine = [item for item in items if item[0] == str(port)]
        assert all(len(item) == 2 for item in mine)
        assert all((item[1][..., 0] == index).all() for item in mine)
        seqs = [int(item[1][0, 0, 1]) for item in mine]
        if pattern == 1:  # REQ/REP loses nothing and keeps order
            assert seqs == [n % 256 for n in range(sent[index])]
        else:
            assert len(seqs) >= 5


@pytest.mark.timeout(20)
def test_servers_started_before_the_client_are_all_received() -> None:
    ports = [free_port(), free_port()]
    everyone = threading.Event()
    servers = [Bg(serve, p, i, 1, 8, everyone) for i, p in enumerate(ports)]
    time.sleep(0.3)  # the servers are already waiting for their first reply
    items = collect(client_for(ports, 1), everyone, ports, enough=1)
    for index, port in enumerate(ports):
        sent = servers[index].result()
        assert sent >= 8
        # REQ/REP: the frame that waited for the client arrives first, nothing is lost
        assert [int(i[1][0, 0, 1]) for i in items if i[0] == str(port)] == list(range(sent))
        assert all((i[1][..., 0] == index).all() for i in items if i[0] == str(port))


@pytest.mark.timeout(20)
def test_message_makes_a_three_tuple_and_none_keeps_two() -> None:
    port = free_port()
    client = Bg(collect, client_for([port], 1))
    messages = {0: None, 1: "text", 2: 0, 3: {"k": [1, 2]}, 4: None}
    serve(port, 0, 1, 5, message=messages.get)
    items = client.result()
    assert [len(i) for i in items] == [2, 3, 3, 3, 2]
    assert [i[1] for i in items if len(i) == 3] == ["text", 0, {"k": [1, 2]}]


@pytest.mark.timeout(20)
def test_a_server_that_never_joined_does_not_end_the_stream() -> None:
    early, late = free_port(), free_port()
    client = Bg(collect, client_for([early, late], 1))
    # closes without a single frame: its end-of-stream must not end the client's stream
    NetGear(address=HOST, port=early, pattern=1, multiserver_mode=True).close()
    time.sleep(0.2)
    assert serve(late, 1, 1, 5) == 5
    items = client.result()
    assert [i[0] for i in items] == [str(late)] * 5


@pytest.mark.timeout(20)
def test_a_restarted_server_rejoins_while_others_stream() -> None:
    steady, flaky = free_port(), free_port()
    joined = threading.Event()
    client = Bg(collect, client_for([steady, flaky], 1), joined, [steady], 1)
    stop = threading.Event()
    keeper = Bg(serve, steady, 0, 1, 1, stop)
    assert joined.wait(5)  # else flaky's first close would end the stream, as designed
    assert serve(flaky, 1, 1, 3) == 3
    assert serve(flaky, 1, 1, 4) == 4  # a new life on the same port
    stop.set()
    keeper.result()
    items = client.result()
    assert [int(i[1][0, 0, 1]) for i in items if i[0] == str(flaky)] == [0, 1, 2, 0, 1, 2, 3]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("as_list", [False, True])
def test_filter_accepts_only_the_listed_servers(as_list: bool) -> None:
    wanted, other = free_port(), free_port()
    flt = [str(wanted)] if as_list else wanted
    client = Bg(collect, client_for([wanted, other], 1, filter=flt))
    assert serve(other, 1, 1, 4) == 4  # replied to, but dropped; its end is ignored too
    assert serve(wanted, 0, 1, 3) == 3
    items = client.result()
    assert [i[0] for i in items] == [str(wanted)] * 3


@pytest.mark.timeout(20)
def test_frames_from_a_server_without_multiserver_mode_are_dropped() -> None:
    port = free_port()
    client = NetGear(address=HOST, port=[port], pattern=1, receive_mode=True,
                     multiserver_mode=True, receive_timeout=1.0)
    result = Bg(client.recv)
    plain = NetGear(address=HOST, port=port, pattern=1, request_timeout=0.5)
    try:
        for n in range(3):
            assert plain.send(frame(0, n)) is None  # still answered, never stuck
        with pytest.raises(PeerTimeoutError):
            result.result()
    finally:
        plain.close()
        client.close()


P, Q = "5566", "5567"


@pytest.mark.parametrize(("kwargs", "key", "phrase"), [
    ({"port": (P, Q), "pattern": 0, "receive_mode": True}, "pattern", "pattern 1"),
    ({"port": P, "pattern": 0}, "pattern", "pattern 1"),
    ({"port": (P, Q), "pattern": 1}, "port", "single port"),
    # one port on the client is the hub (tests/test_hub.py); its own refusals:
    ({"port": P, "pattern": 1, "receive_mode": True, "stale_after": 5, "drop_after": 2},
     "drop_after", "must exceed"),
    ({"port": P, "pattern": 1, "receive_mode": True, "stream_name": "x"}, "stream_name",
     "names a server"),
    ({"port": P, "pattern": 1, "receive_mode": True, "stream_keys": True}, "stream_keys",
     "secure_mode=2"),
    ({"port": P, "pattern": 1, "stream_name": "a/b"}, "stream_name", "without '/'"),
    ({"port": (P, Q), "pattern": 1, "receive_mode": True, "stream_name": "x"}, "stream_name",
     "by its port"),
    ({"port": (P, Q), "pattern": 1, "receive_mode": True, "run_forever": True},
     "run_forever", "one-port hub"),
    ({"port": P, "pattern": 1, "max_streams": 3}, "max_streams", "one-port hub"),
    ({"port": P, "pattern": 1, "filter": P}, "filter", "not to a server"),
    ({"port": (P, Q), "pattern": 1, "receive_mode": True, "filter": "6000"}, "filter",
     "not in this client's port list"),
    ({"port": (P, Q), "pattern": 1, "receive_mode": True, "filter": 5.5}, "filter", "must be"),
    ({"port": (P, Q), "pattern": 1, "receive_mode": True, "filter": []}, "filter", "at least"),
    ({"port": (P, Q), "pattern": 1, "receive_mode": True, "multiclient_mode": True},
     "multiserver_mode", "together"),
    ({"port": (P, Q), "pattern": 2, "receive_mode": True, "bidirectional_mode": True},
     "pattern", "PUB/SUB"),
])
def test_invalid_combinations_raise_option_error(kwargs: dict[str, Any], key: str,
                                                 phrase: str) -> None:
    with pytest.raises(OptionError, match=phrase) as info:
        NetGear(address=HOST, multiserver_mode=True, **kwargs)
    assert info.value.key == key
    assert isinstance(info.value, ValueError)  # vidgear code catches ValueError


def test_filter_without_multiserver_mode_is_refused() -> None:
    with pytest.raises(OptionError, match="multiserver_mode=True") as info:
        NetGear(address=HOST, port=P, receive_mode=True, filter=P)
    assert info.value.key == "filter"
