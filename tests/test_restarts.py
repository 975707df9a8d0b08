"""Peers crash (SIGKILL: no close(), no end-of-stream) and come back, in every pattern;
and every blocking call (send, recv, close) stays bounded whatever state the peer is in.

The peer that dies runs in its own process (tests/peers.py); the one that survives runs
here. What survives must carry on without being restarted itself.
"""

from __future__ import annotations

import threading
import time

import pytest
import zmq
from conftest import free_port
from helpers import Collector, await_subscription, wait_until
from peers import Peer, good_message, stamp, value_of

from netgear import ClosedError, NetGear, PeerTimeoutError

# a sender that outlives its peer: retries for up to ~12 s before giving up
PATIENT = {"request_timeout": 0.3, "max_retries": 40}
MIB = 1024 * 1024


class Streamer:
    """Sends stamped frames ``start, start+1, ...`` from a thread until ``count`` or stop()."""

    def __init__(self, gear: NetGear, count: int, interval: float = 0.005) -> None:
        self.gear = gear
        self.sent: list[int] = []
        self.error: BaseException | None = None
        self._count = count
        self._interval = interval
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for value in range(self._count):
                self.gear.send(stamp(value))
                self.sent.append(value)
                time.sleep(self._interval)
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float) -> list[int]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"sender still busy after {timeout}s"
        if self.error is not None:
            raise self.error
        return self.sent


def _frames(count: int):
    return lambda lines: sum(line.startswith("frame ") for line in lines) >= count


@pytest.mark.timeout(60)
def test_req_sender_streams_on_across_a_receiver_restart_and_loses_nothing(port):
    total, crash_at = 80, 20
    # the first receiver stops reading after frame 20 (it is killed right there), so the
    # sender is waiting for the reply to frame 21 when the process dies
    first = Peer("receiver", 1, port, pause_at=crash_at).wait_ready()
    tx = NetGear(address="127.0.0.1", port=port, pattern=1, **PATIENT)
    streamer = Streamer(tx, total)
    second = None
    try:
        first.wait_for(lambda lines: f"frame {crash_at}" in lines)
        # The reply to frame 20 is queued before "frame 20" is printed, but libzmq's I/O
        # thread may not have written it yet: wait until the sender has it, i.e. frame 21
        # went out (send_window=1) and send(22) is collecting its reply, before the kill.
        assert wait_until(lambda: streamer.sent[-1:] == [crash_at + 1], 10)
        first.kill()
        time.sleep(0.5)  # the sender is stuck in retries meanwhile
        # it keeps waiting for frame 21's reply rather than skipping it
        assert streamer.sent[-1] == crash_at + 1
        second = Peer("receiver", 1, port).wait_ready()
        assert streamer.join(30) == list(range(total))
        tx.close()  # end of stream: the new receiver's recv() returns None
        # the stats line follows "end"; read it before the finally kills the process
        stats = second.stats()
    finally:
        tx.close()
        first.kill()
        if second is not None:
            second.kill()
    assert first.values() == list(range(crash_at + 1))
    # every frame exactly once: the one in flight at the crash was resent to the new receiver,
    # and the receiver delivers a retried frame once however often it arrives
    assert second.values() == list(range(crash_at + 1, total))
    assert stats["streams"][str(port)]["dropped"] == 0


@pytest.mark.timeout(60)
def test_pair_sender_reconnects_after_the_receiver_process_restarts(port):
    total, crash_at = 150, 20
    first = Peer("receiver", 0, port, pause_at=crash_at).wait_ready()
    tx = NetGear(address="127.0.0.1", port=port, pattern=0, queue_bytes=8 * 64, **PATIENT)
    streamer = Streamer(tx, total)
    second = None
    try:
        first.wait_for(lambda lines: f"frame {crash_at}" in lines)
        first.kill()
        time.sleep(0.3)
        second = Peer("receiver", 0, port).wait_ready()
        assert streamer.join(30) == list(range(total))  # send() never failed
        tx.close()
        second.wait_for(lambda lines: "end" in lines)  # the END got through the new link
    finally:
        tx.close()
        first.kill()
        if second is not None:
            second.kill()
    assert first.values() == list(range(crash_at + 1))
    got = second.values()
    # what was queued towards the dead process died with it; from the reconnect on, every
    # frame arrives, in order
    assert got and got[0] > crash_at
    assert got == list(range(got[0], total))


@pytest.mark.timeout(60)
def test_pair_receiver_takes_a_restarted_sender_process(port):
    rx = NetGear(address="127.0.0.1", port=port, pattern=0, receive_mode=True)
    collector = Collector(rx, keep=value_of)
    first = Peer("sender", 0, port, interval=0.005, options=PATIENT).wait_ready()
    second = None
    try:
        assert wait_until(lambda: len(collector.items) >= 20, 10)
        first.kill()
        second = Peer("sender", 0, port, start=1000, count=100, options=PATIENT)
        second.wait_for(lambda lines: "done" in lines, 20)
        got = collector.join(10)  # the restarted sender's END ends the stream
        stats = rx.stats["streams"][str(port)]
    finally:
        first.kill()
        if second is not None:
            second.kill()
        rx.close()
    before = [v for v in got if v < 1000]
    after = [v for v in got if v >= 1000]
    assert before == list(range(len(before))) and len(before) >= 20
    assert after == list(range(1000, 1100))  # a live receiver loses nothing of the new sender
    assert got == before + after
    assert stats["restarts"] >= 1  # the sequence numbers started over


@pytest.mark.timeout(60)
def test_subscriber_picks_up_a_restarted_publisher(port):
    rx = NetGear(address="127.0.0.1", port=port, pattern=2, receive_mode=True)
    collector = Collector(rx, keep=value_of)
    first = Peer("sender", 2, port, interval=0.005).wait_ready()
    second = None
    try:
        assert wait_until(lambda: len(collector.items) >= 20, 10)
        first.kill()
        time.sleep(0.2)
        # runs ~1.5 s: its first frames may go before the subscription reaches it (PUB/SUB)
        second = Peer("sender", 2, port, start=1000, count=300, interval=0.005)
        second.wait_for(lambda lines: "done" in lines, 20)
        got = collector.join(10)  # and its END ends the stream
        stats = rx.stats["streams"][str(port)]
    finally:
        first.kill()
        if second is not None:
            second.kill()
        rx.close()
    before = [v for v in got if v < 1000]
    after = [v for v in got if v >= 1000]
    assert got == before + after
    assert before == sorted(set(before)) and len(before) >= 20
    assert after == sorted(set(after)) and after[-1] == 1299
    assert len(after) >= 200  # the stream was picked up, not just its tail
    assert stats["restarts"] >= 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pattern", [1, 2])
def test_multiserver_client_survives_one_server_restarting(pattern):
    port_a, port_b = free_port(), free_port()
    rx = NetGear(address="127.0.0.1", port=[port_a, port_b], pattern=pattern,
                 receive_mode=True, multiserver_mode=True)
    collector = Collector(rx, keep=lambda item: (item[0], value_of(item[1]), time.monotonic()))
    options = {"multiserver_mode": True, **PATIENT}
    server_a = Peer("sender", pattern, port_a, count=400, interval=0.005, options=options)
    server_b = Peer("sender", pattern, port_b, interval=0.005, options=options)
    restarted = None
    a, b = str(port_a), str(port_b)
    try:
        assert wait_until(lambda: sum(i[0] == b for i in collector.items) >= 20, 10)
        server_b.kill()
        killed_at = time.monotonic()
        # server A keeps flowing while B is gone
        assert wait_until(lambda: sum(i[0] == a and i[2] > killed_at + 0.2
                                      for i in collector.items) >= 20, 10)
        restarted = Peer("sender", pattern, port_b, start=1000, count=100, interval=0.005,
                         options=options)
        restarted.wait_for(lambda lines: "done" in lines, 20)
        server_a.wait_for(lambda lines: "done" in lines, 20)
        got = collector.join(10)  # every joined server ended: the stream is over
    finally:
        for peer in (server_a, server_b, restarted):
            if peer is not None:
                peer.kill()
        rx.close()
    from_a = [v for port, v, _ in got if port == a]
    from_b = [v for port, v, _ in got if port == b]
    before = [v for v in from_b if v < 1000]
    after = [v for v in from_b if v >= 1000]
    assert from_b == before + after and len(before) >= 20
    if pattern == 1:  # REQ/REP loses nothing
        assert from_a == list(range(400))
        assert after == list(range(1000, 1100))  # the restarted server re-joined
    else:  # PUB/SUB: in order, nothing twice; a publisher's first frames may precede its link
        assert from_a == sorted(set(from_a)) and from_a[-1] == 399
        assert after == sorted(set(after)) and after[-1] == 1099 and len(after) >= 50
    assert set(from_b) & set(range(1000)) == set(before)


@pytest.mark.timeout(30)
def test_a_second_sender_while_another_is_connected_is_served_with_req_rep(port):
    """Several senders to one receiver: REQ/REP (or multi-server mode) serves them all.

    (PAIR cannot: libzmq's PAIR keeps the first peer and ignores a second connection for
    good, which docs/reliability.md states as a known limitation of pattern 0.)
    """
    rx = NetGear(address="127.0.0.1", port=port, pattern=1, receive_mode=True)
    collector = Collector(rx, keep=value_of)
    ctx = zmq.Context()
    first = ctx.socket(zmq.REQ)  # a peer already talking to the receiver
    first.setsockopt(zmq.LINGER, 0)
    first.connect(f"tcp://127.0.0.1:{port}")
    tx = NetGear(address="127.0.0.1", port=port, pattern=1, request_timeout=2, max_retries=1)
    try:
        first.send_multipart(good_message(0, stamp(0)))
        assert first.poll(5000), "the first peer got no reply"
        first.recv_multipart()
        for value in range(1, 21):
            tx.send(stamp(value))  # raises if any frame is not acknowledged
        first.send_multipart(good_message(1, stamp(100)))
        assert first.poll(5000), "the first peer is no longer served"
        first.recv_multipart()
        tx.close()
        assert wait_until(lambda: collector.ended.is_set(), 5)
    finally:
        first.close()
        tx.close()
        rx.close()
        ctx.term()
    assert sorted(collector.items) == [0, *range(1, 21), 100]


# -- every blocking call is bounded ----------------------------------------------------------
@pytest.mark.timeout(30)
@pytest.mark.parametrize("pattern", [0, 1, 2])
def test_receiver_of_a_killed_sender_is_released_by_its_timeout(pattern, port):
    """SIGKILL sends no end-of-stream: receive_timeout / subscriber_timeout end the wait."""
    options = {"subscriber_timeout": 0.5} if pattern == 2 else {"receive_timeout": 0.5}
    rx = NetGear(address="127.0.0.1", port=port, pattern=pattern, receive_mode=True, **options)
    sender = Peer("sender", pattern, port, interval=0.005, options=PATIENT)
    try:
        # A loaded 2-core box can take longer than the 0.5 s bound to start the peer process:
        # wait for its first frame before the bound is what is under test.
        sender.wait_ready(20.0)
        assert _first_frame(rx, deadline=time.monotonic() + 20.0) is not None  # flowing
        sender.kill()
        start = time.monotonic()
        if pattern == 2:
            while rx.recv() is not None:  # what was queued, then silence means the end
                pass
        else:
            with pytest.raises(PeerTimeoutError):
                while True:
                    rx.recv()
        assert time.monotonic() - start < 2.0
    finally:
        sender.kill()
        rx.close()


def _first_frame(rx: NetGear, deadline: float) -> object:
    """recv() until a frame comes, riding out the short timeouts while the peer starts."""
    while time.monotonic() < deadline:
        try:
            item = rx.recv()
        except PeerTimeoutError:
            continue
        if item is not None:
            return item
    return None


FRAME = stamp(0, size=24 * 32 * 3)
BIG = stamp(0, size=MIB)
SENDER_STATES = ["idle", "mid-stream", "peer-gone", "never-connected", "blocked"]
SENDER_CASES = [(state, pattern, False) for state in SENDER_STATES for pattern in (0, 1, 2)]
SENDER_CASES += [("mid-stream", pattern, True) for pattern in (0, 1, 2)]
SENDER_CASES += [("peer-gone", 1, True)]


def _gear(port: int, pattern: int, receive_mode: bool, keys, **options) -> NetGear:
    if keys is not None:  # StoneHouse (CurveZMQ); both ends share one key folder
        options.update(secure_mode=1, custom_cert_location=str(keys))
    return NetGear(address="127.0.0.1", port=port, pattern=pattern, receive_mode=receive_mode,
                   **options)


def _case_id(case) -> str:
    state, pattern, secure = case
    return f"{state}-p{pattern}" + ("-secure" if secure else "")


class _Loop:
    """Calls ``action`` in a thread until it raises; keeps the exception."""

    def __init__(self, action) -> None:
        self.error: BaseException | None = None
        self.calls = 0
        self._action = action
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                self._action()
                self.calls += 1
        except BaseException as exc:
            self.error = exc


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", SENDER_CASES, ids=_case_id)
def test_sender_close_is_bounded_in_every_state(case, port, tmp_path):
    state, pattern, secure = case
    keys = tmp_path if secure else None
    rx = collector = loop = None
    if state != "never-connected":
        rx = _gear(port, pattern, True, keys)
        if state != "blocked":  # a blocked sender faces a receiver that never reads
            collector = Collector(rx)
    tx = _gear(port, pattern, False, keys, queue_bytes=2 * MIB)
    try:
        if state in ("mid-stream", "peer-gone"):
            if pattern == 2:
                await_subscription(tx, collector)
            for _ in range(10):
                tx.send(FRAME)
        if state == "peer-gone":
            rx.close()
            collector.join(5)
        if state == "blocked":
            # REQ waits for a reply, PAIR for queue space, PUB just keeps publishing
            loop = _Loop(lambda: tx.send(BIG))
            time.sleep(0.5)
        start = time.monotonic()
        tx.close()
        assert time.monotonic() - start < 2.0, f"close() took {time.monotonic() - start:.2f}s"
        if loop is not None:
            loop.thread.join(2.0)
            assert not loop.thread.is_alive(), "send() still blocked after close()"
            assert isinstance(loop.error, ClosedError), loop.error
    finally:
        tx.close()
        if rx is not None:
            rx.close()


RECEIVER_CASES = [(state, pattern, False) for state in ("idle", "blocked-in-recv", "mid-stream")
                  for pattern in (0, 1, 2)]
RECEIVER_CASES += [("mid-stream", pattern, True) for pattern in (0, 1, 2)]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", RECEIVER_CASES, ids=_case_id)
def test_receiver_close_is_bounded_in_every_state(case, port, tmp_path):
    state, pattern, secure = case
    keys = tmp_path if secure else None
    rx = _gear(port, pattern, True, keys)
    tx = collector = loop = None
    try:
        if state != "idle":
            collector = Collector(rx)
        if state == "mid-stream":
            tx = _gear(port, pattern, False, keys, request_timeout=0.3, max_retries=0)
            if pattern == 2:
                await_subscription(tx, collector)
            loop = _Loop(lambda: tx.send(FRAME))
            assert wait_until(lambda: len(collector.items) >= 10, 10)
        else:
            time.sleep(0.2)
        start = time.monotonic()
        rx.close()
        assert time.monotonic() - start < 2.0, f"close() took {time.monotonic() - start:.2f}s"
        if collector is not None:
            collector.join(2.0)  # recv() in the other thread returned None
    finally:
        rx.close()
        if tx is not None:
            start = time.monotonic()
            tx.close()  # its receiver is gone: bounded as well
            assert time.monotonic() - start < 2.0
            loop.thread.join(2.0)
            assert not loop.thread.is_alive()
