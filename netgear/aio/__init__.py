"""The asyncio API: ``from netgear.aio import NetGear`` (also ``netgear.AsyncNetGear``).

``NetGear`` takes the sync class's arguments and options and raises its errors; its
``send()``, ``recv()`` and ``close()`` are awaited. ``NetGear_Async`` runs vidgear's
NetGear_Async examples with only the import changed. See docs/aio.md.
"""

from .netgear import NetGear
from .vidgear import NetGear_Async

__all__ = ["NetGear", "NetGear_Async"]
