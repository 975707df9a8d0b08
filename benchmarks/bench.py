"""netgear benchmark: throughput, latency and JPEG against its peers, side by side.

Every measurement runs the sender and the receiver as separate processes
(multiprocessing, spawn) on 127.0.0.1, on a fresh free port. Contenders are
interleaved: each repetition runs every contender once, round-robin, so machine
noise hits them all alike. Sections:

1. Throughput: unpaced raw uint8 BGR frames, frames received per second after a
   warm-up (and MB/s of frame payload).
2. Latency: a sender paced at 30 fps; one-way latency p50/p95/p99 from a send
   time stamped into every frame (CLOCK_MONOTONIC is shared across processes).
3. JPEG q90 1920x1080: netgear's compression mode against vidgear's.

Usage::

    .venv/bin/python benchmarks/bench.py                   # full run, about 15 minutes
    .venv/bin/python benchmarks/bench.py --quick           # smoke run, about 2.5 minutes
    .venv/bin/python benchmarks/bench.py --output /tmp/bench.md
    .venv/bin/python benchmarks/bench.py --only netgear,imagezmq --sizes 640x480 --reps 5
    .venv/bin/python benchmarks/bench.py --sections latency,jpeg
    .venv/bin/python benchmarks/bench.py --list            # contender keys

The markdown report goes to stdout (and to ``--output``); progress goes to stderr.
From Python (e.g. a ``netgear bench`` command)::

    sys.path.insert(0, "<repo>/benchmarks")
    import bench
    exit_code = bench.main(["--quick"])

Files: ``contenders.py`` holds one small adapter per library, ``workers.py`` what
runs inside the sender and receiver processes, this file the plan and the report.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing as mp
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # spawned children import these modules by name, via sys.path
    sys.path.insert(0, _HERE)

import workers  # noqa: E402
from contenders import CONTENDERS, HOST, JPEG_QUALITY  # noqa: E402

THROUGHPUT = ("netgear-pair", "netgear-reqrep", "netgear-reqrep-lockstep", "netgear-pubsub",
              "netgear-pair-aio", "netgear-reqrep-aio", "pyzmq-pair",
              "pyzmq-pair-nocopy", "pyzmq-pair-tracked", "imagezmq", "vidgear", "tcp",
              *(k for k in CONTENDERS if k.startswith("old-")))  # NETGEAR_BENCH_OLD set
LATENCY = ("netgear-pair", "netgear-reqrep", "netgear-pubsub", "pyzmq-pair", "imagezmq",
           "vidgear", "tcp")
JPEG = ("netgear-jpeg", "netgear-jpeg-1t", "vidgear-jpeg")
JPEG_SIZE = (1920, 1080)
SIZE_ALIASES = {"480p": "640x480", "vga": "640x480", "1080p": "1920x1080",
                "4k": "3840x2160", "2160p": "3840x2160"}

# (label, numerator, denominator). Throughput ratios: >1 means the numerator is faster.
THROUGHPUT_RATIOS = (
    ("netgear REQ/REP / vidgear REQ/REP", "netgear-reqrep", "vidgear"),
    ("netgear REQ/REP / imagezmq", "netgear-reqrep", "imagezmq"),
    ("netgear PAIR / raw pyzmq PAIR", "netgear-pair", "pyzmq-pair"),
    ("netgear PAIR / raw pyzmq PAIR copy=False", "netgear-pair", "pyzmq-pair-nocopy"),
    ("netgear PAIR / raw pyzmq PAIR copy=False, tracked", "netgear-pair", "pyzmq-pair-tracked"),
    ("netgear PAIR / TCP ceiling", "netgear-pair", "tcp"),
    ("netgear REQ/REP / TCP ceiling", "netgear-reqrep", "tcp"),
    ("netgear PAIR / old commit", "netgear-pair", "old-netgear-pair"),
    ("netgear REQ/REP / old commit", "netgear-reqrep", "old-netgear-reqrep"),
    ("netgear PUB/SUB / old commit", "netgear-pubsub", "old-netgear-pubsub"),
    ("netgear PAIR, asyncio receiver / sync receiver", "netgear-pair-aio", "netgear-pair"),
    ("netgear REQ/REP, asyncio receiver / sync receiver", "netgear-reqrep-aio",
     "netgear-reqrep"),
)
# Latency ratios of p50: <1 means the numerator is faster.
LATENCY_RATIOS = (
    ("netgear PAIR / raw pyzmq PAIR", "netgear-pair", "pyzmq-pair"),
    ("netgear REQ/REP / imagezmq", "netgear-reqrep", "imagezmq"),
    ("netgear REQ/REP / vidgear REQ/REP", "netgear-reqrep", "vidgear"),
    ("netgear PAIR / TCP", "netgear-pair", "tcp"),
)

READY_TIMEOUT = 30.0  # spawn + imports + bind, generous for a loaded 2-core machine
FIRST_FRAME_TIMEOUT = 30.0  # sender spawn + imports + connect + first frame
RESULT_SLACK = 10.0  # beyond warm-up + measurement: a slow contender's last frame
SENDER_GRACE = 5.0  # after STOP: finish the current send, close (bounded in the child)
RECEIVER_GRACE = 6.0  # after the sender is gone: drain, close (bounded in the child)


# -- one run --------------------------------------------------------------------------------
@dataclass
class Outcome:
    """One contender, one size, one repetition."""

    status: str  # "ok", "failed" or "na"
    reason: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    teardown: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _stop_process(proc: Any, grace: float) -> str:
    """Join within ``grace``; else terminate, then kill. Say what it took."""
    proc.join(grace)
    if not proc.is_alive():
        return ""
    proc.terminate()
    proc.join(2.0)
    if not proc.is_alive():
        return "terminated"
    proc.kill()
    proc.join(2.0)
    return "killed"


class _Run:
    """The two processes of one measurement and the messages they post."""

    def __init__(self, key: str, spec: dict[str, Any]) -> None:
        ctx = mp.get_context("spawn")
        self.state = ctx.RawValue("i", workers.WAIT)
        self.conns: dict[str, Connection] = {}
        self.procs: dict[str, Any] = {}
        self.closed: dict[str, str] = {}
        self.sent: dict[str, Any] | None = None  # the sender's own counts
        for side, target in (("receiver", workers.receiver_main),
                             ("sender", workers.sender_main)):
            reader, writer = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=target, args=(spec, self.state, writer),
                               name=f"bench-{key}-{side}", daemon=True)
            proc.start()
            writer.close()
            self.conns[side], self.procs[side] = reader, proc

    def next_message(self, deadline: float) -> tuple[str, tuple[Any, ...]] | None:
        """The next (side, message); ("receiver", ("died", code)) when a child exits silently.

        None when ``deadline`` (monotonic) passes first.
        """
        while True:
            for side, conn in self.conns.items():
                if conn.poll():
                    try:
                        return side, conn.recv()
                    except (EOFError, OSError):
                        del self.conns[side]
                        self.procs[side].join(1.0)
                        return side, ("died", self.procs[side].exitcode)
            left = deadline - time.monotonic()
            if left <= 0 or not self.conns:
                return None
            wait(list(self.conns.values()), timeout=left)

    def finish(self, measured: bool) -> list[str]:
        """Stop both processes (bounded) and report anything unusual about it.

        After a failed run a peer is usually blocked waiting for the other; it is
        stopped at once and nothing is reported about it.
        """
        notes = []
        if self.state.value in (workers.WAIT, workers.GO):
            self.state.value = workers.STOP
        grace = SENDER_GRACE if measured else 0.5
        how = _stop_process(self.procs["sender"], grace)
        if how and measured:
            notes.append(f"sender {how} after {grace:g}s grace")
        self.state.value = workers.SENDER_GONE
        grace = RECEIVER_GRACE if measured else 0.5
        how = _stop_process(self.procs["receiver"], grace)
        if how and measured:
            notes.append(f"receiver {how} after {grace:g}s grace")
        # collect the "closed" reports the children posted while stopping
        for side, conn in list(self.conns.items()):
            with contextlib.suppress(EOFError, OSError):
                while conn.poll():
                    msg = conn.recv()
                    if msg[0] == "closed":
                        self.closed[side] = msg[1]
                    elif msg[0] == "sent":
                        self.sent = msg[1]
            conn.close()
        for side, status in self.closed.items():
            if status == "close() hung":
                notes.append(f"{side} close() hung (> {workers.CLOSE_GRACE:g}s)")
        return notes


def run_once(key: str, spec: dict[str, Any]) -> Outcome:
    """Measure one contender once; never raises for the contender's own failures."""
    for attempt in range(2):
        spec = {**spec, "key": key, "port": free_port()}
        run = _Run(key, spec)
        outcome = Outcome("failed", "interrupted")
        try:
            outcome = _supervise(run, spec)
        finally:
            outcome.teardown = run.finish(measured=outcome.status == "ok")
        if outcome.metrics and run.sent is not None:
            outcome.metrics.update(run.sent)
        # a port grabbed by someone else between free_port() and bind: try a new one
        if attempt == 0 and outcome.status == "failed" and "in use" in outcome.reason.lower():
            continue
        return outcome
    return outcome


def _supervise(run: _Run, spec: dict[str, Any]) -> Outcome:
    # three budgets: receiver bound, then first frame, then warm-up + measurement
    deadline = time.monotonic() + READY_TIMEOUT
    waiting_for = "receiver ready"
    while True:
        got = run.next_message(deadline)
        if got is None:
            return Outcome("failed", f"timeout waiting for {waiting_for}")
        side, msg = got
        kind = msg[0]
        if kind == "ready" and side == "receiver":
            run.state.value = workers.GO
            deadline = time.monotonic() + FIRST_FRAME_TIMEOUT
            waiting_for = f"the first frame ({FIRST_FRAME_TIMEOUT:g}s)"
        elif kind == "first":
            deadline = time.monotonic() + spec["warmup"] + spec["seconds"] + RESULT_SLACK
            waiting_for = "the measurement to end"
        elif kind == "result":
            return Outcome("ok", metrics=msg[1])
        elif kind == "na":
            return Outcome("na", f"n/a ({msg[1]})")
        elif kind == "failed":
            return Outcome("failed", msg[1])
        elif kind == "died":
            return Outcome("failed", f"{side} process died (exit code {msg[1]})")
        elif kind == "sent":
            run.sent = msg[1]  # the sender hit its own deadline; the receiver will report
        elif kind == "closed":
            run.closed[side] = msg[1]


# -- the plan -------------------------------------------------------------------------------
@dataclass
class Section:
    name: str
    title: str
    contenders: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    seconds: float
    fps: float | None  # None: unpaced


def build_sections(args: argparse.Namespace) -> list[Section]:
    keys = _filter(args.only)
    sections = {
        "throughput": Section("throughput", "Throughput (unpaced, raw uint8 frames)",
                              THROUGHPUT, args.sizes, args.seconds, None),
        "latency": Section("latency", f"One-way latency at {args.fps:g} fps (paced sender)",
                           LATENCY, args.latency_sizes, args.latency_seconds, args.fps),
        "jpeg-throughput": Section("jpeg-throughput", "JPEG throughput", JPEG, (JPEG_SIZE,),
                                   args.seconds, None),
        "jpeg-latency": Section("jpeg-latency", "JPEG latency", JPEG, (JPEG_SIZE,),
                                args.latency_seconds, args.fps),
    }
    wanted = []
    for name in args.sections:
        names = ("jpeg-throughput", "jpeg-latency") if name == "jpeg" else (name,)
        for n in names:
            sec = sections[n]
            sec.contenders = tuple(k for k in sec.contenders if k in keys)
            if sec.contenders and sec.sizes:
                wanted.append(sec)
    return wanted


def _filter(only: str | None) -> set[str]:
    if not only:
        return set(CONTENDERS)
    words = [w.strip().lower() for w in only.split(",") if w.strip()]
    for word in words:
        if not any(word in k for k in CONTENDERS):
            print(f"--only: {word!r} matches no contender (see --list)", file=sys.stderr)
    return {k for k in CONTENDERS if any(word in k for word in words)}


def run_plan(sections: list[Section], args: argparse.Namespace) -> dict[tuple, list[Outcome]]:
    """Run every section; within a repetition, contenders go round-robin (rotated)."""
    results: dict[tuple, list[Outcome]] = {}
    total = sum(len(s.contenders) * len(s.sizes) for s in sections) * args.reps
    done = 0
    for sec in sections:
        for rep in range(args.reps):
            order = sec.contenders[rep % len(sec.contenders):] + \
                sec.contenders[: rep % len(sec.contenders)]
            for size in sec.sizes:
                for key in order:
                    done += 1
                    spec = {"size": size, "warmup": args.warmup, "seconds": sec.seconds,
                            "fps": sec.fps, "verbose": args.verbose,
                            "max_seconds": FIRST_FRAME_TIMEOUT + args.warmup + sec.seconds
                            + RESULT_SLACK}
                    started = time.monotonic()
                    outcome = run_once(key, spec)
                    results.setdefault((sec.name, size, key), []).append(outcome)
                    _progress(done, total, sec, rep, size, key, outcome,
                              time.monotonic() - started)
    return results


def _progress(done: int, total: int, sec: Section, rep: int, size: tuple[int, int], key: str,
              outcome: Outcome, took: float) -> None:
    if outcome.status != "ok":
        what = outcome.reason
    elif sec.fps:
        lat = outcome.metrics["latencies_ns"]
        what = f"p50 {_ms(_pct(lat, 50))} ms" if lat else "no samples"
    else:
        what = f"{outcome.metrics['fps']:.1f} fps"
    extra = "; ".join(_anomalies(outcome, CONTENDERS[key].lossless) + outcome.teardown)
    print(f"[{done}/{total}] {sec.name} rep {rep + 1} {_size(size)} {key}: {what}"
          f"{' [' + extra + ']' if extra else ''} ({took:.1f}s)", file=sys.stderr, flush=True)


# -- statistics -----------------------------------------------------------------------------
def _pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile, linear interpolation between closest ranks."""
    data = sorted(values)
    if not data:
        return math.nan
    pos = (len(data) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def _ms(ns: float) -> str:
    ms = ns / 1e6
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _anomalies(outcome: Outcome, lossless: bool) -> list[str]:
    m = outcome.metrics
    if outcome.status != "ok":
        return []
    found = []
    for key, text in (("torn", "torn (buffer changed in flight)"), ("bad_shape", "bad shape"),
                      ("bad_stamp", "unreadable stamp"), ("out_of_order", "out of order")):
        if m.get(key):
            found.append(f"{m[key]} {text}")
    if m.get("dropped"):
        share = 100 * m["dropped"] / (m["dropped"] + m["frames"])
        found.append(f"{m['dropped']} dropped ({share:.1f}%)"
                     + ("" if lossless else ", by design"))
    return found


def _ok(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.status == "ok"]


def _failure(outcomes: list[Outcome]) -> str:
    bad = [o for o in outcomes if o.status != "ok"]
    if not bad:
        return ""
    reason = bad[0].reason
    return reason if bad[0].status == "na" else f"failed: {reason}"


def _fps_cell(outcomes: list[Outcome]) -> str:
    ok = _ok(outcomes)
    if not ok:
        return _failure(outcomes) or "-"
    values = [o.metrics["fps"] for o in ok]
    med = statistics.median(values)
    text = f"{med:.1f}" if med < 100 else f"{med:.0f}"
    if len(values) > 1 and med > 0:
        text += f" ±{50 * (max(values) - min(values)) / med:.0f}%"
    if len(ok) < len(outcomes):
        text += f" ({len(outcomes) - len(ok)} of {len(outcomes)} reps failed)"
    return text


def _paired_ratio(a: list[Outcome] | None, b: list[Outcome] | None, metric: Any) -> str:
    """Median over repetitions of a/b, pairing the runs of one repetition."""
    if not a or not b:
        return "-"
    ratios = [metric(x) / metric(y) for x, y in zip(a, b)
              if x.status == "ok" and y.status == "ok" and metric(y) > 0]
    ratios = [r for r in ratios if math.isfinite(r)]
    if not ratios:
        return "n/a"
    return f"{statistics.median(ratios):.2f}x"


# -- the report -----------------------------------------------------------------------------
def machine_info() -> list[str]:
    try:
        import zmq

        zmq_line = f"pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}"
    except ImportError:
        zmq_line = "pyzmq not installed"
    versions = []
    for dist in ("netgear", "vidgear", "imagezmq", "numpy", "simplejpeg"):
        try:
            from importlib.metadata import version

            versions.append(f"{dist} {version(dist)}")
        except Exception:
            versions.append(f"{dist} not installed")
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        f"- CPU: {_cpu_model()}; nproc {affinity} (of {os.cpu_count()} logical CPUs)",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}); {zmq_line}",
        f"- {', '.join(versions)}; netgear commit {_git_commit()}",
        f"- load average at start: {load}",
    ]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", _HERE, "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=5, check=True)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def render(sections: list[Section], results: dict[tuple, list[Outcome]],
           args: argparse.Namespace, header: list[str], elapsed: float) -> str:
    out = ["# netgear benchmark", ""]
    out += [f"Command: `{args.command}`", "", "Machine:", *header, ""]
    out += [f"Each cell: median of {args.reps} repetition(s); ± is half the min-max spread. "
            f"Warm-up {args.warmup:g} s excluded; throughput measured over {args.seconds:g} s, "
            f"latency over {args.latency_seconds:g} s. Sender and receiver are separate "
            "processes on 127.0.0.1; contenders run interleaved (round-robin per repetition). "
            "The sender reuses one frame buffer, stamping a counter and send time into it; "
            "the receiver checks every frame. Ratios are medians of per-repetition ratios.",
            ""]
    by_name = {s.name: s for s in sections}
    if "throughput" in by_name:
        out += _throughput_section(by_name["throughput"], results)
    if "latency" in by_name:
        out += _latency_section(by_name["latency"], results)
    if "jpeg-throughput" in by_name or "jpeg-latency" in by_name:
        out += _jpeg_section(by_name.get("jpeg-throughput"), by_name.get("jpeg-latency"),
                             results)
    out += [f"Total run time: {elapsed / 60:.1f} min.", ""]
    return "\n".join(out)


def _notes(sections: list[Section], results: dict[tuple, list[Outcome]]) -> list[str]:
    lines = []
    for sec in sections:
        for size in sec.sizes:
            for key in sec.contenders:
                outcomes = results.get((sec.name, size, key), [])
                found: list[str] = []
                for o in outcomes:
                    found += _anomalies(o, CONTENDERS[key].lossless) + o.teardown
                    if o.status == "failed" and len(_ok(outcomes)) > 0:
                        found.append(f"a repetition failed: {o.reason}")
                if found:
                    label = CONTENDERS[key].label
                    lines.append(f"- {label}, {_size(size)}: " + "; ".join(_merge(found)))
    return ["Notes:", "", *lines, ""] if lines else \
        ["Every contender delivered every frame intact and in order.", ""]


def _merge(items: list[str]) -> list[str]:
    """Collapse repeated notes across repetitions: 'x' three times becomes 'x (3 reps)'."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return [k if n == 1 else f"{k} ({n} reps)" for k, n in counts.items()]


def _throughput_section(sec: Section, results: dict[tuple, list[Outcome]]) -> list[str]:
    out = [f"## {sec.title}", ""]
    head = ["contender"]
    for size in sec.sizes:
        head += [f"{_size(size)} fps", "MB/s"]
    frame_mb = ", ".join(f"{_size(s)} = {s[0] * s[1] * 3 / 1e6:.1f} MB" for s in sec.sizes)
    out += [f"Frames received per second; MB/s is frame payload (1 MB = 10^6 bytes). "
            f"Frame sizes: {frame_mb}. PUB/SUB may drop frames by design: its fps counts "
            "frames received.", ""]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in sec.contenders:
        row = [CONTENDERS[key].label]
        for size in sec.sizes:
            outcomes = results.get((sec.name, size, key), [])
            fps_text = _fps_cell(outcomes)
            ok = _ok(outcomes)
            mbps = (statistics.median(o.metrics["fps"] for o in ok) * size[0] * size[1] * 3
                    / 1e6) if ok else None
            row += [fps_text, f"{mbps:.0f}" if mbps is not None else ""]
        out.append("| " + " | ".join(row) + " |")
    out += [""]
    out += _ratio_table(sec, results, THROUGHPUT_RATIOS, lambda o: o.metrics["fps"],
                        "Ratios of fps (>1: the first is faster):")
    out += _memory_table(sec, results)
    return out + _notes([sec], results)


def _memory_table(sec: Section, results: dict[tuple, list[Outcome]]) -> list[str]:
    """Peak RSS per process: a sender far above one frame is queueing frames in memory."""
    head = ["contender", *(_size(s) for s in sec.sizes)]
    out = ["Peak memory (RSS, MB) of the sender / receiver process, max over repetitions. "
           "Far above the frame size means frames pile up in a queue:", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in sec.contenders:
        row = [CONTENDERS[key].label]
        for size in sec.sizes:
            ok = _ok(results.get((sec.name, size, key), []))
            cell = []
            for metric in ("tx_rss_mb", "rx_rss_mb"):
                values = [o.metrics.get(metric) for o in ok if o.metrics.get(metric)]
                cell.append(f"{max(values):.0f}" if values else "?")
            row.append(" / ".join(cell) if ok else "-")
        out.append("| " + " | ".join(row) + " |")
    return [*out, ""]


def _ratio_table(sec: Section, results: dict[tuple, list[Outcome]], specs: tuple,
                 metric: Any, title: str) -> list[str]:
    head = ["ratio", *(_size(s) for s in sec.sizes)]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, a, b in specs:
        if a not in sec.contenders or b not in sec.contenders:
            continue
        cells = [_paired_ratio(results.get((sec.name, s, a)), results.get((sec.name, s, b)),
                               metric) for s in sec.sizes]
        out.append("| " + " | ".join([label, *cells]) + " |")
    return [title, "", *out, ""] if len(out) > 2 else []


def _latency_cells(outcomes: list[Outcome]) -> list[str]:
    ok = _ok(outcomes)
    samples = [x for o in ok for x in o.metrics["latencies_ns"]]
    if not samples:
        return [_failure(outcomes) or "no samples", "", ""]
    cells = [_ms(_pct(samples, q)) for q in (50, 95, 99)]
    if len(ok) < len(outcomes):
        cells[0] += f" ({len(outcomes) - len(ok)} of {len(outcomes)} reps failed)"
    return cells


def _p50(outcome: Outcome) -> float:
    lat = outcome.metrics["latencies_ns"]
    return _pct(lat, 50) if lat else math.nan


def _latency_section(sec: Section, results: dict[tuple, list[Outcome]]) -> list[str]:
    out = [f"## {sec.title}", "",
           "Milliseconds from just before send() to just after recv() returned, pooled over "
           "repetitions.", ""]
    head = ["contender"]
    for size in sec.sizes:
        head += [f"{_size(size)} p50", "p95", "p99"]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in sec.contenders:
        row = [CONTENDERS[key].label]
        for size in sec.sizes:
            row += _latency_cells(results.get((sec.name, size, key), []))
        out.append("| " + " | ".join(row) + " |")
    out += [""]
    out += _ratio_table(sec, results, LATENCY_RATIOS, _p50,
                        "Ratios of p50 latency (<1: the first is faster):")
    return out + _notes([sec], results)


def _jpeg_section(tput: Section | None, lat: Section | None,
                  results: dict[tuple, list[Outcome]]) -> list[str]:
    sec = tput or lat
    assert sec is not None
    size = JPEG_SIZE
    out = [f"## JPEG q{JPEG_QUALITY}, {_size(size)} (REQ/REP, fastdct on, fastupsample off)", "",
           "Both encode with simplejpeg; the last two columns are what each library actually "
           "passed to simplejpeg.encode_jpeg and the median JPEG size, recorded in the sender. "
           "The frame is synthetic but camera-like (gradients, shapes, text, mild noise).", ""]
    head = ["contender"]
    if tput:
        head.append("fps (unpaced)")
    if lat:
        head += [f"latency p50 at {lat.fps:g} fps (ms)", "p95", "p99"]
    head += ["encoder settings", "KiB/frame"]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in sec.contenders:
        row = [CONTENDERS[key].label]
        runs: list[Outcome] = []
        if tput:
            runs += results.get((tput.name, size, key), [])
            row.append(_fps_cell(results.get((tput.name, size, key), [])))
        if lat:
            runs += results.get((lat.name, size, key), [])
            row += _latency_cells(results.get((lat.name, size, key), []))
        seen = sorted({o.metrics["jpeg_settings"] for o in _ok(runs)
                       if o.metrics.get("jpeg_settings")})
        sizes = [o.metrics["jpeg_bytes"] for o in _ok(runs) if o.metrics.get("jpeg_bytes")]
        row += ["; ".join(seen) or "?",
                f"{statistics.median(sizes) / 1024:.0f}" if sizes else "?"]
        out.append("| " + " | ".join(row) + " |")
    b = "vidgear-jpeg"
    mine = [a for a in ("netgear-jpeg", "netgear-jpeg-1t") if a in sec.contenders]
    if mine and b in sec.contenders:
        labels = {"netgear-jpeg": "netgear (default)", "netgear-jpeg-1t": "netgear, 1 thread"}
        out += ["", "| ratio | " + " | ".join(f"{labels[a]} / vidgear" for a in mine) + " |",
                "|---|" + "---|" * len(mine)]
        if tput:
            out.append("| fps (>1: netgear faster) | " + " | ".join(_paired_ratio(
                results.get((tput.name, size, a)), results.get((tput.name, size, b)),
                lambda o: o.metrics["fps"]) for a in mine) + " |")
        if lat:
            out.append("| latency p50 (<1: netgear faster) | " + " | ".join(_paired_ratio(
                results.get((lat.name, size, a)), results.get((lat.name, size, b)), _p50)
                for a in mine) + " |")
    out.append("")
    return out + _notes([s for s in (tput, lat) if s], results)


# -- command line ---------------------------------------------------------------------------
def _parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    sizes = []
    for item in text.split(","):
        item = SIZE_ALIASES.get(item.strip().lower(), item.strip().lower())
        if not item:
            continue
        try:
            w, h = (int(v) for v in item.split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad size {item!r}; use WxH like 640x480") from None
        if w < 16 or h < 16:
            raise argparse.ArgumentTypeError(f"size {item!r} is too small")
        sizes.append((w, h))
    return tuple(sizes)


def _parse_sections(text: str) -> list[str]:
    names = [s.strip().lower() for s in text.split(",") if s.strip()]
    for name in names:
        if name not in ("throughput", "latency", "jpeg"):
            raise argparse.ArgumentTypeError(
                f"unknown section {name!r}; choose from throughput, latency, jpeg")
    return names


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=None,
                   help="measured seconds per throughput run (default 3; --quick 1)")
    p.add_argument("--latency-seconds", type=float, default=None,
                   help="measured seconds per latency run (default 5; --quick 2)")
    p.add_argument("--warmup", type=float, default=None,
                   help="warm-up seconds excluded from every run (default 2; --quick 0.5)")
    p.add_argument("--reps", type=int, default=None,
                   help="repetitions, interleaved round-robin (default 3; --quick 1)")
    p.add_argument("--sizes", type=_parse_sizes, default=None,
                   help="throughput frame sizes (default 640x480,1920x1080,3840x2160; "
                        "aliases 480p, 1080p, 4k)")
    p.add_argument("--latency-sizes", type=_parse_sizes, default=None,
                   help="latency frame sizes (default 640x480,1920x1080)")
    p.add_argument("--fps", type=float, default=30.0,
                   help="paced sender rate for the latency sections (default 30)")
    p.add_argument("--sections", type=_parse_sections, default=["throughput", "latency", "jpeg"],
                   help="comma list of throughput, latency, jpeg (default all)")
    p.add_argument("--only", default=None,
                   help="comma list of contender keys or substrings, e.g. netgear,imagezmq")
    p.add_argument("--quick", action="store_true", help="a short smoke run (about 2.5 minutes)")
    p.add_argument("--output", default=None, help="also write the markdown report here")
    p.add_argument("--list", action="store_true", help="list the contender keys and exit")
    p.add_argument("--verbose", action="store_true",
                   help="let the contenders' own output through (vidgear logs a lot)")
    args = p.parse_args(argv)
    defaults = {"seconds": (3.0, 1.0), "latency_seconds": (5.0, 2.0), "warmup": (2.0, 0.5),
                "reps": (3, 1),
                "sizes": (((640, 480), (1920, 1080), (3840, 2160)),) * 2,
                "latency_sizes": (((640, 480), (1920, 1080)),) * 2}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.reps < 1 or args.seconds <= 0 or args.latency_seconds <= 0 or args.warmup < 0 \
            or args.fps <= 0:
        p.error("--reps must be >= 1, --seconds/--latency-seconds/--fps > 0, --warmup >= 0")
    args.command = "python benchmarks/bench.py" + (
        " " + shlex.join(argv if argv is not None else sys.argv[1:])
        if (argv if argv is not None else sys.argv[1:]) else "")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for key, c in CONTENDERS.items():
            print(f"{key:20s} {c.label}")
        return 0
    sections = build_sections(args)
    if not sections:
        print("nothing to run: --only/--sections/--sizes selected no contender",
              file=sys.stderr)
        return 2
    header = machine_info()
    print("\n".join(["Machine:", *header]), file=sys.stderr, flush=True)
    started = time.monotonic()
    results = run_plan(sections, args)
    report = render(sections, results, args, header, time.monotonic() - started)
    print(report)
    if args.output:
        with open(args.output, "w") as f:
            f.write(report)
        print(f"report written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
