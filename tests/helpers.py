"""Test helpers: a receiver running in a thread that collects what recv() returns."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import numpy as np

from netgear import NetGear

PROBE = np.array([0xAB], dtype=np.uint8)


def is_probe(item: Any) -> bool:
    frame = item[-1] if isinstance(item, tuple) else item
    return isinstance(frame, np.ndarray) and frame.shape == (1,) and frame.dtype == np.uint8


class Collector:
    """Runs ``recv()`` in a thread until it returns None; keeps copies of what it got.

    Probe frames (see :func:`await_subscription`) are noted, not kept.
    """

    def __init__(self, gear: NetGear, return_data: Callable[[int], Any] | None = None,
                 keep: Callable[[Any], Any] | None = None) -> None:
        self.gear = gear
        self.items: list[Any] = []
        self.error: BaseException | None = None
        self.ended = threading.Event()
        self.probed = threading.Event()
        self.probes = 0  # probe frames received (and left out of items)
        self._return_data = return_data
        self._keep = keep or _copy_frame
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                if self._return_data is not None:
                    item = self.gear.recv(return_data=self._return_data(len(self.items)))
                else:
                    item = self.gear.recv()
                if item is None:
                    break
                if is_probe(item):
                    self.probes += 1
                    self.probed.set()
                    continue
                self.items.append(self._keep(item))
        except BaseException as exc:  # surfaced by join()
            self.error = exc
        finally:
            self.ended.set()

    def join(self, timeout: float = 10.0) -> list[Any]:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"receiver still running after {timeout}s")
        if self.error is not None:
            raise self.error
        return self.items


def _copy_frame(item: Any) -> Any:
    return item.copy() if hasattr(item, "copy") else item


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def await_subscription(sender: NetGear, collector: Collector, timeout: float = 10.0) -> None:
    """Publish probe frames until the subscriber gets one.

    A PUB socket drops everything published before a subscription reaches it, and how long
    that takes depends on load; a fixed sleep makes tests flaky on a busy machine.
    """
    deadline = time.monotonic() + timeout
    while not collector.probed.wait(0.05):
        if time.monotonic() > deadline:
            raise AssertionError(f"no subscription within {timeout}s")
        sender.send(PROBE)
