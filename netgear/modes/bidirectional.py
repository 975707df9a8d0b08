"""Bidirectional mode: a message travels with each frame, and data comes back with its reply.

``send(frame, message=m)`` delivers ``m`` with the frame and returns what the client
passed as ``recv(return_data=...)`` in the very call that received that frame. The
reply is matched to the frame by its sequence number, so a late reply to an older
frame is never mistaken for the current one.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..core.options import Option
from ..core.settings import Settings
from ..core.wire import Incoming
from ..errors import OptionError
from .base import Mode

__all__ = ["BidirectionalMode"]


class BidirectionalMode(Mode):
    """``bidirectional_mode=True`` (patterns 0 and 1)."""

    key = "bidirectional_mode"
    options: ClassVar[tuple[Option, ...]] = (
        Option("bidirectional_mode", (bool,), False,
               "send(frame, message=m) delivers m with the frame and returns the client's "
               "recv(return_data=...) for that frame; recv() returns (message, frame). "
               "Patterns 0 (PAIR) and 1 (REQ/REP).",
               # the spelling of vidgear's older API page; accepted so copied code works
               aliases=("bidectional_mode",)),
    )
    carries_message = True
    returns_data = True

    @classmethod
    def validate(cls, settings: Settings, enabled: frozenset[str]) -> None:
        if not settings.policy.two_way:
            raise OptionError("bidirectional_mode needs a pattern with replies: 0 (PAIR) or 1 "
                              "(REQ/REP); PUB/SUB (pattern 2) has no way back", key="pattern")

    def needs_reply(self) -> bool:
        # PAIR: the sender waits for each frame's reply, which carries that frame's data
        return True

    def shape_result(self, incoming: Incoming, result: Any) -> Any:
        return (incoming.message, result)
