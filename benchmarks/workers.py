"""What runs inside the sender and receiver processes: stamping, pacing, measuring.

The sender keeps ONE preallocated frame and rewrites a small stamp in it before
every send, as a camera reuses its buffer. A stamp carries the frame counter
and the send time (``time.monotonic_ns()``: CLOCK_MONOTONIC, shared by all
processes of one Linux machine, so receiver minus sender time is the one-way
latency).

* Raw contenders get a byte stamp: counter and time in the first 16 bytes and
  the counter again in the last 8, so a frame whose buffer changed while it was
  in flight (head and tail disagree) is caught as torn.
* JPEG contenders get the same data drawn as black/white 16x16 blocks along the
  top edge, which survive q90 compression exactly.

The receiver checks every frame (size, shape, torn, counter order, drops) and
reports counts; the parent flags any contender with anomalies.

Both entry points talk to the parent through a one-way pipe, silence the
libraries' console output, and end with ``os._exit`` so a library thread that
will not stop cannot keep the process alive.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any, ClassVar

import numpy as np
from contenders import CONTENDERS, Link, Unavailable

# Shared run state. The parent sets GO once the receiver is bound, the receiver sets STOP
# once it has measured, the parent sets SENDER_GONE once the sender process has exited.
WAIT, GO, STOP, SENDER_GONE = 0, 1, 2, 3

BLOCK = 16  # stamp block size in pixels for lossy codecs (aligned to the JPEG MCU grid)
_STAMP_BYTES = 4 + 8 + 1  # counter (u32), time (u64), checksum
_STAMP_BITS = _STAMP_BYTES * 8
DRAIN_SECONDS = 2.0  # receiver keeps reading this long after measuring, so senders finish
CLOSE_GRACE = 2.0  # how long close() may take before the process just exits


# -- the frame ------------------------------------------------------------------------------
def synthetic_frame(width: int, height: int, seed: int = 7) -> np.ndarray:
    """A camera-like BGR image: smooth gradients, shapes, text and mild sensor noise.

    Random noise would make JPEG sizes unrealistically large; this compresses like
    a real scene does.
    """
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    img = np.empty((height, width, 3), dtype=np.float32)
    img[..., 0] = 40 + 170 * x * (1 - 0.4 * y)
    img[..., 1] = 60 + 150 * y
    img[..., 2] = 128 + 90 * np.sin(2 * np.pi * (1.5 * x + 0.7 * y))
    rng = np.random.default_rng(seed)
    img += rng.normal(0.0, 3.0, size=img.shape).astype(np.float32)
    frame = np.clip(img, 0, 255).astype(np.uint8)
    try:
        import cv2
    except ImportError:  # shapes and text are a nicety; gradients and noise suffice
        return frame
    s = width / 640
    cv2.rectangle(frame, (int(60 * s), int(120 * s)), (int(260 * s), int(300 * s)),
                  (30, 200, 240), -1)
    cv2.circle(frame, (int(450 * s), int(250 * s)), int(90 * s), (200, 40, 90), -1)
    for i in range(6):
        cv2.putText(frame, f"netgear benchmark {width}x{height} line {i}",
                    (int(20 * s), int((60 + 40 * i) * s) + height // 3),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.8 * s, (250, 250, 250), max(1, int(2 * s)),
                    cv2.LINE_AA)
    return frame


# -- stamps ---------------------------------------------------------------------------------
class ByteStamp:
    """Counter and time in the first 16 bytes, the counter again in the last 8."""

    def __init__(self, frame: np.ndarray) -> None:
        flat = frame.reshape(-1)
        self.head = flat[:16].view("<u8")
        self.tail = flat[-8:].view("<u8")

    def write(self, seq: int, t_ns: int) -> None:
        self.head[0] = seq
        self.head[1] = t_ns
        self.tail[0] = seq

    @staticmethod
    def read(flat: np.ndarray) -> tuple[int, int, bool]:
        """(counter, send time, torn) from a received frame's bytes."""
        seq = int.from_bytes(flat[:8].tobytes(), "little")
        t_ns = int.from_bytes(flat[8:16].tobytes(), "little")
        tail = int.from_bytes(flat[-8:].tobytes(), "little")
        return seq, t_ns, tail != seq


class BlockStamp:
    """Counter, time and a checksum as black/white blocks along the top edge."""

    def __init__(self, frame: np.ndarray) -> None:
        height, width = frame.shape[:2]
        self.per_row = width // BLOCK
        self.rows = -(-_STAMP_BITS // self.per_row)
        if self.per_row == 0 or self.rows * BLOCK > height:
            raise ValueError(f"frame {width}x{height} is too small for a block stamp")
        self.region = frame[: self.rows * BLOCK, : self.per_row * BLOCK]

    @staticmethod
    def _payload(seq: int, t_ns: int) -> bytes:
        body = (seq & 0xFFFFFFFF).to_bytes(4, "little") + t_ns.to_bytes(8, "little")
        return body + bytes([sum(body) & 0xFF])

    def write(self, seq: int, t_ns: int) -> None:
        bits = np.unpackbits(np.frombuffer(self._payload(seq, t_ns), dtype=np.uint8))
        grid = np.zeros(self.rows * self.per_row, dtype=np.uint8)
        grid[: bits.size] = bits * 255
        grid = grid.reshape(self.rows, self.per_row)
        self.region[...] = np.repeat(np.repeat(grid, BLOCK, 0), BLOCK, 1)[..., None]

    def read(self, frame: np.ndarray) -> tuple[int, int] | None:
        """(counter, send time), or None when the stamp did not survive."""
        centers = frame[BLOCK // 2 : self.rows * BLOCK : BLOCK,
                        BLOCK // 2 : self.per_row * BLOCK : BLOCK, 1]
        bits = (centers.reshape(-1)[:_STAMP_BITS] > 127).astype(np.uint8)
        payload = np.packbits(bits).tobytes()
        if len(payload) != _STAMP_BYTES or sum(payload[:-1]) & 0xFF != payload[-1]:
            return None
        return int.from_bytes(payload[:4], "little"), int.from_bytes(payload[4:12], "little")


class Checker:
    """Validates each received frame and keeps the anomaly counts."""

    def __init__(self, shape: tuple[int, ...], blocks: bool) -> None:
        self.shape = shape
        self.nbytes = int(np.prod(shape))
        self.blocks = BlockStamp(np.zeros(shape, np.uint8)) if blocks else None
        self.last: int | None = None
        self.counts = {"frames": 0, "bad_shape": 0, "torn": 0, "bad_stamp": 0,
                       "out_of_order": 0, "dropped": 0}

    def check(self, frame: Any) -> int | None:
        """The frame's send time in ns, or None when the frame is unusable."""
        c = self.counts
        c["frames"] += 1
        arr = frame if isinstance(frame, np.ndarray) else np.frombuffer(frame, np.uint8)
        if arr.dtype != np.uint8 or arr.size != self.nbytes or (
                arr.ndim > 1 and arr.shape != self.shape):
            c["bad_shape"] += 1
            return None
        if self.blocks is not None:
            stamp = self.blocks.read(arr.reshape(self.shape))
            if stamp is None:
                c["bad_stamp"] += 1
                return None
            seq, t_ns = stamp
        else:
            seq, t_ns, torn = ByteStamp.read(arr.reshape(-1))
            if torn:
                c["torn"] += 1
        if self.last is not None:
            if seq > self.last + 1:
                c["dropped"] += seq - self.last - 1
            elif seq <= self.last:
                c["out_of_order"] += 1
        self.last = seq if self.last is None else max(self.last, seq)
        return t_ns


# -- process plumbing -----------------------------------------------------------------------
def _quiet(verbose: bool) -> None:
    """Send the libraries' prints and log records to /dev/null (vidgear logs a lot)."""
    logging.disable(logging.CRITICAL)
    if not verbose:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)


class RssSampler:
    """Peak resident memory while streaming, sampled from /proc every 50 ms (Linux only).

    Frames piling up in a library's queue show here. Sampling starts after the frame
    was generated, so the generator's temporary arrays do not count.
    """

    def __init__(self) -> None:
        self.peak = 0
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        if self._sample():
            threading.Thread(target=self._run, daemon=True).start()

    def _sample(self) -> bool:
        try:
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * self._page
        except (OSError, ValueError, IndexError):
            return False
        self.peak = max(self.peak, rss)
        return True

    def _run(self) -> None:
        while self._sample():
            time.sleep(0.05)

    def peak_mb(self) -> float | None:
        self._sample()
        return self.peak / 1e6 if self.peak else None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    detail = f": {text[0]}" if text else ""
    return f"{type(exc).__name__}{detail}"[:160]


def _post(conn: Connection, *msg: Any) -> None:
    with contextlib.suppress(OSError, ValueError):  # the parent gave up on this run already
        conn.send(msg)


def _bounded(fn: Any, seconds: float) -> bool:
    """Run ``fn`` in a daemon thread; True when it returned within ``seconds``."""
    done = threading.Event()

    def run() -> None:
        with contextlib.suppress(BaseException):  # teardown of a finished run
            fn()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(seconds)


def _open(side: str, key: str, port: int, shape: tuple[int, ...], conn: Connection) -> Link:
    contender = CONTENDERS[key]
    opener = contender.open_sender if side == "sender" else contender.open_receiver
    try:
        return opener(port, shape)
    except Unavailable as exc:
        _post(conn, "na", str(exc))
    except BaseException as exc:
        if os.environ.get("NETGEAR_BENCH_DEBUG"):
            traceback.print_exc()
        _post(conn, "failed", f"{side} setup: {_describe(exc)}")
    os._exit(0)


# -- sender ---------------------------------------------------------------------------------
class JpegSpy:
    """Wraps ``simplejpeg.encode_jpeg`` to record what a library really encodes.

    Both JPEG contenders call it through the module attribute, so the wrapper sees
    every frame: the bytes per frame and the quality/subsampling/DCT actually used.
    """

    # encode_jpeg's positional parameters after the image, and its defaults
    _PARAMS = ("quality", "colorspace", "colorsubsampling", "fastdct")
    _DEFAULTS: ClassVar[dict[str, Any]] = {"quality": 85, "colorsubsampling": "444",
                                           "fastdct": False}

    def __init__(self, frame_rows: int) -> None:
        import simplejpeg

        self.sizes: list[int] = []
        self.settings: set[str] = set()
        lock = threading.Lock()
        pending = [0, 0]  # rows and bytes of the frame being encoded
        original = simplejpeg.encode_jpeg

        def encode_jpeg(image: Any, *args: Any, **kwargs: Any) -> Any:
            data = original(image, *args, **kwargs)
            if len(self.sizes) < 10_000:
                # a frame coded in horizontal bands is several calls (on several threads):
                # add them up until they cover the frame
                rows = image.shape[0]
                with lock:
                    pending[0] += rows
                    pending[1] += len(data)
                    if pending[0] >= frame_rows:
                        self.sizes.append(pending[1])
                        pending[:] = [0, 0]
                given = {**self._DEFAULTS, **dict(zip(self._PARAMS, args)), **kwargs}
                sub = str(given["colorsubsampling"])
                bands = f" in {round(frame_rows / rows)} bands" if rows < frame_rows else ""
                self.settings.add(f"q{given['quality']} {':'.join(sub) if sub.isdigit() else sub}"
                                  f"{' fastdct' if given['fastdct'] else ''}{bands}")
            return data

        simplejpeg.encode_jpeg = encode_jpeg

    def summary(self) -> dict[str, Any]:
        if not self.sizes:
            return {}
        return {"jpeg_bytes": sorted(self.sizes)[len(self.sizes) // 2],
                "jpeg_settings": ", ".join(sorted(self.settings))}



def sender_main(spec: dict[str, Any], state: Any, conn: Connection) -> None:
    _quiet(spec["verbose"])
    width, height = spec["size"]
    frame = synthetic_frame(width, height)  # the one buffer, reused for every frame
    stamp = BlockStamp(frame) if CONTENDERS[spec["key"]].lossy_codec else ByteStamp(frame)
    while state.value == WAIT:  # the parent says GO once the receiver is bound
        time.sleep(0.005)
    if state.value != GO:
        os._exit(0)
    spy = JpegSpy(frame.shape[0]) if CONTENDERS[spec["key"]].lossy_codec else None
    link = _open("sender", spec["key"], spec["port"], frame.shape, conn)
    rss = RssSampler()
    period = 1.0 / spec["fps"] if spec.get("fps") else 0.0
    deadline = time.monotonic() + spec["max_seconds"]
    send = link.send
    assert send is not None
    seq = 0
    next_at = time.monotonic()
    try:
        while state.value == GO:
            now = time.monotonic()
            if now >= deadline:
                break
            if period:
                if now < next_at:
                    time.sleep(next_at - now)
                # a camera that falls behind skips slots instead of bursting to catch up
                next_at = max(next_at + period, time.monotonic())
            stamp.write(seq, time.monotonic_ns())
            send(frame)
            seq += 1
    except BaseException as exc:
        if state.value == GO:  # errors after STOP are the receiver going away; expected
            _post(conn, "failed", f"sender: {_describe(exc)} after {seq} frames")
    _post(conn, "sent", {"sent": seq, "tx_rss_mb": rss.peak_mb(),
                         **(spy.summary() if spy else {})})
    _post(conn, "closed", "clean" if _bounded(link.close, CLOSE_GRACE) else "close() hung")
    os._exit(0)


# -- receiver -------------------------------------------------------------------------------
def _measure(link: Link, spec: dict[str, Any], checker: Checker,
             conn: Connection) -> dict[str, Any]:
    meter = _Meter(spec, checker, conn)
    if link.arecv is not None:  # an asyncio receiver: awaited inside its running loop
        arecv = link.arecv

        async def run() -> None:
            while meter.take(await arecv()):
                pass

        assert link.loop is not None
        link.loop.run_until_complete(run())
        return meter.result()
    recv = link.recv
    assert recv is not None
    while meter.take(recv()):
        pass
    return meter.result()


class _Meter:
    """Counts frames from the first one on: warm-up, then the measured window."""

    def __init__(self, spec: dict[str, Any], checker: Checker, conn: Connection) -> None:
        self.spec, self.checker, self.conn = spec, checker, conn
        self.rss = RssSampler()
        self.warmup_ns = int(spec["warmup"] * 1e9)
        self.window_ns = int(spec["seconds"] * 1e9)
        self.paced = bool(spec.get("fps"))  # unpaced latency is queueing, not worth reporting
        self.begin: int | None = None
        self.end = 0
        self.count, self.first, self.last = 0, 0, 0
        self.latencies: list[int] = []

    def take(self, frame: Any) -> bool:
        """Check and count one frame; False once the window is over."""
        now = time.monotonic_ns()
        if frame is None:
            raise EOFError(f"stream ended after {self.checker.counts['frames']} frames")
        sent_at = self.checker.check(frame)
        if self.begin is None:  # the clock starts at the first frame, so setup is excluded
            _post(self.conn, "first")
            self.begin = now + self.warmup_ns
            self.end = self.begin + self.window_ns
        if now < self.begin:
            return True
        if now >= self.end:
            return False
        if self.count == 0:
            self.first = now
        self.count += 1
        self.last = now
        if self.paced and sent_at is not None:
            self.latencies.append(now - sent_at)
        return True

    def result(self) -> dict[str, Any]:
        if self.count >= 2 and self.last > self.first:
            fps = (self.count - 1) / ((self.last - self.first) / 1e9)
        else:
            fps = self.count / self.spec["seconds"]
        return {"fps": fps, "measured": self.count, "latencies_ns": self.latencies,
                "rx_rss_mb": self.rss.peak_mb(), **self.checker.counts}


def receiver_main(spec: dict[str, Any], state: Any, conn: Connection) -> None:
    _quiet(spec["verbose"])
    width, height = spec["size"]
    shape = (height, width, 3)
    link = _open("receiver", spec["key"], spec["port"], shape, conn)
    _post(conn, "ready")
    checker = Checker(shape, blocks=CONTENDERS[spec["key"]].lossy_codec)
    try:
        _post(conn, "result", _measure(link, spec, checker, conn))
    except BaseException as exc:
        _post(conn, "failed", f"receiver: {_describe(exc)}")
    if state.value == GO:
        state.value = STOP
    _post(conn, "closed", _drain_and_close(link, state))
    os._exit(0)


def _drain_and_close(link: Link, state: Any) -> str:
    """Keep reading so a blocked sender sees STOP and closes, then close; say how it went."""
    recv = link.recv
    assert recv is not None
    drained = threading.Event()

    def drain() -> None:
        with contextlib.suppress(BaseException):
            while recv() is not None:
                pass
        drained.set()

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + DRAIN_SECONDS
    gone_at = None
    while not drained.wait(0.02) and time.monotonic() < deadline:
        if state.value == SENDER_GONE:
            gone_at = gone_at or time.monotonic()
            if time.monotonic() - gone_at > 0.3:
                break
    if not drained.is_set():
        # recv() is still blocked in the drain thread, so closing its socket is unsafe
        return "no end-of-stream"
    return "clean" if _bounded(link.close, CLOSE_GRACE) else "close() hung"
