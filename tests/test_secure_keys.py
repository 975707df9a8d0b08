"""Secure mode: key folders, key helpers, option rules and set-up failures (SecurityError)."""

from __future__ import annotations

import os
import shutil
import stat
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq
from conftest import free_port
from secure_helpers import LOCAL, auth_threads, closing, deliver, frames, receiver, sender

import netgear.security.auth as auth_module
from netgear import NetGear, OptionError, SecurityError
from netgear.security import (
    allow_client,
    default_key_dir,
    generate_keys,
    list_keys,
    load_keypair,
    load_public_key,
)


@pytest.mark.timeout(15)
@pytest.mark.parametrize("damage", ["corrupt-secret", "missing-server-key", "garbage-key"])
def test_unusable_keys_raise_security_error_and_leave_no_socket(
        tmp_path: Path, port: int, damage: str) -> None:
    folder = generate_keys(tmp_path)
    if damage == "corrupt-secret":
        secret = folder.secret_file("server")
        secret.write_text(secret.read_text().replace("secret-key = \"", "secret-key = \"AAAA"))
        with pytest.raises(SecurityError):
            receiver(port, 0, tmp_path)
    elif damage == "missing-server-key":
        folder.public_file("server").unlink()  # half a pair is kept, never regenerated
        with pytest.raises(SecurityError, match="missing"):
            sender(port, 0, tmp_path)
    else:
        folder.public_file("server").write_text("curve\n    public-key = \"not-a-key\"\n")
        with pytest.raises(SecurityError):
            sender(port, 0, tmp_path)
    assert auth_threads() == 0
    plain = receiver(port, 0, None)  # the port was not left bound by the failed attempt
    plain.close()


@pytest.mark.timeout(10)
def test_no_curve_support_raises_security_error(tmp_path: Path, port: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth_module.zmq, "has", lambda feature: feature != "curve")
    with pytest.raises(SecurityError, match="CURVE"):
        receiver(port, 0, tmp_path)


@pytest.mark.timeout(20)
def test_both_ends_starting_together_on_a_fresh_folder(tmp_path: Path, port: int) -> None:
    keys = tmp_path / "fresh"
    gears: dict[str, NetGear] = {}
    barrier = threading.Barrier(2)

    def build(role: str) -> None:
        barrier.wait()
        make = receiver if role == "rx" else sender
        gears[role] = make(port, 1, keys, 2)

    threads = [threading.Thread(target=build, args=(r,)) for r in ("rx", "tx")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    with closing(gears["tx"], gears["rx"]):
        assert np.array_equal(deliver(gears["tx"], gears["rx"], frames(1), 1)[0], frames(1)[0])


@pytest.mark.timeout(20)
def test_overwrite_cert_gives_the_sender_a_fresh_key_a_live_receiver_accepts(
        tmp_path: Path, port: int) -> None:
    old = load_public_key(generate_keys(tmp_path).public_file("client"))
    rx = receiver(port, 1, tmp_path, 2)
    tx = sender(port, 1, tmp_path, 2, overwrite_cert=True)
    with closing(tx, rx):
        new = load_public_key(tmp_path / "public" / "client.key")
        assert new != old
        assert load_public_key(tmp_path / "allowed" / "client.key") == new
        assert np.array_equal(deliver(tx, rx, frames(1), 1)[0], frames(1)[0])


@pytest.mark.timeout(10)
@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_key_folder_layout_and_permissions(tmp_path: Path) -> None:
    folder = generate_keys(tmp_path / "k")
    for sub in ("", "private", "public", "allowed"):
        assert stat.S_IMODE((folder.root / sub).stat().st_mode) == 0o700
    for name in ("server", "client"):
        assert stat.S_IMODE(folder.secret_file(name).stat().st_mode) == 0o600
        public, _ = load_keypair(folder.secret_file(name))
        assert load_public_key(folder.public_file(name)) == public
    assert (folder.allowed / "client.key").read_bytes() == folder.public_file("client").read_bytes()


@pytest.mark.timeout(10)
def test_concurrent_generation_yields_one_consistent_keyring(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            generate_keys(tmp_path / "race")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors
    info = list_keys(tmp_path / "race")
    assert info.problems == []
    assert [k.name for k in info.pairs] == ["server", "client"]
    assert all(k.public_key and k.has_secret for k in info.pairs)


@pytest.mark.timeout(10)
def test_key_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_key_dir() == tmp_path / "home" / ".netgear" / "keys"
    a, b = generate_keys(tmp_path / "a"), generate_keys(tmp_path / "b")
    before = generate_keys(tmp_path / "a").public_file("server").read_bytes()
    assert generate_keys(tmp_path / "a").public_file("server").read_bytes() == before
    generate_keys(tmp_path / "a", overwrite=True, pairs=("server",))
    assert a.public_file("server").read_bytes() != before
    path = allow_client(a.root, b.public_file("client"))
    assert path.parent == a.allowed and path.name.startswith("client-")
    info = list_keys(a.root)
    allowed = {k.public_key for k in info.allowed}
    assert load_public_key(b.public_file("client")).decode() in allowed
    shutil.copy(b.public_file("server"), a.public_file("server"))
    assert any("does not match" in p for p in list_keys(a.root).problems)
    with pytest.raises(SecurityError):
        allow_client(a.root, tmp_path / "nope.key")
    with pytest.raises(SecurityError, match="secret"):
        allow_client(a.root, b.secret_file("client"))


@pytest.mark.timeout(10)
@pytest.mark.parametrize("options, key", [
    ({"secure_mode": 3}, "secure_mode"),
    ({"secure_mode": True}, "secure_mode"),
    ({"secure_mode": "1"}, "secure_mode"),
    ({"custom_cert_location": "/tmp/x"}, "custom_cert_location"),
    ({"secure_mode": 0, "overwrite_cert": True}, "overwrite_cert"),
    ({"secure_mode": 1, "custom_cert_location": " "}, "custom_cert_location"),
    ({"secure_mode": 1, "overwrite_cert": "yes"}, "overwrite_cert"),
])
def test_bad_security_options_raise_option_error(options: dict[str, Any], key: str) -> None:
    with pytest.raises(OptionError) as info:
        NetGear(address=LOCAL, port=free_port(), **options)
    assert info.value.key == key
    if key == "secure_mode" and options[key] == 3:
        assert "0" in str(info.value) and "IronHouse" in str(info.value)


@pytest.mark.timeout(10)
def test_receiver_refuses_overwrite_cert_and_inproc_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="sender only") as info:
        receiver(free_port(), 0, tmp_path, 1, overwrite_cert=True)
    assert info.value.key == "overwrite_cert"
    with pytest.raises(OptionError, match="inproc"):
        NetGear(protocol="inproc", port="x", receive_mode=True, secure_mode=1,
                custom_cert_location=str(tmp_path))
    assert not (tmp_path / "private").exists()  # nothing written before validation passed
    assert zmq.has("curve")


# -- folders another user could have written (issue 16, #7) -------------------------------
NOBODY = 65534


def _planted(tmp_path: Path) -> tuple[Path, Path]:
    """A receiver folder with a stranger's key in allowed/, and the stranger's own folder."""
    ours, stranger = tmp_path / "ours", tmp_path / "stranger"
    generate_keys(ours)
    generate_keys(stranger)
    shutil.copy(stranger / "public" / "client.key", ours / "allowed" / "stranger.key")
    return ours, stranger


@pytest.mark.timeout(15)
@pytest.mark.parametrize("loosen", ["folder-0777", "allowed-0777", "key-file-g+w",
                                    "secret-folder-o+w"])
def test_group_or_world_writable_key_folder_is_refused(tmp_path: Path, port: int,
                                                       loosen: str) -> None:
    ours, _ = _planted(tmp_path)
    target, mode = {
        "folder-0777": (ours, 0o777),
        "allowed-0777": (ours / "allowed", 0o777),
        "key-file-g+w": (ours / "allowed" / "stranger.key", 0o664),
        "secret-folder-o+w": (ours / "private", 0o702),
    }[loosen]
    os.chmod(target, mode)
    with pytest.raises(SecurityError) as info:
        receiver(port, 1, ours, 2)
    message = str(info.value)
    assert f"{target} is writable by group/others" in message
    assert ("chmod 700" if target.is_dir() else "chmod go-w") in message
    assert auth_threads() == 0
    # the sender side refuses it too: its public/server.key could have been swapped
    with pytest.raises(SecurityError, match="refusing key folder"):
        sender(port, 1, ours, 2)
    assert any("writable by group/others" in p for p in list_keys(ours).problems)
    # and once fixed, the folder works again
    os.chmod(target, 0o700 if target.is_dir() else 0o644)
    receiver(port, 1, ours, 2).close()


@pytest.mark.timeout(15)
@pytest.mark.parametrize("owned", ["folder", "allowed-key"])
def test_key_folder_owned_by_another_user_is_refused(tmp_path: Path, port: int,
                                                     owned: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another uid needs root")
    ours, _ = _planted(tmp_path)
    target = ours if owned == "folder" else ours / "allowed" / "stranger.key"
    os.chown(target, NOBODY, NOBODY)
    with pytest.raises(SecurityError) as info:
        receiver(port, 1, ours, 2)
    assert f"{target} is owned by uid {NOBODY}, not by you" in str(info.value)
    with pytest.raises(SecurityError, match="refusing key folder"):
        allow_client(ours, tmp_path / "stranger" / "public" / "client.key", name="again")


@pytest.mark.timeout(15)
def test_keys_show_warns_loudly_about_an_unsafe_folder(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    from netgear.cli import main

    ours, _ = _planted(tmp_path)
    assert main(["keys", "show", str(ours)]) == 0
    capsys.readouterr()
    os.chmod(ours, 0o777)
    os.chmod(ours / "allowed", 0o777)
    assert main(["keys", "show", str(ours)]) == 1
    out, err = capsys.readouterr()
    assert f"problem: {ours} is writable by group/others (mode 0777); run chmod 700" in out
    assert f"problem: {ours / 'allowed'} is writable by group/others" in out
    assert "WARNING" in err and "secure mode refuses it" in err
