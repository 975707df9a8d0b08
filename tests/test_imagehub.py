"""ImageSender / ImageHub over real ZeroMQ sockets on 127.0.0.1, and against imagezmq itself."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import cv2
import imagezmq
import numpy as np
import pytest
import zmq
from conftest import free_port

from netgear.errors import (
    ClosedError,
    OptionError,
    PayloadError,
    PeerTimeoutError,
    TransportError,
    UsageError,
)
from netgear.gears import TestPatternGear
from netgear.imagezmq.api import ImageHub, ImageSender

pytestmark = pytest.mark.timeout(30)


class Peer(threading.Thread):
    """Runs the other side of a conversation; outcome() re-raises its failure here."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.fn, self.result, self.error = fn, None, None
        self.start()

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:
            self.error = exc

    def outcome(self, timeout: float = 10) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "peer thread did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def addr(port: int) -> str:
    return f"tcp://127.0.0.1:{port}"


def image(seed: int = 0, shape: tuple[int, ...] = (48, 64, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, np.uint8)


def jpg_of(frame: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame)
    assert ok
    return buf.tobytes()


# -- our sender <-> our hub ----------------------------------------------------------------


def test_req_rep_roundtrip(port: int) -> None:
    frames = [image(1), image(2, (48, 64)), np.arange(12, dtype=np.float32).reshape(3, 4)]
    with ImageHub(addr(port), timeout=5) as hub, ImageSender(addr(port), timeout=5) as sender:
        peer = Peer(lambda: [sender.send_image(f"f{i}", f) for i, f in enumerate(frames)]
                    + [sender.send_jpg("jpg", jpg_of(frames[0]))])
        for i, sent in enumerate(frames):
            name, got = hub.recv_image()
            assert name == f"f{i}" and got.dtype == sent.dtype and np.array_equal(got, sent)
            assert got.flags.writeable
            hub.send_reply(b"OK" if i else "first")
        name, jpg = hub.recv_jpg()
        assert name == "jpg" and isinstance(jpg, bytes) and jpg == jpg_of(frames[0])
        hub.send_reply()
        assert peer.outcome() == [b"first", b"OK", b"OK", b"OK"]


def test_recv_converts_between_raw_and_jpeg(port: int) -> None:
    frame = TestPatternGear((128, 96), timestamp=False).render(77)
    with ImageHub(addr(port), timeout=5) as hub, ImageSender(addr(port), timeout=5) as sender:
        peer = Peer(lambda: (sender.send_jpg("a", cv2.imencode(".jpg", frame)[1]),
                             sender.send_image("b", frame)))
        name, decoded = hub.recv_image()  # a JPEG message, decoded for us
        hub.send_reply()
        assert name == "a" and decoded.shape == frame.shape
        assert TestPatternGear.frame_index(decoded) == 77
        name, jpg = hub.recv_jpg()  # a raw message, encoded for us
        hub.send_reply()
        assert name == "b" and jpg[:2] == b"\xff\xd8"
        assert cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR).shape == frame.shape
        peer.outcome()


def test_recv_image_copy_false_gives_a_zero_copy_view(port: int) -> None:
    with ImageHub(addr(port), timeout=5) as hub, ImageSender(addr(port), timeout=5) as sender:
        peer = Peer(lambda: sender.send_image("x", image(3)))
        _, view = hub.recv_image(copy=False)
        hub.send_reply()
        assert not view.flags.owndata and np.array_equal(view, image(3))
        peer.outcome()


def test_reply_discipline_raises_usage_errors(port: int) -> None:
    with ImageHub(addr(port), timeout=5) as hub, ImageSender(addr(port), timeout=5) as sender:
        with pytest.raises(UsageError, match="recv_image"):
            hub.send_reply(b"OK")  # nothing received yet
        peer = Peer(lambda: [sender.send_image("a", image()), sender.send_image("b", image())])
        assert hub.recv_image()[0] == "a"
        with pytest.raises(UsageError, match="send_reply"):
            hub.recv_image()  # zmq would say EFSM; we say what to do
        hub.send_reply()
        assert hub.recv_image()[0] == "b"  # the hub is still in a good state
        hub.send_reply()
        peer.outcome()
        with pytest.raises(UsageError, match="PUB/SUB"):
            hub.connect(addr(free_port()))
    with ImageHub(addr(free_port()), REQ_REP=False) as sub, pytest.raises(UsageError):
        sub.send_reply(b"OK")


def test_timeouts(port: int) -> None:
    with ImageHub(addr(port), timeout=0.2) as hub:
        started = time.monotonic()
        with pytest.raises(PeerTimeoutError) as info:
            hub.recv_image()
        assert 0.15 < time.monotonic() - started < 1.5 and isinstance(info.value, TimeoutError)
    no_hub = free_port()
    # 0.5 s a try: once the hub appears, its connect, handshake and reply must fit in the
    # sender's budget even on a loaded 2-core box (0.2 s a try did not, now and then)
    with ImageSender(addr(no_hub), timeout=0.5, retries=2) as sender:
        started = time.monotonic()
        with pytest.raises(PeerTimeoutError, match="3 attempt"):
            sender.send_image("lost", image())
        assert 1.4 < time.monotonic() - started < 4.0
        with ImageHub(addr(no_hub), timeout=5) as hub:  # the hub appears: the sender recovers
            peer = Peer(lambda: sender.send_image("found", image()))
            assert hub.recv_image()[0] == "found"
            hub.send_reply(b"back")
            assert peer.outcome() == b"back"


def test_sender_survives_a_hub_restart(port: int) -> None:
    sender = ImageSender(addr(port), timeout=0.5, retries=5)
    first = ImageHub(addr(port), timeout=5)
    peer = Peer(lambda: sender.send_image("frame", image(9)))
    assert first.recv_image()[0] == "frame"
    first.close()  # crashes without replying: imagezmq's sender would wait forever
    with ImageHub(addr(port), timeout=5) as second:
        name, got = second.recv_image()  # the re-sent request reaches the new hub
        assert name == "frame" and np.array_equal(got, image(9))
        second.send_reply(b"new hub")
        assert peer.outcome() == b"new hub"
    sender.close()


@pytest.mark.parametrize("copy", [None, False])
def test_pub_buffer_reuse_never_corrupts_what_the_hub_gets(copy: Any) -> None:
    port = free_port()
    buf = np.zeros((480, 640, 3), np.uint8)
    with ImageSender(addr(port), REQ_REP=False, copy=copy) as sender, \
            ImageHub(addr(port), REQ_REP=False, timeout=5) as hub:
        stop = threading.Event()

        def warm_up() -> None:  # PUB drops everything until the subscription has arrived
            while not stop.is_set():
                sender.send_image("warmup", np.zeros((2, 2), np.uint8))
                time.sleep(0.01)

        warm = Peer(warm_up)
        assert hub.recv_image()[0] == "warmup"
        stop.set()
        warm.outcome()
        for value in range(1, 16):
            buf[:] = value
            sender.send_image("frame", buf)
            buf[:] = 255  # reuse the buffer at once, as a capture loop does
        received = []
        while len(received) < 15:
            name, got = hub.recv_image()
            if name == "frame":
                received.append(got)
    for value, got in enumerate(received, start=1):
        assert got.min() == got.max() == value


def test_req_rep_buffer_reuse_after_send_returns(port: int) -> None:
    buf = np.zeros((480, 640, 3), np.uint8)
    with ImageHub(addr(port), timeout=5) as hub, ImageSender(addr(port), timeout=5) as sender:
        def send_all() -> None:
            for value in range(1, 6):
                buf[:] = value
                sender.send_image("frame", buf)  # zero-copy, safe: the reply proves delivery
                buf[:] = 255

        peer = Peer(send_all)
        for value in range(1, 6):
            _, got = hub.recv_image(copy=False)
            assert got.min() == got.max() == value
            hub.send_reply()
        peer.outcome()


def test_close_is_idempotent_prompt_and_final(port: int) -> None:
    hub = ImageHub(addr(port))  # no timeout: blocks until closed
    waiting = Peer(hub.recv_image)
    time.sleep(0.2)
    started = time.monotonic()
    hub.close()
    hub.close()
    assert time.monotonic() - started < 1.0
    with pytest.raises(ClosedError):
        waiting.outcome(2)
    with pytest.raises(ClosedError):
        hub.recv_image()
    sender = ImageSender(addr(free_port()), timeout=None)  # REQ to nowhere, waiting for ever
    stuck = Peer(lambda: sender.send_image("x", image()))
    time.sleep(0.2)
    started = time.monotonic()
    sender.close()
    assert time.monotonic() - started < 1.0
    with pytest.raises(ClosedError):
        stuck.outcome(2)
    with pytest.raises(ClosedError):
        sender.send_jpg("x", b"\xff\xd8")


def test_pub_close_never_hangs_on_a_stalled_subscriber(port: int) -> None:
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sender = ImageSender(addr(port), REQ_REP=False)
    sub.connect(addr(port))
    time.sleep(0.2)
    big = image(0, (720, 1280, 3))
    for _ in range(40):  # ~110 MB the subscriber never reads
        sender.send_image("x", big)
    started = time.monotonic()
    sender.close()
    assert time.monotonic() - started < 1.0
    sub.close(0)
    ctx.term()


def test_bad_payloads_and_addresses(port: int) -> None:
    with ImageSender(addr(port), REQ_REP=False) as sender:
        with pytest.raises(PayloadError, match="ndarray"):
            sender.send_image("x", [[1, 2]])
        with pytest.raises(PayloadError, match="dtype"):
            sender.send_image("x", np.array([object()]))
        with pytest.raises(PayloadError, match="bytes-like"):
            sender.send_jpg("x", 12345)
        with pytest.raises(PayloadError, match="JSON"):
            sender.send_image(object(), image())
        with pytest.raises(TransportError, match=str(port)):
            ImageSender(addr(port), REQ_REP=False)  # already bound
    with pytest.raises(OptionError, match="sender's address"):
        ImageHub(REQ_REP=False)  # imagezmq's default 'tcp://*:5555' cannot be connected to
    with pytest.raises(OptionError, match="timeout"):
        ImageSender(addr(port), timeout=0)


def test_malformed_messages_are_answered_and_dropped(port: int) -> None:
    with ImageHub(addr(port), timeout=5) as hub:
        ctx = zmq.Context()
        req = ctx.socket(zmq.REQ)
        req.connect(addr(port))

        def talk() -> list[bytes]:
            replies = []
            for parts in ([b"garbage"], [b"{not json", b"x"],
                          [b'{"msg": "bad", "dtype": "uint8", "shape": [9, 9]}', b"short"],
                          [b'{"msg": "evil", "dtype": "O", "shape": [1]}', b"12345678"],
                          [b'{"msg": "good", "dtype": "uint8", "shape": [2, 2]}', b"abcd"]):
                req.send_multipart(parts)
                replies.append(req.recv())
            return replies

        peer = Peer(talk)
        name, got = hub.recv_image()
        hub.send_reply(b"fine")
        assert name == "good" and got.tobytes() == b"abcd"
        assert peer.outcome() == [b"ERROR: malformed message"] * 4 + [b"fine"]
        req.close(0)
        ctx.term()


def test_recv_jpg_drops_what_cannot_be_a_jpeg(port: int) -> None:
    with ImageHub(addr(port), timeout=5) as hub, ImageSender(addr(port), timeout=5) as sender:
        peer = Peer(lambda: [sender.send_image("float", np.zeros((4, 4, 3), np.float32)),
                             sender.send_image("two-channel", np.zeros((4, 4, 2), np.uint8)),
                             sender.send_image("grey", np.full((8, 8), 99, np.uint8))])
        name, jpg = hub.recv_jpg()
        hub.send_reply(b"OK")
        assert name == "grey" and cv2.imdecode(np.frombuffer(jpg, np.uint8), -1).shape == (8, 8)
        assert peer.outcome() == [b"ERROR: malformed message"] * 2 + [b"OK"]


# -- imagezmq interoperability ---------------------------------------------------------------


@pytest.mark.parametrize("jpg", [False, True])
def test_imagezmq_sender_to_our_hub(port: int, jpg: bool) -> None:
    frames = [image(i) for i in range(3)]
    with ImageHub(addr(port), timeout=5) as hub:
        def imagezmq_side() -> list[Any]:
            with imagezmq.ImageSender(connect_to=addr(port)) as sender:
                if jpg:
                    return [sender.send_jpg(f"rpi{i}", jpg_of(f)) for i, f in enumerate(frames)]
                return [sender.send_image(f"rpi{i}", f) for i, f in enumerate(frames)]

        peer = Peer(imagezmq_side)
        for i, frame in enumerate(frames):
            if jpg:
                name, data = hub.recv_jpg()
                assert data == jpg_of(frame)
            else:
                name, data = hub.recv_image()
                assert np.array_equal(data, frame)
            assert name == f"rpi{i}"
            hub.send_reply(b"OK")
        assert peer.outcome() == [b"OK"] * 3


@pytest.mark.parametrize("jpg", [False, True])
def test_our_sender_to_imagezmq_hub(port: int, jpg: bool) -> None:
    frames = [image(i, (30, 40, 3)) for i in range(3)] + [image(5, (10, 20))]
    theirs = imagezmq.ImageHub(open_port=addr(port))

    def imagezmq_side() -> list[Any]:
        got = []
        for _ in frames:
            name, data = theirs.recv_jpg() if jpg else theirs.recv_image()
            got.append((name, bytes(data) if jpg else np.array(data)))
            theirs.send_reply(b"OK")
        return got

    peer = Peer(imagezmq_side)
    with ImageSender(addr(port), timeout=5) as sender:
        for i, frame in enumerate(frames):
            if jpg:
                assert sender.send_jpg(f"n{i}", jpg_of(frame)) == b"OK"
            else:  # a non-contiguous view: imagezmq's hub must still get the right pixels
                assert sender.send_image(f"n{i}", frame[:, ::-1]) == b"OK"
    for i, (name, data) in enumerate(peer.outcome()):
        assert name == f"n{i}"
        assert data == jpg_of(frames[i]) if jpg else np.array_equal(data, frames[i][:, ::-1])
    theirs.close()


def _pump(send: Callable[[int], Any], stop: threading.Event) -> Peer:
    """Keep publishing until told to stop: PUB/SUB drops what is sent before subscribing."""
    def loop() -> int:
        count = 0
        while not stop.is_set():
            send(count)
            count += 1
            time.sleep(0.005)
        return count

    return Peer(loop)


@pytest.mark.parametrize("jpg", [False, True])
def test_imagezmq_pub_to_our_sub(port: int, jpg: bool) -> None:
    pattern = TestPatternGear((128, 96), timestamp=False)
    publisher = imagezmq.ImageSender(connect_to=addr(port), REQ_REP=False)
    stop = threading.Event()
    if jpg:
        pump = _pump(lambda n: publisher.send_jpg("pi", jpg_of(pattern.render(n))), stop)
    else:
        pump = _pump(lambda n: publisher.send_image("pi", pattern.render(n)), stop)
    with ImageHub(open_port=addr(port), REQ_REP=False, timeout=5) as hub:
        indices = []
        for _ in range(5):
            name, frame = hub.recv_image()
            assert name == "pi" and frame.shape == (96, 128, 3)
            indices.append(TestPatternGear.frame_index(frame))
            if not jpg:
                assert np.array_equal(frame, pattern.render(indices[-1]))
    stop.set()
    pump.outcome()
    publisher.close()
    assert indices == sorted(indices) and len(set(indices)) == 5


@pytest.mark.parametrize("jpg", [False, True])
def test_our_pub_to_imagezmq_sub(port: int, jpg: bool) -> None:
    pattern = TestPatternGear((128, 96), timestamp=False)
    stop = threading.Event()
    with ImageSender(addr(port), REQ_REP=False) as sender:
        if jpg:
            pump = _pump(lambda n: sender.send_jpg("pub", jpg_of(pattern.render(n))), stop)
        else:
            pump = _pump(lambda n: sender.send_image("pub", pattern.render(n)), stop)
        theirs = imagezmq.ImageHub(open_port=addr(port), REQ_REP=False)

        def imagezmq_side() -> list[tuple[str, np.ndarray]]:
            out = []
            for _ in range(5):
                if jpg:
                    name, buf = theirs.recv_jpg()
                    out.append((name, cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_COLOR)))
                else:
                    name, frame = theirs.recv_image()
                    out.append((name, np.array(frame)))
            return out

        received = Peer(imagezmq_side).outcome()
        stop.set()
        pump.outcome()
        theirs.close()
    for name, frame in received:
        assert name == "pub" and frame.shape == (96, 128, 3)
        if not jpg:
            assert np.array_equal(frame, pattern.render(TestPatternGear.frame_index(frame)))


# -- the seeds' "8 Raspberry Pis to one Mac" example ------------------------------------------


def test_eight_senders_to_one_hub_req_rep(port: int) -> None:
    names = [f"RPi{i:02d}" for i in range(1, 9)]

    def rpi(name: str) -> Callable[[], int]:
        def run() -> int:
            stream = TestPatternGear(resolution=(96, 64), framerate=0, frames=5).start()
            with ImageSender(connect_to=addr(port), timeout=5) as sender:
                sent = 0
                while (frame := stream.read()) is not None:
                    assert sender.send_image(name, frame) == b"OK"
                    sent += 1
            stream.stop()
            return sent
        return run

    seen: dict[str, list[int]] = {name: [] for name in names}
    with ImageHub(open_port=f"tcp://127.0.0.1:{port}", timeout=10) as image_hub:
        pis = [Peer(rpi(name)) for name in names]
        for _ in range(8 * 5):
            rpi_name, frame = image_hub.recv_image()
            seen[rpi_name].append(TestPatternGear.frame_index(frame))
            image_hub.send_reply(b"OK")
        assert [pi.outcome() for pi in pis] == [5] * 8
    assert seen == {name: [0, 1, 2, 3, 4] for name in names}


def test_three_publishers_to_one_subscribing_hub() -> None:
    ports = [free_port() for _ in range(3)]
    stop = threading.Event()
    senders = [ImageSender(connect_to=f"tcp://127.0.0.1:{p}", REQ_REP=False) for p in ports]
    patterns = [TestPatternGear((96, 64), framerate=0).start() for _ in ports]
    pumps = [_pump(lambda n, s=s, g=g, i=i: s.send_image(f"pi{i}", g.read()), stop)
             for i, (s, g) in enumerate(zip(senders, patterns))]
    counts: dict[str, int] = {}
    with ImageHub(open_port=addr(ports[0]), REQ_REP=False, timeout=5) as image_hub:
        for p in ports[1:]:
            image_hub.connect(addr(p))  # the hub must know every sender's address
        while len(counts) < 3 or min(counts.values()) < 3:
            name, frame = image_hub.recv_image()
            assert frame.shape == (64, 96, 3)
            counts[name] = counts.get(name, 0) + 1
    stop.set()
    for pump, sender in zip(pumps, senders):
        pump.outcome()
        sender.close()
    assert set(counts) == {"pi0", "pi1", "pi2"}


@pytest.mark.timeout(10)
def test_sender_default_is_bounded_not_an_eternal_wait() -> None:
    """imagezmq's sender hangs for good when the hub is gone; ours gives up by default."""
    sender = ImageSender(addr(free_port()))
    assert (sender.timeout, sender.retries) == (4.0, 3)
    sender.timeout = 0.1  # the same retry path, quicker
    started = time.monotonic()
    with pytest.raises(PeerTimeoutError):
        sender.send_image("x", image())
    assert time.monotonic() - started < 3.0
    sender.close()
