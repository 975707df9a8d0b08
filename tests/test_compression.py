"""Frame compression: JPEG (simplejpeg), JPEG/PNG/BMP (OpenCV); shape kept, errors precise."""

from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np
import pytest
from conftest import free_port

from netgear import DependencyError, NetGear, OptionError, PayloadError, WireFormatError
from netgear.codecs import decode_frame
from netgear.core.settings import build_settings
from netgear.core.wire import FRAME, Outgoing, decode, encode
from netgear.modes.compression import CompressionMode

HOST = "127.0.0.1"


def smooth(height: int = 96, width: int = 128, channels: int | None = 3) -> np.ndarray:
    """A gentle gradient: what JPEG at quality 90 must reproduce above 30 dB."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = [(x * 1.5 + y * 0.5 + 40 * k) % 256 for k in range(channels or 1)]
    image = np.stack(planes, axis=-1).astype(np.uint8)
    return image[..., 0] if channels is None else image


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def roundtrip(frames: list[np.ndarray], pattern: int = 1, **options: Any) -> list[np.ndarray]:
    """Send ``frames`` with ``options`` to a receiver that has no compression options."""
    port = free_port()
    client = NetGear(address=HOST, port=port, pattern=pattern, receive_mode=True,
                     receive_timeout=10.0)
    got: list[np.ndarray] = []

    def receive() -> None:
        while (item := client.recv()) is not None:
            got.append(item)

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    server = NetGear(address=HOST, port=port, pattern=pattern, **options)
    try:
        for image in frames:
            server.send(image)
    finally:
        server.close()
        thread.join(10)
        client.close()
    assert not thread.is_alive()
    return got


def through_mode(image: np.ndarray, receiver_opts: dict[str, Any] | None = None,
                 **options: Any) -> np.ndarray:
    """Encode with the sender's mode and decode as a receiver would, without sockets."""
    mode = CompressionMode(build_settings(None, None, "tcp", 0, False, False, _opts(options)))
    out = Outgoing(FRAME, 0, image)
    mode.on_send(out)
    incoming = decode([bytes(memoryview(p)) for p in encode(out)])
    if receiver_opts:
        CompressionMode(build_settings(None, None, "tcp", 0, True, False,
                                       _opts(receiver_opts))).on_recv(incoming, "deliver")
    return decode_frame(incoming)


def _opts(options: dict[str, Any]) -> dict[str, Any]:
    full = {spec.key: spec.default for spec in CompressionMode.options}
    full.update(options)
    return full


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("colorspace", "image"), [
    (True, smooth()),
    ("RGB", smooth()),
    ("GRAY", smooth(channels=None)),
    (True, smooth(channels=1)),
    ("BGRA", smooth(channels=4)),
])
def test_jpeg_over_sockets_keeps_shape_and_quality(colorspace: Any, image: np.ndarray) -> None:
    got = roundtrip([image, image], jpeg_compression=colorspace, jpeg_compression_quality=90)
    assert len(got) == 2
    for frame in got:
        assert frame.shape == image.shape and frame.dtype == np.uint8
        assert frame.flags.writeable
        if image.ndim == 3 and image.shape[2] == 4:
            assert (frame[..., 3] == 255).all()  # JPEG has no alpha: documented
            assert psnr(frame[..., :3], image[..., :3]) > 30
        else:
            assert psnr(frame, image) > 30


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("fmt", "image"), [
    (".png", smooth()),
    (".png", smooth(channels=4)),
    (".png", smooth(channels=None)),
    (".png", (smooth().astype(np.uint16) * 257)),
    (".bmp", smooth()),
    (".bmp", smooth(channels=4)),
    (".bmp", smooth(channels=1)),
])
def test_png_and_bmp_over_sockets_are_lossless(fmt: str, image: np.ndarray) -> None:
    (frame,) = roundtrip([image], compression_format=fmt)
    assert frame.dtype == image.dtype and frame.shape == image.shape
    np.testing.assert_array_equal(frame, image)


@pytest.mark.parametrize("channels", [None, 1, 3])
def test_opencv_jpeg_keeps_shape(channels: int | None) -> None:
    image = smooth(channels=channels)
    frame = through_mode(image, compression_format=".jpg", compression_param=90)
    assert frame.shape == image.shape and psnr(frame, image) > 30


def test_quality_is_applied() -> None:
    rough = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    # 4:4:4 isolates the quality knob: subsampled chroma cannot keep random colour noise
    low = through_mode(rough, jpeg_compression=True, jpeg_compression_quality=10,
                       jpeg_compression_colorsubsampling="444")
    high = through_mode(rough, jpeg_compression=True, jpeg_compression_quality=100,
                        jpeg_compression_colorsubsampling="444")
    assert psnr(high, rough) > psnr(low, rough) + 10


def test_colorsubsampling_defaults_to_422_and_is_applied() -> None:
    from netgear.core.options import validate_options
    from netgear.core.settings import build_settings
    from netgear.core.wire import FRAME, Outgoing
    from netgear.modes.compression import CompressionMode

    image = smooth()
    sizes = {}
    for sub in (None, "444", "422", "420"):
        extra = {} if sub is None else {"jpeg_compression_colorsubsampling": sub}
        opts = validate_options({"jpeg_compression": True, **extra}, CompressionMode.options)
        mode = CompressionMode(build_settings(None, 5555, "tcp", 1, False, False, opts))
        out = Outgoing(FRAME, 0, image)
        mode.on_send(out)
        sizes[sub] = len(out.payload)
    assert sizes[None] == sizes["422"]  # vidgear's choice, and ours by default
    assert sizes["420"] < sizes["422"] < sizes["444"]


def test_compression_param_list_is_passed_to_opencv() -> None:
    import cv2

    image = smooth()
    low = through_mode(image, compression_format=".jpg",
                       compression_param=[cv2.IMWRITE_JPEG_QUALITY, 10])
    high = through_mode(image, compression_format=".jpg",
                        compression_param=(cv2.IMWRITE_JPEG_QUALITY, 95))
    assert psnr(high, image) > psnr(low, image)


def test_receiver_decode_flags_override_the_senders() -> None:
    image = smooth()
    plain = through_mode(image, jpeg_compression=True)
    fast = through_mode(image, {"jpeg_compression": True, "jpeg_compression_fastupsample": True},
                        jpeg_compression=True)
    assert fast.shape == plain.shape and psnr(fast, image) > 30


@pytest.mark.parametrize(("options", "image", "phrase"), [
    ({"jpeg_compression": True}, smooth().astype(np.float32), "float32"),
    ({"jpeg_compression": True}, smooth(channels=4), "4 channels"),
    ({"jpeg_compression": "GRAY"}, smooth(), "3 channels"),
    ({"jpeg_compression": "BGRA"}, smooth(), "3 channels"),
    ({"jpeg_compression": True}, np.zeros((2, 3, 4, 5), np.uint8), "HxWxC"),
    ({"compression_format": ".jpg"}, smooth(channels=4), "4 channels"),
    ({"compression_format": ".bmp"}, smooth().astype(np.uint16), "uint16"),
    ({"compression_format": ".png"}, smooth().astype(np.float64), "float64"),
])
def test_frames_a_codec_cannot_keep_raise_payload_error(options: dict[str, Any],
                                                        image: np.ndarray, phrase: str) -> None:
    with pytest.raises(PayloadError, match=phrase):
        through_mode(image, **options)


@pytest.mark.timeout(20)
def test_a_refused_frame_leaves_the_stream_usable() -> None:
    good, port = smooth(), free_port()
    client = NetGear(address=HOST, port=port, pattern=1, receive_mode=True, receive_timeout=10.0)
    got: list[np.ndarray] = []

    def receive() -> None:
        while (item := client.recv()) is not None:
            got.append(item)

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    server = NetGear(address=HOST, port=port, pattern=1, jpeg_compression=True)
    with pytest.raises(PayloadError, match="uint16"):
        server.send(good.astype(np.uint16))  # refused before anything is sent
    server.send(good)
    server.close()
    thread.join(10)
    client.close()
    assert len(got) == 1 and psnr(got[0], good) > 30


@pytest.mark.parametrize(("options", "key"), [
    ({"jpeg_compression": True, "compression_format": ".png"}, "compression_format"),
    ({"jpeg_compression": "YUV"}, "jpeg_compression"),
    ({"jpeg_compression": 1}, "jpeg_compression"),
    ({"jpeg_compression": True, "jpeg_compression_quality": 5}, "jpeg_compression_quality"),
    ({"jpeg_compression_quality": 80}, "jpeg_compression_quality"),
    ({"jpeg_compression_fastdct": False}, "jpeg_compression_fastdct"),
    ({"compression_format": ".gif"}, "compression_format"),
    ({"compression_param": 50}, "compression_param"),
    ({"compression_format": ".bmp", "compression_param": 50}, "compression_param"),
    ({"compression_format": ".png", "compression_param": 50}, "compression_param"),
    ({"compression_format": ".png", "compression_param": [16, 3, 1]}, "compression_param"),
    ({"compression_format": ".png", "compression_param": "9"}, "compression_param"),
])
def test_invalid_options_raise_option_error(options: dict[str, Any], key: str) -> None:
    with pytest.raises(OptionError) as info:
        NetGear(address=HOST, port=5566, **options)
    assert info.value.key == key


def test_missing_simplejpeg_raises_dependency_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "simplejpeg", None)  # makes `import simplejpeg` fail
    with pytest.raises(DependencyError, match="pip install simplejpeg"):
        NetGear(address=HOST, port=free_port(), jpeg_compression=True)


def _incoming(codec: str, payload: bytes, **header: Any) -> Any:
    out = Outgoing(FRAME, 0, None)
    out.payload, out.codec, out.extra = payload, codec, header
    return decode([bytes(memoryview(p)) for p in encode(out)])


def test_decoders_refuse_forged_headers() -> None:
    import cv2

    jpeg = bytes(memoryview(_incoming_payload(True)))
    png = cv2.imencode(".png", smooth())[1].tobytes()
    cases = [
        _incoming("jpeg", jpeg, d="|u1", h=[96, 128, 3]),  # no colorspace
        _incoming("jpeg", jpeg, d="|u1", h=[4000, 128, 3], j=["BGR", True, False]),
        _incoming("jpeg", b"not a jpeg", d="|u1", h=[96, 128, 3], j=["BGR", True, False]),
        _incoming("jpeg", jpeg, d="|u1", h=[96, 128], j=["BGR", True, False]),
        _incoming("jpeg", jpeg, d="<f8", h=[96, 128, 3], j=["BGR", True, False]),
        _incoming("png", png, d="|u1", h=[1 << 20, 1 << 20, 3]),  # would be terabytes
        _incoming("png", png, d="|u1", h=[96, 127, 3]),
        _incoming("png", png[:40], d="|u1", h=[96, 128, 3]),
        _incoming("bmp", png, d="|u1", h=[96, 128, 3]),
        _incoming("png", png, d="|u1", h="96x128"),
        _incoming("webp", png, d="|u1", h=[96, 128, 3]),
    ]
    for incoming in cases:
        with pytest.raises(WireFormatError):
            decode_frame(incoming)


def _incoming_payload(colorspace: Any) -> Any:
    mode = CompressionMode(build_settings(None, None, "tcp", 0, False, False,
                                          _opts({"jpeg_compression": colorspace})))
    out = Outgoing(FRAME, 0, smooth())
    mode.on_send(out)
    return out.payload
