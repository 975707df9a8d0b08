"""RecordingHub: a MontageHub that also hands every frame to a Recorder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..web.hub import MontageHub
from .recorder import Recorder

__all__ = ["RecordingHub"]


class RecordingHub(MontageHub):
    """Receive like :class:`MontageHub` and record what arrives; ``stats()`` gains a
    ``recording`` entry (the recorder's status) for the viewer. Closing the hub closes the
    recorder after receiving stopped, so the last segments are finished."""

    def __init__(self, recorder: Recorder, ports: Sequence[int], **kwargs: Any) -> None:
        super().__init__(ports, **kwargs)
        self.recorder = recorder
        self._joined: set[str] = set()

    def start(self) -> RecordingHub:
        self.recorder.start()
        super().start()
        return self

    def _store(self, item: Any) -> None:
        super()._store(item)
        port = str(item[0])
        message = item[1] if len(item) == 3 else None
        name = message.strip()[:40] if isinstance(message, str) and message.strip() else None
        self._joined.add(port)
        self.recorder.add_frame(port, item[-1], name=name, message=message)

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
