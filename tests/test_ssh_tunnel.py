"""ssh_tunnel_mode: frames sender -> SSH tunnel (a real sshd on 127.0.0.1) -> receiver."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest
from conftest import free_port
from secure_helpers import LOCAL, closing, collect, deliver, frames, receiver, sender
from ssh_helpers import Sshd, running_sshd, throwaway_user

from netgear import NetGear
from netgear.errors import OptionError, PeerTimeoutError, SecurityError, TransportError
from netgear.link.zmq.tunnel import SshTunnel
from netgear.modes.ssh import SshTunnelMode

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def sshd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sshd]:
    with running_sshd(tmp_path, monkeypatch) as server:
        yield server


def tunnel_of(gear: NetGear) -> SshTunnel:
    return next(m for m in gear._modes if isinstance(m, SshTunnelMode)).tunnel


def peer_pid(port: int, timeout: float = 3.0) -> int | None:
    """The pid owning the far end of the connection accepted on 127.0.0.1:``port``.

    psutil maps sockets to processes from two separate reads of /proc, so one snapshot can
    miss the owner (pid None) under load: look again for a while.
    """
    deadline = time.monotonic() + timeout
    while True:
        conns = psutil.net_connections("tcp")
        accepted = [c.raddr for c in conns if c.laddr and c.laddr.port == port and c.raddr
                    and c.status == psutil.CONN_ESTABLISHED]
        for far in accepted:
            for c in conns:
                if c.laddr and (c.laddr.ip, c.laddr.port) == (far.ip, far.port) and c.pid:
                    return c.pid
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def helpers() -> list[int]:
    """Pids of tunnel helper processes under this test process."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if "_sshforward" in " ".join(proc.cmdline()):
                found.append(proc.pid)
        except psutil.Error:  # exited meanwhile (an sshd session, say)
            pass
    return found


def assert_stopped(tunnel: SshTunnel, pid: int, server: Sshd) -> None:
    assert tunnel.pid is None and not tunnel.alive
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    # sshd's per-session process exits once the helper logged out (asynchronously)
    _, alive = psutil.wait_procs(server.sessions(), timeout=10)
    assert not alive, f"sshd sessions left: {alive}"
    assert helpers() == []
    assert not [t for t in threading.enumerate() if t.name.startswith("netgear-ssh")]


@pytest.mark.parametrize("pattern", [0, 1, 2])
def test_frames_go_through_the_tunnel(sshd: Sshd, pattern: int) -> None:
    port = free_port()
    rx = receiver(port, pattern, None)
    tx = sender(port, pattern, None, ssh_tunnel_mode=sshd.target,
                ssh_tunnel_keyfile=str(sshd.keyfile))
    tunnel = tunnel_of(tx)
    pid = tunnel.pid
    assert pid is not None and tunnel.alive
    sent = frames(5, seed=pattern)
    with closing(tx, rx):
        got = deliver(tx, rx, sent, pattern)
        # the receiver's peer is the sshd session process, not the sender
        owner = peer_pid(port)
        assert owner in {p.pid for p in sshd.sessions()}, (owner, sshd.sessions())
    assert all(np.array_equal(a, b) for a, b in zip(got, sent)) and len(got) == len(sent)
    assert_stopped(tunnel, pid, sshd)


@pytest.mark.parametrize("level", [1, 2])
def test_secure_mode_through_the_tunnel(sshd: Sshd, tmp_path: Path, level: int) -> None:
    port = free_port()
    keys = tmp_path / "keys"
    rx = receiver(port, 1, keys, level)
    tx = sender(port, 1, keys, level, ssh_tunnel_mode=sshd.target,
                ssh_tunnel_keyfile=str(sshd.keyfile))
    sent = frames(3, seed=level)
    with closing(tx, rx):
        got = deliver(tx, rx, sent, 1)
    assert all(np.array_equal(a, b) for a, b in zip(got, sent)) and len(got) == 3


def test_big_frames_both_ways_with_bidirectional_mode(sshd: Sshd) -> None:
    # 640x480 frames and replies span many reads and SSH packets in each direction
    port = free_port()
    rng = np.random.default_rng(7)
    sent = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(3)]
    back = rng.integers(0, 255, (480, 640), dtype=np.uint8)
    rx = receiver(port, 1, None, bidirectional_mode=True)
    # send_window=0: each send() returns its own frame's reply, so every reply crossed back
    tx = sender(port, 1, None, bidirectional_mode=True, ssh_tunnel_mode=sshd.target,
                ssh_tunnel_keyfile=str(sshd.keyfile), send_window=0)
    with closing(tx, rx):
        thread, got = collect(rx, 3, return_data=back)
        replies = [tx.send(frame, message=i) for i, frame in enumerate(sent)]
        thread.join(20)
    assert [m for m, _ in got] == [0, 1, 2]
    assert all(np.array_equal(f, s) for (_, f), s in zip(got, sent))
    assert all(np.array_equal(r, back) for r in replies)


def test_unencrypted_keyfile_with_a_password(sshd: Sshd) -> None:
    # vidgear lets both be given: the password is then for login, not for the key
    port = free_port()
    rx = receiver(port, 1, None)
    tx = sender(port, 1, None, ssh_tunnel_mode=sshd.target, ssh_tunnel_pwd="unused",
                ssh_tunnel_keyfile=str(sshd.keyfile))
    with closing(tx, rx):
        assert len(deliver(tx, rx, frames(2), 1)) == 2


def test_default_keys_from_home(sshd: Sshd) -> None:
    # no ssh_tunnel_keyfile: the keys ssh would try, ~/.ssh/id_ed25519 among them
    (sshd.home / ".ssh" / "id_ed25519").write_bytes(sshd.keyfile.read_bytes())
    port = free_port()
    rx = receiver(port, 1, None)
    tx = sender(port, 1, None, ssh_tunnel_mode=sshd.target)
    with closing(tx, rx):
        assert len(deliver(tx, rx, frames(2), 1)) == 2


def test_password_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with throwaway_user() as (user, password), \
            running_sshd(tmp_path, monkeypatch, passwords=True) as server:
        port = free_port()
        target = f"{user}@127.0.0.1:{server.port}"
        with pytest.raises(SecurityError, match=r"login as .* failed"):
            sender(port, 1, None, ssh_tunnel_mode=target, ssh_tunnel_pwd=password + "x")
        rx = receiver(port, 1, None)
        tx = sender(port, 1, None, ssh_tunnel_mode=target, ssh_tunnel_pwd=password)
        with closing(tx, rx):
            assert len(deliver(tx, rx, frames(2), 1)) == 2


def test_rebuilds_reuse_one_tunnel(sshd: Sshd) -> None:
    port = free_port()
    tx = sender(port, 1, None, ssh_tunnel_mode=sshd.target,
                ssh_tunnel_keyfile=str(sshd.keyfile), request_timeout=0.3, max_retries=2)
    tunnel = tunnel_of(tx)
    first = tunnel.pid
    assert first is not None
    try:
        with pytest.raises(PeerTimeoutError):  # nobody listens: the Lazy Pirate rebuilds
            tx.send(frames(1)[0])
        assert tx._transport.channels[0].rebuilds >= 2
        assert (tunnel.pid, tunnel.starts) == (first, 1)
    finally:
        tx.close()
    assert_stopped(tunnel, first, sshd)


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("pattern", [0, 1, 2])
def test_a_dropped_tunnel_comes_back_on_its_port(sshd: Sshd, pattern: int) -> None:
    port = free_port()
    rx = receiver(port, pattern, None)
    tx = sender(port, pattern, None, ssh_tunnel_mode=sshd.target,
                ssh_tunnel_keyfile=str(sshd.keyfile))
    tunnel = tunnel_of(tx)
    first, local = tunnel.pid, tunnel.local_port
    assert first is not None
    with closing(tx, rx):
        assert len(deliver(tx, rx, frames(2), pattern)) == 2
        old_sessions = {p.pid for p in sshd.sessions()}
        psutil.Process(first).kill()  # the session dies (server restart, network cut)
        assert wait_until(lambda: tunnel.starts == 2 and tunnel.alive, 30)
        # The receiver's old connection comes from the dead session's sshd process, and a
        # PAIR receiver takes one peer at a time: on a loaded box that process can outlive
        # the tunnel's restart, so wait until it has gone (it is not netgear's to close).
        assert wait_until(lambda: not old_sessions & {p.pid for p in sshd.sessions()}, 30)
        assert tunnel.pid != first and tunnel.local_port == local
        # the same socket (no rebuild for PAIR and PUB) reconnects to the new tunnel
        sent = frames(3, seed=9)
        if pattern == 2:
            # copies of the last frame published before the drop may still come first
            assert arrives(tx, rx, sent[0])
        else:
            got = deliver(tx, rx, sent, pattern)
            assert all(np.array_equal(a, b) for a, b in zip(got, sent)) and len(got) == 3
        second = tunnel.pid
    assert second is not None
    assert_stopped(tunnel, second, sshd)


def arrives(tx: NetGear, rx: NetGear, frame: np.ndarray) -> bool:
    """PUB/SUB: publish ``frame`` until ``rx`` gets it (older frames are skipped)."""
    seen = threading.Event()

    def publish() -> None:
        while not seen.is_set():
            tx.send(frame)
            seen.wait(0.02)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    try:
        while True:  # each recv() is bounded by receive_timeout
            if np.array_equal(rx.recv(), frame):
                return True
    finally:
        seen.set()
        thread.join(5)


def test_close_is_bounded_and_leaves_nothing(sshd: Sshd) -> None:
    port = free_port()
    rx = receiver(port, 0, None)
    tx = sender(port, 0, None, ssh_tunnel_mode=sshd.target,
                ssh_tunnel_keyfile=str(sshd.keyfile))
    tunnel = tunnel_of(tx)
    pid = tunnel.pid
    assert pid is not None
    helper = psutil.Process(pid)
    assert helper in psutil.Process().children()
    with closing(rx):
        deliver(tx, rx, frames(2), 0)
        # the receiver must be in recv() to acknowledge the end of the stream
        ended = threading.Thread(target=rx.recv, daemon=True)
        ended.start()
        start = time.monotonic()
        tx.close()
        took = time.monotonic() - start
        tx.close()  # idempotent
        ended.join(10)
        assert not ended.is_alive()
    assert took < 5.0, took
    assert_stopped(tunnel, pid, sshd)
    assert helpers() == []


def test_refused_port_is_a_transport_error() -> None:
    start = time.monotonic()
    with pytest.raises(TransportError, match="cannot reach an SSH server"):
        NetGear(address=LOCAL, port=free_port(), pattern=1,
                ssh_tunnel_mode=f"127.0.0.1:{free_port()}")
    assert time.monotonic() - start < 20
    assert helpers() == []


def test_not_an_ssh_server_is_a_transport_error() -> None:
    listener = socket.create_server((LOCAL, 0))

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        start = time.monotonic()
        with pytest.raises(TransportError, match="cannot reach an SSH server"):
            NetGear(address=LOCAL, port=free_port(), pattern=0,
                    ssh_tunnel_mode=f"me@127.0.0.1:{listener.getsockname()[1]}")
        assert time.monotonic() - start < 20
        assert helpers() == []
    finally:
        listener.close()
        thread.join(5)


def test_unknown_host_key_is_refused(sshd: Sshd) -> None:
    (sshd.home / ".ssh" / "known_hosts").write_text("")
    with pytest.raises(SecurityError, match=r"not in ~/\.ssh/known_hosts.*SHA256:.*ssh-keyscan"):
        sender(free_port(), 2, None, ssh_tunnel_mode=sshd.target,
               ssh_tunnel_keyfile=str(sshd.keyfile))


def test_changed_host_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    from ssh_helpers import keygen

    keygen(tmp_path / "other")
    kind, key = (tmp_path / "other.pub").read_text().split()[:2]
    (sshd.home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {kind} {key}\n")
    with pytest.raises(SecurityError, match="does not match"):
        sender(free_port(), 1, None, ssh_tunnel_mode=sshd.target,
               ssh_tunnel_keyfile=str(sshd.keyfile))


def test_wrong_key_is_a_security_error(sshd: Sshd, tmp_path: Path) -> None:
    from ssh_helpers import keygen

    keygen(tmp_path / "stranger")
    with pytest.raises(SecurityError, match="login as"):
        sender(free_port(), 1, None, ssh_tunnel_mode=sshd.target,
               ssh_tunnel_keyfile=str(tmp_path / "stranger"))
    assert helpers() == []


def test_unreadable_or_locked_keyfile_is_an_option_error(sshd: Sshd, tmp_path: Path) -> None:
    from ssh_helpers import keygen

    garbage = tmp_path / "garbage"
    garbage.write_text("not a key\n")
    with pytest.raises(OptionError, match="not a private key") as info:
        sender(free_port(), 1, None, ssh_tunnel_mode=sshd.target,
               ssh_tunnel_keyfile=str(garbage))
    assert info.value.key == "ssh_tunnel_keyfile"
    # an encrypted key: refused without its passphrase, used with it (ssh_tunnel_pwd)
    locked = tmp_path / "locked"
    keygen(locked, passphrase="open sesame")
    (tmp_path / "authorized_keys").write_text((tmp_path / "locked.pub").read_text())
    with pytest.raises(OptionError, match="encrypted; give its passphrase"):
        sender(free_port(), 1, None, ssh_tunnel_mode=sshd.target,
               ssh_tunnel_keyfile=str(locked))
    port = free_port()
    rx = receiver(port, 1, None)
    tx = sender(port, 1, None, ssh_tunnel_mode=sshd.target, ssh_tunnel_keyfile=str(locked),
                ssh_tunnel_pwd="open sesame")
    with closing(tx, rx):
        assert len(deliver(tx, rx, frames(2), 1)) == 2
    assert helpers() == []
