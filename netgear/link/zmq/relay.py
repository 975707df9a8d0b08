"""The relay engine: libzmq's own proxy republishing PUB/SUB streams, port for port.

For each port, an XSUB socket binds ``address:port`` (cameras, i.e. PUB senders, connect
to it as they would to a viewer) and an XPUB socket connects to ``host:port`` of every
consumer (viewers and recorders bind, as every netgear receiver does), and
``zmq.proxy_steerable`` moves messages between them in libzmq's own thread, without
Python touching a frame and without decoding anything. Subscriptions travel the other
way, so a camera learns of every viewer behind the relay. Because the port is kept, a
multi-server client behind a relay works unchanged (its port tags stay true).

Stats per stream come from the proxy's capture socket, an inproc PUB that never holds up
forwarding (a capture reader that falls behind loses counts, not frames): a thread reads
only each message's header part, the first bytes of a msgpack map.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import msgpack
import zmq

from ...errors import TransportError
from .channel import translate_errors

__all__ = ["Relay", "RelayStream"]

logger = logging.getLogger(__name__)

END = 1  # the wire format's end-of-stream kind (netgear.core.wire)
HEADER_PEEK = 4096  # a larger header part is counted as a message, not parsed


@dataclass
class RelayStream:
    """What the relay forwarded for one stream (one port; one sender tag within it)."""

    port: str
    name: str
    frames: int = 0
    ends: int = 0
    bytes: int = 0
    senders: int = 0  # distinct sender instances seen
    last_seen: float = 0.0  # time.time() of the last message

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Relay:
    """XSUB (bound, cameras connect) -> XPUB (connected to every consumer), per port."""

    def __init__(self, address: str, ports: Sequence[str], consumers: Sequence[str], *,
                 queue_frames: int = 16, max_frame_bytes: int = 256 * 1024 * 1024,
                 dead_peer_timeout: float = 20.0) -> None:
        self.context = zmq.Context()
        self.ports = list(ports)
        self._threads: list[threading.Thread] = []
        self._controls: list[zmq.Socket] = []
        self._streams: dict[tuple[str, str], RelayStream] = {}
        self._instances: dict[tuple[str, str], set[Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._tag = f"{id(self):x}"
        self.errors: list[str] = []
        try:
            for port in self.ports:
                self._open_port(address, port, consumers, queue_frames, max_frame_bytes,
                                dead_peer_timeout)
            self._reader = threading.Thread(target=self._count, name="relay-stats",
                                            daemon=True)
            self._reader.start()
        except BaseException:
            self.close()
            raise

    def _socket(self, kind: int, queue_frames: int, max_bytes: int, dead: float) -> zmq.Socket:
        sock = self.context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        # frames are megabytes: a small per-peer queue bounds memory; a slow consumer's
        # pipe fills and the XPUB drops for it alone, the others go on
        sock.setsockopt(zmq.SNDHWM, queue_frames)
        sock.setsockopt(zmq.RCVHWM, queue_frames)
        sock.setsockopt(zmq.MAXMSGSIZE, max_bytes)
        sock.setsockopt(zmq.HANDSHAKE_IVL, 5000)
        sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
        sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, max(1, int(dead / 2)))
        sock.setsockopt(zmq.TCP_KEEPALIVE_INTVL, max(1, int(dead / 6)))
        sock.setsockopt(zmq.TCP_KEEPALIVE_CNT, 3)
        # no retransmitting into a dead link: the connection goes, libzmq reconnects
        sock.setsockopt(zmq.TCP_MAXRT, max(1, round(dead * 1000)))
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        return sock

    def _open_port(self, address: str, port: str, consumers: Sequence[str],
                   queue_frames: int, max_bytes: int, dead: float) -> None:
        opened: list[zmq.Socket] = []
        try:
            front = self._socket(zmq.XSUB, queue_frames, max_bytes, dead)
            opened.append(front)
            back = self._socket(zmq.XPUB, queue_frames, max_bytes, dead)
            opened.append(back)
            capture = self.context.socket(zmq.PUB)
            opened.append(capture)
            capture.setsockopt(zmq.LINGER, 0)
            capture.bind(f"inproc://relay-{self._tag}-{port}")
            control = self.context.socket(zmq.PAIR)
            opened.append(control)
            control.bind(f"inproc://relay-control-{self._tag}-{port}")
            endpoint = f"tcp://{address}:{port}"
            with translate_errors(f"bind to {endpoint}"):
                front.bind(endpoint)
            for host in consumers:
                with translate_errors(f"connect to {host}:{port}"):
                    back.connect(f"tcp://{host}:{port}")
            steer = self.context.socket(zmq.PAIR)
            steer.setsockopt(zmq.LINGER, 0)
            steer.connect(f"inproc://relay-control-{self._tag}-{port}")
        except BaseException:
            for sock in opened:
                sock.close(linger=0)
            raise
        self._controls.append(steer)
        # the proxy thread owns these four sockets from here on (handed over, never shared)
        thread = threading.Thread(target=self._proxy, args=(port, front, back, capture,
                                                            control),
                                  name=f"relay-{port}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _proxy(self, port: str, front: zmq.Socket, back: zmq.Socket, capture: zmq.Socket,
               control: zmq.Socket) -> None:
        try:
            zmq.proxy_steerable(front, back, capture, control)
        except zmq.ZMQError as exc:
            if not self._closed:
                logger.error("relay on port %s stopped: %s", port, exc)
                self.errors.append(f"port {port}: {exc}")
        finally:
            for sock in (front, back, capture, control):
                sock.close(linger=0)

    def _count(self) -> None:
        """Read the capture sockets' copies; only header parts are looked at."""
        poller = zmq.Poller()
        subs: dict[zmq.Socket, str] = {}
        try:
            for port in self.ports:
                sub = self.context.socket(zmq.SUB)
                subs[sub] = port
                sub.setsockopt(zmq.LINGER, 0)
                sub.setsockopt(zmq.SUBSCRIBE, b"")
                sub.setsockopt(zmq.RCVHWM, 10_000)
                sub.connect(f"inproc://relay-{self._tag}-{port}")
                poller.register(sub, zmq.POLLIN)
            while True:
                ready = poller.poll(100)
                if not ready and self._stop.is_set():
                    break  # stopped, and the copies the proxies captured are all counted
                for sub, _ in ready:
                    self._record(subs[sub], sub.recv_multipart(copy=False))
        except zmq.ZMQError as exc:
            if not self._stop.is_set():
                logger.error("relay stats reader stopped: %s", exc)
        finally:
            for sub in subs:
                sub.close(linger=0)

    def _record(self, port: str, parts: list[Any]) -> None:
        head = parts[0].bytes if len(parts[0]) <= HEADER_PEEK else b""
        if len(parts) == 1 and head[:1] in (b"\x00", b"\x01"):
            return  # a subscription travelling upstream
        try:
            header = msgpack.unpackb(head) if head else {}
        except (ValueError, TypeError, msgpack.UnpackException):
            header = {}
        if not isinstance(header, dict):
            header = {}
        # a stream's name, where its sender gives one; else the port it came in on
        name = str(header.get("n") or header.get("p") or port)
        size = sum(len(p) for p in parts)
        with self._lock:
            key = (port, name)
            stream = self._streams.get(key)
            if stream is None:
                stream = self._streams[key] = RelayStream(port, name)
                self._instances[key] = set()
            instances = self._instances[key]
            if header.get("i") not in instances and len(instances) < 1000:
                instances.add(header.get("i"))
                stream.senders = len(instances)
            if header.get("k") == END:
                stream.ends += 1
            else:
                stream.frames += 1
            stream.bytes += size
            stream.last_seen = time.time()

    def stats(self) -> list[dict[str, Any]]:
        """A snapshot: one dict per stream seen (port, name, frames, ends, bytes, senders)."""
        with self._lock:
            return [s.as_dict() for s in self._streams.values()]

    @property
    def running(self) -> bool:
        return not self._closed and all(t.is_alive() for t in self._threads)

    def close(self) -> None:
        """Stop every proxy (libzmq's TERMINATE command), then the context. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for steer in self._controls:
            try:
                steer.send(b"TERMINATE", zmq.NOBLOCK)
            except zmq.ZMQError as exc:
                logger.debug("relay: TERMINATE not sent: %s", exc)
        for thread in self._threads:
            thread.join(5.0)
        self._stop.set()
        # after the proxies: the reader counts what they captured before it stops
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.join(5.0)
        for steer in self._controls:
            steer.close(linger=0)
        if any(t.is_alive() for t in self._threads):
            # a proxy that did not stop still uses its sockets: term() would block on them
            raise TransportError("relay: a proxy thread did not stop within 5 s")
        self.context.term()
