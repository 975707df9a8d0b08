"""What each messaging pattern promises, as named properties instead of ``pattern == N``.

The core, the modes and the link read these; the pattern number appears only in the
table at the bottom (and in user-facing messages).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PATTERN_POLICIES", "Pattern", "pattern_policy"]


@dataclass(frozen=True)
class Pattern:
    """One messaging pattern's behaviour, read by name."""

    number: int
    name: str
    sender_socket: str  # the ZeroMQ socket type names, for the ZeroMQ link
    receiver_socket: str
    # every frame is answered before the next one goes (REQ/REP)
    replies: bool
    # a way back exists, so a receiver can return data (bidirectional mode)
    two_way: bool
    # the receiver answers the end-of-stream marker, which the sender waits for
    acknowledges_end: bool
    # one sender reaches every receiver (PUB/SUB): no replies, END published repeatedly
    fans_out: bool
    # a closing sender's socket lingers so its last messages flush
    lingers_on_close: bool
    # the sender connects at its first frame, once the frame size sized its queue
    connects_at_first_frame: bool
    # several peers on several ports (multi-server and multi-client modes)
    multi_peer: bool

    @property
    def drops_when_busy(self) -> bool:
        """flag=NOBLOCK may drop a frame: only where no reply is owed for it."""
        return not self.replies

    @property
    def conflates(self) -> bool:
        """conflate can keep only the newest frame: a REQ peer never queues more than one."""
        return not self.replies


PAIR = Pattern(0, "PAIR", "PAIR", "PAIR", replies=False, two_way=True,
               acknowledges_end=True, fans_out=False, lingers_on_close=False,
               connects_at_first_frame=True, multi_peer=False)
REQ_REP = Pattern(1, "REQ/REP", "REQ", "REP", replies=True, two_way=True,
                  acknowledges_end=False, fans_out=False, lingers_on_close=True,
                  connects_at_first_frame=False, multi_peer=True)
# The PUB/SUB sender is an XPUB so close() can switch on XPUB_NODROP and be sure the
# end-of-stream message is queued to every subscriber instead of dropped by a full pipe.
PUB_SUB = Pattern(2, "PUB/SUB", "XPUB", "SUB", replies=False, two_way=False,
                  acknowledges_end=False, fans_out=True, lingers_on_close=True,
                  connects_at_first_frame=True, multi_peer=True)

PATTERN_POLICIES = {p.number: p for p in (PAIR, REQ_REP, PUB_SUB)}


def pattern_policy(number: int) -> Pattern:
    """The policy of pattern ``number`` (already validated by the settings)."""
    return PATTERN_POLICIES[number]
