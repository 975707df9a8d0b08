"""The field case of issue 11: four cameras into one hub over a 20 Mbit/s link.

Two network namespaces joined by a veth pair, each end shaped by ``tc tbf`` to 20 Mbit/s
(benchmarks/netfault.py). Namespace A runs the cameras, one process each: NetGear
multi-server senders (REQ/REP, netgear's default) sending camera-like frames
(benchmarks/content.py: a panning, textured scene with moving objects and fresh sensor
noise; a loop of 30 frames per camera, a different scene each) at a fixed rate. A camera
that cannot send a frame in its time slot skips it, as a real one does. Namespace B runs
one hub: the viewer's MontageHub (a multi-server receiver that decodes every frame). The
hub measures, per camera, the frames delivered in a window after a warm-up, and each
frame's latency from the sender's clock at send() (before encoding) to the hub's tap
right after decoding (one machine, one clock).

    sudo .venv/bin/python benchmarks/field_bench.py [--codecs raw,jpeg,h264,h264/300]
        [--cameras 4] [--size 1280x720] [--fps 15] [--rate 20mbit] [--seconds 10]
        [--rounds 1] [--video-gop N] [--video-preset P] [--also-loopback]

The codecs run one after another in each round (interleaved over rounds), in fresh
namespaces each time. The same roles run without namespaces on loopback with
``--loopback`` (no rate limit), e.g. to measure the hub's CPU while it also records
(``--recording none,passthrough,reencode``: H.264 packets stored as they came, or
encoded again). ``hub`` and ``camera`` are the roles' own subcommands.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
ROOT = os.path.dirname(_HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

BASE_PORT = 5600
LOOP = 30
WARMUP = 3.0
TIMEOUT = 30.0  # request_timeout: a raw frame over a shared 20 Mbit/s link takes seconds


def codec_options(codec: str, gop: int | None, preset: str | None = None) -> dict[str, Any]:
    if codec == "jpeg":
        return {"jpeg_compression": True}
    if codec in ("h264", "hevc"):
        return {"video_codec": codec, **({"video_gop": gop} if gop else {}),
                **({"video_preset": preset} if preset else {})}
    return {}


# -- the roles -------------------------------------------------------------------------------
def camera(args: argparse.Namespace) -> None:
    import content

    from netgear import NetGear, PeerTimeoutError

    width, height = args.size
    frames = list(content.scene(width, height, LOOP, seed=args.seed))
    options = codec_options(args.codec, args.gop, args.preset)
    gear = NetGear(address=args.address, port=args.port, pattern=1, multiserver_mode=True,
                   request_timeout=TIMEOUT, max_retries=1, **options)
    print(json.dumps({"event": "ready"}), flush=True)
    sent = skipped = timeouts = 0
    start = time.monotonic()
    slot = 0
    try:
        while time.monotonic() - start < args.seconds:
            try:
                gear.send(frames[slot % LOOP], message=f"cam{args.seed}")
            except PeerTimeoutError:  # starved on the shared link: a camera keeps trying
                timeouts += 1
                continue
            sent += 1
            late = int((time.monotonic() - start) * args.fps)  # the slot we are in now
            skipped += max(0, late - slot - 1)
            slot = max(slot + 1, late)
            time.sleep(max(0.0, start + slot / args.fps - time.monotonic()))
    finally:
        gear.close()
    print(json.dumps({"event": "done", "sent": sent, "skipped": skipped,
                      "timeouts": timeouts}), flush=True)


def hub(args: argparse.Namespace) -> None:
    from netgear.web import MontageHub

    ports = args.ports
    seen: dict[str, list[tuple[float, float, int]]] = {str(p): [] for p in ports}
    lock = threading.Lock()

    def tap(packet: Any) -> None:
        now = time.time()
        with lock:
            seen.setdefault(packet.stream, []).append(
                (now, now - packet.sent_at, packet.payload.nbytes))

    options: dict[str, Any] = {"packet_tap": tap}
    if args.record:
        from netgear.record import Recorder
        from netgear.record.hub import RecordingHub

        recorder = Recorder(args.record, queue_frames=60)
        gear: Any = RecordingHub(recorder, ports, passthrough=not args.reencode,
                                 address=args.bind, pattern=1, **options)
    else:
        gear = MontageHub(ports, address=args.bind, pattern=1, **options)
    gear.start()
    print(json.dumps({"event": "ready"}), flush=True)
    try:
        # the warm-up starts once every camera delivered a frame (they start slowly)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with lock:
                if all(seen[str(p)] for p in ports):
                    break
            time.sleep(0.1)
        time.sleep(args.warmup)
        t0, cpu0 = time.time(), _cpu()
        time.sleep(args.seconds)
        t1, cpu1 = time.time(), _cpu()
        result: dict[str, Any] = {"event": "result", "seconds": round(t1 - t0, 2),
                                  "cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
                                  "cameras": {}}
        with lock:
            for port, rows in sorted(seen.items()):
                window = [r for r in rows if t0 <= r[0] < t1]
                lat = np.array([r[1] for r in window]) * 1000
                result["cameras"][port] = {
                    "fps": round(len(window) / (t1 - t0), 2),
                    "p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
                    "p95_ms": round(float(np.percentile(lat, 95)), 1) if len(lat) else None,
                    "mbit_s": round(sum(r[2] for r in window) * 8 / (t1 - t0) / 1e6, 2),
                }
        frames = sum(c["fps"] for c in result["cameras"].values()) * (t1 - t0)
        result["cpu_ms_per_frame"] = round(1000 * (cpu1 - cpu0) / max(1.0, frames), 2)
        if args.record:
            status = gear.recorder.status()["streams"]
            result["recorded_frames"] = sum(s["frames"] for s in status.values())
            result["recorder_lost"] = sum(s["lost"] for s in status.values())
            result["encoders_opened"] = sum(s["encoders_opened"] for s in status.values())
        print(json.dumps(result), flush=True)
    finally:
        gear.close()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the orchestra ---------------------------------------------------------------------------
def _role(args: argparse.Namespace, *extra: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), *extra]


def _events(proc: subprocess.Popen[str], kind: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == kind:
            return event
    raise RuntimeError(f"no {kind!r} from {proc.args!r} within {timeout} s")


def run_once(args: argparse.Namespace, codec: str, record: str | None = None,
             reencode: bool = False) -> dict[str, Any]:
    """One codec: hub + cameras, in namespaces (or on loopback); the hub's result."""
    from netfault import pair

    if args.loopback:  # shared with the machine's other users: ports the kernel says are free
        from netgear.cli._common import free_port

        ports = [str(free_port()) for _ in range(args.cameras)]
    else:  # our own namespaces: nothing else listens there
        ports = [str(BASE_PORT + i) for i in range(args.cameras)]
    size = f"{args.size[0]}x{args.size[1]}"
    hub_argv = ["hub", "--ports", *ports, "--seconds", str(args.seconds),
                "--warmup", str(WARMUP)]
    if record:
        hub_argv += ["--record", record] + (["--reencode"] if reencode else [])
    total = 3600.0  # cameras run until the hub has measured; then they are killed
    procs: list[subprocess.Popen[str]] = []

    def start(topo: Any, ns: str, argv: list[str]) -> subprocess.Popen[str]:
        popen = {"stdout": subprocess.PIPE, "text": True}
        proc = (subprocess.Popen(argv, start_new_session=True, **popen) if topo is None
                else topo.run(ns, argv, **popen))
        procs.append(proc)
        return proc

    def body(topo: Any, address: str, bind: str) -> dict[str, Any]:
        hub_proc = start(topo, "b", _role(args, *hub_argv, "--bind", bind))
        _events(hub_proc, "ready", 30)
        for i, port in enumerate(ports):
            name, _, own_gop = codec.partition("/")  # "h264/300": video_gop 300
            gop = own_gop or args.video_gop
            cam = ["camera", "--address", address, "--port", port, "--codec", name,
                   "--size", size, "--fps", str(args.fps), "--seconds", str(total),
                   "--seed", str(i + 1)] + (["--gop", str(gop)] if gop else []) \
                + (["--preset", args.video_preset] if args.video_preset else [])
            start(topo, "a", _role(args, *cam))
        return _events(hub_proc, "result", WARMUP + args.seconds + 180)

    try:
        if args.loopback:
            return body(None, "127.0.0.1", "127.0.0.1")
        with pair(rate=args.rate) as topo:
            return body(topo, topo.addr["b"], topo.addr["b"])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def table(rows: list[tuple[str, dict[str, Any]]], fps: float) -> str:
    out = ["| codec | camera | delivered fps | latency p50 ms | latency p95 ms | Mbit/s |",
           "|---|---|---:|---:|---:|---:|"]
    for codec, result in rows:
        for port, cam in result["cameras"].items():
            out.append(f"| {codec} | {port} | {cam['fps']:.1f} | {cam['p50_ms']} | "
                       f"{cam['p95_ms']} | {cam['mbit_s']:.2f} |")
    return "\n".join(out)


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role")
    cam = sub.add_parser("camera")
    cam.add_argument("--address", required=True)
    cam.add_argument("--port", type=int, required=True)
    cam.add_argument("--codec", default="h264")
    cam.add_argument("--size", type=_size, default=(1280, 720))
    cam.add_argument("--fps", type=float, default=15.0)
    cam.add_argument("--seconds", type=float, default=10.0)
    cam.add_argument("--seed", type=int, default=1)
    cam.add_argument("--gop", type=int, default=None)
    cam.add_argument("--preset", default=None)
    hb = sub.add_parser("hub")
    hb.add_argument("--ports", nargs="+", type=int, required=True)
    hb.add_argument("--bind", default="127.0.0.1")
    hb.add_argument("--seconds", type=float, default=10.0)
    hb.add_argument("--warmup", type=float, default=WARMUP)
    hb.add_argument("--record", default=None)
    hb.add_argument("--reencode", action="store_true")
    parser.add_argument("--codecs", default="raw,jpeg,h264",
                        help="comma-separated; h264/N is H.264 with video_gop=N")
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--size", type=_size, default=(1280, 720))
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--rate", default="20mbit")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--video-gop", type=int, default=None)
    parser.add_argument("--video-preset", default=None, help="e.g. ultrafast (x264)")
    parser.add_argument("--loopback", action="store_true")
    parser.add_argument("--also-loopback", action="store_true",
                        help="run each case on loopback too (no rate limit): what the CPU "
                        "alone allows, beside what the link allows")
    parser.add_argument("--recording", default="none",
                        help="the hub also records: any of none,passthrough,reencode "
                        "(comma-separated; each a run of its own)")
    args = parser.parse_args()
    if args.role == "camera":
        return camera(args)
    if args.role == "hub":
        return hub(args)
    if not args.loopback:
        from netsys import available

        reason = available()
        if reason is not None:
            raise SystemExit(f"field_bench: {reason}")
    rows = []
    links = [args.loopback, True] if args.also_loopback and not args.loopback \
        else [args.loopback]
    for _ in range(args.rounds):
        for codec in args.codecs.split(","):
            for recording in args.recording.split(","):
                for loopback in links:
                    with tempfile.TemporaryDirectory(prefix="netgear-field-") as folder:
                        run = argparse.Namespace(**{**vars(args), "loopback": loopback})
                        result = run_once(run, codec,
                                          None if recording == "none" else folder,
                                          reencode=recording == "reencode")
                    label = codec if recording == "none" else f"{codec} ({recording})"
                    label += ", loopback" if loopback and len(links) > 1 else ""
                    print(json.dumps({"codec": label, **result}), flush=True)
                    rows.append((label, result))
    print(f"\n{args.cameras} cameras {args.size[0]}x{args.size[1]} at {args.fps:g} fps, "
          f"{'loopback' if args.loopback else args.rate + ' tbf'}"
          f"{' (and loopback)' if len(links) > 1 else ''}, {args.seconds:g} s "
          f"measured after {WARMUP:g} s; {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f}\n")
    print(table(rows, args.fps))
    print("\n| hub | CPU % of one core | CPU ms per frame |\n|---|---:|---:|")
    for label, result in rows:
        print(f"| {label} | {result['cpu_percent']} | {result['cpu_ms_per_frame']} |")


if __name__ == "__main__":
    main()
