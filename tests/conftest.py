"""Shared fixtures: loopback ports that parallel runs do not collide on."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

_lock = threading.Lock()
_handed_out: set[int] = set()


def free_port() -> int:
    """An ephemeral TCP port on 127.0.0.1 that nothing listens on right now.

    The kernel picks it (bind to port 0), so two test runs on one machine do not collide;
    ports already handed out in this process are skipped.
    """
    with _lock:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def ports() -> Iterator[list[int]]:
    yield [free_port() for _ in range(4)]
