"""Same-host frame transport through shared memory (the engine of the future ``shm`` link).

``ShmSender`` and ``ShmReceiver`` move numpy frames between processes on one machine with a
single copy into a ``/dev/shm`` segment; see docs/links/shm.md. NetGear does not use them
yet: ``protocol="shm"`` waits for the link interface.
"""

from .receiver import ShmReceiver
from .segment import reclaim_if_stale, segment_path
from .sender import DEFAULT_SLOT_BYTES, ShmSender

__all__ = ["DEFAULT_SLOT_BYTES", "ShmReceiver", "ShmSender", "reclaim_if_stale", "segment_path"]
