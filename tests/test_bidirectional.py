"""Bidirectional mode: message with each frame, return_data back with that frame's reply."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import numpy as np
import pytest
from conftest import free_port

from netgear import NetGear, OptionError, UsageError

HOST = "127.0.0.1"


class Client:
    """recv(return_data=answer(n)) in a thread, n counting calls; keeps what recv() returned."""

    def __init__(self, port: int, pattern: int, answer: Callable[[int], Any],
                 delay: Callable[[int], float] = lambda n: 0.0, **options: Any) -> None:
        self.gear = NetGear(address=HOST, port=port, pattern=pattern, receive_mode=True,
                            bidirectional_mode=True, receive_timeout=10.0, **options)
        self.items: list[tuple[Any, np.ndarray]] = []
        self.error: BaseException | None = None
        self._answer, self._delay = answer, delay
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                calls = len(self.items)
                item = self.gear.recv(return_data=self._answer(calls))
                if item is None:
                    break
                message, frame = item
                self.items.append((message, frame.copy()))
                time.sleep(self._delay(calls))
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def join(self, timeout: float = 10.0) -> list[tuple[Any, np.ndarray]]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "client did not end"
        self.gear.close()
        if self.error is not None:
            raise self.error
        return self.items


def frame(seq: int) -> np.ndarray:
    return np.full((12, 16, 3), seq % 256, np.uint8)


def server_for(port: int, pattern: int, **options: Any) -> NetGear:
    return NetGear(address=HOST, port=port, pattern=pattern, bidirectional_mode=True, **options)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("window", [0, 1])
@pytest.mark.parametrize("pattern", [0, 1])
def test_each_reply_carries_the_data_given_for_that_frame(port: int, pattern: int,
                                                          window: int) -> None:
    # The client's n-th recv() receives frame n and passes return_data derived from n; it
    # sleeps irregularly so a reply that lagged one frame more than the window would show.
    client = Client(port, pattern, answer=lambda n: {"frame": n, "text": f"ack {n}"},
                    delay=lambda n: 0.02 if n % 3 == 0 else 0.0)
    server = server_for(port, pattern, send_window=window)
    replies = [server.send(frame(n), message=f"server {n}") for n in range(25)]
    server.close()
    items = client.join()
    # send() returns the reply to frame n - send_window: never another frame's data. None is
    # allowed (rarely) for a frame whose reply was lost and whose retry the client
    # recognised as a duplicate, and for the first `window` sends, which collect nothing.
    assert replies[:window] == [None] * window
    for n, reply in enumerate(replies[window:]):
        assert reply in (None, {"frame": n, "text": f"ack {n}"}), (n, reply)
    assert replies[window:].count(None) <= 1
    assert [m for m, _ in items] == [f"server {n}" for n in range(25)]
    assert all(int(f[0, 0, 0]) == n for n, (_, f) in enumerate(items))


@pytest.mark.timeout(20)
@pytest.mark.parametrize("pattern", [0, 1])
def test_numpy_return_data_and_messages_travel_exactly(port: int, pattern: int) -> None:
    def answer(n: int) -> np.ndarray:
        return np.arange(n, n + 30, dtype=np.float32).reshape(5, 6)

    client = Client(port, pattern, answer)
    server = server_for(port, pattern, send_window=0)  # each send() returns its own reply
    nested = {"boxes": np.eye(3, dtype=np.int16), "label": "cat"}
    for n in range(10):
        message = np.full(4, n, np.uint16) if n % 2 else nested
        back = server.send(frame(n), message=message)
        assert isinstance(back, np.ndarray) and back.dtype == np.float32
        np.testing.assert_array_equal(back, answer(n))
    server.close()
    items = client.join()
    for n, (message, _) in enumerate(items):
        if n % 2:
            np.testing.assert_array_equal(message, np.full(4, n, np.uint16))
        else:
            assert message["label"] == "cat"
            np.testing.assert_array_equal(message["boxes"], np.eye(3, dtype=np.int16))


@pytest.mark.timeout(20)
def test_no_message_and_no_return_data_give_none(port: int) -> None:
    client = Client(port, 1, answer=lambda n: None)
    server = server_for(port, 1)
    assert [server.send(frame(n)) for n in range(3)] == [None, None, None]
    server.close()
    assert [m for m, _ in client.join()] == [None, None, None]


@pytest.mark.timeout(20)
def test_frames_both_ways(port: int) -> None:
    # seed 004's video-chat example: the client returns its own frame with every reply
    client = Client(port, 1, answer=lambda n: np.full((6, 8, 3), 100 + n, np.uint8))
    server = server_for(port, 1, send_window=0)  # each send() returns its own reply
    for n in range(5):
        back = server.send(frame(n), message="Hello, I am a Server.")
        assert back.shape == (6, 8, 3) and int(back[0, 0, 0]) == 100 + n
    server.close()
    client.join()


def test_old_docs_spelling_is_accepted(port: int) -> None:
    gear = NetGear(address=HOST, port=port, receive_mode=True, bidectional_mode=True)
    try:
        assert gear.settings.options["bidirectional_mode"] is True
    finally:
        gear.close()


@pytest.mark.parametrize("receive_mode", [False, True])
def test_pubsub_is_refused(receive_mode: bool) -> None:
    with pytest.raises(OptionError, match="PUB/SUB") as info:
        NetGear(address=HOST, port=5566, pattern=2, receive_mode=receive_mode,
                bidirectional_mode=True)
    assert info.value.key == "pattern"


def test_message_and_return_data_need_the_mode(port: int) -> None:
    server = NetGear(address=HOST, port=port, pattern=2)
    client = NetGear(address=HOST, port=free_port(), pattern=2, receive_mode=True)
    try:
        with pytest.raises(UsageError, match="bidirectional_mode"):
            server.send(frame(0), message="hi")
        with pytest.raises(UsageError, match="bidirectional_mode"):
            client.recv(return_data="hi")
    finally:
        server.close()
        client.close()
