"""Write the recorder's on-disk layout (segments, sidecars, event log) for viewer tests."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

FPS = 15
SIZE = (320, 240)


def frame(index: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A moving gradient with a bar: frames differ, and decoders see real content."""
    width, height = size
    x = np.arange(width, dtype=np.uint16)[None, :]
    y = np.arange(height, dtype=np.uint16)[:, None]
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 0] = ((x + index * 4) % 256).astype(np.uint8)
    img[..., 1] = ((y + index * 2) % 256).astype(np.uint8)
    img[..., 2] = 128
    bar = (index * 6) % width
    img[:, bar:bar + 12] = 255
    return img


def write_segment(path: Path, frames: int = 2 * FPS, size: tuple[int, int] = SIZE,
                  fps: int = FPS, sidecar: Optional[dict[str, Any]] = None) -> Path:
    """A fragmented MP4 (H.264, libx264, yuv420p) like the recorder writes."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
    with av.open(str(path), "w", format="mp4", options=options) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(fps)}
        for i in range(frames):
            vf = av.VideoFrame.from_ndarray(frame(i, size), format="bgr24")
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    if sidecar is not None:
        Path(str(path) + ".json").write_text(json.dumps(sidecar))
    return path


def segment_path(root: Path, stream: str, when: float) -> Path:
    day = time.strftime("%Y-%m-%d", time.localtime(when))
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    return root / stream / day / f"{stream}_{stamp}.mp4"


def write_events(root: Path, events: list[dict[str, Any]], day: Optional[str] = None) -> Path:
    day = day or time.strftime("%Y-%m-%d")
    path = root / "events" / f"{day}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        for event in events:
            fh.write(json.dumps(event) + "\n")
    return path
