"""``loan()``: write a frame straight into shared memory, so ``send()`` copies nothing."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UsageError
from .link import ShmLink

__all__ = ["loan"]


def loan(gear: Any, shape: Any, dtype: Any = np.uint8, timeout: float = 10.0) -> np.ndarray:
    """A writable array inside the next free slot of ``gear``'s shm stream.

    Fill it (``cap.read(image=frame)``, ``cv2.resize(src, size, dst=frame)``, ...) and pass
    it to ``gear.send()``: the frame is already where receivers read it, so nothing is
    copied. It is valid until that ``send()``; sending another array instead returns the
    slot unused. Lossless patterns wait up to ``timeout`` s for a receiver and a free slot
    (``PeerTimeoutError``). Only for a ``NetGear(protocol="shm")`` sender of one stream.
    """
    link = getattr(gear, "_transport", None)
    if not isinstance(link, ShmLink) or gear.closed:
        raise UsageError("loan() needs an open NetGear sender with protocol='shm'")
    with gear._lock:  # not while another thread's send() uses the link
        return link.loan(shape, dtype, timeout)
