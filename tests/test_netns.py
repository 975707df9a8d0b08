"""The network-fault harness does what it says: rate, delay, loss, outages, clean teardown."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
from netns import PREFIX, PROBE, Events, Topology, available, bridged, cleanup_stale, pair

PY = sys.executable
PORT = 9000  # inside our own namespaces, where nothing else listens


@pytest.fixture(autouse=True)
def needs_namespaces() -> Iterator[None]:
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    yield


def mine() -> list[str]:
    """Namespaces this test process made (prefix + our pid) that still exist."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines()
            if line.startswith(f"{PREFIX}{os.getpid()}-")]


def root_veths() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "type", "veth"],
                         capture_output=True, text=True).stdout
    return [line.split(":")[1].strip() for line in out.splitlines()]


def server(topo: Topology, ns: str, *args: str) -> subprocess.Popen[bytes]:
    proc = topo.run(ns, [PY, str(PROBE), *args], stdout=subprocess.PIPE)
    Events(proc).next("ready", 15)
    return proc


def result(topo: Topology, ns: str, *args: str, timeout: float = 30) -> dict[str, Any]:
    out = topo.exec(ns, [PY, str(PROBE), *args], timeout=timeout).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tc") is None, reason="tc (iproute2) is not installed")
def test_tbf_rate_limits_tcp_to_20_mbit() -> None:
    with pair(rate="20mbit") as topo:
        sink = server(topo, "b", "tcp-sink", str(PORT))
        result(topo, "a", "tcp-source", topo.addr["b"], str(PORT), "--seconds", "3")
        got = Events(sink).next("result", 15)
    mbit = got["bytes"] * 8 / got["seconds"] / 1e6
    assert 14 <= mbit <= 26, f"{mbit:.1f} Mbit/s through a 20 Mbit/s tbf"
    assert mine() == []


@pytest.mark.slow
def test_bridge_delay_gives_100_ms_rtt() -> None:
    with bridged(loss=0.0, delay=0.05, jitter=0.02) as topo:
        server(topo, "b", "udp-echo", str(PORT))
        got = result(topo, "a", "udp-rtt", topo.addr["b"], str(PORT), "--count", "60")
        stats = topo.bridge_stats()
    rtts = [r * 1000 for r in got["rtts"]]
    assert len(rtts) == 60, "no loss was asked for, yet pings went missing"
    # Each way 50 ± 20 ms, so the round trip is triangular on [60, 140] ms: nothing comes
    # back sooner than 60 ms, a tenth by 78 ms, half by 100 ms. A loaded box only adds
    # delay (scheduling), so the floors are tight and the ceilings wide.
    assert min(rtts) >= 58, rtts
    assert statistics.quantiles(rtts, n=10)[0] <= 110, rtts
    assert 85 <= statistics.median(rtts) <= 170, rtts
    assert max(rtts) - min(rtts) >= 15, "jitter of ±20 ms each way left no spread"
    assert stats["m-a->m-b"]["forwarded"] >= 60 and stats["m-a->m-b"]["dropped"] == 0
    assert topo.final_stats is not None and topo.final_stats["held"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("ordered", [False, True])
def test_jitter_reorders_unless_ordered(ordered: bool) -> None:
    # Pings 3 ms apart with ±20 ms of jitter: unordered, many overtake each other.
    with bridged(loss=0.0, delay=0.03, jitter=0.02, ordered=ordered) as topo:
        server(topo, "b", "udp-echo", str(PORT))
        got = result(topo, "a", "udp-rtt", topo.addr["b"], str(PORT), "--count", "100",
                     "--interval", "0.003")
    order = got["order"]
    assert sorted(order) == list(range(100))
    overtaken = sum(1 for x, y in zip(order, order[1:]) if y < x)
    if ordered:
        assert overtaken == 0, order
    else:
        assert overtaken >= 10, order


@pytest.mark.slow
def test_bridge_loss_drops_5_percent_of_udp() -> None:
    count = 3000
    with bridged(loss=0.05, delay=0.0, jitter=0.0, seed=7) as topo:
        # Quiet for 3 s means done (a starved bridge can pause); usually the last one ends it.
        sink = server(topo, "b", "udp-sink", str(PORT), "--idle", "3.0", "--last",
                      str(count - 1))
        result(topo, "a", "udp-blast", topo.addr["b"], str(PORT), "--count", str(count),
               "--pps", "3000")
        received = Events(sink).next("result", 30)["received"]
    lost = 1 - received / count
    assert 0.035 <= lost <= 0.065, f"lost {lost:.3%} of {count} datagrams at loss=0.05"
    dropped = topo.final_stats["m-a->m-b"]["dropped"]  # type: ignore[index]
    # The bridge is the only place they are lost (ARP frames share its coin flips).
    assert abs((count - received) - dropped) <= 3, (count, received, dropped)


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["pair", "bridged"])
def test_tcp_connection_survives_a_2_s_outage(shape: str) -> None:
    options: dict[str, Any] = {} if shape == "pair" else {"loss": 0.0, "delay": 0.005,
                                                           "jitter": 0.0}
    with Topology(shape, **options) as topo:
        server(topo, "b", "tcp-echo", str(PORT))
        hold = topo.run("a", [PY, str(PROBE), "tcp-hold", topo.addr["b"], str(PORT),
                              "--interval", "0.05"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        events = Events(hold)
        events.next("connected", 15)
        topo.link_down()
        try:
            time.sleep(2.0)  # the outage's length, not a synchronisation
        finally:
            topo.link_up()
        assert hold.stdin is not None
        hold.stdin.write(b"stop\n")
        hold.stdin.flush()
        got = events.next("result", 30)
        assert hold.wait(10) == 0
    assert got["sent"] >= 40 and got["echoed"] == got["sent"], got
    # Every echo came back on the same connection, and the outage really cut it.
    assert got["max_gap"] >= 1.8, got


def test_teardown_kills_processes_and_deletes_namespaces() -> None:
    with pair() as topo:
        sleeper = topo.run("a", ["sleep", "600"])
        names = list(topo.ns.values())
        assert set(names) <= set(mine())
    assert sleeper.poll() is not None, "a process started with run() outlived the topology"
    assert not set(names) & set(mine())
    topo.close()  # idempotent


def test_atexit_removes_what_a_run_left_open() -> None:
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(PROBE.parent)!r})
        from netfault import bridged
        topo = bridged().__enter__()
        print(json.dumps({{"event": "built", "names": list(topo.ns.values())}}), flush=True)
    """)
    child = subprocess.run([PY, "-c", script], capture_output=True, text=True, timeout=30)
    assert child.returncode == 0, child.stderr
    left = json.loads(child.stdout)["names"]
    assert len(left) == 3
    assert not set(left) & set(_all_ours()), "atexit left namespaces behind"


def test_cleanup_stale_removes_what_a_killed_run_left() -> None:
    # A child builds a bridged topology and is SIGKILLed: no __exit__, no atexit.
    script = textwrap.dedent(f"""
        import json, os, sys
        sys.path.insert(0, {str(PROBE.parent)!r})
        from netfault import bridged
        topo = bridged().__enter__()
        print(json.dumps({{"event": "built", "names": list(topo.ns.values())}}), flush=True)
        os.kill(os.getpid(), 9)
    """)
    # stderr goes nowhere: the orphaned bridge inherits it and would hold a pipe open.
    child = subprocess.Popen([PY, "-c", script], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
    try:
        left = Events(child).next("built", 30)["names"]
        assert child.wait(15) == -9
    finally:
        child.kill()
        child.wait(15)
        child.stdout.close()  # type: ignore[union-attr]
    assert len(left) == 3
    assert set(left) <= set(_all_ours())
    out = subprocess.run(["ip", "netns", "pids", left[1]], capture_output=True, text=True)
    orphans = [int(pid) for pid in out.stdout.split()]
    assert orphans, "the killed run's bridge should still be running in its namespace"
    removed = cleanup_stale(PREFIX)
    assert set(left) <= set(removed)
    assert not set(left) & set(_all_ours())
    assert all(exited(pid) for pid in orphans), orphans


def exited(pid: int) -> bool:
    """Gone, or a zombie its new parent (init) has not reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _all_ours() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


def test_available_says_why_not_without_root() -> None:
    # Import first: as nobody, this Python's own library (under /root) is unreadable.
    script = ("import os, sys; sys.path.insert(0, sys.argv[1]); import netsys; "
              "os.setuid(65534); print(netsys.available())")
    child = subprocess.run([PY, "-c", script, str(PROBE.parent)], capture_output=True,
                           text=True, timeout=30)
    assert child.returncode == 0, child.stderr
    assert "need root" in child.stdout, child.stdout


def test_options_are_checked_before_anything_is_built() -> None:
    with pytest.raises(ValueError, match="loss"):
        Topology("bridged", loss=1.5)
    with pytest.raises(ValueError, match="bridged"):
        Topology("pair", delay=0.1)
    with pytest.raises(ValueError, match="shape"):
        Topology("star")
    assert mine() == []


def test_nothing_left_behind() -> None:
    # Runs last in this file: every topology above is gone, and no veth was ever left in
    # the root namespace (the harness creates them inside the namespaces).
    assert mine() == []
    assert not [v for v in root_veths() if v.startswith(("to-", "m-"))], root_veths()
