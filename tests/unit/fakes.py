"""Compose a Sender or Receiver over the in-memory link, as NetGear does over ZeroMQ."""

from __future__ import annotations

import logging
import threading
from typing import Any

from netgear.core.options import CORE_OPTIONS, validate_options
from netgear.core.receiver import Receiver
from netgear.core.sender import Sender
from netgear.core.settings import build_settings
from netgear.core.stats import Stats
from netgear.core.validation import check_combinations
from netgear.core.wire import REPLY, Outgoing, decode, encode
from netgear.link.fake import FakeLink
from netgear.modes import MODES, Mode

HOST = "127.0.0.1"


def compose(receive_mode: bool, pattern: int = 0, port: Any = "5555",
            **options: Any) -> tuple[Sender | Receiver, FakeLink, list[Mode]]:
    specs = CORE_OPTIONS + tuple(opt for mode in MODES for opt in mode.options)
    settings = build_settings(HOST, port, "tcp", pattern, receive_mode, False,
                              validate_options(options, specs))
    mode_types = [m for m in MODES if m.enabled(settings)]
    check_combinations(settings, mode_types)
    modes = [m(settings) for m in mode_types]
    split = any(m.split_channels(settings) for m in mode_types)
    link = FakeLink(settings.policy, settings.ports if split else [settings.port],
                    receive_mode)
    for mode in modes:
        mode.configure(link)  # type: ignore[arg-type]
    link.open()
    needs_reply = settings.policy.replies or any(m.needs_reply() for m in modes)
    returns_data = settings.policy.two_way and any(m.returns_data for m in mode_types)
    common = (settings, link, modes, Stats(), threading.Event(), needs_reply)
    half: Sender | Receiver = (Receiver(*common, logging.DEBUG) if receive_mode
                               else Sender(*common, returns_data))
    return half, link, modes


def answer_with(data: Any = None) -> Any:
    """A peer that acknowledges every request with ``data`` (the receiver's return data)."""
    def answer(parts: list[Any]) -> list[Any]:
        return encode(Outgoing(REPLY, decode(parts).seq, message=data))

    return answer


def message(kind: int, seq: int, frame: Any = None, instance: int = 7, **extra: Any) -> list[Any]:
    """What a sender instance would put on the wire."""
    out = Outgoing(kind, seq, frame)
    out.extra["i"] = instance
    out.extra.update(extra)
    return [bytes(memoryview(p).cast("B")) if not isinstance(p, bytes) else p
            for p in encode(out)]
