"""`netgear view --port P` as a one-port hub and `netgear serve --connect HOST:P --name N`."""

from __future__ import annotations

import signal
from typing import Any

import httpx
import pytest
from conftest import free_port
from test_cli import cli, read_url
from web_helpers import wait_for


def _streams(url: str) -> list[dict[str, Any]]:
    return httpx.get(url + "stats", timeout=2).json()["streams"]


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_view_hub_shows_servers_as_they_join_marks_stale_and_removes_them() -> None:
    port = free_port()
    viewer = cli("view", "--address", "127.0.0.1", "--port", str(port), "--web-port", "0",
                 "--stats-every", "0", "--stale-after", "0.6", "--drop-after", "2")
    cams: list[Any] = []
    try:
        url = read_url(viewer)
        common = ("--source", "testpattern", "--connect", f"127.0.0.1:{port}",
                  "--resolution", "64x48")
        door = cli("serve", *common, "--name", "door", "--fps", "10", "--seconds", "40")
        porch = cli("serve", *common, "--name", "porch", "--fps", "20", "--frames", "40")
        cams += [door, porch]

        def names(want: set[str], status: str = "live") -> Any:
            def check() -> bool:
                got = {s["name"]: s["status"] for s in _streams(url)}
                return set(got) == want and all(got[n] == status for n in want)
            return check

        assert wait_for(names({"door", "porch"}), timeout=20)
        assert porch.wait(timeout=20) == 0
        assert wait_for(names({"door"}), timeout=10)  # porch closed: its tile is gone
        door.send_signal(signal.SIGSTOP)  # a camera that hangs without closing anything
        try:
            assert wait_for(names({"door"}, "stale"), timeout=10)
            assert wait_for(names(set()), timeout=10)  # silent past --drop-after: removed
        finally:
            door.send_signal(signal.SIGCONT)
        assert wait_for(names({"door"}), timeout=10)  # it speaks again: it joins again
    finally:
        for proc in cams:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in cams:
            proc.communicate(timeout=15)
        viewer.send_signal(signal.SIGINT)
        _, err = viewer.communicate(timeout=15)
    assert viewer.returncode == 0, err
    assert all(proc.returncode == 0 for proc in cams), [p.returncode for p in cams]


@pytest.mark.timeout(20)
def test_serve_connect_refuses_address_or_port_beside_it(capsys: Any) -> None:
    from netgear.cli import main

    assert main(["serve", "--source", "testpattern", "--connect", "127.0.0.1:5555",
                 "--port", "5556"]) == 1
    assert "--connect HOST:PORT replaces" in capsys.readouterr().err
    assert main(["serve", "--connect", "nohost"]) != 0
    assert "is not HOST:PORT" in capsys.readouterr().err
