"""NetGear over shared memory (protocol="shm"): every pattern, the modes, faults, cleanup.

In-process tests run the receiver in a thread; the fault tests run peers (tests/peers.py
with ``--protocol shm``) in their own processes, to SIGKILL them. Stream names are unique
per test and every /dev/shm entry and socket file of them is removed in ``finally``.
"""

from __future__ import annotations

import contextlib
import grp
import os
import stat
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

if not sys.platform.startswith("linux"):  # OFD locks and /dev/shm
    pytest.skip("the shm link needs Linux (/dev/shm and OFD locks)", allow_module_level=True)

from peers import Peer, cpu_seconds, stamp, value_of

from netgear import NetGear
from netgear.errors import OptionError, PayloadError, PeerTimeoutError, UsageError
from netgear.shm import segment_path
from netgear.shm.common import socket_dir

SHAPE = (120, 160, 3)


class Names:
    """Unique stream names for one test; their files are removed at the end."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def __call__(self) -> str:
        name = f"t{uuid.uuid4().hex[:12]}"
        self.made.append(name)
        return name

    def leftovers(self) -> list[str]:
        return [p for n in self.made for p in (segment_path(n), _sock(n)) if os.path.exists(p)]

    def clean(self) -> None:
        for path in self.leftovers():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _sock(name: str) -> str:
    return os.path.join(socket_dir(), name + ".sock")


@pytest.fixture
def names() -> Iterator[Names]:
    made = Names()
    try:
        yield made
    finally:
        made.clean()


def frame_of(value: int, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    return np.full(shape, value % 251, np.uint8)


class Collector:
    """A receiver's recv() loop in a thread; keeps copies of what arrived."""

    def __init__(self, gear: NetGear, slow: float = 0.0) -> None:
        self.gear, self.slow = gear, slow
        self.items: list[Any] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while (item := self.gear.recv()) is not None:
                self.items.append(item if not isinstance(item, np.ndarray) else item.copy())
                if self.slow:
                    time.sleep(self.slow)
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float = 20.0) -> list[Any]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "receiver did not finish"
        if self.error is not None:
            raise self.error
        return self.items


def pair(name: str, pattern: int, tx_opts: dict | None = None,
         rx_opts: dict | None = None) -> tuple[NetGear, NetGear]:
    tx = NetGear(protocol="shm", address=name, pattern=pattern, **(tx_opts or {}))
    try:
        rx = NetGear(protocol="shm", address=name, pattern=pattern, receive_mode=True,
                     receive_timeout=10, **(rx_opts or {}))
    except BaseException:
        tx.close(kill=True)
        raise
    return tx, rx


# -- options --------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, key", [
    ({"address": "../etc"}, "address"),
    ({"address": "a b"}, "address"),
    ({"address": ["cam0", "cam0"]}, "address"),
    ({"address": ["cam0"], "port": 5555}, "port"),
    ({"address": "cam0", "secure_mode": 1}, "secure_mode"),
    ({"address": "cam0", "ssh_tunnel_mode": "me@host:22"}, "ssh_tunnel_mode"),
    ({"address": "cam0", "shm_slot_bytes": 10}, "shm_slot_bytes"),
    ({"address": "cam0", "shm_slots": 1}, "shm_slots"),
])
def test_bad_shm_options_raise_before_anything_exists(kwargs: dict, key: str) -> None:
    before = set(os.listdir("/dev/shm"))
    with pytest.raises(OptionError) as err:
        NetGear(protocol="shm", **kwargs)
    assert err.value.key == key
    assert key in str(err.value) or "shm" in str(err.value)
    assert set(os.listdir("/dev/shm")) <= before


# -- patterns -------------------------------------------------------------------------------
def test_pair_lossless_in_order_read_only_views_and_reusable_sender_buffer(names: Names
                                                                           ) -> None:
    tx, rx = pair(names(), 0)
    values: list[int] = []
    errors: list[BaseException] = []

    def record() -> None:
        try:
            while (item := rx.recv()) is not None:
                assert not item.flags.writeable  # a view into shared memory
                assert item.min() == item.max()  # never torn
                values.append(int(item[0, 0, 0]))
        except BaseException as exc:
            errors.append(exc)

    try:
        thread = threading.Thread(target=record, daemon=True)
        thread.start()
        frame = np.empty(SHAPE, np.uint8)
        for k in range(200):
            frame.fill(k % 251)
            tx.send(frame)
            frame.fill(250)  # reused at once: what was sent must not change
        tx.close()
        thread.join(20)
        assert not errors
        assert values == [k % 251 for k in range(200)]
    finally:
        tx.close()
        rx.close()
    assert not names.leftovers()


def test_pair_slow_receiver_slows_the_sender_nothing_dropped(names: Names) -> None:
    tx, rx = pair(names(), 0, tx_opts={"shm_slots": 2})
    try:
        got = Collector(rx, slow=0.02)
        start = time.monotonic()
        for k in range(30):
            tx.send(frame_of(k))
        sent_in = time.monotonic() - start
        tx.close()
        items = got.join()
        # 2 slots: the sender can run at most ~2 frames ahead of a 20 ms/frame reader
        assert sent_in > 0.02 * 25
        assert [int(i[0, 0, 0]) for i in items] == list(range(30))
        assert rx.stats["streams"][next(iter(rx.stats["streams"]))]["dropped"] == 0
    finally:
        tx.close()
        rx.close()


def test_copy_true_returns_owned_writable_arrays(names: Names) -> None:
    tx, rx = pair(names(), 0, rx_opts={"copy": True})
    try:
        kept: list[np.ndarray] = []

        def run() -> None:
            while (item := rx.recv()) is not None:
                kept.append(item)  # no copy: copy=True made it ours
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        for k in range(8):
            tx.send(frame_of(k))
        tx.close()
        thread.join(10)
        assert [int(i[0, 0, 0]) for i in kept] == list(range(8))  # none overwritten later
        assert all(i.flags.writeable for i in kept)
    finally:
        tx.close()
        rx.close()


def test_reqrep_bidirectional_messages_and_jpeg_work_unchanged(names: Names) -> None:
    opts = {"bidirectional_mode": True, "jpeg_compression": True}
    tx, rx = pair(names(), 1, tx_opts={**opts, "send_window": 0}, rx_opts=opts)
    try:
        replies: list[Any] = []
        seen: list[Any] = []

        def serve() -> None:
            k = 0
            while (item := rx.recv(return_data={"ack": k, "arr": np.arange(k + 1)})) \
                    is not None:
                message, frame = item
                seen.append((message, frame.shape, frame.flags.writeable))
                k += 1
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        img = np.zeros((240, 320, 3), np.uint8)
        img[:, :160] = 200
        for k in range(6):
            replies.append(tx.send(img, message={"n": k, "blob": np.full(5000, k, np.uint8)}))
        tx.close()
        thread.join(10)
        assert [m["n"] for m, _, _ in seen] == list(range(6))
        assert all(int(m["blob"].sum()) == 5000 * m["n"] for m, _, _ in seen)
        assert all(shape == (240, 320, 3) for _, shape, _ in seen)
        # lockstep (send_window=0): each send() returns its own frame's reply data
        assert [r["ack"] for r in replies] == list(range(6))
        assert all(len(r["arr"]) == r["ack"] + 1 for r in replies)
    finally:
        tx.close()
        rx.close()
    assert not names.leftovers()


def test_pubsub_fans_out_and_conflate_returns_the_newest(names: Names) -> None:
    name = names()
    tx = NetGear(protocol="shm", address=name, pattern=2)
    subs = [NetGear(protocol="shm", address=name, pattern=2, receive_mode=True,
                    receive_timeout=10) for _ in range(2)]
    newest = NetGear(protocol="shm", address=name, pattern=2, receive_mode=True,
                     receive_timeout=10, conflate=True)
    try:
        got = [Collector(s) for s in subs]
        time.sleep(0.3)  # subscribers attach
        for k in range(40):
            tx.send(frame_of(k))
            time.sleep(0.002)
        # conflate: nobody called recv() while 40 frames came, so it skips to the newest
        seen = [int(newest.recv()[0, 0, 0])]
        while seen[-1] != 39:
            seen.append(int(newest.recv()[0, 0, 0]))
        assert seen == sorted(seen) and len(seen) < 10
        assert newest.stats["conflated"] >= 30
        tx.close()
        for collector in got:
            values = [int(i[0, 0, 0]) for i in collector.join()]
            assert values == sorted(values) and values[-1] == 39 and len(values) >= 5
    finally:
        tx.close()
        newest.close()
        for sub in subs:
            sub.close()
    assert not names.leftovers()


def test_slow_subscriber_drops_counted_and_never_blocks_the_publisher(names: Names) -> None:
    name = names()
    tx = NetGear(protocol="shm", address=name, pattern=2)
    fast = NetGear(protocol="shm", address=name, pattern=2, receive_mode=True,
                   receive_timeout=10)
    slow = NetGear(protocol="shm", address=name, pattern=2, receive_mode=True,
                   receive_timeout=10)
    try:
        got_fast, got_slow = Collector(fast), Collector(slow, slow=0.05)
        time.sleep(0.3)
        start = time.monotonic()
        for k in range(150):
            tx.send(frame_of(k))
            time.sleep(0.002)
        publishing = time.monotonic() - start
        tx.close()
        fast_values = [int(i[0, 0, 0]) for i in got_fast.join()]
        slow_items = got_slow.join()
        assert all(i.min() == i.max() for i in slow_items)  # never torn
        # paced by the slow subscriber (50 ms a frame) it would take 7.5 s
        assert publishing < 3.5
        assert len(slow_items) < len(fast_values)
        stream = next(iter(slow.stats["streams"].values()))
        # every frame either arrived or was counted as dropped (by sequence number)
        assert stream["frames"] + stream["dropped"] >= 140
        assert stream["dropped"] > 0
    finally:
        for gear in (tx, fast, slow):
            gear.close()


def test_multiserver_two_named_streams_into_one_receiver(names: Names) -> None:
    a, b = names(), names()
    rx = NetGear(protocol="shm", address=[a, b], pattern=1, receive_mode=True,
                 multiserver_mode=True, receive_timeout=10)
    try:
        senders = [Peer("sender", 1, None, protocol="shm", address=n, count=10,
                        options={"multiserver_mode": True}, quiet=1) for n in (a, b)]
        try:
            by_stream: dict[str, list[int]] = {}
            # recv() returns None when every server that joined so far has closed: one
            # process may finish before the other starts, so read on until both are in
            while sum(map(len, by_stream.values())) < 20:
                item = rx.recv()
                if item is not None:
                    by_stream.setdefault(item[0], []).append(value_of(item[1]))
            assert by_stream == {a: list(range(10)), b: list(range(10))}
            for peer in senders:
                assert peer.wait(10) == 0
        finally:
            for peer in senders:
                peer.kill()
    finally:
        rx.close()
    assert not names.leftovers()


def test_two_unrelated_streams_never_mix(names: Names) -> None:
    a, b = names(), names()
    tx_a, rx_a = pair(a, 0)
    tx_b, rx_b = pair(b, 0)
    try:
        got_a, got_b = Collector(rx_a), Collector(rx_b)
        for _ in range(20):
            tx_a.send(frame_of(1))
            tx_b.send(frame_of(2))
        tx_a.close()
        tx_b.close()
        assert {int(i[0, 0, 0]) for i in got_a.join()} == {1}
        assert {int(i[0, 0, 0]) for i in got_b.join()} == {2}
        assert len(got_a.items) == len(got_b.items) == 20
    finally:
        for gear in (tx_a, rx_a, tx_b, rx_b):
            gear.close()


def test_frame_larger_than_the_slot_raises_payload_error_naming_the_option(names: Names
                                                                           ) -> None:
    tx = NetGear(protocol="shm", address=names(), pattern=2, shm_slot_bytes=4096)
    try:
        with pytest.raises(PayloadError, match=r"shm_slot_bytes=\d+ or more"):
            tx.send(np.zeros((64, 64, 3), np.uint8))
        tx.send(np.zeros((32, 32, 3), np.uint8))  # fits: still usable
    finally:
        tx.close()


def test_segment_owner_only_by_default_and_group_option(names: Names) -> None:
    a, b = names(), names()
    group = grp.getgrgid(os.getgid()).gr_name
    private = NetGear(protocol="shm", address=a, pattern=2)
    shared = NetGear(protocol="shm", address=b, pattern=2, shm_group=group)
    try:
        assert stat.S_IMODE(os.stat(segment_path(a)).st_mode) == 0o600
        info = os.stat(segment_path(b))
        assert stat.S_IMODE(info.st_mode) == 0o640 and info.st_gid == os.getgid()
    finally:
        private.close()
        shared.close()
    assert not names.leftovers()


def test_close_is_bounded_without_a_peer(names: Names) -> None:
    name = names()
    for pattern in (0, 1, 2):
        tx = NetGear(protocol="shm", address=name, pattern=pattern)
        rx = NetGear(protocol=("shm"), address=names(), pattern=pattern, receive_mode=True)
        start = time.monotonic()
        tx.close()
        rx.close()
        tx.close()  # idempotent
        assert time.monotonic() - start < 3.0
    assert not names.leftovers()


# -- processes and faults -------------------------------------------------------------------
def test_idle_receiver_uses_under_one_percent_cpu(names: Names) -> None:
    name = names()
    tx = NetGear(protocol="shm", address=name, pattern=2)
    try:
        with Peer("receiver", 2, None, protocol="shm", address=name) as peer:
            peer.wait_ready()
            time.sleep(0.5)  # past start-up and attaching
            before = cpu_seconds(peer.proc.pid)
            start = time.monotonic()
            time.sleep(2.0)
            used = cpu_seconds(peer.proc.pid) - before
            share = used / (time.monotonic() - start)
            assert share < 0.01, f"idle receiver used {100 * share:.2f}% CPU"
    finally:
        tx.close()


def test_sigkilled_sender_receiver_raises_within_receive_timeout_and_reclaims(
        names: Names) -> None:
    name = names()
    rx = NetGear(protocol="shm", address=name, pattern=0, receive_mode=True,
                 receive_timeout=1.5)
    try:
        with Peer("sender", 0, None, protocol="shm", address=name, interval=0.01,
                  quiet=1) as sender:
            sender.wait_ready()
            assert rx.recv() is not None
            sender.kill()
            start = time.monotonic()
            with pytest.raises(PeerTimeoutError, match="receive_timeout"):
                while rx.recv() is not None:  # frames already announced come first
                    pass
            assert time.monotonic() - start < 1.5 + 2.0
        # the receiver saw its sender die and removed the dead segment
        assert not os.path.exists(segment_path(name))
    finally:
        rx.close()


def test_stale_segment_of_a_sigkilled_sender_is_reclaimed_at_the_next_start(
        names: Names) -> None:
    name = names()
    with Peer("sender", 2, None, protocol="shm", address=name, interval=0.01,
              quiet=1) as sender:
        sender.wait_ready()
        assert os.path.exists(segment_path(name))
        sender.kill()
    assert os.path.exists(segment_path(name))  # nobody cleaned up after SIGKILL
    tx = NetGear(protocol="shm", address=name, pattern=2)  # takes the name over
    try:
        assert os.path.exists(segment_path(name))
    finally:
        tx.close()
    assert not names.leftovers()


@pytest.mark.slow
@pytest.mark.parametrize("pattern", [0, 1])
def test_receiver_restart_sender_resumes(names: Names, pattern: int) -> None:
    name = names()
    opts = {"request_timeout": 0.5, "max_retries": 20}
    with Peer("sender", pattern, None, protocol="shm", address=name, count=60,
              interval=0.01, options=opts, quiet=1) as sender:
        first = Peer("receiver", pattern, None, protocol="shm", address=name, pause_at=10)
        try:
            first.wait_for(lambda lines: "frame 10" in lines)
        finally:
            first.kill()
        with Peer("receiver", pattern, None, protocol="shm", address=name) as second:
            second.wait_for(lambda lines: "end" in lines, timeout=30)
            assert sender.wait(10) == 0
            values = second.values()
            assert values and values[-1] == 59 and values == sorted(values)
    assert not names.leftovers()


def test_normal_exit_leaves_nothing_in_dev_shm(names: Names) -> None:
    name = names()
    with Peer("receiver", 0, None, protocol="shm", address=name) as rx:
        rx.wait_ready()
        with Peer("sender", 0, None, protocol="shm", address=name, count=5) as tx:
            assert tx.wait(10) == 0
        rx.wait_for(lambda lines: "end" in lines)
        assert rx.values() == list(range(5))
        assert rx.wait(10) == 0
    assert not names.leftovers()


def test_stamped_frames_carry_their_values(names: Names) -> None:
    # the peers' frames (tests/peers.py) go through shm unchanged
    tx, rx = pair(names(), 0)
    try:
        got = Collector(rx)
        for k in range(3):
            tx.send(stamp(k))
        tx.close()
        assert [value_of(i) for i in got.join()] == [0, 1, 2]
    finally:
        tx.close()
        rx.close()


# -- CLI --------------------------------------------------------------------------------------
@pytest.mark.timeout(40)
def test_demo_protocol_shm_cameras_reach_the_hub() -> None:
    import httpx
    from test_cli import cli, read_url
    from web_helpers import wait_for

    proc = cli("demo", "--protocol", "shm", "--seconds", "3", "--web-port", "0",
               "--stats-every", "0", "--streams", "2", "--resolution", "160x120")
    try:
        url = read_url(proc)

        def all_live() -> bool:
            streams = httpx.get(url + "stats", timeout=2).json()["streams"]
            return len(streams) == 2 and all(s["status"] == "live" for s in streams)

        wait_for(all_live, timeout=10)
        # the frames came through shared memory: the streams' segments exist
        assert os.path.exists(segment_path(f"demo{proc.pid}-2"))
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert "demo stopped" in out and "Traceback" not in err
        assert not [n for n in os.listdir("/dev/shm") if n.startswith(f"netgear.demo{proc.pid}-")]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for index in (1, 2):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(segment_path(f"demo{proc.pid}-{index}"))


def test_loan_sends_a_frame_written_in_place_and_a_lapsed_loan_frees_its_slot(
        names: Names) -> None:
    from netgear.link.shm import loan

    tx, rx = pair(names(), 0, tx_opts={"shm_slots": 2})
    try:
        got = Collector(rx)
        for k in range(12):
            frame = loan(tx, SHAPE)
            assert frame.flags.writeable and frame.shape == SHAPE
            frame[...] = k
            tx.send(frame)
            loan(tx, SHAPE)  # not sent: the next send() gives the slot back unused
            tx.send(frame_of(100 + k))
        tx.close()
        values = [int(i[0, 0, 0]) for i in got.join()]
        # with 2 slots, a lapsed loan that kept its slot would stall the stream at once
        assert values == [v for k in range(12) for v in (k, 100 + k)]
        with pytest.raises(UsageError):
            loan(rx, SHAPE)
    finally:
        tx.close()
        rx.close()


def test_bidirectional_pair_large_return_data_comes_back_whole(names: Names) -> None:
    # replies ride the wake-up socket in 64 KiB chunks: 300 kB must be reassembled
    opts = {"bidirectional_mode": True}
    tx, rx = pair(names(), 0, tx_opts={**opts, "send_window": 0}, rx_opts=opts)
    try:
        def serve() -> None:
            k = 0
            while rx.recv(return_data=np.full(300_000, k % 251, np.uint8)) is not None:
                k += 1
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        for k in range(4):
            data = tx.send(frame_of(k), message=k)
            assert data.shape == (300_000,) and data.min() == data.max() == k
        tx.close()
        thread.join(10)
    finally:
        tx.close()
        rx.close()


def test_pattern_mismatch_between_the_ends_is_a_clear_error(names: Names) -> None:
    from netgear.errors import TransportError

    name = names()
    early = NetGear(protocol="shm", address=name, pattern=0, receive_mode=True,
                    receive_timeout=2)  # started before its sender: finds out at recv()
    tx = NetGear(protocol="shm", address=name, pattern=2)
    try:
        tx.send(frame_of(1))
        with pytest.raises(TransportError, match=r"pattern 2\).*same pattern"):
            early.recv()
        with pytest.raises(TransportError, match=r"pattern 2\).*same pattern"):
            NetGear(protocol="shm", address=name, pattern=1, receive_mode=True)
        other = names()
        with (NetGear(protocol="shm", address=other, pattern=0),
              pytest.raises(TransportError, match=r"pattern 0 or 1\).*same pattern")):
            NetGear(protocol="shm", address=other, pattern=2, receive_mode=True)
    finally:
        tx.close()
        early.close()
    assert not names.leftovers()
