"""The ZeroMQ link: the :class:`netgear.link.Link` of every protocol but ``shm``.

``transport`` (the link), ``channel`` (one socket and its error boundary), ``sockopts``
(the option policy every socket gets), ``waits`` (bounded waits, shared with the imagezmq
API) and ``tunnel`` (the SSH connector the ssh mode installs on a channel).
"""

from .channel import Channel, SocketHook, translate_errors
from .transport import Transport

__all__ = ["Channel", "SocketHook", "Transport", "translate_errors"]
