"""VideoDecoder: packets in, the frame that was sent out, or nothing; never a broken picture.

An H.264/HEVC P-frame only means something on top of the frames before it. Feeding one to
a decoder that missed a packet (a late joiner, a restart, a dropped message) gives a
smeared, half-grey picture, which FFmpeg happily returns. So the decoder tracks sequence
numbers itself: after a gap, an error or a forged packet it drops its state and skips
packets (counting them) until the next keyframe, which decodes on its own.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ..codecs.jpegstrips import auto_threads
from ..errors import ClosedError, OptionError, WireFormatError
from ._av import load_av
from .meta import VideoMeta

__all__ = ["VideoDecoder"]

# A keyframe of an 8K frame at very high quality stays well below this; a bigger packet is
# not ours and is refused before FFmpeg parses it.
MAX_PACKET = 64 * 1024 * 1024


class VideoDecoder:
    """Decodes one stream of packets from a :class:`~netgear.video.VideoEncoder`.

    Use one decoder per sender stream, from one thread. Counters:

    * ``decoded``: frames returned.
    * ``skipped``: packets dropped while waiting for a keyframe (late join, after a loss).
    * ``lost``: packets missing, from gaps in the sequence numbers.
    * ``errors``: packets refused as malformed or undecodable (each resets the decoder).

    Args:
        threads: Slice-decoding threads. ``None``: the cores this process may use, at
            most 4. Frame threading is never used: it would hold frames back.
    """

    def __init__(self, threads: int | None = None) -> None:
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or not 1 <= threads <= 64):
            raise OptionError(f"threads={threads!r} must be an integer in 1..64 (or None)")
        self._av = load_av()
        self._threads = threads or auto_threads()
        self._lock = threading.Lock()
        self._ctx: Any = None
        self._scaler = self._av.video.reformatter.VideoReformatter()
        self._stream: tuple[str, int, int] | None = None  # codec, width, height of _ctx
        self._synced = False
        self._next_seq: int | None = None
        self._closed = False
        self.decoded = self.skipped = self.lost = self.errors = 0
        self.last_error = ""

    @property
    def waiting_for_keyframe(self) -> bool:
        """True until a keyframe arrives: ask the sender for one (``force_keyframe()``)."""
        return not self._synced

    def would_skip(self, meta: VideoMeta) -> bool:
        """True if ``decode()`` would drop this packet for want of a reference picture.

        A receiver asks its sender for a keyframe when this holds, before decoding.
        """
        if meta.keyframe:
            return False
        return (not self._synced or self._stream != (meta.codec, meta.width, meta.height)
                or (self._next_seq is not None and meta.seq != self._next_seq))

    def stats(self) -> dict[str, int]:
        return {"decoded": self.decoded, "skipped": self.skipped, "lost": self.lost,
                "errors": self.errors}

    def decode(self, data: bytes | bytearray | memoryview,
               meta: VideoMeta | dict[str, Any]) -> np.ndarray | None:
        """The frame in ``data``, shaped as it was sent, or ``None`` if it cannot be shown.

        ``None`` means the packet was skipped (no reference yet) or refused (malformed,
        counted in ``errors``); the decoder keeps serving either way.
        """
        with self._lock:
            if self._closed:
                raise ClosedError("VideoDecoder is closed")
            try:
                info = meta if isinstance(meta, VideoMeta) else VideoMeta.from_dict(meta)
                if not isinstance(data, (bytes, bytearray, memoryview)):
                    raise WireFormatError(f"video packet must be bytes, got "
                                          f"{type(data).__name__}")
                if not 0 < len(data) <= MAX_PACKET:
                    raise WireFormatError(f"video packet of {len(data)} bytes")
            except WireFormatError as exc:
                self._fail(str(exc))
                self._next_seq = None
                return None
            return self._decode(bytes(data), info)

    def reset(self) -> None:
        """Forget the stream (the sender restarted): wait for the next keyframe."""
        with self._lock:
            self._drop()
            self._next_seq = None

    def close(self) -> None:
        """Free the decoder and stop its threads. Idempotent."""
        with self._lock:
            self._closed = True
            self._drop()
            self._scaler = None

    def _decode(self, data: bytes, info: VideoMeta) -> np.ndarray | None:
        expected, self._next_seq = self._next_seq, info.seq + 1
        if expected is not None and info.seq != expected:
            if info.seq > expected:
                self.lost += info.seq - expected
            self._drop()  # a reference may be missing (or the sender restarted)
        stream = (info.codec, info.width, info.height)
        if not info.keyframe and (not self._synced or stream != self._stream):
            self.skipped += 1
            return None
        if info.keyframe and (self._ctx is None or stream != self._stream):
            self._open(stream)
        try:
            frames = self._ctx.decode(self._av.Packet(data))
        except Exception as exc:  # av.FFmpegError and friends: refuse the packet
            self._fail(f"undecodable {info.codec} packet: {exc}")
            return None
        if not frames:  # not with these settings; never show an older picture instead
            self._fail("the decoder returned no picture for a packet")
            return None
        frame = frames[-1]
        if frame.is_corrupt or (frame.width, frame.height) != (info.width, info.height):
            self._fail(f"corrupt or mis-sized picture ({frame.width}x{frame.height}, "
                       f"header says {info.width}x{info.height})")
            return None
        self._synced = True
        self.decoded += 1
        return _to_array(frame, info.shape, self._scaler)

    def _open(self, stream: tuple[str, int, int]) -> None:
        ctx = self._av.CodecContext.create(stream[0], "r")
        ctx.thread_type = "SLICE"
        ctx.thread_count = self._threads
        ctx.flags |= self._av.codec.context.Flags.low_delay
        # Strict: refuse damaged packets instead of concealing errors; and a forged
        # parameter set cannot make FFmpeg allocate pictures much larger than the header's
        # (the margin covers FFmpeg's alignment of the coded size).
        ctx.options = {"err_detect": "crccheck+bitstream+buffer+explode",
                       "max_pixels": str((stream[1] + 128) * (stream[2] + 128))}
        ctx.open()
        self._ctx, self._stream, self._synced = ctx, stream, False

    def _drop(self) -> None:
        self._ctx = self._stream = None  # freeing the context joins its threads
        self._synced = False

    def _fail(self, reason: str) -> None:
        self.errors += 1
        self.last_error = reason[:200]
        self._drop()


def _to_array(frame: Any, shape: tuple[int, ...], scaler: Any) -> np.ndarray:
    height, width = shape[0], shape[1]
    if len(shape) == 2 or shape[2] == 1:
        if frame.format.name not in ("yuv420p", "yuvj420p"):
            frame = scaler.reformat(frame, format="yuv420p", threads=1)  # not what we send
        luma = frame.to_ndarray()[:height, :width]  # I420 rows: luma first
        return np.ascontiguousarray(luma).reshape(shape)
    bgr = scaler.reformat(frame, format="bgr24", interpolation="BICUBIC",
                          src_color_range="JPEG", dst_color_range="JPEG",
                          threads=1).to_ndarray()
    if bgr.shape[:2] != (height, width):
        bgr = np.ascontiguousarray(bgr[:height, :width])
    return bgr
