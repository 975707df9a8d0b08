"""vidgear's documented NetGear_Async examples, run against netgear.aio (issue 14).

Each example below is vidgear's (docs/gears/netgear_async/usage.md and advanced/
bidirectional_mode.md, vidgear 0.3.6) with three edits only: the import line, the
address/port (a free loopback port instead of the defaults, so parallel runs do not
collide) and the display (``cv2.imshow`` becomes ``shown.append``; the webcam a custom
source opens becomes a video file written here). Each runs as ``__main__`` in its own
thread, server and client at once, as two processes would.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from netgear import OptionError, PeerTimeoutError, UsageError
from netgear.aio import NetGear_Async

SERVER_SOURCE = '''
from netgear.aio import NetGear_Async
import asyncio

server = NetGear_Async(source="testpattern", frames=12, resolution=(64, 48),
                       address="127.0.0.1", port=PORT).launch()

if __name__ == "__main__":
    asyncio.set_event_loop(server.loop)
    try:
        server.loop.run_until_complete(server.task)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.close()
'''

CLIENT = '''
from netgear.aio import NetGear_Async
import asyncio

client = NetGear_Async(receive_mode=True, address="127.0.0.1", port=PORT, **OPTIONS).launch()

async def main():
    async for frame in client.recv_generator():
        shown.append(frame)
        await asyncio.sleep(0)

if __name__ == "__main__":
    asyncio.set_event_loop(client.loop)
    try:
        client.loop.run_until_complete(main())
    except (KeyboardInterrupt, SystemExit):
        pass
    client.close()
'''

SERVER_CUSTOM = '''
from netgear.aio import NetGear_Async
import cv2, asyncio

server = NetGear_Async(source=None, logging=True, address="127.0.0.1", port=PORT, **OPTIONS)

async def my_frame_generator():
    stream = cv2.VideoCapture(VIDEO)
    while True:
        (grabbed, frame) = stream.read()
        if not grabbed:
            break
        if BIDIRECTIONAL:
            recv_data = await server.transceive_data()
            if not (recv_data is None):
                print(recv_data)
            target_data = "Hello, I am a Server."
            yield (target_data, frame)
        else:
            yield frame
        await asyncio.sleep(0)
    stream.release()

if __name__ == "__main__":
    asyncio.set_event_loop(server.loop)
    server.config["generator"] = my_frame_generator()
    server.launch()
    try:
        server.loop.run_until_complete(server.task)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.close()
'''

CLIENT_BIDIRECTIONAL = '''
from netgear.aio import NetGear_Async
import asyncio

options = {"bidirectional_mode": True}
client = NetGear_Async(receive_mode=True, logging=True, address="127.0.0.1", port=PORT,
                       **options).launch()

async def main():
    async for (data, frame) in client.recv_generator():
        if not (data is None):
            print(data)
        shown.append(frame)
        target_data = "Hi, I am a Client here."
        await client.transceive_data(data=target_data)
        await asyncio.sleep(0)

if __name__ == "__main__":
    asyncio.set_event_loop(client.loop)
    try:
        client.loop.run_until_complete(main())
    except (KeyboardInterrupt, SystemExit):
        pass
    client.close()
'''


class Script:
    """One example run as ``__main__`` in a thread; what it showed and printed."""

    def __init__(self, source: str, **names: Any) -> None:
        self.shown: list[np.ndarray] = []
        self.printed: list[Any] = []
        self.error: BaseException | None = None
        self.names = {"__name__": "__main__", "shown": self.shown,
                      "print": self.printed.append, **names}
        self.thread = threading.Thread(target=self._run, args=(source,), daemon=True)
        self.thread.start()

    def _run(self, source: str) -> None:
        try:
            exec(compile(source, "<example>", "exec"), self.names)
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def join(self, timeout: float = 15.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the example did not end"
        if self.error is not None:
            raise self.error


def write_video(path: Path, count: int) -> list[int]:
    """A short MJPG file of flat frames; their levels (as a decoder sees them)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    levels = [(n * 20) % 256 for n in range(count)]
    for level in levels:
        writer.write(np.full((48, 64, 3), level, np.uint8))
    writer.release()
    return levels


@pytest.mark.timeout(30)
def test_bare_minimum_server_and_client(port: int) -> None:
    client = Script(CLIENT, PORT=port, OPTIONS={})
    server = Script(SERVER_SOURCE, PORT=port)
    server.join()
    client.join()
    assert len(client.shown) == 12  # PAIR: every frame, then the end of the stream
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in client.shown)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_custom_source_generator(port: int, tmp_path: Path, bidirectional: bool) -> None:
    video = tmp_path / "clip.avi"
    levels = write_video(video, 10)
    options = {"bidirectional_mode": True} if bidirectional else {}
    if bidirectional:
        client = Script(CLIENT_BIDIRECTIONAL, PORT=port)
    else:
        client = Script(CLIENT, PORT=port, OPTIONS={})
    server = Script(SERVER_CUSTOM, PORT=port, OPTIONS=options, VIDEO=str(video),
                    BIDIRECTIONAL=bidirectional)
    server.join()
    client.join()
    assert [round(float(f.mean()) / 20) * 20 % 256 for f in client.shown] == levels
    if bidirectional:
        # each frame came with the server's data. The server reads frame n's reply before
        # it yields frame n + 1: frame 0's reply is None (the client had nothing queued
        # yet) and the last frame's reply is never read, as with vidgear
        assert client.printed == ["Hello, I am a Server."] * len(levels)
        assert server.printed == ["Hi, I am a Client here."] * (len(levels) - 2)
    else:
        assert client.printed == server.printed == []


@pytest.mark.timeout(20)
def test_client_timeout_and_misuse_raise(port: int) -> None:
    async def main() -> None:
        client = NetGear_Async(receive_mode=True, address="127.0.0.1", port=port,
                               timeout=0.3).launch()
        try:
            with pytest.raises(PeerTimeoutError):
                async for _ in client.recv_generator():
                    pass
            with pytest.raises(UsageError, match="bidirectional_mode"):
                await client.transceive_data("x")
        finally:
            client.close(skip_loop=True)
            await asyncio.wait_for(client._close_task, 5.0)

        server = NetGear_Async(address="127.0.0.1", port=port)
        server.config["generator"] = [np.zeros((2, 2), np.uint8)]  # not an async generator
        server.launch()
        with pytest.raises(UsageError, match="async generator"):
            await server.task
        with pytest.raises(UsageError, match="receive_mode"):
            await server.recv_generator().__anext__()
        await server._terminate()

    asyncio.run(main())
    with pytest.raises(OptionError, match="jpeg_compresion"):
        NetGear_Async(receive_mode=True, port=port, jpeg_compresion=True)
