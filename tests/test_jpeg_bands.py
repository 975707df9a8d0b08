"""Strip-parallel JPEG: frames cut into bands coded on several threads, same pixels as one JPEG."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import simplejpeg
from conftest import free_port
from test_compression import _incoming, _opts, roundtrip, smooth

from netgear import NetGear, OptionError, WireFormatError
from netgear.codecs import decode_frame
from netgear.codecs.jpegstrips import plan_bands
from netgear.core.settings import build_settings
from netgear.core.wire import FRAME, Outgoing
from netgear.modes.compression import CompressionMode

HOST = "127.0.0.1"


def camera_like(height: int = 480, width: int = 640, channels: int | None = 3) -> np.ndarray:
    """Gradients plus noise: every band has detail, so a wrong seam would show."""
    rng = np.random.default_rng(3)
    image = smooth(height, width, channels).astype(np.int16)
    image += rng.integers(-12, 12, image.shape, dtype=np.int16)
    return np.clip(image, 0, 255).astype(np.uint8)


def encoded(image: np.ndarray, **options: Any) -> Outgoing:
    mode = CompressionMode(build_settings(None, None, "tcp", 0, False, False,
                                          _opts({"jpeg_compression": True, **options})))
    out = Outgoing(FRAME, 0, image)
    try:
        mode.on_send(out)
    finally:
        mode.close()
    return out


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("image", "subsampling"), [
    (camera_like(), None),  # 4:2:2, the default
    (camera_like(), "444"),
    (camera_like(channels=None), None),  # gray
])
def test_banded_frames_decode_to_the_same_pixels_as_one_jpeg(image: np.ndarray,
                                                             subsampling: str | None) -> None:
    extra = {} if subsampling is None else {"jpeg_compression_colorsubsampling": subsampling}
    single = roundtrip([image], jpeg_compression=True, jpeg_compression_threads=1, **extra)
    banded = roundtrip([image], jpeg_compression=True, jpeg_compression_threads=3, **extra)
    assert len(single) == len(banded) == 1
    assert banded[0].shape == image.shape
    np.testing.assert_array_equal(banded[0], single[0])


def test_sender_cuts_frames_on_block_rows_and_the_header_describes_the_bands() -> None:
    image = camera_like(480, 640)
    out = encoded(image, jpeg_compression_threads=3)
    layout = out.extra["b"]
    assert [rows for rows, _ in layout] == plan_bands(480, 3, "422")
    assert len(layout) == 3 and all(rows % 8 == 0 for rows, _ in layout)
    assert sum(size for _, size in layout) == len(out.payload)
    start = 0
    for rows, size in layout:  # each band is a complete JPEG of its rows
        assert simplejpeg.decode_jpeg_header(out.payload[start:start + size])[:2] == (rows, 640)
        start += size


@pytest.mark.parametrize(("image", "options"), [
    (camera_like(480, 640), {"jpeg_compression_threads": 1}),
    (camera_like(480, 640), {"jpeg_compression_colorsubsampling": "420"}),  # seams would show
    (camera_like(100, 640), {"jpeg_compression_threads": 4}),  # too short for two bands
])
def test_frames_stay_one_jpeg_where_bands_would_not_help(image: np.ndarray,
                                                         options: dict[str, Any]) -> None:
    out = encoded(image, **options)
    assert "b" not in out.extra
    assert simplejpeg.decode_jpeg_header(out.payload)[:2] == image.shape[:2]


def test_forged_band_layouts_are_refused() -> None:
    out = encoded(camera_like(480, 640), jpeg_compression_threads=2)
    payload, good = bytes(out.payload), out.extra["b"]
    (rows_a, size_a), (rows_b, size_b) = good
    header = {"d": "|u1", "h": [480, 640, 3], "j": ["BGR", True, False]}
    layouts = [
        "two bands",
        [[480, len(payload)]],  # a single band is not a band layout
        [[rows_a, size_a], [rows_b + 8, size_b]],  # rows do not add up
        [[rows_a, size_a - 1], [rows_b, size_b]],  # bytes do not add up
        [[rows_a, 0], [rows_b, size_a + size_b]],
        [[True, size_a], [rows_b, size_b]],
        [[rows_a, size_a], [rows_b, size_b, 0]],
        [[rows_a - 8, size_a], [rows_b + 8, size_b]],  # bands are not that tall
        [[rows_a, size_b], [rows_b, size_a]] if size_a != size_b else [[1, 1]],  # cut mid-JPEG
        [[1, 1]] * 17,
    ]
    for layout in layouts:
        with pytest.raises(WireFormatError):
            decode_frame(_incoming("jpeg", payload, b=layout, **header))
    # and the genuine layout decodes
    assert decode_frame(_incoming("jpeg", payload, b=good, **header)).shape == (480, 640, 3)


def _jpeg_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("netgear-jpeg")]


@pytest.mark.timeout(30)
def test_band_threads_run_while_streaming_and_stop_at_close() -> None:
    port = free_port()
    options = {"jpeg_compression": True, "jpeg_compression_threads": 2}
    rx = NetGear(address=HOST, port=port, pattern=1, receive_mode=True, receive_timeout=10.0,
                 **options)
    tx = NetGear(address=HOST, port=port, pattern=1, **options)
    seen: list[str] = []
    got: list[np.ndarray] = []

    def receive() -> None:
        while (item := rx.recv()) is not None:
            got.append(item)
            seen.extend(_jpeg_threads())

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    try:
        for _ in range(5):
            tx.send(camera_like())
    finally:
        tx.close()
        thread.join(10)
        rx.close()
    assert len(got) == 5
    assert any(n.startswith("netgear-jpeg-encode") for n in seen)
    assert any(n.startswith("netgear-jpeg-decode") for n in seen)
    assert _jpeg_threads() == []


@pytest.mark.parametrize(("options", "key"), [
    ({"jpeg_compression": True, "jpeg_compression_threads": 0}, "jpeg_compression_threads"),
    ({"jpeg_compression": True, "jpeg_compression_threads": 17}, "jpeg_compression_threads"),
    ({"jpeg_compression": True, "jpeg_compression_threads": True}, "jpeg_compression_threads"),
    ({"jpeg_compression": True, "jpeg_compression_threads": "2"}, "jpeg_compression_threads"),
    ({"jpeg_compression_threads": 2}, "jpeg_compression_threads"),  # needs jpeg_compression
])
def test_invalid_thread_counts_raise_option_error(options: dict[str, Any], key: str) -> None:
    with pytest.raises(OptionError) as info:
        NetGear(address=HOST, port=5566, **options)
    assert info.value.key == key
