"""Adapters for shm_bench.py: ``open_sender`` gives ``(send(frame), close())``,
``open_receiver`` gives ``(recv(timeout) -> frame or None, close())``.

``addr`` is a stream name (shared memory), a path suffix (ipc) or a port number (tcp).
Libraries are imported inside the adapters so a missing one fails only its own rows.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import struct
import tempfile
import time
from typing import Any, Callable

import numpy as np

CONTENDERS = {
    "shm": "netgear.shm lossless",
    "shm-fanout": "netgear.shm fan-out",
    "shm-loan": "netgear.shm lossless, loaned slot (no copy)",
    "iceoryx2": "iceoryx2 0.10 pub/sub + event",
    "netgear-shm": "netgear PAIR shm",
    "netgear-shm-pub": "netgear PUB/SUB shm",
    "netgear-shm-loan": "netgear PAIR shm, loan() (no copy)",
    "netgear-ipc": "netgear PAIR ipc",
    "netgear-tcp": "netgear PAIR tcp",
    "pyzmq-ipc": "raw pyzmq PAIR ipc copy=False",
    "pyzmq-tcp": "raw pyzmq PAIR tcp copy=False",
    "tcp": "plain TCP socket",
}
FANOUT = ("netgear-shm-pub", "shm-fanout", "iceoryx2", "pyzmq-pub-ipc")
CONTENDERS["pyzmq-pub-ipc"] = "raw pyzmq PUB/SUB ipc copy=False"

Send = Callable[[np.ndarray], Any]
Recv = Callable[[float], Any]
_LEN = struct.Struct("<Q")


def _ipc(addr: str) -> str:
    return "ipc://" + os.path.join(tempfile.gettempdir(), f"shmbench-{addr}")


def _netgear_where(key: str, addr: str) -> tuple[str, int, dict[str, Any]]:
    """protocol, pattern and address/port of a netgear contender."""
    if key.startswith("netgear-shm"):
        return "shm", 2 if key == "netgear-shm-pub" else 0, {"address": addr}
    if key == "netgear-ipc":
        return "ipc", 0, {"address": _ipc(addr)[6:], "port": "0"}
    return "tcp", 0, {"address": "127.0.0.1", "port": addr}


def open_sender(key: str, addr: str, shape: tuple) -> tuple[Send, Callable[[], None]]:
    nbytes = int(np.prod(shape))
    if key in ("shm", "shm-fanout"):
        from netgear.shm import ShmSender

        tx = ShmSender(addr, fanout=key == "shm-fanout", slot_bytes=nbytes)
        return (lambda f: tx.publish(f, b"", timeout=5.0)), tx.close
    if key == "shm-loan":
        return _loan_sender(addr, nbytes)
    if key == "iceoryx2":
        return _iox_sender(addr, nbytes)
    if key.startswith("netgear"):
        from netgear import NetGear

        proto, pattern, where = _netgear_where(key, addr)
        gear = NetGear(protocol=proto, pattern=pattern, logging=False, request_timeout=4.0,
                       max_retries=0, **where)
        if key == "netgear-shm-loan":
            return _loan_send(gear), gear.close
        return gear.send, gear.close
    if key.startswith("pyzmq"):
        import zmq

        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.PUB if key == "pyzmq-pub-ipc" else zmq.PAIR)
        sock.setsockopt(zmq.SNDTIMEO, 5000)
        if key == "pyzmq-pub-ipc":
            sock.bind(_ipc(addr))
        else:
            sock.connect(_ipc(addr) if key == "pyzmq-ipc" else f"tcp://127.0.0.1:{addr}")

        def close() -> None:
            with contextlib.suppress(zmq.ZMQError):
                sock.send(b"", zmq.NOBLOCK)
            sock.close(linger=200)

        return (lambda f: sock.send(f, copy=False)), close
    if key == "tcp":
        sock = socket.create_connection(("127.0.0.1", int(addr)), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def send(f: np.ndarray) -> None:
            sock.sendall(_LEN.pack(f.nbytes))
            sock.sendall(memoryview(f).cast("B"))

        return send, sock.close
    raise KeyError(key)


def open_receiver(key: str, addr: str, shape: tuple) -> tuple[Recv, Callable[[], None]]:
    if key in ("shm", "shm-fanout", "shm-loan"):
        from netgear.shm import ShmReceiver

        rx = ShmReceiver(addr, fanout=key == "shm-fanout")

        def recv(timeout: float) -> Any:
            got = rx.receive(timeout)
            return None if got is None else got[1]

        return recv, rx.close
    if key == "iceoryx2":
        return _iox_receiver(addr, int(np.prod(shape)))
    if key.startswith("netgear"):
        from netgear import NetGear, PeerTimeoutError

        proto, pattern, where = _netgear_where(key, addr)
        gear = NetGear(protocol=proto, pattern=pattern, receive_mode=True, logging=False,
                       receive_timeout=0.5, **where)

        def recv(timeout: float) -> Any:
            # receive_timeout is the slice; keep waiting until the caller's timeout, as
            # the other contenders do (a spawned sender can be slow to start under load)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    return gear.recv()
                except PeerTimeoutError:
                    if time.monotonic() >= deadline:
                        return None

        return recv, gear.close
    if key.startswith("pyzmq"):
        import zmq

        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.SUB if key == "pyzmq-pub-ipc" else zmq.PAIR)
        if key == "pyzmq-pub-ipc":
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(_ipc(addr))
        else:
            sock.bind(_ipc(addr) if key == "pyzmq-ipc" else f"tcp://127.0.0.1:{addr}")

        def recv(timeout: float) -> Any:
            if not sock.poll(int(timeout * 1000)):
                return None
            msg = sock.recv(copy=False)
            if len(msg.buffer) == 0:
                return None
            return np.frombuffer(msg.buffer, np.uint8).reshape(shape)

        return recv, lambda: sock.close(linger=0)
    if key == "tcp":
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", int(addr)))
        server.listen(1)
        state: dict[str, Any] = {"conn": None, "buf": bytearray(int(np.prod(shape)))}

        def fill(conn: socket.socket, view: memoryview) -> bool:
            got = 0
            while got < len(view):
                n = conn.recv_into(view[got:])
                if n == 0:
                    return False
                got += n
            return True

        def recv(timeout: float) -> Any:
            if state["conn"] is None:
                server.settimeout(timeout)
                try:
                    state["conn"] = server.accept()[0]
                except socket.timeout:
                    return None
            conn = state["conn"]
            conn.settimeout(timeout)
            head = bytearray(_LEN.size)
            try:
                if not fill(conn, memoryview(head)):
                    return None
                view = memoryview(state["buf"])[: _LEN.unpack(head)[0]]
                if not fill(conn, view):
                    return None
            except (socket.timeout, OSError):
                return None
            return np.frombuffer(view, np.uint8).reshape(shape)

        def close() -> None:
            if state["conn"] is not None:
                state["conn"].close()
            server.close()

        return recv, close
    raise KeyError(key)


# -- netgear.shm with a loaned slot: the producer writes its frame in shared memory -------
def _loan_sender(addr: str, nbytes: int) -> tuple[Send, Callable[[], None]]:
    """The engine's reserve/slot_buffer/commit: a producer that renders or captures into
    the slot has nothing left to copy. Here the frame is constant, so only its stamp is
    written: what producing the frame costs is the producer's own, with or without shm."""
    from netgear.errors import PeerTimeoutError
    from netgear.shm import ShmSender

    tx = ShmSender(addr, slot_bytes=nbytes)

    def send(frame: np.ndarray) -> None:
        slot = tx.reserve(5.0)
        if slot < 0:
            raise PeerTimeoutError("no receiver")
        tx.slot_buffer(slot)[:8] = memoryview(frame.reshape(-1)[:8])
        tx.commit(slot, "|u1", [frame.nbytes], b"", 5.0)

    return send, tx.close


def _loan_send(gear: Any) -> Send:
    from netgear.link.shm import loan

    def send(frame: np.ndarray) -> None:
        buf = loan(gear, frame.shape, frame.dtype, 5.0)
        buf.reshape(-1)[:8] = frame.reshape(-1)[:8]  # the frame is produced in place
        gear.send(buf)

    return send


# -- iceoryx2: loaned slice samples, an event service for the wake-ups ----------------------
def _iox_service(addr: str) -> tuple[Any, Any, Any]:
    import iceoryx2 as iox2

    iox2.set_log_level_from_env_or(iox2.LogLevel.Error)
    node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
    name = iox2.ServiceName.new(f"shmbench/{addr}")
    svc = (node.service_builder(name).publish_subscribe(iox2.Slice[ctypes.c_uint8])
           .enable_safe_overflow(False).subscriber_max_buffer_size(4).history_size(0)
           .max_subscribers(8).open_or_create())
    event = node.service_builder(name).event().open_or_create()
    return node, svc, event


def _iox_sender(addr: str, nbytes: int) -> tuple[Send, Callable[[], None]]:
    import iceoryx2 as iox2

    node, svc, event = _iox_service(addr)
    keep = [node, svc, event]  # the ports live only as long as their node and service
    pub = (svc.publisher_builder().initial_max_slice_len(nbytes)
           .backpressure_strategy(iox2.BackpressureStrategy.RetryUntilDelivered)
           .max_loaned_samples(2).create())
    notifier = event.notifier_builder().create()

    def send(frame: np.ndarray) -> None:
        sample = pub.loan_slice_uninit(frame.nbytes)
        ctypes.memmove(sample.payload_ptr, frame.ctypes.data, frame.nbytes)
        sample.assume_init().send()
        notifier.notify()

    def close() -> None:
        for obj in (notifier, pub):
            obj.delete()
        keep.clear()

    return send, close


def _iox_receiver(addr: str, nbytes: int) -> tuple[Recv, Callable[[], None]]:
    import iceoryx2 as iox2

    node, svc, event = _iox_service(addr)
    keep = [node, svc, event]
    sub = svc.subscriber_builder().create()
    listener = event.listener_builder().create()
    held: list[Any] = []

    def recv(timeout: float) -> Any:
        held.clear()  # the previous sample goes back to the publisher
        sample = sub.receive()
        if sample is None:
            listener.timed_wait_all(iox2.Duration.from_secs_f64(timeout)) \
                if hasattr(listener, "timed_wait_all") else \
                listener.timed_wait(iox2.Duration.from_secs_f64(timeout))
            sample = sub.receive()
            if sample is None:
                return None
        held.append(sample)
        buf = (ctypes.c_uint8 * nbytes).from_address(sample.payload_ptr)
        return np.frombuffer(buf, np.uint8)

    def close() -> None:
        held.clear()
        for obj in (listener, sub):
            obj.delete()
        keep.clear()

    return recv, close
