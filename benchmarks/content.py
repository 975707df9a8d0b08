"""Camera-like test content for codec benchmarks, and real clips via PyAV.

Flat synthetic colour bars flatter every codec: a video encoder codes them in almost no
bits, and JPEG too. What cameras send is different: texture everywhere, a scene that
moves a little all the time, and sensor noise that changes in every frame and every
pixel. ``scene()`` draws that, deterministically (fixed seed):

* Background: a wide textured panorama (blurred noise at three scales, mostly in
  brightness with a little colour, a brick-like grid of edges, a lighting gradient),
  generated once per size.
* Slow pan: the view slides 1 pixel right per frame and drifts 1 row every 4 frames,
  like a camera on a loose mount or a slow PTZ sweep.
* Moving objects: five textured ellipses and rectangles crossing the scene at 1 to 6
  pixels per frame, bouncing off the edges (people, cars, a pet).
* Sensor noise: zero-mean Gaussian, sigma 2.0 grey levels per pixel and channel, fresh in
  every frame (a webcam indoors in reasonable light). Noise is drawn from a bank of 16
  fields at random offsets, so generation stays cheap at 1080p.

``clip(path, ...)`` decodes any video file PyAV opens, resized to the wanted size and
looped as needed, for ``--clip FILE`` in the benchmark. Preview a scene with::

    .venv/bin/python benchmarks/content.py --size 1280x720 --save /tmp/scene.png
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator

import cv2
import numpy as np

NOISE_SIGMA = 2.0
_NOISE_BANK = 16


def _background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A textured panorama larger than the view, so the pan never runs out."""
    pw, ph = width + 256, height + 64
    image = np.zeros((ph, pw, 3), np.float32)
    # mostly brightness texture, with a little colour at coarse scales, as real scenes have
    for scale, luma, chroma in ((64, 45.0, 25.0), (12, 25.0, 6.0), (3, 14.0, 2.0)):
        shape = (ph // scale + 2, pw // scale + 2)
        small = luma * rng.normal(0, 1, (*shape, 1)) + chroma * rng.normal(0, 1, (*shape, 3))
        image += cv2.resize(small.astype(np.float32), (pw, ph), interpolation=cv2.INTER_CUBIC)
    image += np.linspace(40, -40, pw, dtype=np.float32)[None, :, None]  # lighting gradient
    image += 120
    step = max(16, height // 12)  # brick-like edges: mortar lines with an offset every row
    for row, y in enumerate(range(0, ph, step)):
        cv2.line(image, (0, y), (pw, y), (60, 60, 70), 2)
        for x in range((row % 2) * step, pw, 2 * step):
            cv2.line(image, (x, y), (x, y + step), (60, 60, 70), 2)
    return np.clip(image, 0, 255).astype(np.uint8)


def scene(width: int, height: int, count: int, seed: int = 0,
          noise: float = NOISE_SIGMA) -> Iterator[np.ndarray]:
    """``count`` BGR uint8 frames of a panning, noisy scene with moving objects."""
    rng = np.random.default_rng(seed)
    panorama = _background(width, height, rng)
    texture = _background(width // 4 + 8, height // 4 + 8, rng)
    objects = []
    for _ in range(5):
        size = (int(rng.integers(width // 16, width // 6)),
                int(rng.integers(height // 12, height // 5)))
        objects.append({
            "pos": rng.uniform((0, 0), (width - size[0], height - size[1])),
            "vel": rng.uniform(1, 6, 2) * rng.choice((-1, 1), 2),
            "size": size,
            "colour": rng.integers(30, 225, 3),
            "round": bool(rng.integers(0, 2)),
        })
    bank = rng.normal(0, noise, (_NOISE_BANK, height + 8, width + 8, 3)).astype(np.int16) \
        if noise > 0 and width * height <= 1280 * 720 else None
    for index in range(count):
        x0, y0 = index % 256, (index // 4) % 64
        frame = panorama[y0:y0 + height, x0:x0 + width].copy()
        for obj in objects:
            x, y = (int(v) for v in obj["pos"])
            w, h = obj["size"]
            patch = texture[: h, : w].astype(np.int16) // 2 + obj["colour"] // 2
            mask = np.zeros((h, w), np.uint8)
            if obj["round"]:
                cv2.ellipse(mask, (w // 2, h // 2), (w // 2, h // 2), 0, 0, 360, 255, -1)
            else:
                mask[:] = 255
            region = frame[y:y + h, x:x + w]
            region[mask > 0] = patch.astype(np.uint8)[mask > 0]
            obj["pos"] += obj["vel"]
            for axis, limit in ((0, width - w), (1, height - h)):
                if not 0 <= obj["pos"][axis] <= limit:
                    obj["vel"][axis] *= -1
                    obj["pos"][axis] = min(max(obj["pos"][axis], 0), limit)
        if noise > 0:
            frame = _add_noise(frame, rng, bank, noise)
        yield frame


def _add_noise(frame: np.ndarray, rng: np.random.Generator, bank: np.ndarray | None,
               sigma: float) -> np.ndarray:
    height, width = frame.shape[:2]
    if bank is None:  # large frames: a fresh field costs ~50 ms, a bank would cost GBs
        field = rng.normal(0, sigma, frame.shape).astype(np.int16)
    else:
        dy, dx = (int(v) for v in rng.integers(0, 8, 2))
        field = bank[int(rng.integers(0, len(bank))), dy:dy + height, dx:dx + width]
    return np.clip(frame.astype(np.int16) + field, 0, 255).astype(np.uint8)


def clip(path: str, width: int, height: int, count: int) -> Iterator[np.ndarray]:
    """``count`` BGR frames of the video at ``path``, resized to ``width``x``height``, looped."""
    import av

    frames: list[np.ndarray] = []
    with av.open(path) as container:
        stream = container.streams.video[0]
        for picture in container.decode(stream):
            image = picture.to_ndarray(format="bgr24")
            frames.append(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
            if len(frames) >= count:
                break
    if not frames:
        raise SystemExit(f"{path}: no video frames")
    yield from itertools.islice(itertools.cycle(frames), count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--frame", type=int, default=30, help="which frame to save")
    parser.add_argument("--save", required=True, help="PNG file to write")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    frame = list(scene(width, height, args.frame + 1))[-1]
    cv2.imwrite(args.save, frame)


if __name__ == "__main__":
    main()
