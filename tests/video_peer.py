"""A video receiver in its own process, so a test can SIGKILL it and start another.

    python tests/video_peer.py PATTERN PORT [OPTIONS_JSON]

Prints ``ready``, then ``frame INDEX PSNR`` for every frame (INDEX read from the frame's
stamp, PSNR against the frame the sender made for that index: camera-like content of
160x120, seed 0, 24 frames in a loop), then ``end`` and ``stats JSON``. :class:`VideoPeer`
starts one and follows its output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

SIZE, LOOP = (160, 120), 24


def sent_frames() -> list[Any]:
    """What the tests' video senders send: frame i is stamped(scene[i % LOOP], i)."""
    from video_helpers import scene

    return scene(*SIZE, LOOP)


class VideoPeer:
    """The receiver process and the lines it printed."""

    def __init__(self, pattern: int, port: int, **options: Any) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), str(pattern), str(port),
                   json.dumps(options)]
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self._reader = threading.Thread(target=self._follow, daemon=True)
        self._reader.start()

    def _follow(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    err = self.proc.stderr.read() if self.proc.poll() is not None else ""
                    raise AssertionError(f"video peer: not there within {timeout}s; last "
                                         f"lines {self.lines[-5:]}; stderr {err[-2000:]}")
                self._changed.wait(min(left, 0.1))

    def frames(self) -> list[tuple[int, float]]:
        return [(int(line.split()[1]), float(line.split()[2])) for line in list(self.lines)
                if line.startswith("frame ")]

    def stats(self) -> dict[str, Any]:
        self.wait_for(lambda lines: any(line.startswith("stats ") for line in lines))
        line = next(line for line in self.lines if line.startswith("stats "))
        return json.loads(line[len("stats "):])

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(5)  # it stops at the end of the output
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from video_helpers import index_of, psnr, stamped

    from netgear import NetGear

    pattern, port = int(sys.argv[1]), int(sys.argv[2])
    options = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    frames = sent_frames()
    gear = NetGear(address="127.0.0.1", port=port, pattern=pattern, receive_mode=True,
                   **options)
    try:
        print("ready", flush=True)
        while (frame := gear.recv()) is not None:
            index = index_of(frame)
            quality = psnr(stamped(frames[index % LOOP], index), frame)
            print(f"frame {index} {quality:.1f}", flush=True)
        print("end", flush=True)
        print("stats " + json.dumps(gear.stats), flush=True)
    finally:
        gear.close()


if __name__ == "__main__":
    main()
