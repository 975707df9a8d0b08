"""The shared-memory link: ``NetGear(protocol="shm", address="cam0")`` on one host.

``link`` (the :class:`~netgear.link.Link` implementation over :mod:`netgear.shm`),
``channel`` (one stream, and how a message is laid out in a slot) and ``names`` (stream
names from ``address``/``port``, and the options that cannot apply). See docs/links/shm.md.
"""

from .channel import ShmChannel
from .link import ShmLink

__all__ = ["ShmChannel", "ShmLink"]
