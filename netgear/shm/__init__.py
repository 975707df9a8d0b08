"""Same-host frame transport through shared memory: the engine of ``protocol="shm"``.

``ShmSender`` and ``ShmReceiver`` move numpy frames between processes on one machine with a
single copy into a ``/dev/shm`` segment; see docs/links/shm.md. NetGear uses them through
:mod:`netgear.link.shm`; they also work on their own.
"""

from .receiver import ShmReceiver
from .segment import reclaim_if_stale, segment_path
from .sender import DEFAULT_SLOT_BYTES, ShmSender

__all__ = ["DEFAULT_SLOT_BYTES", "ShmReceiver", "ShmSender", "reclaim_if_stale", "segment_path"]
