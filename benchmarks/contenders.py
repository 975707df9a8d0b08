"""One small adapter per contender: how it opens a sender and a receiver.

Every adapter returns a :class:`Link`. A sending link has ``send(frame)``, a
receiving link has ``recv()`` returning the frame (an ndarray or a buffer) or
None at the end of the stream; both have ``close()``. The receiver always binds
(or listens) and the sender connects, as in netgear and vidgear. Libraries are
imported inside the adapters, so the benchmark's parent process never imports
them and a missing library fails only its own rows.

The adapters use each library the way its documentation shows, with default
tuning. The only additions are timeouts that bound a stuck run; they never fire
in a healthy one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CONTENDERS", "HOST", "Contender", "Link", "Unavailable"]

HOST = "127.0.0.1"
JPEG_QUALITY = 90
# The JPEG settings compared between netgear and vidgear (vidgear's defaults).
JPEG_OPTIONS = {
    "jpeg_compression": True,
    "jpeg_compression_quality": JPEG_QUALITY,
    "jpeg_compression_fastdct": True,
    "jpeg_compression_fastupsample": False,
}
_STUCK_MS = 10_000  # bounds a raw socket's blocking call; never reached in a healthy run


class Unavailable(Exception):
    """The contender cannot run here (a mode not implemented yet); shown as n/a."""


@dataclass
class Link:
    close: Callable[[], Any]
    send: Callable[[np.ndarray], Any] | None = None
    recv: Callable[[], Any] | None = None
    # an asyncio receiver: ``await arecv()`` is measured inside ``loop`` (recv() stays
    # for the drain after the measurement)
    arecv: Callable[[], Any] | None = None
    loop: Any = None


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    open_sender: Callable[[int, tuple[int, ...]], Link]
    open_receiver: Callable[[int, tuple[int, ...]], Link]
    lossless: bool = True  # False: dropping frames is by design (PUB/SUB)
    lossy_codec: bool = False  # True: pixels change in transit, so stamps are drawn as blocks


# -- netgear --------------------------------------------------------------------------------
# A checkout of another commit (e.g. the one before a refactor), run as contenders of their
# own (old-netgear-*): each measurement is a fresh process, which imports netgear from there.
OLD_NETGEAR = os.environ.get("NETGEAR_BENCH_OLD")


def _use_old() -> None:
    if OLD_NETGEAR and OLD_NETGEAR not in sys.path:
        if "netgear" in sys.modules:
            raise RuntimeError("netgear was imported before the old checkout was put first")
        sys.path.insert(0, OLD_NETGEAR)


def _netgear(pattern: int, old: bool = False, **options: Any) -> tuple[Callable, Callable]:
    def open_sender(port: int, shape: tuple[int, ...]) -> Link:
        if old:
            _use_old()
        from netgear import NetGear, OptionError

        try:
            gear = NetGear(address=HOST, port=port, pattern=pattern, logging=False, **options)
        except OptionError as exc:
            if options and "unknown option" in str(exc):
                raise Unavailable("mode not available") from exc
            raise
        return Link(send=gear.send, close=gear.close)

    def open_receiver(port: int, shape: tuple[int, ...]) -> Link:
        if old:
            _use_old()
        from netgear import NetGear, OptionError

        # The receiver reads the codec from each message's header; decode-side options
        # are passed when the mode accepts them on a receiver, and dropped otherwise.
        decode_opts = {k: v for k, v in options.items() if k != "jpeg_compression_quality"}
        try:
            gear = NetGear(address=HOST, port=port, pattern=pattern, receive_mode=True,
                           logging=False, **decode_opts)
        except OptionError:
            if not decode_opts:
                raise
            gear = NetGear(address=HOST, port=port, pattern=pattern, receive_mode=True,
                           logging=False)
        return Link(recv=gear.recv, close=gear.close)

    return open_sender, open_receiver


# -- netgear.aio: the asyncio receiver, fed by the sync sender ------------------------------
def _netgear_aio(pattern: int) -> tuple[Callable, Callable]:
    open_sender, _ = _netgear(pattern)

    def open_receiver(port: int, shape: tuple[int, ...]) -> Link:
        import asyncio

        from netgear.aio import NetGear

        # The measurement awaits gear.recv() inside this loop, as an app would; recv()
        # (one loop run per call) serves only the drain after it.
        loop = asyncio.new_event_loop()

        async def build() -> NetGear:
            return NetGear(address=HOST, port=port, pattern=pattern, receive_mode=True,
                           logging=False)

        gear = loop.run_until_complete(build())

        def recv() -> Any:
            return loop.run_until_complete(gear.recv())

        def close() -> None:
            loop.run_until_complete(gear.close())
            loop.close()

        return Link(recv=recv, close=close, arecv=gear.recv, loop=loop)

    return open_sender, open_receiver


# -- raw pyzmq PAIR: plain send(arr) / recv() + np.frombuffer -----------------------------
def _pyzmq_pair(copy: bool, track: bool = False) -> tuple[Callable, Callable]:
    def open_sender(port: int, shape: tuple[int, ...]) -> Link:
        import zmq

        ctx = zmq.Context()
        sock = ctx.socket(zmq.PAIR)
        sock.setsockopt(zmq.SNDTIMEO, _STUCK_MS)
        sock.connect(f"tcp://{HOST}:{port}")

        def close() -> None:
            with contextlib.suppress(zmq.ZMQError):
                sock.send(b"", zmq.NOBLOCK)  # end-of-stream marker for the receiver
            sock.close(linger=500)
            ctx.term()

        def send_tracked(frame: np.ndarray) -> None:
            # the safe zero-copy send: return once libzmq has let go of the buffer
            sock.send(frame, copy=False, track=True).wait(_STUCK_MS / 1000)

        if track:
            return Link(send=send_tracked, close=close)
        return Link(send=lambda frame: sock.send(frame, copy=copy), close=close)

    def open_receiver(port: int, shape: tuple[int, ...]) -> Link:
        import zmq

        ctx = zmq.Context()
        sock = ctx.socket(zmq.PAIR)
        sock.bind(f"tcp://{HOST}:{port}")

        def recv() -> np.ndarray | None:
            msg = sock.recv(copy=copy)
            data = msg if copy else msg.buffer
            if len(data) == 0:
                return None
            return np.frombuffer(data, dtype=np.uint8).reshape(shape)

        def close() -> None:
            sock.close(linger=0)
            ctx.term()

        return Link(recv=recv, close=close)

    return open_sender, open_receiver


# -- imagezmq 1.2 REQ/REP ------------------------------------------------------------------
def _imagezmq_sender(port: int, shape: tuple[int, ...]) -> Link:
    import imagezmq
    import zmq

    sender = imagezmq.ImageSender(connect_to=f"tcp://{HOST}:{port}")
    sender.zmq_socket.setsockopt(zmq.LINGER, 0)  # so close() cannot wait on a dead hub
    return Link(send=lambda frame: sender.send_image("bench", frame), close=sender.close)


def _imagezmq_receiver(port: int, shape: tuple[int, ...]) -> Link:
    import imagezmq
    import zmq

    hub = imagezmq.ImageHub(open_port=f"tcp://{HOST}:{port}")
    hub.zmq_socket.setsockopt(zmq.LINGER, 0)

    def recv() -> np.ndarray:
        _name, image = hub.recv_image()
        hub.send_reply(b"OK")  # reply at once: the fastest way to use imagezmq
        return image

    return Link(recv=recv, close=hub.close)


# -- vidgear 0.3.6 NetGear -----------------------------------------------------------------
def _vidgear(pattern: int, **options: Any) -> tuple[Callable, Callable]:
    def open_sender(port: int, shape: tuple[int, ...]) -> Link:
        from vidgear.gears import NetGear

        gear = NetGear(address=HOST, port=str(port), protocol="tcp", pattern=pattern,
                       logging=False, **options)
        return Link(send=gear.send, close=gear.close)

    def open_receiver(port: int, shape: tuple[int, ...]) -> Link:
        from vidgear.gears import NetGear

        gear = NetGear(address=HOST, port=str(port), protocol="tcp", pattern=pattern,
                       receive_mode=True, logging=False, **options)
        return Link(recv=gear.recv, close=gear.close)

    return open_sender, open_receiver


# -- plain TCP socket: the ceiling ---------------------------------------------------------
_LENGTH = struct.Struct("<Q")


def _tcp_sender(port: int, shape: tuple[int, ...]) -> Link:
    sock = socket.create_connection((HOST, port), timeout=_STUCK_MS / 1000)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(frame: np.ndarray) -> None:
        data = memoryview(frame).cast("B")
        sock.sendall(_LENGTH.pack(data.nbytes))
        sock.sendall(data)

    return Link(send=send, close=sock.close)


def _tcp_receiver(port: int, shape: tuple[int, ...]) -> Link:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((HOST, port))
    server.listen(1)
    state: dict[str, Any] = {"conn": None, "buf": bytearray(0)}

    def read_into(conn: socket.socket, view: memoryview) -> bool:
        got = 0
        while got < len(view):
            n = conn.recv_into(view[got:])
            if n == 0:
                return False
            got += n
        return True

    def recv() -> np.ndarray | None:
        conn = state["conn"]
        if conn is None:
            conn, _ = server.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            state["conn"] = conn
        head = bytearray(_LENGTH.size)
        if not read_into(conn, memoryview(head)):
            return None
        (size,) = _LENGTH.unpack(head)
        if len(state["buf"]) != size:
            state["buf"] = bytearray(size)
        view = memoryview(state["buf"])
        if not read_into(conn, view):
            return None
        return np.frombuffer(view, dtype=np.uint8).reshape(shape)

    def close() -> None:
        if state["conn"] is not None:
            state["conn"].close()
        server.close()

    return Link(recv=recv, close=close)


def _contenders() -> dict[str, Contender]:
    rows = [
        Contender("netgear-pair", "netgear PAIR", *_netgear(0)),
        Contender("netgear-reqrep", "netgear REQ/REP", *_netgear(1)),
        # send_window=0: each send() waits for its own reply (no frame in flight, zero-copy)
        Contender("netgear-reqrep-lockstep", "netgear REQ/REP send_window=0",
                  *_netgear(1, send_window=0)),
        Contender("netgear-pubsub", "netgear PUB/SUB", *_netgear(2), lossless=False),
        # the same streams into netgear.aio.NetGear's recv() (issue 14)
        Contender("netgear-pair-aio", "netgear PAIR, asyncio receiver", *_netgear_aio(0)),
        Contender("netgear-reqrep-aio", "netgear REQ/REP, asyncio receiver", *_netgear_aio(1)),
        Contender("pyzmq-pair", "raw pyzmq PAIR", *_pyzmq_pair(copy=True)),
        Contender("pyzmq-pair-nocopy", "raw pyzmq PAIR copy=False", *_pyzmq_pair(copy=False)),
        # copy=False made safe: each send waits for its tracker (what netgear PAIR does)
        Contender("pyzmq-pair-tracked", "raw pyzmq PAIR copy=False, tracked",
                  *_pyzmq_pair(copy=False, track=True)),
        Contender("imagezmq", "imagezmq 1.2 REQ/REP", _imagezmq_sender, _imagezmq_receiver),
        Contender("vidgear", "vidgear 0.3.6 REQ/REP", *_vidgear(1, jpeg_compression=False)),
        Contender("tcp", "plain TCP socket (ceiling)", _tcp_sender, _tcp_receiver),
        Contender("netgear-jpeg", "netgear REQ/REP + JPEG q90", *_netgear(1, **JPEG_OPTIONS),
                  lossy_codec=True),
        # one core per frame at each end, as vidgear: on a 2-core box shared by both ends
        # the default's parallel bands compete with the other end for the same cores
        Contender("netgear-jpeg-1t", "netgear REQ/REP + JPEG q90, jpeg_compression_threads=1",
                  *_netgear(1, **JPEG_OPTIONS, jpeg_compression_threads=1), lossy_codec=True),
        Contender("vidgear-jpeg", "vidgear 0.3.6 REQ/REP + JPEG q90",
                  *_vidgear(1, **JPEG_OPTIONS), lossy_codec=True),
    ]
    if OLD_NETGEAR:
        rows += [
            Contender("old-netgear-pair", "netgear PAIR (old commit)", *_netgear(0, old=True)),
            Contender("old-netgear-reqrep", "netgear REQ/REP (old commit)",
                      *_netgear(1, old=True)),
            Contender("old-netgear-pubsub", "netgear PUB/SUB (old commit)",
                      *_netgear(2, old=True), lossless=False),
        ]
    return {c.key: c for c in rows}


CONTENDERS: dict[str, Contender] = _contenders()
