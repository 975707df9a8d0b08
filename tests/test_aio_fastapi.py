"""docs/aio.md's FastAPI example, run as written under uvicorn and read back with httpx.

The example's code block is taken from the page itself (only its bind address and port
are swapped for loopback and a free port), so the page cannot drift from what works.
"""

from __future__ import annotations

import re
import threading
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import free_port

from netgear import NetGear

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

PAGE = Path(__file__).resolve().parent.parent / "docs" / "aio.md"
BIND_LINE = 'ADDRESS, PORT = "*", 5555'


def example(port: int) -> types.ModuleType:
    text = PAGE.read_text()
    code = re.search(r"```python\n(# app\.py.*?)```", text, re.S)
    assert code is not None, "the FastAPI example is gone from docs/aio.md"
    source = code.group(1)
    assert BIND_LINE in source
    module = types.ModuleType("aio_fastapi_example")
    exec(compile(source.replace(BIND_LINE, f'ADDRESS, PORT = "127.0.0.1", {port}'),
                 str(PAGE), "exec"), module.__dict__)
    return module


def serve_frames(port: int, stop: threading.Event) -> None:
    """A PUB sender of flat frames (levels 0, 10, 20, ...) until ``stop``, then the END."""
    with NetGear(address="127.0.0.1", port=port, pattern=2) as tx:
        n = 0
        while not stop.is_set():
            tx.send(np.full((48, 64, 3), (n * 10) % 250, np.uint8))
            n += 1
            time.sleep(0.01)


@pytest.mark.timeout(30)
def test_fastapi_example_streams_mjpeg_and_ends_with_the_stream() -> None:
    port, http_port = free_port(), free_port()
    app = example(port).app
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=http_port,
                                           log_level="warning", lifespan="on"))
    web = threading.Thread(target=server.run, daemon=True)
    web.start()
    stop = threading.Event()
    sender = threading.Thread(target=serve_frames, args=(port, stop), daemon=True)
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and web.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        sender.start()
        jpegs: list[bytes] = []
        buffer = b""
        ended_at: float | None = None
        with httpx.stream("GET", f"http://127.0.0.1:{http_port}/video", timeout=10) as reply:
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("multipart/x-mixed-replace")
            for chunk in reply.iter_bytes():
                buffer += chunk
                *parts, buffer = buffer.split(b"--frame\r\n")
                jpegs += [p.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n") for p in parts if p]
                if len(jpegs) >= 3 and not stop.is_set():
                    stop.set()  # the sender closes: the response must end by itself
                    ended_at = time.monotonic()
            # (leaving the loop means the server finished the response)
        assert ended_at is not None and time.monotonic() - ended_at < 5.0
        for jpeg in jpegs:
            frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert frame.shape == (48, 64, 3)
            level = float(frame.mean())
            assert abs(level - round(level / 10) * 10) <= 3  # one of the levels sent
    finally:
        stop.set()
        if sender.ident is not None:
            sender.join(5)
        server.should_exit = True
        web.join(10)
    assert not web.is_alive() and not sender.is_alive()
