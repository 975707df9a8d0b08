"""The shared-memory link: ``NetGear(protocol="shm", address="cam0")`` on one host.

``link`` (the :class:`~netgear.link.Link` implementation over :mod:`netgear.shm`),
``channel`` (one stream, and how a message is laid out in a slot), ``names`` (stream
names from ``address``/``port``, and the options that cannot apply) and ``loan`` (a frame
written in place, sent without a copy). See docs/links/shm.md.
"""

from .channel import ShmChannel
from .link import ShmLink
from .loan import loan

__all__ = ["ShmChannel", "ShmLink", "loan"]
