"""RecordingHub: a MontageHub that also hands every frame to a Recorder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..modes.tap import TappedPacket
from ..video import VideoMeta
from ..web.hub import MontageHub
from .recorder import Recorder

__all__ = ["RecordingHub"]


class RecordingHub(MontageHub):
    """Receive like :class:`MontageHub` and record what arrives; ``stats()`` gains a
    ``recording`` entry (the recorder's status) for the viewer. Closing the hub closes the
    recorder after receiving stopped, so the last segments are finished.

    ``passthrough`` (MP4 only): a stream that travels as H.264/HEVC is recorded from the
    packets as they arrived (the receiver's ``packet_tap``), without an encoder; the hub
    still decodes them for the live view. ``False`` encodes the decoded frames again, like
    raw and JPEG streams (e.g. to get H.264 from an HEVC stream, for a browser).

    A frame that is not a picture (empty or 1-D, e.g. ``np.zeros(0, np.uint8)``) is how a
    sender sends a text alone: its message goes to the event log and nothing is recorded.
    """

    def __init__(self, recorder: Recorder, ports: Sequence[int], passthrough: bool = True,
                 **kwargs: Any) -> None:
        self.recorder = recorder
        self.passthrough = passthrough and recorder.format == "mp4"
        self._joined: set[str] = set()
        # the packet of the frame recv() is returning; _store takes it right after
        self._packet: tuple[str, bytes, VideoMeta] | None = None
        super().__init__(ports, **kwargs)

    def start(self) -> RecordingHub:
        self.recorder.start()
        super().start()
        return self

    def _on_packet(self, packet: TappedPacket) -> None:
        super()._on_packet(packet)
        if self.passthrough and packet.video is not None:
            # copied: the payload is the receive buffer, gone once recv() returns
            self._packet = (packet.stream, bytes(packet.payload), packet.video)

    def _store(self, item: Any) -> None:
        packet, self._packet = self._packet, None
        port, frame = str(item[0]), item[-1]
        message = item[1] if len(item) == 3 else None
        name = message.strip()[:40] if isinstance(message, str) and message.strip() else None
        picture = isinstance(frame, np.ndarray) and frame.ndim in (2, 3) and frame.size > 0
        if not picture:  # the montage keeps the stream's last picture and its name
            with self._lock:
                view = self._views.get(port)
                item = (port, None, None if view is None else view.frame)
        super()._store(item)
        self._joined.add(port)
        if picture and packet is not None and packet[0] == port:
            _, data, meta = packet
            self.recorder.add_packet(port, data, meta.keyframe, codec=meta.codec,
                                     width=meta.width, height=meta.height, name=name,
                                     message=message)
        elif picture:
            self.recorder.add_frame(port, frame, name=name, message=message)
        else:  # NetGear always sends an array: an empty or 1-D one carries a message alone
            self.recorder.add_message(port, message, name=name)

    def _copy_stats(self) -> None:
        super()._copy_stats()
        with self._lock:
            streams = dict(self._stats.get("streams", {}))
        # A sender's goodbye resets its sequence (NetGear.stats: last_seq -1)
        for port in list(self._joined):
            entry = streams.get(port)
            if entry is not None and entry.get("last_seq", 0) < 0:
                self._joined.discard(port)
                self.recorder.stream_left(port)

    def stats(self) -> dict[str, Any]:
        data = super().stats()
        data["recording"] = self.recorder.status()
        return data

    def close(self) -> None:
        super().close()
        self.recorder.close()
