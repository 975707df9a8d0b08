"""Modes layered onto NetGear through the options dict, in a fixed order."""

from __future__ import annotations

from .base import DELIVER, DROP, FINISH, Mode
from .bidirectional import BidirectionalMode
from .compression import CompressionMode
from .hub import HubMode
from .multiclient import MultiClientMode
from .multiserver import MultiServerMode
from .secure import SecureMode
from .ssh import SshTunnelMode
from .tap import PacketTapMode
from .video import VideoMode

__all__ = ["DELIVER", "DROP", "FINISH", "MODES", "Mode"]

# Order matters: hooks run in this order on send and receive, result shaping too.
MODES: tuple[type[Mode], ...] = (
    SecureMode, CompressionMode, VideoMode, BidirectionalMode, MultiServerMode, HubMode,
    MultiClientMode, SshTunnelMode, PacketTapMode,
)
