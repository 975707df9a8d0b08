"""A throwaway OpenSSH server on 127.0.0.1 for the SSH tunnel tests.

Its host key, the client key and its config live in a pytest tmp dir; the sshd is
stopped by PID. HOME points at a tmp home whose ~/.ssh/known_hosts trusts that host key,
so nothing in the real home is read or written.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
from conftest import free_port

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")  # Debian's sshd refuses to start without it


@dataclass
class Sshd:
    port: int
    pid: int
    user: str
    listen: str
    keyfile: Path  # authorized for `user`
    home: Path  # HOME for the test: .ssh/known_hosts trusts this server
    host_pub: str
    log: list[str] = field(default_factory=list)

    @property
    def target(self) -> str:
        host = f"[{self.listen}]" if ":" in self.listen else self.listen
        return f"{self.user}@{host}:{self.port}"

    def sessions(self) -> list[psutil.Process]:
        """The per-connection sshd processes (one per logged-in tunnel)."""
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []


def keygen(path: Path, passphrase: str = "") -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C",
                    "netgear-test", "-f", str(path)], check=True, timeout=30)


def _config(dirpath: Path, port: int, keys: Path, passwords: bool, listen: str) -> Path:
    config = dirpath / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", f"ListenAddress {listen}", f"HostKey {dirpath / 'host_key'}",
        "PidFile none", f"AuthorizedKeysFile {keys}",
        # CI runs as root; the files live under /tmp, which StrictModes would refuse
        "PermitRootLogin yes", "StrictModes no", "UsePAM no",
        f"PasswordAuthentication {'yes' if passwords else 'no'}",
        "KbdInteractiveAuthentication no", "AllowTcpForwarding local",
        "AllowAgentForwarding no", "X11Forwarding no", "PermitTTY no", "LogLevel VERBOSE",
        "MaxStartups 50", ""]))
    return config


@contextlib.contextmanager
def running_sshd(tmp: Path, monkeypatch: pytest.MonkeyPatch,
                 passwords: bool = False, listen: str = "127.0.0.1") -> Iterator[Sshd]:
    """Start ``sshd -D -e`` on a free loopback port; skip (with the reason) where it cannot."""
    if not os.access(SSHD, os.X_OK) or shutil.which("ssh-keygen") is None:
        pytest.skip(f"{SSHD} or ssh-keygen missing (make test installs openssh-server)")
    if not PRIVSEP_DIR.is_dir():
        try:
            PRIVSEP_DIR.mkdir(mode=0o755)
        except OSError as exc:
            pytest.skip(f"sshd needs {PRIVSEP_DIR} and it cannot be created: {exc}")
    keygen(tmp / "host_key")
    keygen(tmp / "client_key")
    (tmp / "authorized_keys").write_text((tmp / "client_key.pub").read_text())
    home = tmp / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    port = free_port()
    host_pub = (tmp / "host_key.pub").read_text().split()
    (home / ".ssh" / "known_hosts").write_text(f"[{listen}]:{port} {host_pub[0]} "
                                               f"{host_pub[1]}\n")
    monkeypatch.setenv("HOME", str(home))
    config = _config(tmp, port, tmp / "authorized_keys", passwords, listen)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    server = Sshd(port, proc.pid, _current_user(), listen, tmp / "client_key", home,
                  f"{host_pub[0]} {host_pub[1]}")
    listening = threading.Event()

    def read_log() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            server.log.append(line.rstrip())
            if "Server listening" in line:
                listening.set()
        listening.set()  # sshd exited: stop waiting

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    try:
        if not listening.wait(20) or proc.poll() is not None:
            pytest.skip("sshd did not start: " + " | ".join(server.log[-5:]))
        yield server
    finally:
        proc.kill()
        proc.wait(10)
        reader.join(5)


def _current_user() -> str:
    import getpass

    return getpass.getuser()


@contextlib.contextmanager
def throwaway_user() -> Iterator[tuple[str, str]]:
    """A locked-down system user with a random password, deleted afterwards.

    Only as root with useradd/chpasswd/userdel; otherwise the test is skipped.
    """
    tools = [shutil.which(t) for t in ("useradd", "chpasswd", "userdel")]
    if os.geteuid() != 0 or None in tools:
        pytest.skip("password login needs a throwaway user: root and useradd/chpasswd/userdel")
    name = f"ngssh{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(18)
    # no home, no login shell: the account can log in over ssh to forward ports and nothing
    # else, and only to the test's sshd on 127.0.0.1 (AllowTcpForwarding local).
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, timeout=30)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{password}", text=True, check=True,
                       timeout=30)
        yield name, password
    finally:
        subprocess.run(["userdel", name], check=False, timeout=30)
