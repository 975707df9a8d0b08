"""ssh_tunnel_* options: every mistake is refused before any socket or process starts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import free_port

from netgear import NetGear
from netgear.errors import DependencyError, OptionError
from netgear.link.zmq.tunnel import SshServer, parse_server


def refused(error: type[Exception] = OptionError, **kwargs: Any) -> Exception:
    """Construct with ``kwargs``; assert it raises ``error`` and opened nothing."""
    port = kwargs.setdefault("port", free_port())
    kwargs.setdefault("address", "127.0.0.1")
    children = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(error) as info:
        NetGear(**kwargs)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= children
    # nothing bound the port, so a receiver can have it now
    with NetGear(address="127.0.0.1", port=port[0] if isinstance(port, list) else port,
                 receive_mode=True):
        pass
    return info.value


@pytest.mark.parametrize(("text", "parsed"), [
    ("pi@192.168.1.7:2222", SshServer("pi", "192.168.1.7", 2222)),
    ("pi@camera-host", SshServer("pi", "camera-host", 22)),
    ("host.example.org:22", SshServer(None, "host.example.org", 22)),
    (" me@[::1]:2200 ", SshServer("me", "::1", 2200)),
])
def test_server_strings_that_parse(text: str, parsed: SshServer) -> None:
    assert parse_server(text) == parsed


@pytest.mark.parametrize("text", [
    "", "   ", "pi@", "@host", "pi@host:", "pi@host:0", "pi@host:65536", "pi@host:22:1",
    "pi@ho st", "ssh://pi@host", "pi@host/path", "a@b@c", "pi@::1:22",
])
def test_malformed_server_strings(text: str) -> None:
    error = refused(ssh_tunnel_mode=text)
    assert error.key == "ssh_tunnel_mode"
    assert "user@host:port" in str(error)


@pytest.mark.parametrize("value", [True, 22, ["pi@host"]])
def test_server_must_be_a_string(value: Any) -> None:
    assert refused(ssh_tunnel_mode=value).key == "ssh_tunnel_mode"


def test_tunnel_on_the_receiver_is_refused() -> None:
    error = refused(ssh_tunnel_mode="pi@127.0.0.1:22", receive_mode=True)
    assert error.key == "ssh_tunnel_mode" and "for the sender" in str(error)


@pytest.mark.parametrize("protocol", ["ipc", "inproc"])
def test_tunnel_needs_tcp(protocol: str) -> None:
    error = refused(ssh_tunnel_mode="pi@127.0.0.1:22", protocol=protocol, address=None)
    assert "protocol='tcp'" in str(error)


def test_tunnel_with_multiclient_is_refused() -> None:
    error = refused(ssh_tunnel_mode="pi@127.0.0.1:22", multiclient_mode=True, pattern=1,
                    port=[free_port(), free_port()])
    assert "cannot be combined with multiclient_mode" in str(error)


def test_tunnel_with_multiserver_is_refused() -> None:
    error = refused(ssh_tunnel_mode="pi@127.0.0.1:22", multiserver_mode=True, pattern=1)
    assert "cannot be combined with multiserver_mode" in str(error)


@pytest.mark.parametrize("key", ["ssh_tunnel_pwd", "ssh_tunnel_keyfile"])
def test_companions_need_the_mode(key: str, tmp_path: Path) -> None:
    keyfile = tmp_path / "id"
    keyfile.write_text("x")
    error = refused(**{key: "secret" if key == "ssh_tunnel_pwd" else str(keyfile)})
    assert error.key == key and "ssh_tunnel_mode" in str(error)


def test_missing_keyfile_is_refused(tmp_path: Path) -> None:
    error = refused(ssh_tunnel_mode="pi@127.0.0.1:22",
                    ssh_tunnel_keyfile=str(tmp_path / "nope"))
    assert error.key == "ssh_tunnel_keyfile" and "no such file" in str(error)


def test_missing_paramiko_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # An uninstalled package cannot be had for real here; None in sys.modules makes the
    # import fail exactly as it would.
    monkeypatch.setitem(sys.modules, "paramiko", None)
    error = refused(DependencyError, ssh_tunnel_mode="pi@127.0.0.1:22")
    assert "netgear[ssh]" in str(error)
