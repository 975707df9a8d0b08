"""Test helpers for the viewer: synthetic senders feeding a running MontageHub + web server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

from conftest import free_port

from netgear import NetGear
from netgear.cli.serve import FrameSender
from netgear.gears import TestPatternGear
from netgear.web import MontageHub, ViewerServer


@dataclass
class Viewer:
    hub: MontageHub
    web: ViewerServer
    ports: list[int]
    senders: dict[int, FrameSender] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.web.url

    def add_sender(self, port: int, name: str, fps: float = 20,
                   size: tuple[int, int] = (320, 240), **options: Any) -> FrameSender:
        """A test-pattern sender; ``options`` are NetGear's (e.g. ``video_codec="h264"``)."""
        gear = TestPatternGear(resolution=size, framerate=fps).start()
        net = NetGear(address="127.0.0.1", port=port, pattern=1, multiserver_mode=True,
                      **options)
        sender = self.senders[port] = FrameSender(gear, net, name=name).start()
        return sender


@contextmanager
def running_viewer(streams: int = 2, stale_after: float = 2.0, fps: float = 20,
                   start_senders: bool = True) -> Iterator[Viewer]:
    """A hub on ``streams`` loopback ports, its web server on a free port, and senders."""
    ports = [free_port() for _ in range(streams)]
    hub = MontageHub(ports, address="127.0.0.1", pattern=1, stale_after=stale_after).start()
    web = ViewerServer(hub, port=0)
    viewer = Viewer(hub, web, ports)
    try:
        web.start()
        if start_senders:
            for index, port in enumerate(ports, 1):
                viewer.add_sender(port, f"cam{index}", fps=fps)
        yield viewer
    finally:
        for sender in viewer.senders.values():
            sender.request_stop()
        for sender in viewer.senders.values():
            sender.stop()
        web.stop()
        hub.close()


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, every: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; return its value, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)
