"""``netgear relay``: cameras -> relay -> two viewers, all separate processes, undecoded.

The relay binds the cameras' ports on 127.0.0.1 and republishes each to the same port on
127.0.0.2 and 127.0.0.3, where two multi-server viewers listen (both loopback).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import pytest
from peers import Peer

from netgear.cli import main

VIEWERS = ["127.0.0.2", "127.0.0.3"]
COUNT = 150


class Relay:
    """`netgear relay` in its own process; its stdout lines collected."""

    def __init__(self, ports: list[int]) -> None:
        command = [sys.executable, "-m", "netgear.cli", "relay", "--address", "127.0.0.1",
                   "--port", *map(str, ports), "--stats-every", "0.3", "--json"]
        for host in VIEWERS:
            command += ["--to", host]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._follow, daemon=True)
        self._reader.start()

    def _follow(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, prefix: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in list(self.lines) if line.startswith(prefix)]
            if found:
                return found[-1]
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)  # polling a list another thread fills; bounded by timeout
        raise AssertionError(f"relay printed no {prefix!r} line; lines {self.lines[-5:]}, "
                             f"exit {self.proc.poll()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(10)
        finally:
            self._reader.join(5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.mark.slow
def test_cameras_to_relay_to_two_viewers(ports: list[int]) -> None:
    cam_ports = ports[:2]
    peers: list[Peer] = []
    relay = None
    try:
        viewers = [Peer("receiver", 2, cam_ports, address=host,
                        options={"multiserver_mode": True}).wait_ready()
                   for host in VIEWERS]
        peers += viewers
        relay = Relay(cam_ports)
        relay.wait_line("relaying")
        # each camera streams until told; values 0.. COUNT - 1, paced so joining is seen
        cams = [Peer("sender", 2, port, count=COUNT, interval=0.01, quiet=1,
                     options={"multiserver_mode": True, "stream_name": f"cam{port}"})
                for port in cam_ports]
        peers += cams
        for cam in cams:
            cam.wait_for(lambda lines: "done" in lines, 30)
        for viewer in viewers:
            viewer.wait_for(lambda lines: "end" in lines, 15)
        assert relay.stop() == 0
        stats = json.loads(relay.wait_line("stats ")[len("stats "):])
    finally:
        for peer in peers:
            peer.kill()
        if relay is not None:
            relay.kill()
    forwarded = {s["port"]: s for s in stats["streams"]}
    for viewer in viewers:
        got = viewer.frames_by_port()
        assert sorted(got) == sorted(map(str, cam_ports)), got.keys()
        for port, values in got.items():
            # PUB/SUB: frames before the subscription reached the camera are not sent;
            # from the first one on, nothing is missing, and the stream ran to its end
            assert values == list(range(values[0], COUNT)), (port, values[:5], values[-5:])
            assert values[0] < COUNT // 2, f"port {port} joined late: {values[0]}"
            assert forwarded[port]["frames"] >= len(values)
        viewer_stats = viewer.stats()
        assert all(s["dropped"] == 0 for s in viewer_stats["streams"].values())
    for port in map(str, cam_ports):
        assert forwarded[port]["frames"] <= COUNT and forwarded[port]["ends"] >= 1
        assert forwarded[port]["senders"] == 1 and forwarded[port]["name"] == f"cam{port}"


@pytest.mark.parametrize("argv, words", [
    (["--port", "5566", "--to", "host:5566"], "host name or IP only"),
    (["--port", "5566", "--to", "tcp://host"], "host name or IP only"),
    (["--port", "5566", "5566", "--to", "h"], "lists a port twice"),
    (["--port", "5566", "--to", "h", "--to", "h"], "lists a consumer twice"),
])
def test_relay_refuses_bad_arguments(argv: list[str], words: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["relay", *argv]) == 1
    assert words in capsys.readouterr().err


def test_relay_on_a_busy_port_says_so_and_releases_the_others(
        ports: list[int], capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports[1]))
        busy.listen()
        code = main(["relay", "--address", "127.0.0.1", "--port", str(ports[0]),
                     str(ports[1]), "--to", "127.0.0.2"])
    assert code == 1
    assert f"bind to tcp://127.0.0.1:{ports[1]} failed" in capsys.readouterr().err
    with socket.socket() as again:  # the port the relay did bind was released
        again.bind(("127.0.0.1", ports[0]))
