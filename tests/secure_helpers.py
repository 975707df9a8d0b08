"""Helpers for the secure-mode tests: paired NetGears, bounded delivery, a sniffing relay."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from zmq.auth.thread import AuthenticationThread

from netgear import NetGear

LOCAL = "127.0.0.1"
MARKER = b"NETGEAR-PLAINTEXT-MARKER"
# Small bounds: a refused sender must give up quickly, and no test may hang.
FAST = {"request_timeout": 0.3, "max_retries": 1}


def frames(n: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (24, 32, 3), dtype=np.uint8) for _ in range(n)]


def receiver(port: int, pattern: int, keys: Path | None, level: int = 1, **opts: Any) -> NetGear:
    if keys is not None:
        opts.update(secure_mode=level, custom_cert_location=str(keys))
    return NetGear(address=LOCAL, port=port, pattern=pattern, receive_mode=True,
                   receive_timeout=opts.pop("receive_timeout", 5.0), **opts)


def sender(port: int, pattern: int, keys: Path | None, level: int = 1, **opts: Any) -> NetGear:
    if keys is not None:
        opts.update(secure_mode=level, custom_cert_location=str(keys))
    return NetGear(address=LOCAL, port=port, pattern=pattern, **opts)


def deliver(tx: NetGear, rx: NetGear, items: list[np.ndarray], pattern: int) -> list[np.ndarray]:
    """Send ``items`` from a thread and return what ``rx`` received, in order.

    PUB/SUB drops what is published before the subscription arrives or while the
    receiver's (small) queue is full, so each frame is repeated until it shows up and
    the extra copies are skipped. Consecutive items must differ.
    """
    done = threading.Event()
    seen = [0]  # how many distinct items the receiver has got so far
    errors: list[BaseException] = []

    def pump() -> None:
        try:
            for index, item in enumerate(items):
                tx.send(item)
                while pattern == 2 and seen[0] <= index and not done.is_set():
                    time.sleep(0.02)
                    tx.send(item)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    got: list[np.ndarray] = []
    try:
        while len(got) < len(items) and not errors:
            try:
                frame = rx.recv()
            except Exception:
                if errors:  # the sender's failure is the story, not the receiver's wait
                    raise errors[0] from None
                raise
            if pattern == 2 and got and np.array_equal(frame, got[-1]):
                continue  # a repeat of the previous item
            got.append(frame.copy())
            seen[0] = len(got)
    finally:
        done.set()
        thread.join(10)
    if errors:
        raise errors[0]
    return got


@contextlib.contextmanager
def closing(*gears: NetGear) -> Iterator[None]:
    """Close ``gears`` in order (senders first), with every receiver reading meanwhile.

    A sender's close() waits (bounded) for its end-of-stream to be acknowledged, which
    only happens while the receiver is inside recv().
    """
    try:
        yield
    finally:
        drains = [threading.Thread(target=_drain, args=(g,), daemon=True)
                  for g in gears if g.settings.receive_mode and not g.closed]
        for thread in drains:
            thread.start()
        for gear in gears:
            gear.close()
        for thread in drains:
            thread.join(5)


def _drain(rx: NetGear) -> None:
    with contextlib.suppress(Exception):  # a timeout or closed receiver ends the drain
        while rx.recv() is not None:
            pass


def auth_threads() -> int:
    return sum(isinstance(t, AuthenticationThread) and t.is_alive() for t in threading.enumerate())


class Forwarder:
    """A loopback TCP relay that records every byte the sender puts on the wire."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server((LOCAL, 0))
        self.port = self.listener.getsockname()[1]
        self.seen = bytearray()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError), client, \
                socket.create_connection((LOCAL, self.target)) as server:
            while not self.stop.is_set():
                ready, _, _ = select.select([client, server], [], [], 0.1)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        self.seen += data
                    (server if sock is client else client).sendall(data)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.listener.close()


def collect(rx: NetGear, count: int, **recv: Any) -> tuple[threading.Thread, list[Any]]:
    """Receive ``count`` items in a thread (copies, since frames may be views)."""
    got: list[Any] = []

    def run() -> None:
        for _ in range(count):
            item = rx.recv(**recv)
            if item is None:
                return
            got.append(_copied(item))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, got


def _copied(item: Any) -> Any:
    if isinstance(item, tuple):
        return tuple(_copied(x) for x in item)
    return item.copy() if isinstance(item, np.ndarray) else item
