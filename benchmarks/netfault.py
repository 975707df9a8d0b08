"""Faulty links for tests and benchmarks: network namespaces, veth pairs, tbf, a lossy bridge.

Two shapes, each a context manager that builds on enter and tears down on exit::

    with pair(rate="20mbit") as topo:            # A <-> B, one veth pair
        ...
    with bridged(loss=0.05, delay=0.05, jitter=0.02) as topo:   # A <-> M <-> B
        server = topo.run("b", [sys.executable, "server.py"])
        topo.exec("a", [sys.executable, "client.py", topo.addr["b"]])

A is ``10.200.0.1/24`` and B ``10.200.0.2/24`` (``topo.addr``); those addresses exist
only inside the namespaces made here, so nothing reaches the host's own interfaces or
routes (the veths are created directly inside the namespaces). In the bridged shape M
runs ``netbridge.py`` on its two veth ends; see that file for the loss/delay model.

Needs root and iproute2 (``tc`` too for ``rate``); :func:`available` says why not.
Names are ``<prefix><pid>-<n>-<role>`` so parallel runs never clash, and everything
started here (processes, namespaces and with them the veths) goes at exit, at
interpreter exit (atexit) for what was left open, or via :func:`cleanup_stale` after a
run that was killed.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # imported from tests/ too, which puts only tests/ on the path
    sys.path.insert(0, _HERE)

from netsys import (  # noqa: E402
    PREFIX,
    STEP_TIMEOUT,
    Events,
    NetFaultError,
    available,
    cleanup_stale,
    delete_namespace,
    kill_pids,
    namespaces,
)
from netsys import run as _sh  # noqa: E402

__all__ = ["ADDR", "BRIDGE", "PREFIX", "Events", "NetFaultError", "Topology", "available",
           "bridged", "cleanup_stale", "namespaces", "pair"]

ADDR = {"a": "10.200.0.1", "b": "10.200.0.2"}
BRIDGE = Path(__file__).resolve().with_name("netbridge.py")
_counter = itertools.count()
_open: list[Topology] = []


class Topology:
    """A/B (``pair``) or A/M/B (``bridged``) namespaces; built by ``with``, removed on exit.

    Args:
        shape: ``"pair"`` (A <-> B veth) or ``"bridged"`` (A <-> M <-> B, M runs the bridge).
        rate: tbf rate on A's and B's egress (each direction), e.g. ``"20mbit"``; or bit/s.
        burst, limit_latency: tbf ``burst`` and ``latency`` (queue bound) when ``rate`` is set.
        loss, delay, jitter, dist, ordered, seed: the bridge's model (``bridged`` only):
            drop probability per frame, seconds each way ± jitter, ``"uniform"`` or
            ``"normal"``, ``ordered=True`` to forbid reordering, RNG seed.
        prefix: namespace name prefix (see :func:`cleanup_stale`).
    """

    def __init__(self, shape: str = "pair", *, rate: str | int | None = None,
                 burst: str = "32kb", limit_latency: str = "50ms", loss: float = 0.0,
                 delay: float = 0.0, jitter: float = 0.0, dist: str = "uniform",
                 ordered: bool = False, seed: int = 0, prefix: str = PREFIX) -> None:
        if shape not in ("pair", "bridged"):
            raise ValueError(f"shape={shape!r}: use 'pair' or 'bridged'")
        if shape == "pair" and (loss or delay or jitter):
            raise ValueError("loss/delay/jitter need shape='bridged' (pair has no bridge)")
        if not 0.0 <= loss < 1.0 or delay < 0 or jitter < 0:
            raise ValueError(f"loss={loss} must be in [0, 1); delay={delay} and "
                             f"jitter={jitter} must be >= 0 (seconds)")
        if dist not in ("uniform", "normal"):
            raise ValueError(f"dist={dist!r}: use 'uniform' or 'normal'")
        if isinstance(rate, int) and rate <= 0:
            raise ValueError(f"rate={rate}: must be > 0 bit/s, or a tc rate like '20mbit'")
        self.shape, self.rate, self.burst, self.limit_latency = shape, rate, burst, limit_latency
        self.bridge_args = [f"--loss={loss}", f"--delay={delay}", f"--jitter={jitter}",
                            f"--dist={dist}", f"--seed={seed}"] + (["--ordered"] * ordered)
        self.prefix = prefix
        stem = f"{prefix}{os.getpid()}-{next(_counter)}-"
        roles = "ab" if shape == "pair" else "amb"
        self.ns = {role: stem + role for role in roles}
        self.addr = dict(ADDR)
        # (namespace role, device): the end link_down() takes down; M's side when bridged
        # so neither endpoint loses its address or route, only the carrier.
        self.outage_link = ("b", "to-a") if shape == "pair" else ("m", "m-a")
        self.final_stats: dict[str, Any] | None = None
        self._procs: list[subprocess.Popen[Any]] = []
        self._bridge: subprocess.Popen[bytes] | None = None
        self._lines: Events | None = None
        self._built = False

    # -- building -------------------------------------------------------------------------
    def __enter__(self) -> Topology:
        if self._built:
            raise NetFaultError(f"{self.ns} is already built: one `with` at a time")
        if not _open:
            cleanup_stale(self.prefix)
        _open.append(self)
        self._built = True
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ip(self, role: str, *args: str) -> None:
        _sh(["ip", "-n", self.ns[role], *args])

    def _build(self) -> None:
        for role, name in self.ns.items():
            _sh(["ip", "netns", "add", name])
            # No IPv6: its router solicitations and DAD would be frames the tests count.
            _sh(["ip", "netns", "exec", name, "sysctl", "-q", "-w",
                 "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
            self._ip(role, "link", "set", "lo", "up")
        if self.shape == "pair":
            ends = {"a": "to-b", "b": "to-a"}
            _sh(["ip", "link", "add", "to-b", "netns", self.ns["a"], "type", "veth",
                 "peer", "name", "to-a", "netns", self.ns["b"]])
        else:
            ends = {"a": "to-m", "b": "to-m"}
            for role in "ab":
                _sh(["ip", "link", "add", "to-m", "netns", self.ns[role], "type", "veth",
                     "peer", "name", f"m-{role}", "netns", self.ns["m"]])
                # One MTU segment per frame, so the bridge drops and delays packets, not
                # 64 KiB TSO bursts.
                self._ip(role, "link", "set", "to-m", "gso_max_segs", "1")
                self._ip("m", "link", "set", f"m-{role}", "promisc", "on", "up")
        for role, dev in ends.items():
            self._ip(role, "addr", "add", f"{self.addr[role]}/24", "dev", dev)
            self._ip(role, "link", "set", dev, "up")
            if self.rate is not None:
                rate = f"{self.rate}bit" if isinstance(self.rate, int) else str(self.rate)
                _sh(["tc", "-n", self.ns[role], "qdisc", "add", "dev", dev, "root", "tbf",
                     "rate", rate, "burst", self.burst, "latency", self.limit_latency])
        if self.shape == "bridged":
            self._bridge = self.run("m", [sys.executable, str(BRIDGE), "m-a", "m-b",
                                          *self.bridge_args], stdout=subprocess.PIPE)
            self._lines = Events(self._bridge)
            self._lines.next("ready", STEP_TIMEOUT)

    # -- using ----------------------------------------------------------------------------
    def name(self, ns: str) -> str:
        """Full namespace name for a role (``"a"``, ``"b"``, ``"m"``) or a full name."""
        return self.ns.get(ns, ns)

    def run(self, ns: str, argv: list[str], **popen: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside namespace ``ns``; killed (by PID) at teardown if still up."""
        if not self._built:
            raise NetFaultError("Topology.run() before `with Topology(...)` built it")
        proc = subprocess.Popen(["ip", "netns", "exec", self.name(ns), *argv],
                                start_new_session=True, **popen)
        self._procs.append(proc)
        return proc

    def exec(self, ns: str, argv: list[str], *, timeout: float = 30.0, check: bool = True,
             **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside ``ns`` to completion; output captured as text."""
        done = subprocess.run(["ip", "netns", "exec", self.name(ns), *argv],
                              capture_output=True, text=True, timeout=timeout, **kwargs)
        if check and done.returncode != 0:
            raise NetFaultError(f"{argv} in {self.name(ns)} exited {done.returncode}: "
                                f"{done.stderr.strip()[-2000:]}")
        return done

    def link_down(self, ns: str | None = None, dev: str | None = None) -> None:
        """Outage: take a link end down (default ``outage_link``): no frame crosses."""
        role, default_dev = self.outage_link
        _sh(["ip", "-n", self.name(ns or role), "link", "set", dev or default_dev, "down"])

    def link_up(self, ns: str | None = None, dev: str | None = None) -> None:
        """End the outage started by :meth:`link_down`."""
        role, default_dev = self.outage_link
        _sh(["ip", "-n", self.name(ns or role), "link", "set", dev or default_dev, "up"])

    def bridge_stats(self, timeout: float = 5.0) -> dict[str, Any]:
        """The bridge's counters now: per direction received/forwarded/dropped/failed."""
        if self._bridge is None or self._lines is None:
            raise NetFaultError("bridge_stats(): only a bridged topology has a bridge")
        self._bridge.send_signal(signal.SIGUSR1)
        return self._lines.next("stats", timeout)

    # -- teardown -------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the bridge (keeping its final stats), kill what run() started, delete all.

        Idempotent; deleting a namespace deletes the veth ends inside it, and with them
        their peers.
        """
        if not self._built:
            return
        self._built = False
        if self._bridge is not None and self._bridge.poll() is None and self._lines:
            self._bridge.send_signal(signal.SIGTERM)
            with contextlib.suppress(NetFaultError, ValueError):
                self.final_stats = self._lines.next("stats", 5.0)
        for proc in self._procs:
            if proc.poll() is None:
                kill_pids([proc.pid])
            with contextlib.suppress(subprocess.TimeoutExpired):  # still delete the rest
                proc.wait(timeout=STEP_TIMEOUT)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        for name in self.ns.values():
            delete_namespace(name)
        if self in _open:
            _open.remove(self)


def pair(**options: Any) -> Topology:
    """A <-> B over one veth pair (``rate=`` for tbf); see :class:`Topology`."""
    return Topology("pair", **options)


def bridged(loss: float = 0.05, delay: float = 0.05, jitter: float = 0.02,
            rate: str | int | None = None, **options: Any) -> Topology:
    """A <-> M <-> B, M forwarding through the lossy, slow bridge; see :class:`Topology`."""
    return Topology("bridged", loss=loss, delay=delay, jitter=jitter, rate=rate, **options)


@atexit.register
def _close_all() -> None:
    for topo in list(_open):
        topo.close()
