"""Process and namespace plumbing for ``netfault``: commands, probes, cleanup, events.

Kept apart from the topologies so each file stays small; ``netfault`` re-exports the
public names (:func:`available`, :func:`cleanup_stale`, :func:`namespaces`,
:class:`Events`, :class:`NetFaultError`).
"""

from __future__ import annotations

import functools
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

PREFIX = "ngtest-"
STEP_TIMEOUT = 15.0  # one ip/tc command, a loaded 2-core box included


class NetFaultError(RuntimeError):
    """A command building or tearing down a topology failed (the message says which)."""


def run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=STEP_TIMEOUT)
    if check and done.returncode != 0:
        raise NetFaultError(f"`{' '.join(argv)}` failed ({done.returncode}): "
                            f"{done.stderr.strip() or done.stdout.strip()}")
    return done


@functools.cache
def available() -> str | None:
    """None when namespaces and veths can be made here, else why not (for pytest.skip)."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "network namespaces need root (run the tests as root)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed (apt-get install iproute2)"
    probe = f"{PREFIX}{os.getpid()}-probe"
    try:
        run(["ip", "netns", "add", probe])
    except (NetFaultError, OSError, subprocess.SubprocessError) as exc:
        return f"cannot create a network namespace: {exc}"
    try:
        run(["ip", "-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1"])
    except (NetFaultError, OSError, subprocess.SubprocessError) as exc:
        return f"cannot create a veth pair: {exc}"
    finally:
        run(["ip", "netns", "del", probe], check=False)
    return None


def namespaces(prefix: str = PREFIX) -> list[str]:
    """Names from ``ip netns list`` that start with ``prefix``."""
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(prefix)]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_pids(pids: list[int], grace: float = 5.0) -> None:
    """SIGKILL each pid and wait (bounded) for it to exit.

    Signalled through a pidfd, so a pid that exits and is reused after the open is never hit.
    """
    fds = []
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
            signal.pidfd_send_signal(fd, signal.SIGKILL)
            fds.append(fd)
        except (ProcessLookupError, OSError):
            continue
    deadline = time.monotonic() + grace
    try:
        while fds and time.monotonic() < deadline:
            ready, _, _ = select.select(fds, [], [], deadline - time.monotonic())
            for fd in ready:
                fds.remove(fd)
                os.close(fd)
    finally:
        for fd in fds:
            os.close(fd)


def delete_namespace(name: str) -> None:
    out = run(["ip", "netns", "pids", name], check=False).stdout
    kill_pids([int(p) for p in out.split() if p.isdigit()])
    run(["ip", "netns", "del", name], check=False)


def cleanup_stale(prefix: str = PREFIX) -> list[str]:
    """Delete namespaces named ``<prefix><pid>-...`` whose owning process is gone.

    Processes still inside them are killed first. A live owner (a parallel run) keeps its
    namespaces. Returns the names deleted.
    """
    pattern = re.compile(re.escape(prefix) + r"(\d+)-")
    removed = []
    for name in namespaces(prefix):
        match = pattern.match(name)
        if match and not _pid_alive(int(match.group(1))):
            delete_namespace(name)
            removed.append(name)
    return removed


class Events:
    """JSON-lines events (``{"event": kind, ...}``) from a child's stdout pipe, with timeouts.

    A buffered ``readline()`` could block forever on a silent child; this never does.
    """

    def __init__(self, proc: subprocess.Popen[Any]) -> None:
        if proc.stdout is None:
            raise NetFaultError("Events: start the process with stdout=subprocess.PIPE")
        self.proc, self.fd, self.buf = proc, proc.stdout.fileno(), b""

    def next(self, kind: str, timeout: float) -> dict[str, Any]:
        """The next event of ``kind`` (earlier events of other kinds are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                try:
                    event = json.loads(line)
                except ValueError:  # a plain-text line from a program that also logs
                    continue
                if isinstance(event, dict) and event.get("event") == kind:
                    return event
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise NetFaultError(f"{self.proc.args}: no {kind!r} event within {timeout} s")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise NetFaultError(f"{self.proc.args} exited before its {kind!r} event")
            self.buf += chunk
