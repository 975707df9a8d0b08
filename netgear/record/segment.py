"""SegmentWriter: one stream's frames (or H.264/HEVC packets) as fixed-length MP4 segments.

Segments are fragmented MP4 with one fragment per frame and the I/O buffer flushed after
each packet, so a recorder killed with SIGKILL leaves a file that plays up to its last
complete frame. Each segment is a new file with a fresh encoder, so every segment starts
on a keyframe and plays on its own.
"""

from __future__ import annotations

import json
import logging
import os
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import DependencyError, OptionError
from .layout import day_folder, stamp

__all__ = ["SEGMENT_SECONDS", "SegmentWriter"]

logger = logging.getLogger(__name__)

SEGMENT_SECONDS = 60.0
TIME_BASE = Fraction(1, 1000)  # pts in milliseconds since the segment started
# empty_moov + a fragment per frame: the file is playable after every frame that hit disk
MP4_OPTIONS = {"movflags": "empty_moov+default_base_moof+frag_every_frame+frag_keyframe",
               "flush_packets": "1"}
PARAM_SETS = {"h264": {7, 8}, "hevc": {32, 33, 34}}


def _av() -> Any:
    try:
        import av
    except ImportError as exc:
        raise DependencyError("recording MP4 needs PyAV: pip install 'netgear[record]' "
                              "(or use --format jpeg)") from exc
    return av


def _nal_units(data: bytes) -> list[bytes]:
    """Annex B byte stream -> NAL units (start codes removed)."""
    parts = data.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01")
    return [p for p in parts if p]


def parameter_sets(data: bytes, codec: str) -> bytes:
    """The SPS/PPS (and VPS for HEVC) NAL units of an Annex B keyframe, as Annex B."""
    wanted = PARAM_SETS[codec]
    out = []
    for nal in _nal_units(data):
        kind = nal[0] & 0x1F if codec == "h264" else (nal[0] >> 1) & 0x3F
        if kind in wanted:
            out.append(b"\x00\x00\x00\x01" + nal)
    return b"".join(out)


class SegmentWriter:
    """Write one stream to ``root/<stream>/<day>/<stream>_<stamp>.mp4``, cut every
    ``segment_seconds`` on a keyframe.

    Use :meth:`write_frame` for decoded frames (encoded once with libx264) or
    :meth:`write_packet` for H.264/HEVC packets (muxed as they are: no encoder).
    Raises ``OSError`` (disk full, permission) or ``av.FFmpegError``; the caller decides.
    """

    def __init__(self, root: Path, stream: str, segment_seconds: float = SEGMENT_SECONDS,
                 crf: int = 23, preset: str = "veryfast", keyint_s: float = 2.0,
                 on_event: Any = None) -> None:
        if not segment_seconds > 0:
            raise OptionError(f"segment_seconds={segment_seconds!r} must be > 0, e.g. 60",
                              key="segment_seconds")
        if not 0 <= int(crf) <= 51:
            raise OptionError(f"crf={crf!r} is outside 0-51 (lower is better; 23 is "
                              "libx264's default)", key="crf")
        self.av = _av()
        self.root = Path(root)
        self.stream = stream
        self.segment_seconds = float(segment_seconds)
        self.crf, self.preset, self.keyint_s = int(crf), preset, keyint_s
        self.on_event = on_event or (lambda event, **details: None)
        self.path: Optional[Path] = None  # the segment being written
        self.encoders_opened = 0  # libx264 contexts opened (0 for passthrough recording)
        self.segments = 0
        self._container: Any = None
        self._vstream: Any = None
        self._started = 0.0  # time.time() of the segment's first frame
        self._last_pts = -1
        self._frames = 0
        self._bytes = 0
        self._size: tuple[int, int] = (0, 0)
        self._codec = ""
        self._key: tuple[Any, ...] = ()

    # -- decoded frames -------------------------------------------------------------------
    def write_frame(self, frame: np.ndarray, when: Optional[float] = None) -> None:
        """Encode one BGR (or greyscale) frame received at ``when`` (time.time())."""
        when = time.time() if when is None else when
        image = _even(frame)
        height, width = image.shape[:2]
        if self._due(when, ("x264", width, height), keyframe=True):
            self._open(when, "h264", width, height)
            ctx = self._vstream.codec_context
            ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
            ctx.time_base = TIME_BASE
            ctx.gop_size = max(1, round(self.keyint_s * 15))  # a keyframe every ~2 s at 15 fps
            ctx.options = {"preset": self.preset, "tune": "zerolatency", "crf": str(self.crf)}
            self.encoders_opened += 1
        fmt = "gray" if image.ndim == 2 else "bgr24"
        vframe = self.av.VideoFrame.from_ndarray(image, format=fmt)
        vframe.pts = self._pts(when)
        vframe.time_base = TIME_BASE
        for packet in self._vstream.encode(vframe):
            self._mux(packet)
        self._frames += 1

    # -- already-encoded packets (passthrough) --------------------------------------------
    def write_packet(self, data: bytes, keyframe: bool, pts: Optional[float] = None,
                     codec: str = "h264", width: int = 0, height: int = 0,
                     extradata: Optional[bytes] = None) -> bool:
        """Mux one Annex B H.264/HEVC packet without re-encoding it.

        ``pts`` is seconds (time.time() when None). Packets before the first keyframe
        cannot be decoded and are skipped: returns False for them, True when written.
        """
        if codec not in PARAM_SETS:
            raise OptionError(f"codec={codec!r}: passthrough records 'h264' or 'hevc'",
                              key="codec")
        when = time.time() if pts is None else float(pts)
        if self._container is None and not keyframe:
            return False
        if self._due(when, (codec, width, height), keyframe=keyframe):
            if not keyframe:
                return False
            self._open(when, codec, width, height, passthrough=True)
            # PyAV takes the MP4 header's parameter sets from the first packet (its
            # extract_extradata filter): give it them in-band when they come separately
            if extradata and not parameter_sets(data, codec):
                data = bytes(extradata) + bytes(data)
        packet = self.av.Packet(data)
        packet.pts = packet.dts = self._pts(when)
        packet.time_base = TIME_BASE
        packet.is_keyframe = bool(keyframe)
        packet.stream = self._vstream
        self._mux(packet)
        self._frames += 1
        return True

    # -- segments -------------------------------------------------------------------------
    def _due(self, when: float, key: tuple[Any, ...], keyframe: bool) -> bool:
        """True when a new segment must start (none yet, size/codec change, time is up)."""
        if self._container is None:
            return True
        if key != self._key or (keyframe and when - self._started >= self.segment_seconds):
            self.close_segment()
            return True
        return False

    def _open(self, when: float, codec: str, width: int, height: int,
              passthrough: bool = False) -> None:
        folder = day_folder(self.root, self.stream, when)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.stream}_{stamp(when)}.mp4"
        n = 1
        while path.exists():  # two segments in one second (a restart, short segments)
            path = folder / f"{self.stream}_{stamp(when)}-{n}.mp4"
            n += 1
        container = self.av.open(str(path), mode="w", format="mp4", options=MP4_OPTIONS)
        try:
            if passthrough:
                vstream = container.add_mux_stream(codec, width=width, height=height,
                                                   time_base=TIME_BASE)
            else:
                vstream = container.add_stream("libx264", rate=30)
        except BaseException:
            container.close()
            raise
        self._container, self._vstream, self.path = container, vstream, path
        self._started, self._last_pts, self._frames, self._bytes = when, -1, 0, 0
        self._size, self._codec = (width, height), codec
        self._key = ((codec if passthrough else "x264"), width, height)
        self.segments += 1
        self._sidecar(complete=False)
        self.on_event("segment_opened", path=str(path), codec=codec,
                      passthrough=passthrough, width=width, height=height)

    def _pts(self, when: float) -> int:
        pts = max(self._last_pts + 1, round((when - self._started) * 1000))
        self._last_pts = pts
        return pts

    def _mux(self, packet: Any) -> None:
        self._bytes += packet.size
        self._container.mux(packet)

    def close_segment(self) -> None:
        """Finish the current segment (flush the encoder, write the sidecar)."""
        container, self._container = self._container, None
        if container is None:
            return
        try:
            if self._vstream.codec_context is not None:
                for packet in self._vstream.encode(None):
                    self._bytes += packet.size
                    container.mux(packet)
        finally:
            container.close()
        self._sidecar(complete=True)
        self.on_event("segment_closed", path=str(self.path), frames=self._frames,
                      bytes=self._bytes, seconds=round(self._last_pts / 1000.0, 3))

    def _sidecar(self, complete: bool) -> None:
        assert self.path is not None  # set by _open before any sidecar is written
        info = {"start": self._started, "end": self._started + max(0, self._last_pts) / 1000.0,
                "frames": self._frames, "bytes": self._bytes, "codec": self._codec,
                "width": self._size[0], "height": self._size[1], "complete": complete}
        tmp = self.path.with_name(self.path.name + ".json.tmp")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, self.path.with_name(self.path.name + ".json"))

    def close(self) -> None:
        """Finish the segment being written; idempotent."""
        self.close_segment()


def _even(frame: np.ndarray) -> np.ndarray:
    """yuv420p needs even sizes: pad an odd width/height with one edge row/column."""
    if frame.dtype != np.uint8:
        raise OptionError(f"frames to record must be uint8 images, not {frame.dtype}")
    height, width = frame.shape[:2]
    pad_h, pad_w = height % 2, width % 2
    if pad_h or pad_w:
        widths = ((0, pad_h), (0, pad_w)) + (((0, 0),) if frame.ndim == 3 else ())
        frame = np.pad(frame, widths, mode="edge")
    if frame.ndim == 3 and frame.shape[2] == 4:
        frame = frame[:, :, :3]
    return np.ascontiguousarray(frame)
