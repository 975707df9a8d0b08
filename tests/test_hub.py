"""The one-port hub: any number of named servers on one port, join/leave, limits, liveness."""

from __future__ import annotations

import itertools
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import wait_until

from netgear import NetGear, PeerTimeoutError
from netgear.security import generate_keys

HOST = "127.0.0.1"


def frame(index: int, seq: int) -> np.ndarray:
    image = np.zeros((12, 16, 3), np.uint8)
    image[..., 0], image[..., 1] = index, seq % 256
    return image


def hub_for(port: int, pattern: int = 1, **options: Any) -> NetGear:
    options.setdefault("receive_timeout", 10.0)
    return NetGear(address=HOST, port=port, pattern=pattern, receive_mode=True,
                   multiserver_mode=True, **options)


def camera(port: int, name: str | None, pattern: int = 1, **options: Any) -> NetGear:
    if name is not None:
        options["stream_name"] = name
    return NetGear(address=HOST, port=port, pattern=pattern, multiserver_mode=True,
                   request_timeout=2.0, **options)


class Camera:
    """A named server on a thread: ``count`` frames (PUB/SUB: once the hub saw one), close."""

    def __init__(self, port: int, name: str, index: int, count: int, pattern: int = 1,
                 seen: threading.Event | None = None, hold: threading.Event | None = None,
                 gate: threading.Event | None = None, **options: Any) -> None:
        self.args = (port, name, index, count, pattern, seen, hold, gate, options)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        port, name, index, count, pattern, seen, hold, gate, options = self.args
        try:
            cam = camera(port, name, pattern, **options)
            try:
                seq = 0
                if seen is not None:  # PUB/SUB: nothing counts before the subscription
                    while not seen.is_set():
                        cam.send(frame(index, seq), message="hello")
                        seq += 1
                        seen.wait(0.02)
                for counted in range(count):
                    cam.send(frame(index, seq), message="hello" if seq == 0 else None)
                    seq += 1
                    if counted == 0 and gate is not None:
                        gate.wait(30)  # until every camera joined: none may end it early
                if hold is not None:
                    hold.wait(30)
            finally:
                cam.close()
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def join(self, timeout: float = 30.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "camera still running"
        if self.error is not None:
            raise self.error


@pytest.mark.parametrize("pattern", [1, 2])
def test_one_port_takes_named_servers_until_every_one_closed(port: int, pattern: int) -> None:
    names = ["porch", "door", "yard"]
    seen = {name: threading.Event() for name in names} if pattern == 2 else {}
    hub = hub_for(port, pattern)
    everyone = threading.Event()
    cams = [Camera(port, name, i, 20, pattern, seen.get(name), gate=everyone)
            for i, name in enumerate(names)]
    got: dict[str, list[tuple[int, Any]]] = {name: [] for name in names}
    try:
        while (item := hub.recv()) is not None:
            name, image = item[0], item[-1]
            assert item[1] == "hello" if len(item) == 3 else len(item) == 2
            assert image.shape == (12, 16, 3) and image[0, 0, 0] == names.index(name)
            got[name].append(int(image[0, 0, 1]))
            if name in seen:
                seen[name].set()
            if all(got.values()):
                everyone.set()
            if sum(map(len, got.values())) == 30:
                live = hub.stats["hub"]["live"]
                assert set(live) <= set(names) and live  # still running
        for cam in cams:
            cam.join()
        stats = hub.stats
    finally:
        hub.close()
    for name, seqs in got.items():
        # the last 20 arrive in order, none lost (PUB/SUB: counted from the first one seen)
        assert seqs[-20:] == list(range(seqs[-1] - 19, seqs[-1] + 1)), name
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), name
    hub_stats = stats["hub"]
    assert hub_stats["joined"] == 3 and hub_stats["left"] == 3 and hub_stats["live"] == {}
    assert stats["streams"] == {}  # left streams are forgotten: a hub runs for months


def test_default_name_is_the_host_plus_a_suffix(port: int) -> None:
    import socket

    hub = hub_for(port)
    first, second = camera(port, None), camera(port, None)
    try:
        result: list[Any] = []
        thread = threading.Thread(target=lambda: result.extend(
            [hub.recv()[0], hub.recv()[0]]), daemon=True)
        thread.start()
        first.send(frame(0, 0))
        second.send(frame(1, 0))
        thread.join(10)
        host = socket.gethostname().split(".")[0]
        assert len(set(result)) == 2, result
        assert all(name.startswith(f"{host}-") and len(name) == len(host) + 7
                   for name in result), result
    finally:
        first.close(kill=True)
        second.close(kill=True)
        hub.close()


def test_max_streams_refuses_joiners_counts_them_and_admits_after_a_leave(port: int) -> None:
    # drop_after backs up a's end-of-stream, which REQ sends unanswered (best effort): once
    # in a CI run it did not get through within 10 s. The subject here is admission.
    hub = hub_for(port, max_streams=2, receive_timeout=1.0, stale_after=1.0, drop_after=4.0)
    a, b = (camera(port, n) for n in ("a", "b"))
    # send_window=0: c.send() returns once the hub answered that very frame, so none of the
    # refused frames is still on its way (and admitted) after a leaves
    c = camera(port, "c", send_window=0)
    got: list[str] = []
    try:
        stop = threading.Event()
        pump = threading.Thread(target=_drain, args=(hub, got, stop), daemon=True)
        pump.start()
        a.send(frame(0, 0))
        b.send(frame(1, 0))
        assert wait_until(lambda: {"a", "b"} <= set(got), 10)
        for seq in range(3):
            c.send(frame(2, seq))  # REP answers it (the sender is not stuck), hub drops it
        assert wait_until(lambda: hub.stats["hub"]["refused"] == 1, 10)
        assert "c" not in got and set(hub.stats["hub"]["live"]) == {"a", "b"}
        a.close()
        b_seq = itertools.count(1)

        def only_b_left() -> bool:
            b.send(frame(1, next(b_seq)))  # b stays live meanwhile (drop_after)
            return set(hub.stats["hub"]["live"]) == {"b"}

        assert wait_until(only_b_left, 10)
        c.send(frame(2, 3))
        assert wait_until(lambda: "c" in got, 10)
        assert set(hub.stats["hub"]["live"]) == {"b", "c"}
        assert hub.stats["hub"]["refused"] == 1  # counted once per name
    finally:
        for cam in (b, c):
            cam.close()
        stop.set()
        pump.join(10)
        hub.close()


def _drain(hub: NetGear, got: list[str], stop: threading.Event) -> None:
    """Receive until the stream ends or ``stop`` is set (checked each receive_timeout)."""
    while not stop.is_set():
        try:
            item = hub.recv()
        except PeerTimeoutError:
            continue
        if item is None:
            return
        got.append(item[0])


def test_run_forever_outlives_every_server_leaving(port: int) -> None:
    hub = hub_for(port, run_forever=True, receive_timeout=0.5)
    try:
        for index, name in enumerate(("first", "second")):
            cam = Camera(port, name, index, 3)
            got = [hub.recv()[0] for _ in range(3)]
            assert got == [name] * 3
            cam.join()
            # its END leaves the live set, but recv() keeps waiting instead of returning None
            with pytest.raises(PeerTimeoutError):
                hub.recv()
            assert hub.stats["hub"]["live"] == {}
        assert hub.stats["hub"]["left"] == 2
    finally:
        hub.close()


def test_silent_server_turns_stale_then_leaves_the_live_set(port: int) -> None:
    hub = hub_for(port, stale_after=0.3, drop_after=1.0, receive_timeout=5.0)
    quiet, chatty = camera(port, "quiet"), camera(port, "chatty")
    sent = [0]

    def chat_then(predicate: Any) -> Any:
        def tick() -> bool:
            # chatty keeps talking (send_window=1: this send collects the last reply)
            sent[0] += 1
            chatty.send(frame(1, sent[0]))
            assert hub.recv()[0] == "chatty"
            time.sleep(0.05)  # pacing the chatter, not synchronising
            return predicate(hub.stats)
        return tick

    try:
        quiet.send(frame(0, 0))
        chatty.send(frame(1, 0))
        assert sorted([hub.recv()[0], hub.recv()[0]]) == ["chatty", "quiet"]
        assert hub.stats["streams"]["quiet"]["state"] == "live"
        assert wait_until(chat_then(lambda st: st["streams"]["quiet"]["state"] == "stale"), 5)
        stats = hub.stats
        assert stats["hub"]["live"]["quiet"]["state"] == "stale"
        assert stats["hub"]["live"]["chatty"]["state"] == "live"
        assert wait_until(chat_then(lambda st: st["hub"]["dropped"] == 1), 5)
        stats = hub.stats
        assert set(stats["hub"]["live"]) == {"chatty"} and set(stats["streams"]) == {"chatty"}
        # the dropped server no longer holds the stream open: chatty's END ends it
        chatty.close()
        assert hub.recv() is None
    finally:
        quiet.close(kill=True)
        chatty.close(kill=True)
        hub.close()


def _camera_keys(root: Path, hub_keys: Path, name: str) -> Path:
    """A camera's own key folder, holding the hub's public key; its key allowed as ``name``."""
    folder = root / name
    (folder / "public").mkdir(parents=True)
    folder.chmod(0o700)
    shutil.copy(hub_keys / "public" / "server.key", folder / "public" / "server.key")
    generate_keys(folder)  # only the camera's own pair: the server's half exists
    shutil.copy(folder / "public" / "client.key", hub_keys / "allowed" / f"{name}.key")
    return folder


def test_ironhouse_ties_names_to_keys_so_a_camera_cannot_pose_as_another(
        port: int, tmp_path: Path) -> None:
    hub_keys = tmp_path / "hub"
    generate_keys(hub_keys)
    porch_keys = _camera_keys(tmp_path, hub_keys, "porch")
    door_keys = _camera_keys(tmp_path, hub_keys, "door")
    secure = {"secure_mode": 2}
    hub = hub_for(port, custom_cert_location=str(hub_keys), stream_keys=True,
                  receive_timeout=1.0, **secure)
    porch = camera(port, "porch", custom_cert_location=str(porch_keys), **secure)
    # the door camera's key, claiming to be the porch
    forger = camera(port, "porch", custom_cert_location=str(door_keys), **secure)
    got: list[str] = []
    try:
        stop = threading.Event()
        pump = threading.Thread(target=_drain, args=(hub, got, stop), daemon=True)
        pump.start()
        for seq in range(3):
            forger.send(frame(9, seq))  # answered, not delivered
        porch.send(frame(0, 0))
        assert wait_until(lambda: got == ["porch"], 10), got
        assert wait_until(lambda: hub.stats["hub"]["forged"] >= 3, 10)
        assert hub.stats["streams"]["porch"]["frames"] == 1
    finally:
        forger.close()
        porch.close()
        stop.set()
        pump.join(10)
        hub.close()


def test_stream_keys_as_a_mapping_and_refusals(port: int, tmp_path: Path) -> None:
    from netgear import NetGearError

    hub_keys = tmp_path / "hub"
    generate_keys(hub_keys)
    door_keys = _camera_keys(tmp_path, hub_keys, "door")
    missing = str(tmp_path / "nowhere.key")
    with pytest.raises(NetGearError, match=r"nowhere\.key"):
        hub_for(port, secure_mode=2, custom_cert_location=str(hub_keys),
                stream_keys={"door": missing})
    hub = hub_for(port, secure_mode=2, custom_cert_location=str(hub_keys),
                  stream_keys={"side": str(door_keys / "public" / "client.key")})
    cam = camera(port, "side", secure_mode=2, custom_cert_location=str(door_keys))
    try:
        cam.send(frame(3, 0))
        assert hub.recv()[0] == "side"
    finally:
        cam.close(kill=True)
        hub.close()


def test_fifty_servers_join_and_leave_one_port_while_frames_flow(port: int) -> None:
    count, frames, holders = 50, 5, 10
    hub = hub_for(port, receive_timeout=0.5)
    hold = threading.Event()
    cams: list[Camera] = []
    got: dict[str, list[int]] = {}
    try:
        for index in range(count):
            # staggered: early servers are leaving while later ones join
            cams.append(Camera(port, f"cam{index:02d}", index, frames,
                               hold=hold if index >= count - holders else None))
            time.sleep(0.01)  # pacing the joins, not synchronising
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                item = hub.recv()
            except PeerTimeoutError:
                item = ()
            if item:
                got.setdefault(item[0], []).append(int(item[-1][0, 0, 1]))
            if hub.stats["hub"]["left"] == count - holders and sum(map(len, got.values())) \
                    == count * frames:
                break
        stats = hub.stats
        expected = {f"cam{i:02d}" for i in range(count)}
        assert set(got) == expected
        assert all(seqs == list(range(frames)) for seqs in got.values()), got
        assert set(stats["hub"]["live"]) == {f"cam{i:02d}" for i in range(count - holders,
                                                                           count)}
        assert set(stats["streams"]) == set(stats["hub"]["live"])
        assert stats["hub"]["joined"] == count and stats["hub"]["refused"] == 0
        hold.set()
        while (item := hub.recv()) is not None:
            pass  # the holders' ENDs end the stream
        assert hub.stats["hub"]["live"] == {} and hub.stats["hub"]["left"] == count
    finally:
        hold.set()
        for cam in cams:
            cam.join()
        hub.close()


def test_filter_at_a_hub_lists_names(port: int) -> None:
    hub = hub_for(port, filter=["porch"], receive_timeout=5.0)
    other, porch = camera(port, "door"), camera(port, "porch")
    try:
        other.send(frame(1, 0))  # answered, dropped
        porch.send(frame(0, 0))
        assert hub.recv()[0] == "porch"
        assert set(hub.stats["streams"]) == {"porch"}
    finally:
        other.close(kill=True)
        porch.close(kill=True)
        hub.close()


def test_hub_options_elsewhere_are_refused(port: int) -> None:
    from netgear import OptionError

    with pytest.raises(OptionError, match="one-port hub") as info:
        NetGear(address=HOST, port=port, pattern=1, receive_mode=True, stale_after=1.0)
    assert info.value.key == "stale_after"
