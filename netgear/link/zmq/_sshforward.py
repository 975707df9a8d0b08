"""The SSH tunnel process :mod:`netgear.link.zmq.tunnel` starts; run as a script, not imported.

It logs in with paramiko, listens on a kernel-chosen 127.0.0.1 port and forwards every
connection made to it through the SSH session to the receiver: pyzmq's forwarding server
(``zmq.ssh.forward``) with a faster, lossless byte pump (see :func:`pump`). The parent
talks to it over pipes:

* stdin, first line: the JSON settings (the password never appears on a command line);
* stdout: one JSON line, ``{"port": N}`` once forwarding works, or
  ``{"error": kind, "message": text}`` when it cannot start;
* stdin closed (the parent closed the tunnel, or died): the process ends, so a crashed
  application never leaves a tunnel behind. It also ends when the SSH session drops, so
  the parent can tell the tunnel is gone and start a new one on the same port.

It runs as its own script rather than ``python -m netgear...`` so it does not import
netgear (numpy, OpenCV) just to move bytes.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import threading
from typing import Any

CHUNK = 1 << 18  # bytes per read: a 640x480 frame in 4 reads
WINDOW = 16 << 20  # SSH receive window per channel (paramiko's 2 MiB stalls on big frames)


def _report(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def main() -> int:
    config = json.loads(sys.stdin.readline())
    import paramiko  # after reading stdin: the parent already checked it is installed
    from zmq.ssh.forward import ForwardServer, Handler

    class UnknownHost(Exception):
        pass

    class Refuse(paramiko.MissingHostKeyPolicy):
        # Not paramiko's RejectPolicy: this one says which key was offered, so the
        # message can show the fingerprint to check before trusting it.
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            raise UnknownHost(f"{hostname} offered {key.get_name()} key {key.fingerprint}")

    client = paramiko.SSHClient()
    client.load_system_host_keys()  # ~/.ssh/known_hosts; a missing file is fine
    client.set_missing_host_key_policy(Refuse())
    keyfile, password, wait = config["keyfile"], config["password"], config["timeout"]
    pkey = None
    if keyfile is not None:
        # loaded here, not by connect(), which reports an unreadable key as a failed login
        try:
            pkey = _load_key(paramiko, keyfile, password)
        except paramiko.PasswordRequiredException:
            return _fail("key-locked", "it is encrypted")
        except (paramiko.SSHException, OSError, ValueError, TypeError) as exc:
            return _fail("key", str(exc) or type(exc).__name__)
        if pkey is None:
            return _fail("key-locked", "it is encrypted")
    try:
        client.connect(config["host"], config["port"], username=config["user"],
                       password=password, pkey=pkey,
                       # an explicit keyfile means that key; otherwise what ssh would try
                       look_for_keys=keyfile is None, allow_agent=keyfile is None,
                       timeout=wait, banner_timeout=wait, auth_timeout=wait)
    except UnknownHost as exc:
        return _fail("unknown-host", str(exc))
    except paramiko.BadHostKeyException as exc:
        return _fail("bad-host-key", str(exc))
    except paramiko.AuthenticationException as exc:
        return _fail("auth", str(exc) or type(exc).__name__)
    except paramiko.SSHException as exc:
        return _fail("ssh", str(exc) or type(exc).__name__)
    except OSError as exc:
        return _fail("connect", str(exc) or type(exc).__name__)
    transport = client.get_transport()
    assert transport is not None  # connect() succeeded, so there is one

    nodelay(transport.sock)

    class Forward(Handler):
        chain_host = config["remote_host"]
        chain_port = config["remote_port"]
        ssh_transport = transport

        def setup(self) -> None:
            nodelay(self.request)

        def handle(self) -> None:
            pump(self.request, transport, self.chain_host, self.chain_port)

    try:
        # a restarted tunnel takes its old port, so sockets connected to it reconnect
        server = ForwardServer(("127.0.0.1", config["local_port"]), Forward)
    except OSError:
        server = ForwardServer(("127.0.0.1", 0), Forward)
    stop = threading.Event()

    def until_stdin_closes() -> None:
        sys.stdin.read()
        stop.set()

    def until_session_ends() -> None:
        transport.join()  # paramiko's Transport is a thread that ends with the session
        stop.set()

    for target in (until_stdin_closes, until_session_ends, server.serve_forever):
        threading.Thread(target=target, daemon=True).start()
    _report(port=server.server_address[1])
    stop.wait()
    client.close()
    server.server_close()
    return 0


def pump(local: socket.socket, transport: Any, host: str, port: int) -> None:
    """Move bytes both ways between ``local`` and a channel to ``host:port``.

    Replaces pyzmq's ``Handler.handle``, which moves 1 KiB per select() (about 10 MB/s,
    a dozen 640x480 frames a second) and uses send(), which may write only part of a
    chunk and drop the rest of it, corrupting the stream.
    """
    try:
        chan = transport.open_channel("direct-tcpip", (host, port), local.getpeername(),
                                      window_size=WINDOW)
    except Exception:
        # the receiver is not there (yet): closing the connection makes the sender's
        # libzmq retry later, as if the connection had been refused
        return
    with chan:
        while True:
            ready, _, _ = select.select([local, chan], [], [])
            if local in ready:
                data = local.recv(CHUNK)
                if not data:
                    return
                chan.sendall(data)
            if chan in ready:
                data = chan.recv(CHUNK)
                if not data:
                    return
                local.sendall(data)


def _load_key(paramiko: Any, path: str, password: str | None) -> Any:
    """The private key at ``path``; None when it is encrypted and no password was given.

    ``password`` is the key's passphrase when the key is encrypted, else the login
    password, so an unencrypted key is loaded without it. Positional arguments: the
    keyword is passphrase= in paramiko 3.2-4 and password= from 5. cryptography, which
    decrypts, raises TypeError both for a missing and for a needless password.
    """
    try:
        return paramiko.PKey.from_path(path, None)
    except TypeError:
        if password is None:
            return None
    return paramiko.PKey.from_path(path, password.encode())


def nodelay(sock: Any) -> None:
    # Frames and their replies are small writes that wait on each other: with Nagle's
    # algorithm each REQ/REP round trip stalls on a delayed ACK (about 40 ms).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _fail(kind: str, message: str) -> int:
    _report(error=kind, message=message)
    return 1


def run() -> int:
    try:
        return main()
    except Exception as exc:  # a bug or an odd environment: say what, instead of a traceback
        return _fail("crash", f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(run())
