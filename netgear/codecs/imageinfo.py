"""What a compressed image will cost to decode, read from its container header alone.

A few kilobytes of PNG or JPEG can declare gigapixels, and a decoder allocates the full
image before it reads a pixel. So every decoder in netgear first parses the header here
(PNG IHDR and the chunks before the image data, JPEG segments up to the first scan, the
BMP info header) and compares the bytes decoding would allocate with the receiver's
``max_decoded_bytes``. Nothing here allocates more than a few small objects, and the
work is bounded by a fixed number of header segments, not by the payload's size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import FrameRefusedError, WireFormatError

__all__ = ["DEFAULT_MAX_DECODED_BYTES", "ImageInfo", "bmp_info", "check_budget", "jpeg_info",
           "png_info"]

# 8K with alpha (7680 x 4320 x 4 = 132.7 MB) fits; a 16384 x 16384 claim does not.
DEFAULT_MAX_DECODED_BYTES = 128 * 1024 * 1024
MAX_HEADER_SEGMENTS = 64  # our encoders write 1-10 before the image data
MAX_JPEG_SCANS = 100  # a progressive JPEG has ~10; libjpeg makes a full pass per scan
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> channels OpenCV returns with IMREAD_UNCHANGED, for the types we accept
_PNG_CHANNELS = {0: 1, 2: 3, 6: 4}
_PNG_REFUSED = (b"PLTE", b"tRNS", b"iCCP", b"zTXt", b"iTXt")
# JPEG start-of-frame markers libjpeg-turbo decodes in 8-bit mode: baseline, extended,
# progressive. Lossless, hierarchical and arithmetic-coded frames are refused.
_SOF_ACCEPTED = {0xC0: False, 0xC1: False, 0xC2: True}
_SOF_ALL = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = set(range(0xD0, 0xD8)) | {0x01}  # RSTn and TEM carry no length


@dataclass(frozen=True)
class ImageInfo:
    """Dimensions from a container header, and the bytes decoding it would allocate."""

    height: int
    width: int
    channels: int  # as decoded (OpenCV IMREAD_UNCHANGED; JPEG: image components)
    itemsize: int
    cost: int  # decoded image plus the decoder's whole-image work buffers, in bytes


def check_budget(info: ImageInfo, limit: int | None, what: str) -> None:
    """Raise :class:`FrameRefusedError` when decoding would allocate more than ``limit``."""
    if limit is not None and info.cost > limit:
        raise FrameRefusedError(
            f"refused {what} of {info.height}x{info.width}x{info.channels}: decoding would "
            f"allocate {info.cost} bytes, over max_decoded_bytes={limit}; raise "
            "max_decoded_bytes if such frames are expected")


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _round_up(a: int, b: int) -> int:
    return _ceil(a, b) * b


def _u16(data: Any, at: int) -> int:
    return int.from_bytes(data[at:at + 2], "big")


def png_info(data: memoryview) -> ImageInfo:
    """PNG as netgear's senders write it: 8/16-bit gray, RGB or RGBA, no palette or tRNS."""
    if len(data) < 33 or bytes(data[:8]) != _PNG_SIGNATURE or bytes(data[12:16]) != b"IHDR":
        raise WireFormatError("png payload lacks the PNG signature and IHDR chunk")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    depth, colour = data[24], data[25]
    if colour not in _PNG_CHANNELS or depth not in (8, 16) or not width or not height:
        raise WireFormatError(f"png colour type {colour} at {depth} bits is not a frame "
                              "netgear sends (8/16-bit gray, RGB or RGBA)")
    # Walk the chunks before the image data: a palette or transparency chunk would make
    # OpenCV decode more channels than IHDR implies, and libpng inflates compressed
    # profile and text chunks (none of which netgear's senders write).
    at = 8
    for _ in range(MAX_HEADER_SEGMENTS):
        if at + 8 > len(data):
            break
        size, kind = int.from_bytes(data[at:at + 4], "big"), bytes(data[at + 4:at + 8])
        if kind == b"IDAT":
            channels, itemsize = _PNG_CHANNELS[colour], depth // 8
            return ImageInfo(height, width, channels, itemsize,
                             height * width * channels * itemsize)
        if kind in _PNG_REFUSED:
            raise WireFormatError(f"png with a {kind.decode()} chunk refused")
        at += 12 + size
    raise WireFormatError("png image data not found within its first chunks")


def bmp_info(data: memoryview) -> ImageInfo:
    """Uncompressed 8/24/32-bit BMP; its pixel data must be there in full."""
    if len(data) < 34 or bytes(data[:2]) != b"BM":
        raise WireFormatError("bmp payload lacks the BM signature")
    dib = int.from_bytes(data[14:18], "little")
    if dib not in (40, 52, 56, 108, 124):
        raise WireFormatError(f"bmp info header of {dib} bytes refused")
    width = int.from_bytes(data[18:22], "little", signed=True)
    height = abs(int.from_bytes(data[22:26], "little", signed=True))  # < 0: top-down
    bits, compression = int.from_bytes(data[28:30], "little"), int.from_bytes(data[30:34], "little")
    offset = int.from_bytes(data[10:14], "little")
    if (width <= 0 or not height or bits not in (8, 24, 32)
            or compression not in ((0, 3) if bits == 32 else (0,))):
        raise WireFormatError(f"bmp of {width}x{height} at {bits} bits, compression "
                              f"{compression}, refused (netgear sends uncompressed 8/24/32-bit)")
    stride = (width * bits + 31) // 32 * 4
    if len(data) < offset + stride * height:
        raise WireFormatError(f"bmp pixel data is shorter than its {width}x{height} header")
    # OpenCV may expand an 8-bit palette image to colour: budget for 4 channels
    return ImageInfo(height, width, bits // 8, 1, height * width * 4)


def jpeg_info(data: memoryview) -> ImageInfo:
    """Scan the segments of a JPEG up to its first scan: frame size, components, scan mode."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise WireFormatError("jpeg payload lacks the start-of-image marker")
    at, frame = 2, None
    for _ in range(MAX_HEADER_SEGMENTS):
        if at + 4 > len(data) or data[at] != 0xFF:
            break
        marker = data[at + 1]
        if marker == 0xFF or marker in _STANDALONE:  # a fill byte, or a marker without length
            at += 1 if marker == 0xFF else 2
            continue
        length = _u16(data, at + 2)
        if length < 2 or at + 2 + length > len(data):
            break
        segment = data[at + 4:at + 2 + length]
        if marker in _SOF_ALL:
            if frame is not None:
                break  # libjpeg refuses a second frame header too
            frame = _jpeg_frame(marker, segment)
        elif marker == 0xDA:  # start of scan: the header ends here
            if frame is None or not len(segment):
                break
            return _jpeg_cost(frame, data, first_scan_components=segment[0])
        elif marker == 0xD9:
            break
        at += 2 + length
    raise WireFormatError("jpeg header is malformed or has no frame and scan within its "
                          "first segments")


def _jpeg_frame(marker: int, segment: memoryview) -> tuple[bool, int, int, list[tuple[int, int]]]:
    if marker not in _SOF_ACCEPTED:
        raise WireFormatError(f"jpeg frame type 0x{marker:02X} refused (baseline, extended "
                              "and progressive 8-bit only)")
    if len(segment) < 6 or segment[0] != 8:
        raise WireFormatError("jpeg frame header is not 8-bit precision")
    height, width, count = _u16(segment, 1), _u16(segment, 3), segment[5]
    if not height or not width or count not in (1, 3, 4) or len(segment) < 6 + 3 * count:
        raise WireFormatError(f"jpeg frame of {height}x{width} with {count} components refused")
    factors = []
    for i in range(count):
        sampling = segment[7 + 3 * i]
        h, v = sampling >> 4, sampling & 15
        if not 1 <= h <= 4 or not 1 <= v <= 4:
            raise WireFormatError(f"jpeg sampling factors {h}x{v} refused")
        factors.append((h, v))
    return _SOF_ACCEPTED[marker], height, width, factors


def _jpeg_cost(frame: tuple[bool, int, int, list[tuple[int, int]]], data: memoryview,
               first_scan_components: int) -> ImageInfo:
    progressive, height, width, factors = frame
    count = len(factors)
    # Output: at most 4 bytes a pixel (a 4-channel colourspace), whatever the components.
    cost = height * width * max(count, 4 if count > 1 else 1)
    if progressive or first_scan_components < count:
        # libjpeg keeps every DCT coefficient of the image (2 bytes each) between scans
        hmax, vmax = max(h for h, _ in factors), max(v for _, v in factors)
        for h, v in factors:
            # libjpeg's coefficient arrays: blocks per component, padded to its sampling
            blocks_wide = _round_up(_ceil(width * h, 8 * hmax), h)
            blocks_high = _round_up(_ceil(height * v, 8 * vmax), v)
            cost += blocks_wide * blocks_high * 64 * 2
        # every scan is a full pass over those coefficients: bound the passes
        scans = 0
        for _ in re.finditer(b"\xff\xda", data):  # stuffing keeps FF DA out of scan data
            scans += 1
            if scans > MAX_JPEG_SCANS:
                break
        if scans > MAX_JPEG_SCANS:
            raise FrameRefusedError(f"refused jpeg with more than {MAX_JPEG_SCANS} scans: "
                                    "each one is a full decoding pass")
    return ImageInfo(height, width, count, 1, cost)
