"""The link: everything that moves messages between peers.

``base`` is the interface the core and the modes use, ``pattern`` the per-pattern policy,
``zmq`` the ZeroMQ implementation (the only module tree, with ``netgear.security`` and the
imagezmq wire module, that imports ``zmq``) and ``shm`` the shared-memory one (same host).
"""

from .base import NOBLOCK, Channel, Link, Stop, never
from .pattern import PATTERN_POLICIES, Pattern, pattern_policy

__all__ = ["NOBLOCK", "PATTERN_POLICIES", "Channel", "Link", "Pattern", "Stop", "never",
           "pattern_policy"]
