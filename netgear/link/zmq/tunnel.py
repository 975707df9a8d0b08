"""SSH tunnels for a sender's connect: ``ssh_tunnel_mode="user@host:port"``.

A tunnel is one helper process (``netgear/link/zmq/_sshforward.py``) holding one paramiko SSH
session and pyzmq's forwarding server (``zmq.ssh.forward``). The sender's socket connects to
the helper's 127.0.0.1 port instead of the receiver; every Lazy Pirate rebuild reuses the
same tunnel. When the SSH session drops, a watcher thread starts the tunnel again on the
same local port, so the connected socket (PAIR, PUB as well as REQ) reconnects by itself.

Why not ``zmq.ssh.tunnel_connection`` itself: with paramiko it asks for a password with
``getpass()`` on the terminal when key login fails, accepts unknown host keys once a
password is given, and reports a failed login only by printing in its child process
while the socket connects to a port nobody serves; with the system ``ssh`` it returns the
pid of an ``ssh -f`` parent that has already exited, so the real tunnel cannot be stopped.
Its forwarder also moves 1 KiB per select() with send(), which may write part of a
chunk and drop the rest. The helper keeps pyzmq's forwarding server and fixes those:
failures come back as typed errors within a bound, host keys must be known, bytes are
never dropped, and close() ends the process.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import DependencyError, NetGearError, OptionError, SecurityError, TransportError

__all__ = ["SshServer", "SshTunnel", "check_keyfile", "check_server", "parse_server",
           "require_paramiko"]

logger = logging.getLogger(__name__)

HELPER = Path(__file__).with_name("_sshforward.py")
# Run the helper by path without importing the netgear package, and with neither netgear/
# (its module names would shadow others) nor the current directory (-c puts it first) on
# sys.path.
_BOOT = ("import sys; del sys.path[0]; import runpy; "
         "runpy.run_path(sys.argv[1], run_name='__main__')")
LOGIN_TIMEOUT = 10.0  # seconds for each of TCP connect, SSH banner and authentication
START_TIMEOUT = 3 * LOGIN_TIMEOUT + 10.0  # the above plus Python start-up on a busy box
STOP_TIMEOUT = 1.0  # the helper ends within this once its stdin closes, else it is killed
RETRY_MIN, RETRY_MAX = 0.5, 10.0  # seconds between attempts to restart a dropped tunnel

_SERVER = re.compile(
    r"(?:(?P<user>[^@\s/]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9._-]*)"
    r"(?::(?P<port>\d{1,5}))?"
)
_FORMAT = "'user@host:port' (user defaults to the current user, port to 22)"


@dataclass(frozen=True)
class SshServer:
    """The parsed value of ``ssh_tunnel_mode``."""

    user: str | None
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"


def parse_server(text: str) -> SshServer | None:
    match = _SERVER.fullmatch(text.strip())
    if match is None:
        return None
    port = int(match["port"] or 22)
    if not 1 <= port <= 65535:
        return None
    return SshServer(match["user"], match["host"].strip("[]"), port)


def check_server(value: str) -> str | None:
    """Option check of ``ssh_tunnel_mode``."""
    if parse_server(value) is None:
        return f"must look like {_FORMAT}, with a port from 1 to 65535"
    return None


def check_keyfile(value: str) -> str | None:
    """Option check of ``ssh_tunnel_keyfile``."""
    if not os.path.isfile(os.path.expanduser(value)):
        return "no such file; give the path of an SSH private key such as ~/.ssh/id_ed25519"
    return None


def require_paramiko() -> None:
    # The helper process imports it; this only makes a missing one fail up front.
    try:
        import paramiko  # noqa: F401
    except ImportError as exc:
        raise DependencyError("ssh_tunnel_mode needs paramiko: pip install 'netgear[ssh]'"
                              ) from exc


def _default_user() -> str:
    try:
        return getpass.getuser()
    except Exception as exc:  # no USER/LOGNAME and no passwd entry (some containers)
        raise OptionError("ssh_tunnel_mode has no user and the current one is unknown; "
                          "write it as 'user@host:port'", key="ssh_tunnel_mode") from exc


class SshTunnel:
    """One SSH tunnel from a local port to ``remote_host:remote_port`` as seen from the server."""

    def __init__(self, server: SshServer, remote_host: str, remote_port: int,
                 keyfile: str | None, password: str | None) -> None:
        self.server = server
        self.remote = (remote_host.strip("[]"), remote_port)
        self.keyfile = None if keyfile is None else os.path.abspath(os.path.expanduser(keyfile))
        self.password = password
        self.user = server.user or _default_user()
        self.local_port: int | None = None
        self.starts = 0
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()  # guards _proc between the watcher and close()
        self._closing = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return None if proc is None else proc.pid

    @property
    def alive(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    def connect(self, sock: Any, endpoint: str) -> None:
        """The connect step of ``Channel.open``: reach ``endpoint`` through the tunnel.

        Every (re)built socket connects to the same local port; while the tunnel is being
        restarted libzmq keeps retrying it, as for any peer that is briefly away.
        """
        sock.connect(f"tcp://127.0.0.1:{self.local_port}")

    def start(self) -> None:
        """Log in and start forwarding; raise a typed error (within START_TIMEOUT) if not.

        From then on a watcher thread starts the tunnel again, on the same local port,
        whenever its SSH session drops, until close().
        """
        self._launch(0)
        self._watcher = threading.Thread(target=self._watch, daemon=True,
                                         name=f"netgear-ssh-{self.server.host}")
        self._watcher.start()

    def _launch(self, port: int) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, str(HELPER)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            # own session: a Ctrl-C meant for the application must not cut the tunnel
            # before close() has flushed the last frames through it
            start_new_session=True)
        with self._lock:
            closing = self._closing.is_set()
            if not closing:
                self._proc = proc
        if closing:
            _stop(proc)
            raise TransportError(f"ssh tunnel via {self.server} closed while starting")
        settings = {"host": self.server.host, "port": self.server.port, "user": self.user,
                    "keyfile": self.keyfile, "password": self.password,
                    "remote_host": self.remote[0], "remote_port": self.remote[1],
                    "local_port": port, "timeout": LOGIN_TIMEOUT}
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(settings) + "\n")
            proc.stdin.flush()
            reply = _read_line(proc.stdout, START_TIMEOUT)
            answer = json.loads(reply) if reply else {"error": "exit", "message": ""}
            if "port" not in answer:
                raise self._error(answer)
        except BaseException:
            with self._lock:
                if self._proc is proc:
                    self._proc = None
            _stop(proc)
            raise
        self.starts += 1
        if port and answer["port"] != port:
            # the old port was taken meanwhile: only sockets built from now on find the tunnel
            logger.warning("ssh tunnel via %s moved from local port %d to %d", self.server,
                           port, answer["port"])
        self.local_port = int(answer["port"])
        logger.debug("ssh tunnel 127.0.0.1:%d -> %s -> %s:%d (pid %d)", self.local_port,
                     self.server, *self.remote, proc.pid)

    def _watch(self) -> None:
        """Start the tunnel again whenever it ends, until close(); with growing pauses."""
        while True:
            proc = self._proc
            if proc is None or self._closing.is_set():
                return
            proc.wait()
            if self._closing.is_set():
                return
            logger.warning("ssh tunnel via %s ended; starting it again", self.server)
            pause = RETRY_MIN
            while not self._closing.is_set():
                try:
                    self._launch(self.local_port or 0)
                    break
                except NetGearError as exc:
                    if self._closing.is_set():
                        return
                    logger.warning("ssh tunnel via %s: %s; next try in %gs", self.server,
                                   exc, pause)
                    self._closing.wait(pause)
                    pause = min(pause * 2, RETRY_MAX)

    def _error(self, answer: dict[str, Any]) -> Exception:
        kind, detail = answer.get("error"), answer.get("message", "")
        where = f"ssh_tunnel_mode={str(self.server)!r}"
        if kind == "unknown-host":
            return SecurityError(
                f"{where}: the SSH server's host key is not in ~/.ssh/known_hosts ({detail}). "
                f"Check the fingerprint, then add it: ssh-keyscan -p {self.server.port} "
                f"{self.server.host} >> ~/.ssh/known_hosts")
        if kind == "bad-host-key":
            return SecurityError(f"{where}: the SSH server's host key does not match "
                                 f"~/.ssh/known_hosts ({detail}); refusing to connect")
        if kind == "key-locked":
            return OptionError(f"ssh_tunnel_keyfile {self.keyfile!r} is encrypted; give its "
                               "passphrase as ssh_tunnel_pwd", key="ssh_tunnel_keyfile")
        if kind == "key":
            return OptionError(f"ssh_tunnel_keyfile {self.keyfile!r} is not a private key "
                               f"paramiko can read ({detail}), or ssh_tunnel_pwd is not its "
                               "passphrase", key="ssh_tunnel_keyfile")
        if kind == "auth":
            return SecurityError(
                f"{where}: SSH login as {self.user!r} failed ({detail}); check "
                "ssh_tunnel_keyfile (a private key whose public half is in the server's "
                "authorized_keys) or ssh_tunnel_pwd")
        if kind in ("connect", "ssh"):
            return TransportError(f"{where}: cannot reach an SSH server there ({detail}); "
                                  "check the host and port")
        if kind == "timeout":
            return TransportError(f"{where}: the SSH tunnel did not start within "
                                  f"{START_TIMEOUT:g}s; check the host and port")
        return TransportError(f"{where}: the SSH tunnel process ended before it was ready"
                              + (f" ({detail})" if detail else ""))

    def close(self) -> None:
        """Stop the helper process and its watcher (bounded: about 2 * STOP_TIMEOUT)."""
        self._closing.set()
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            _stop(proc)
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(STOP_TIMEOUT)


def _stop(proc: subprocess.Popen[str]) -> None:
    """End a helper: closing its stdin is its cue to log out; killed after STOP_TIMEOUT."""
    try:
        if proc.stdin is not None:
            proc.stdin.close()
    except OSError:
        pass  # it already exited: the pipe is broken
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT)
    if proc.stdout is not None:
        proc.stdout.close()


def _read_line(stream: Any, timeout: float) -> str:
    """One line from ``stream`` within ``timeout`` seconds.

    A thread, not select(): pipes cannot be select()ed on Windows.
    """
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        try:
            lines.put(stream.readline())
        except (OSError, ValueError):  # closed under it: the helper was stopped
            lines.put("")

    threading.Thread(target=read, daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return json.dumps({"error": "timeout"})
