"""Forged compressed frames against a plain receiver: decoded size, time, RSS, victim fps.

A raw DEALER peer speaks netgear's wire format to a REQ/REP receiver that was given no
compression options. Each forged message is a small PNG (or JPEG) whose container declares
a huge image; a legitimate sender sends 640x480 frames at 15 fps beside it.

    python benchmarks/hostile_decode.py [--kind png|jpeg] [--shape 16384x16384] [--count 20]
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import cv2
import msgpack
import numpy as np
import psutil
import zmq

from netgear import NetGear


def forged(kind: str, shape: list[int]) -> tuple[bytes, list[int]]:
    """A compressed all-black image of ``shape`` (HxW gray or HxWxC), small on the wire."""
    image = np.zeros(shape, np.uint8)
    ok, buf = cv2.imencode(".png" if kind == "png" else ".jpg", image,
                           [cv2.IMWRITE_PNG_COMPRESSION, 9] if kind == "png" else [])
    assert ok
    return buf.tobytes(), shape


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", default="png", choices=["png", "jpeg"])
    ap.add_argument("--shape", default="16384x16384", help="HxW (gray) or HxWxC")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--port", type=int, default=5599)
    args = ap.parse_args()
    payload, shape = forged(args.kind, [int(n) for n in args.shape.split("x")])
    header = {"v": 1, "k": 0, "s": 0, "t": time.time(), "i": 4242, "c": args.kind,
              "d": "|u1", "h": shape}
    if args.kind == "jpeg":
        header["j"] = ["GRAY" if len(shape) == 2 else "BGR", False, False]
    proc = psutil.Process()
    receiver = NetGear(address="127.0.0.1", port=args.port, pattern=1, receive_mode=True,
                       receive_timeout=30)
    stop = threading.Event()
    legit_sent = [0]

    def legit() -> None:
        sender = NetGear(address="127.0.0.1", port=args.port, pattern=1)
        frame = np.random.default_rng(1).integers(0, 256, (480, 640, 3), np.uint8)
        try:
            nxt = time.monotonic()
            while not stop.is_set():
                sender.send(frame)
                legit_sent[0] += 1
                nxt += 1 / 15
                time.sleep(max(0.0, nxt - time.monotonic()))
        finally:
            sender.close()

    rss0 = proc.memory_info().rss
    thread = threading.Thread(target=legit, daemon=True)
    thread.start()
    ctx = zmq.Context()
    attacker = ctx.socket(zmq.DEALER)
    attacker.setsockopt(zmq.LINGER, 0)
    attacker.connect(f"tcp://127.0.0.1:{args.port}")
    # warm-up: legit frames only, 2 s
    frames, biggest, peak = 0, 0, rss0
    t_end = time.monotonic() + 2.0
    while time.monotonic() < t_end:
        f = receiver.recv()
        frames += 1
    base_fps = frames / 2.0
    for n in range(args.count):
        header["s"] = n
        attacker.send_multipart([b"", msgpack.packb(header), payload])
    t0 = time.monotonic()
    legit_frames, slow = 0, []
    while True:
        before = time.monotonic()
        f = receiver.recv()
        took = time.monotonic() - before
        peak = max(peak, proc.memory_info().rss)
        if f is None:
            break
        if f.shape[:2] == (480, 640):
            legit_frames += 1
        else:
            biggest = max(biggest, f.nbytes)
            slow.append(took)
        stats = receiver.stats
        done = len(slow) + stats["bad_messages"] + stats.get("refused", 0)
        if done >= args.count and time.monotonic() - t0 > 3.0:
            break
    elapsed = time.monotonic() - t0
    stop.set()
    thread.join(10)
    stats = receiver.stats
    receiver.close()
    attacker.close(0)
    ctx.term()
    print(json.dumps({
        "kind": args.kind, "declared": shape, "payload_bytes": len(payload),
        "count": args.count, "baseline_fps": round(base_fps, 1),
        "fps_under_attack": round(legit_frames / elapsed, 1), "window_s": round(elapsed, 2),
        "decoded_forged": len(slow), "largest_decoded_bytes": biggest,
        "mean_forged_recv_s": round(sum(slow) / len(slow), 3) if slow else None,
        "rss_before_mib": round(rss0 / 2**20), "rss_peak_mib": round(peak / 2**20),
        "bad_messages": stats["bad_messages"], "refused": stats.get("refused"),
    }))


if __name__ == "__main__":
    main()
