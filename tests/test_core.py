"""Core NetGear: every pattern and protocol, exact frames, termination, buffer reuse."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading

import numpy as np
import pytest
from helpers import Collector, await_subscription

from netgear import NetGear, PayloadError, UsageError

PATTERNS = [0, 1, 2]


def _pair(pattern: int, port: int | str, protocol: str = "tcp", address: str | None = None,
          keep=None, **options):
    """A receiver collecting in a thread, then a sender.

    The receiver must already be inside recv() for PUB/SUB: an idle SUB socket does not
    attach new connections, so it would not subscribe and the first frames would be lost.
    """
    rx_addr = address if address is not None else ("127.0.0.1" if protocol == "tcp" else None)
    tx_addr = address if address is not None else ("127.0.0.1" if protocol == "tcp" else None)
    rx = NetGear(address=rx_addr, port=port, protocol=protocol, pattern=pattern,
                 receive_mode=True, **options)
    collector = Collector(rx, keep=keep)
    tx = NetGear(address=tx_addr, port=port, protocol=protocol, pattern=pattern, **options)
    if pattern == 2:
        await_subscription(tx, collector)
    return rx, tx, collector


def _frames(n: int = 20) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(n)]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("pattern", PATTERNS)
def test_tcp_exact_frames_and_end_of_stream(pattern, port):
    rx, tx, collector = _pair(pattern, port)
    frames = _frames()
    for frame in frames:
        assert tx.send(frame) is None
    tx.close()
    got = collector.join()
    stats = rx.stats["streams"][str(port)]
    rx.close()
    if pattern == 2:
        # PUB/SUB may drop under load: what arrives is exact and in order, and every
        # missing frame is counted (gaps in sequence numbers, up to the END marker).
        sent_bytes = [f.tobytes() for f in frames]
        positions = [sent_bytes.index(g.tobytes()) for g in got]
        assert positions == sorted(set(positions))
        assert len(got) + stats["dropped"] == len(frames)
        return
    assert len(got) == len(frames)
    for sent, received in zip(frames, got):
        np.testing.assert_array_equal(sent, received)
    assert stats["dropped"] == 0


@pytest.mark.timeout(20)
@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("protocol", ["ipc", "inproc"])
def test_other_protocols(pattern, protocol, tmp_path):
    address = str(tmp_path / "chan") if protocol == "ipc" else f"test-{pattern}-{os.getpid()}"
    rx, tx, collector = _pair(pattern, "7000", protocol=protocol, address=address)
    frames = _frames(5)
    for frame in frames:
        tx.send(frame)
    tx.close()
    got = collector.join()
    rx.close()
    assert [f.tobytes() for f in got] == [f.tobytes() for f in frames]


@pytest.mark.timeout(20)
def test_ipc_default_address_is_shared_by_both_ends():
    name = f"dflt{os.getpid()}"
    # libzmq leaves a bound ipc socket's file behind; this one is ours to remove
    path = os.path.join(tempfile.gettempdir(), f"netgear-{name}")
    try:
        rx = NetGear(port=name, protocol="ipc", receive_mode=True)
        assert os.path.exists(path)  # the default address: both ends meet here
        tx = NetGear(port=name, protocol="ipc")
        collector = Collector(rx)
        tx.send(np.arange(12, dtype=np.uint8))
        tx.close()
        assert len(collector.join()) == 1
        rx.close()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


DTYPE_CASES = [
    np.arange(64 * 48, dtype=np.uint8).reshape(48, 64),  # grayscale 2-D
    np.random.default_rng(1).integers(0, 255, (48, 64, 4), dtype=np.uint8),  # BGRA
    np.random.default_rng(2).integers(0, 65535, (48, 64), dtype=np.uint16),  # depth map
    np.random.default_rng(3).random((8, 6, 3), dtype=np.float32),
    np.random.default_rng(4).random((5,), dtype=np.float64),
    np.array([True, False, True]),
    np.arange(24, dtype=">i4").reshape(2, 3, 4),  # big-endian stays big-endian
    np.zeros((0, 3), dtype=np.int16),  # empty
    np.arange(2 * 3 * 4 * 5, dtype=np.int8).reshape(2, 3, 4, 5),  # 4-D batch
    np.array([(1, 2.5), (3, 4.5)], dtype=[("id", "<i4"), ("score", "<f8")]),  # structured
    np.complex64(1 + 2j) * np.ones((3, 3), dtype=np.complex64),
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("pattern", [0, 1])
def test_dtypes_and_shapes_are_exact(pattern, port):
    rx, tx, collector = _pair(pattern, port)
    for frame in DTYPE_CASES:
        tx.send(frame)
    tx.close()
    got = collector.join()
    rx.close()
    assert len(got) == len(DTYPE_CASES)
    for sent, received in zip(DTYPE_CASES, got):
        assert received.dtype == sent.dtype
        assert received.shape == sent.shape
        assert received.tobytes() == sent.tobytes()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("pattern", PATTERNS)
def test_non_contiguous_input(pattern, port):
    base = np.arange(60 * 80 * 3, dtype=np.uint8).reshape(60, 80, 3)
    views = [base[::2, ::3], base[:, :, ::-1], base.transpose(1, 0, 2), np.asfortranarray(base)]
    rx, tx, collector = _pair(pattern, port)
    for view in views:
        tx.send(view)
    tx.close()
    got = collector.join()
    rx.close()
    for view, received in zip(views, got):
        np.testing.assert_array_equal(view, received)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("options", [{}, {"track": True}, {"copy": True}])
def test_buffer_reuse_never_corrupts(pattern, options, port):
    """A camera fills one array every frame; what was sent must arrive as it was sent."""
    rx, tx, collector = _pair(
        pattern, port, keep=lambda f: (int(f[0, 0, 0]), bool((f == f[0, 0, 0]).all())), **options
    )
    buffer = np.empty((540, 960, 3), dtype=np.uint8)  # big enough for zero-copy paths
    count = 60
    for i in range(count):
        buffer.fill(i)
        tx.send(buffer)
        buffer.fill(255)  # scribble right after send() returns
    tx.close()
    got = collector.join(15)
    rx.close()
    if pattern != 2:
        assert [v for v, _ in got] == list(range(count))
    else:  # PUB/SUB may drop under load, but never deliver a corrupted frame
        assert got and [v for v, _ in got] == sorted(v for v, _ in got)
    assert all(uniform for _, uniform in got), "a frame was modified after send() returned"
    assert all(v != 255 for v, _ in got)


@pytest.mark.timeout(20)
def test_received_frames_are_writable_and_independent(port):
    rx, tx, collector = _pair(1, port, keep=lambda f: f)
    tx.send(np.zeros((100, 100, 3), np.uint8))
    tx.send(np.ones((100, 100, 3), np.uint8))
    tx.close()
    first, second = collector.join()
    rx.close()
    first[0, 0, 0] = 9  # cv2.putText and friends draw on received frames
    assert first.flags.writeable
    assert second[0, 0, 0] == 1 and first[1, 1, 1] == 0


@pytest.mark.timeout(20)
def test_seed_basic_example_with_options(port):
    """Seed 003's advanced example: explicit address/port/protocol and flag/copy/track."""
    options = {"flag": 0, "copy": False, "track": False}
    client = NetGear(address="127.0.0.1", port=str(port), protocol="tcp", pattern=0,
                     receive_mode=True, logging=True, **options)
    server = NetGear(address="127.0.0.1", port=str(port), protocol="tcp", pattern=0,
                     receive_mode=False, logging=True, **options)
    collector = Collector(client)
    frame = np.full((48, 64, 3), 42, np.uint8)
    for _ in range(3):
        server.send(frame)
    server.close()
    assert len(collector.join()) == 3
    client.close()


def test_wrong_method_for_mode_raises_value_error(port):
    with NetGear(port=port, receive_mode=True) as rx:
        with pytest.raises(ValueError, match="send\\(\\) is for send mode"):
            rx.send(np.zeros(3))
        with pytest.raises(UsageError, match="return_data"):
            rx.recv(return_data="hi")
    with NetGear(address="127.0.0.1", port=port, pattern=2) as tx:
        with pytest.raises(ValueError, match="recv\\(\\) is for receive mode"):
            tx.recv()
        with pytest.raises(UsageError, match="message"):
            tx.send(np.zeros(3), message="hello")


@pytest.mark.parametrize("bad", [None, [1, 2, 3], b"bytes", np.array([object()], dtype=object)])
def test_unsendable_frames_raise_payload_error(bad, port):
    with NetGear(address="127.0.0.1", port=port, pattern=2) as tx, pytest.raises(PayloadError):
        tx.send(bad)


@pytest.mark.timeout(20)
def test_instances_in_one_process_do_not_interfere(ports):
    trios = [_pair(1, p) for p in ports[:3]]
    pairs = [(rx, tx) for rx, tx, _ in trios]
    collectors = [c for _, _, c in trios]

    def stream(tx, value):
        for _ in range(30):
            tx.send(np.full((32, 32), value, np.uint8))
        tx.close()

    threads = [threading.Thread(target=stream, args=(tx, i)) for i, (_, tx) in enumerate(pairs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for i, (collector, (rx, _)) in enumerate(zip(collectors, pairs)):
        got = collector.join()
        rx.close()
        assert len(got) == 30 and all((g == i).all() for g in got)


@pytest.mark.timeout(20)
def test_stats_count_frames_and_gaps(port):
    rx, tx, collector = _pair(0, port)
    for _ in range(5):
        tx.send(np.zeros((4, 4), np.uint8))
    tx.close()
    collector.join()
    stats = rx.stats
    rx.close()
    stream = stats["streams"][str(port)]
    assert stream["frames"] == 5 and stream["dropped"] == 0 and stream["restarts"] == 0
    assert stats["bad_messages"] == 0 and stats["duplicates"] == 0


def test_oversized_message_header_is_refused_at_the_sender():
    from netgear.core.wire import FRAME, MAX_HEADER_BYTES, Outgoing, encode

    big = b"x" * (MAX_HEADER_BYTES + 1)
    with pytest.raises(PayloadError, match="numpy array"):
        encode(Outgoing(FRAME, 0, np.zeros(3, np.uint8), message=big))
    as_array = np.frombuffer(big, np.uint8)  # the suggested route goes through
    assert len(encode(Outgoing(FRAME, 0, np.zeros(3, np.uint8), message=as_array))) == 3
