"""`netgear view --port P` as a one-port hub, `netgear serve --connect HOST:P --name N`, and
`serve` failing over along an address list."""

from __future__ import annotations

import signal
import threading
from typing import Any

import httpx
import pytest
from conftest import free_port
from test_cli import cli, read_url
from web_helpers import wait_for

from netgear import NetGear


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


@pytest.mark.timeout(40)
def test_serve_fails_over_along_an_address_list(capsys: Any) -> None:
    # the first hub is never up: after --request-timeout x 4 tries the frames go to the next
    from netgear.cli import main

    port = free_port()
    hub = NetGear(address="127.0.0.2", port=port, pattern=1, receive_mode=True,
                  multiserver_mode=True, receive_timeout=15.0)
    result: list[int] = []
    serve = threading.Thread(target=lambda: result.append(main([
        "serve", "--source", "testpattern", "--address", "127.0.0.1, 127.0.0.2",
        "--port", str(port), "--request-timeout", "0.3", "--name", "porch",
        "--frames", "5", "--resolution", "64x48", "--fps", "40"])), daemon=True)
    try:
        serve.start()
        names = []
        while (item := hub.recv()) is not None:
            names.append(item[0])
        serve.join(15)
        assert result == [0] and names == ["porch"] * 5
        assert "to 127.0.0.1,127.0.0.2:" in capsys.readouterr().out
    finally:
        hub.close()
    assert main(["serve", "--source", "testpattern", "--address", "hub-a,,hub-b"]) == 1
    assert "has an empty entry" in capsys.readouterr().err
