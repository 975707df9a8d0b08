"""The NetGear examples of the seed documents (002, 003, 004), run on loopback.

Each example keeps its structure and return-value handling; only what a test machine
cannot do changes: cameras and video files become synthetic streams, windows
(cv2.imshow/waitKey) become a list of shown images, print() becomes a list, and
'192.168.x.x' becomes 127.0.0.1 with a free port.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import cv2
import numpy as np
import pytest
from conftest import free_port
from imutils import build_montages

from netgear import NetGear

HOST = "127.0.0.1"


class SyntheticStream:
    """Stands in for CamGear/VideoGear/PiGear: start()/read()/stop(), paced like a camera.

    read() returns None after ``frames`` frames, but not before ``until`` is set (so every
    server of a montage has joined before one of them ends, as with real cameras).
    """

    def __init__(self, value: int, frames: int = 10, until: threading.Event | None = None,
                 size: tuple[int, int] = (48, 64)) -> None:
        self.value, self.frames, self.until, self.size = value, frames, until, size
        self.count = 0
        self.deadline = time.monotonic() + 15

    def start(self) -> SyntheticStream:
        return self

    def read(self) -> np.ndarray | None:
        waiting = self.until is not None and not self.until.is_set()
        if (self.count >= self.frames and not waiting) or time.monotonic() > self.deadline:
            return None
        self.count += 1
        time.sleep(0.005)
        return np.full((*self.size, 3), self.value, np.uint8)

    def stop(self) -> None:
        pass


class SyntheticCapture(SyntheticStream):
    """Stands in for cv2.VideoCapture: read() -> (grabbed, frame)."""

    def read(self) -> tuple[bool, np.ndarray | None]:  # type: ignore[override]
        frame = super().read()
        return frame is not None, frame

    def release(self) -> None:
        pass


def in_thread(fn: Callable[..., Any], *args: Any) -> Callable[[], None]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn(*args)
        except BaseException as exc:  # re-raised by join()
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> None:
        thread.join(20)
        assert not thread.is_alive(), "example still running"
        if errors:
            raise errors[0]

    return join


# -- seed 002: multi-server montage --------------------------------------------------------
def montage_client(ports: tuple[int, ...], pattern: int, everyone: threading.Event,
                   options: dict[str, Any], return_data: Any = None) -> dict[str, Any]:
    client = NetGear(address=HOST, port=ports, protocol="tcp", pattern=pattern,
                     receive_mode=True, logging=True, **options)
    frame_dict: dict[str, np.ndarray] = {}
    shown: list[np.ndarray] = []
    messages: list[Any] = []
    while True:
        try:
            data = (client.recv(return_data=return_data) if return_data is not None
                    else client.recv())
            if data is None:
                break
            if len(data) == 3:
                unique_address, extracted_data, frame = data
                messages.append(extracted_data)
                cv2.putText(frame, extracted_data, (10, frame.shape[0] - 10),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 0), 2)
            else:
                unique_address, frame = data
            (h, w) = frame.shape[:2]
            frame_dict[unique_address] = frame
            montages = build_montages(frame_dict.values(), (w, h), (2, 1))
            shown.extend(montages)  # cv2.imshow("Montage Footage {}".format(i), montage)
            if len(frame_dict) == len(ports):
                everyone.set()
        except KeyboardInterrupt:
            break
    client.close()
    return {"frames": frame_dict, "shown": shown, "messages": messages}


def montage_server(port: int, pattern: int, stream: Any, options: dict[str, Any],
                   message: str | None, printed: list[Any]) -> None:
    server = NetGear(address=HOST, port=str(port), protocol="tcp", pattern=pattern,
                     logging=True, **options)
    while True:
        try:
            frame = stream.read()
            if isinstance(frame, tuple):  # the cv2.VideoCapture variant
                grabbed, frame = frame
                if not grabbed:
                    break
            if frame is None:
                break
            if message is None:
                server.send(frame)
            else:
                recv_data = server.send(frame, message=message)
                if recv_data is not None:
                    printed.append(recv_data)
        except KeyboardInterrupt:
            break
    stream.stop()
    server.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("pattern", "options", "message", "servers_first"), [
    (1, {"multiserver_mode": True}, None, False),  # bare-minimum, CamGear
    (1, {"multiserver_mode": True}, None, True),  # same, servers started first
    (2, {"multiserver_mode": True}, None, False),  # bare-minimum with OpenCV, PUB/SUB
    (1, {"multiserver_mode": True}, "I'm Server-{} at Port: {}", False),  # custom data
    (1, {"multiserver_mode": True, "bidirectional_mode": True},
     "I'm Server-{} at Port: {}", False),  # with bidirectional mode
], ids=["reqrep", "reqrep-servers-first", "pubsub-opencv", "data", "bidirectional"])
def test_seed_002_multiserver_montage(pattern: int, options: dict[str, Any],
                                      message: str | None, servers_first: bool) -> None:
    ports = (free_port(), free_port())
    everyone = threading.Event()
    printed: list[Any] = []
    stream_type = SyntheticCapture if pattern == 2 else SyntheticStream
    bidirectional = options.get("bidirectional_mode", False)

    def start_servers() -> list[Callable[[], None]]:
        return [in_thread(montage_server, port, pattern,
                          stream_type(40 * (n + 1), until=everyone), options,
                          message and message.format(n + 1, port), printed)
                for n, port in enumerate(ports)]

    joins = start_servers() if servers_first else []
    if servers_first:
        time.sleep(0.3)
    result: dict[str, Any] = {}
    client = in_thread(lambda: result.update(montage_client(
        ports, pattern, everyone, options,
        "Hi, I am a Client here." if bidirectional else None)))
    joins = joins or start_servers()
    for join in joins:
        join()
    client()
    frames = result["frames"]
    assert set(frames) == {str(p) for p in ports}  # the port as the server gave it
    assert all(f.shape == (48, 64, 3) for f in frames.values())
    assert result["shown"][-1].shape == (48, 128, 3)  # two 64-wide tiles side by side
    if message:
        assert {f"I'm Server-{n + 1} at Port: {p}" for n, p in enumerate(ports)} \
            == set(result["messages"])
    assert printed == (["Hi, I am a Client here."] * len(printed) if bidirectional else [])
    # send_window=1: each server's first send() returns None and its last frame's reply is
    # collected by close(), so two servers print two replies fewer than they sent frames
    assert len(printed) >= (18 if bidirectional else 0)


@pytest.mark.timeout(30)
def test_seed_002_with_netgear_gears_as_sources() -> None:
    try:
        from netgear import CamGear, VideoGear
    except ImportError:
        pytest.skip("netgear's gears are not available yet")
    ports = (free_port(), free_port())
    options = {"multiserver_mode": True}
    everyone = threading.Event()
    result: dict[str, Any] = {}
    client = in_thread(lambda: result.update(montage_client(ports, 1, everyone, options)))
    # source=0 (a webcam) becomes the synthetic "testpattern" source: 40 frames at 200 fps
    props = {"CAP_PROP_FRAME_COUNT": 40, "CAP_PROP_FRAME_WIDTH": 64,
             "CAP_PROP_FRAME_HEIGHT": 48, "CAP_PROP_FPS": 200}
    streams = [CamGear(source="testpattern", **props).start(),
               VideoGear(source="testpattern", resolution=(64, 48), framerate=200,
                         CAP_PROP_FRAME_COUNT=40).start()]
    joins = [in_thread(montage_server, port, 1, stream, options, None, [])
             for port, stream in zip(ports, streams)]
    for join in joins:
        join()
    client()
    assert set(result["frames"]) == {str(p) for p in ports}
    assert result["shown"][-1].shape == (48, 128, 3)


# -- seed 003: NetGear API basics ------------------------------------------------------------
@pytest.mark.timeout(20)
@pytest.mark.parametrize("options", [{}, {"flag": 0, "copy": False, "track": False}])
def test_seed_003_basic_and_advanced_usage(options: dict[str, Any]) -> None:
    port = free_port()
    received: list[np.ndarray] = []

    def client_end() -> None:
        client = NetGear(address=HOST, port=str(port), protocol="tcp", pattern=0,
                         receive_mode=True, logging=True, **options)
        while True:
            frame = client.recv()
            if frame is None:
                break
            received.append(frame.copy())  # cv2.imshow("Output Frame", frame)
        client.close()

    join = in_thread(client_end)
    stream = SyntheticCapture(7, frames=12)  # cv2.VideoCapture('test.mp4')
    server = NetGear(address=HOST, port=str(port), protocol="tcp", pattern=0,
                     receive_mode=False, logging=True, **options)
    while True:
        try:
            (grabbed, frame) = stream.read()
            if not grabbed:
                break
            server.send(frame)
        except KeyboardInterrupt:
            break
    stream.release()
    server.close()
    join()
    assert len(received) == 12 and all((f == 7).all() for f in received)


# -- seed 004: bidirectional mode ------------------------------------------------------------
@pytest.mark.timeout(20)
@pytest.mark.parametrize("pattern", [0, 1], ids=["bare-minimum", "variable-parameters"])
def test_seed_004_bidirectional_text(pattern: int) -> None:
    port = free_port()
    options = {"bidirectional_mode": True}
    printed: list[Any] = []

    def client_end() -> None:
        client = NetGear(address=HOST, port=port, pattern=pattern, receive_mode=True,
                         logging=True, **options)
        while True:
            target_data = "Hi, I am a Client here."
            data = client.recv(return_data=target_data)
            if data is None:
                break
            server_data, frame = data
            if frame is None:
                break
            if server_data is not None:
                printed.append(server_data)
        client.close()

    join = in_thread(client_end)
    stream = SyntheticStream(9, frames=10).start()
    server = NetGear(address=HOST, port=port, pattern=pattern, logging=True, **options)
    replies = []
    while True:
        try:
            frame = stream.read()
            if frame is None:
                break
            recv_data = server.send(frame, message="Hello, I am a Server.")
            if recv_data is not None:
                replies.append(recv_data)
        except KeyboardInterrupt:
            break
    stream.stop()
    server.close()
    join()
    # send_window=1: the first send() returns None, the 10th reply is collected by close()
    assert replies == ["Hi, I am a Client here."] * 9
    assert printed == ["Hello, I am a Server."] * 10


@pytest.mark.timeout(20)
def test_seed_004_frames_both_ways_with_reducer() -> None:
    try:
        from netgear import reducer
    except ImportError:
        pytest.skip("netgear.reducer is not available yet")
    port = free_port()
    options = {"bidirectional_mode": True}
    shown: list[np.ndarray] = []
    printed: list[Any] = []
    received: list[tuple[int, ...]] = []

    def client_end() -> None:
        # One frame longer than the server's: a REQ/REP client that closes right after
        # answering the last frame can take that answer with it (libzmq's REQ drops a reply
        # whose connection is gone before it is read), and the server would time out.
        stream = SyntheticCapture(50, frames=9, size=(60, 80))
        client = NetGear(address=HOST, port=port, receive_mode=True, pattern=1, logging=True,
                         **options)
        while True:
            (grabbed, frame) = stream.read()
            if not grabbed:
                break
            frame = reducer(frame, percentage=30)
            data = client.recv(return_data=frame)
            if data is None:
                break
            server_data, frame = data
            if frame is None:
                break
            if server_data is not None:
                printed.append(server_data)  # print(server_data)
            received.append(frame.shape)  # cv2.imshow("Output Frame", frame)
        stream.release()
        client.close()

    join = in_thread(client_end)
    stream = SyntheticCapture(200, frames=8, size=(60, 80))
    server = NetGear(address=HOST, port=port, pattern=1, logging=True, **options)
    while True:
        try:
            (grabbed, frame) = stream.read()
            if not grabbed:
                break
            frame = reducer(frame, percentage=30)
            recv_data = server.send(frame, message="Hello, I am a Server.")
            if recv_data is not None and isinstance(recv_data, np.ndarray):
                shown.append(recv_data)  # cv2.imshow("Received Frame", recv_data)
        except KeyboardInterrupt:
            break
    stream.release()
    server.close()
    join()
    # send_window=1: the first send() returns None; the 8th frame's reply is collected by
    # close(). Every frame the client returned reaches the server, one send() later.
    assert len(shown) == 7 and all(f.shape == (42, 56, 3) for f in shown)
    assert printed == ["Hello, I am a Server."] * 8 and received == [(42, 56, 3)] * 8
