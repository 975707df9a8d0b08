"""FrameInfo: what ``recv(info=True)`` returns, one small typed object per message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

__all__ = ["FrameInfo"]


@dataclass(frozen=True)
class FrameInfo:
    """One received message and where it came from.

    ``frame`` is None for a data-only message (``send(None, message=...)``). ``name``
    is the stream: the server's ``stream_name`` at a one-port hub, else the port it
    arrived on. ``latency`` is ``received_at - sent_at`` in seconds, across two
    clocks (as accurate as their synchronisation).
    """

    frame: Optional[np.ndarray]
    name: str
    sequence: int
    sent_at: float  # time.time() on the sender when it sent the message
    received_at: float  # time.time() here, when recv() decoded it
    message: Any = None

    @property
    def latency(self) -> float:
        return self.received_at - self.sent_at
