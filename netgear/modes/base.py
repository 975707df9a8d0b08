"""The interface every mode implements.

A mode is one file in ``netgear/modes/`` with one :class:`Mode` subclass. It
declares the option keys it owns and capability flags the core reads, and it
hooks into construction (``configure``), each sent message (``on_send``), each
received message (``on_recv``), the value ``recv()``/``send()`` return, and
``close()``. The core calls the enabled modes in the fixed order of
``netgear.modes.MODES``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..core.options import Option
from ..core.settings import Settings

if TYPE_CHECKING:
    from ..codecs.base import Encoder
    from ..core.wire import Incoming, Outgoing
    from ..errors import PeerTimeoutError
    from ..link import Channel, Link

__all__ = ["DELIVER", "DROP", "FINISH", "EncoderMode", "Mode"]

# What the receiver does with a decoded message; modes may change the core's verdict.
DELIVER, DROP, FINISH = "deliver", "drop", "finish"


class Mode:
    """Base class: a mode that is enabled by the boolean option named ``key``."""

    key: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    # True: send(..., message=...) is delivered to the receiver (else it is refused).
    carries_message: ClassVar[bool] = False
    # True: recv(return_data=...) travels back and send() returns it.
    returns_data: ClassVar[bool] = False
    # True: the mode's codec keeps state between frames, so a fire-and-forget PAIR sender
    # reads the keyframe requests its receiver sends unasked.
    keyframes: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # -- construction ---------------------------------------------------------------
    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return bool(settings.options.get(cls.key))

    @classmethod
    def validate(cls, settings: Settings, enabled: frozenset[str]) -> None:
        """Raise OptionError for combinations this mode cannot work with."""

    @classmethod
    def accepts_port_list(cls, settings: Settings) -> bool:
        """True when this mode gives a list of ports a meaning on this side."""
        return False

    @classmethod
    def split_channels(cls, settings: Settings) -> bool:
        """True when each port needs its own socket (instead of one socket for all)."""
        return False

    def configure(self, transport: Link) -> None:
        """Called once before any socket opens; add socket hooks, start helpers here."""

    # -- traffic --------------------------------------------------------------------
    def needs_reply(self) -> bool:
        """True when the sender must wait for a reply to every frame (beyond REQ/REP)."""
        return False

    def on_send(self, out: Outgoing) -> None:
        """Rewrite an outgoing frame message in place (compress it, tag it, ...)."""

    def request_keyframe(self) -> None:
        """Make the next encoded frame decodable on its own (codecs with state)."""

    def on_end(self, out: Outgoing) -> None:
        """Annotate the end-of-stream message in place (e.g. tag it with this sender's port)."""

    def peer_failed(self, channel: Channel) -> bool:
        """The peer on ``channel`` did not reply within the retry budget.

        True: drop this frame (counted in ``stats``, ``send()`` returns None) and go on,
        because other peers can take the next frames; False: ``send()`` raises.
        """
        return False

    def explain_timeout(self, channel: Channel, exc: PeerTimeoutError) -> None:
        """Amend ``exc`` (a send to ``channel`` timed out) when this mode knows why."""

    def attach(self, forget: Callable[[str], None]) -> None:
        """Receivers: ``forget(stream)`` drops what the core keeps for a stream that left."""

    def name_stream(self, incoming: Incoming, channel: Channel) -> str | None:
        """The stream a received message belongs to (default: its socket's port), before
        the core judges it; None drops it unjudged (the mode counted why)."""
        return incoming.source

    def add_stats(self, data: dict[str, Any]) -> None:
        """Add this mode's counters to a ``NetGear.stats`` snapshot (any thread may ask)."""

    def on_recv(self, incoming: Incoming, verdict: str) -> str:
        """Return the verdict for a received message: DELIVER, DROP or FINISH."""
        return verdict

    def shape_result(self, incoming: Incoming, result: Any) -> Any:
        """Shape what ``recv()`` returns (the core starts from the frame)."""
        return result

    def shape_send_result(self, channel: Channel, data: Any) -> Any:
        """Shape what ``send()`` returns when the peer replied with ``data``."""
        return data

    def pick_channel(self, channels: Sequence[Channel]) -> Channel | None:
        """Choose the channel for the next frame; None leaves the choice to others."""
        return None

    def close(self) -> None:
        """Release what ``configure`` started. Must be idempotent and bounded."""


class EncoderMode(Mode):
    """A mode that owns the sender's encoder (set ``_encoder``): keyframe requests go to
    it, and it is closed with the NetGear."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._encoder: Encoder | None = None

    def request_keyframe(self) -> None:
        if self._encoder is not None:
            self._encoder.request_keyframe()

    def close(self) -> None:
        if self._encoder is not None:
            self._encoder.close()
