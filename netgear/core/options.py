"""Declarative option specs and their validation.

Each option is an :class:`Option`; the core declares its own, and every mode in
``netgear/modes/`` declares the keys it owns. :func:`validate_options` checks a
whole options dict against all of them before any socket exists, so a typo or
a wrong type fails at construction with a message naming the key.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..codecs import CODECS
from ..codecs.imageinfo import DEFAULT_MAX_DECODED_BYTES
from ..errors import OptionError
from ..shm.common import DEFAULT_SLOT_BYTES
from ..shm.segment import MAX_SLOTS

__all__ = ["CORE_OPTIONS", "Option", "options_table", "validate_options"]

# A check returns None when the value is fine, or a short phrase saying what is allowed.
Check = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Option:
    """One accepted key of the ``**options`` dict."""

    key: str
    types: tuple[type, ...]
    default: Any
    doc: str
    check: Check | None = None
    allowed: str = ""
    nullable: bool = False
    aliases: tuple[str, ...] = field(default=())

    def describe_type(self) -> str:
        names = [t.__name__ for t in self.types]
        if self.nullable:
            names.append("None")
        return " or ".join(names)

    def coerce(self, value: Any) -> Any:
        """Return the validated value, raising :class:`OptionError` otherwise."""
        if value is None and self.nullable:
            return None
        if not _type_ok(value, self.types):
            raise OptionError(
                f"option {self.key!r} must be {self.describe_type()}, "
                f"got {type(value).__name__} {value!r}",
                key=self.key,
            )
        if float in self.types and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.check is not None:
            problem = self.check(value)
            if problem is not None:
                raise OptionError(
                    f"option {self.key!r}={value!r} is invalid: {problem}", key=self.key
                )
        return value


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    # bool is an int subclass; True is never a valid int/float option value.
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def in_range(low: float | None, high: float | None) -> Check:
    """A check accepting finite numbers within [low, high] (either bound optional)."""

    def check(value: Any) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        if (low is not None and value < low) or (high is not None and value > high):
            lo = "-inf" if low is None else low
            hi = "inf" if high is None else high
            return f"must be between {lo} and {hi}"
        return None

    return check


def one_of(*choices: Any) -> Check:
    """A check accepting only the listed values."""

    def check(value: Any) -> str | None:
        if value not in choices:
            return "must be one of " + ", ".join(repr(c) for c in choices)
        return None

    return check


def _valid_flag(value: int) -> str | None:
    # 1 is zmq.NOBLOCK (netgear.link.NOBLOCK), spelled out: zmq stays under netgear.link.
    return None if value in (0, 1) else "must be 0 or zmq.NOBLOCK (1)"


def _valid_codecs(value: list[Any] | tuple[Any, ...]) -> str | None:
    if not value or not all(isinstance(c, str) and c in CODECS for c in value):
        return "must be a non-empty list of " + ", ".join(repr(c) for c in CODECS)
    return None


CORE_OPTIONS: tuple[Option, ...] = (
    Option(
        "flag",
        (int,),
        0,
        "0 (send() waits for queue space) or zmq.NOBLOCK (send() drops the frame and counts it "
        "instead of waiting when the outgoing queue is full). PAIR and PUB/SUB senders only.",
        check=_valid_flag,
    ),
    Option(
        "copy",
        (bool,),
        False,
        "False: netgear picks the fastest safe buffer handling (zero-copy where the pattern "
        "makes it safe). True: libzmq copies every message on send and receive.",
    ),
    Option(
        "track",
        (bool,),
        False,
        "True: fire-and-forget senders (PAIR, PUB/SUB) send zero-copy and send() waits until "
        "libzmq has released the frame buffer, instead of staging a copy. PAIR already does "
        "this for frames of 384 KiB or more (unless copy=True or flag=zmq.NOBLOCK).",
    ),
    Option(
        "request_timeout",
        (float,),
        4.0,
        "Seconds a sender waits for its peer (a REQ/REP reply, queue space on PAIR) before one "
        "retry. Given to a PAIR or REQ/REP receiver (without receive_timeout), "
        "request_timeout x (max_retries + 1) seconds of silence end its stream: recv() returns "
        "None, as vidgear's client gives up.",
        check=in_range(0.01, 3600),
    ),
    Option(
        "max_retries",
        (int,),
        3,
        "Retries (each rebuilding the socket) before send() raises PeerTimeoutError. The budget "
        "is reset after every successful send. On a receiver, see request_timeout.",
        check=in_range(0, 1000),
    ),
    Option(
        "subscriber_timeout",
        (float,),
        None,
        "PUB/SUB receivers: seconds of silence after which recv() returns None (stream over). "
        "None waits forever.",
        check=in_range(0.01, 86400),
        nullable=True,
    ),
    Option(
        "receive_timeout",
        (float,),
        None,
        "Receivers in any pattern: seconds recv() waits for a message before raising "
        "PeerTimeoutError. None waits until a frame or the end of the stream arrives.",
        check=in_range(0.001, 86400),
        nullable=True,
    ),
    Option(
        "max_frame_bytes",
        (int,),
        256 * 1024 * 1024,
        "Largest message part accepted, in bytes. libzmq refuses (disconnects) a peer that "
        "announces more, before allocating anything; send() raises PayloadError for a larger "
        "frame.",
        check=in_range(1024, 1 << 40),
    ),
    Option(
        "max_decoded_bytes",
        (int,),
        DEFAULT_MAX_DECODED_BYTES,
        "Receivers: most bytes decoding one compressed frame may allocate (128 MiB fits 8K "
        "with alpha; JPEG colour counts 4 bytes a pixel, plus progressive work buffers). "
        "Checked from the PNG/JPEG/BMP header before decoding; a frame over it is dropped "
        "and counted in stats['refused']. Raw frames are bounded by max_frame_bytes.",
        check=in_range(1024, 1 << 40),
    ),
    Option(
        "accepted_codecs",
        (list, tuple),
        None,
        "Receivers: the frame codecs decoded, from 'raw', 'jpeg', 'png', 'bmp', 'h264', 'hevc'. "
        "None (all) "
        "decodes whatever a sender chose; e.g. ['raw'] refuses compressed frames (counted in "
        "stats['refused']).",
        check=_valid_codecs,
        nullable=True,
    ),
    Option(
        "queue_bytes",
        (int,),
        32 * 1024 * 1024,
        "Bytes of frames a PAIR or PUB/SUB sender may queue per peer: its high-water mark is "
        "queue_bytes // size of its first frame (1 to 1000 frames). Receivers: see "
        "receive_queue_bytes.",
        check=in_range(1, 1 << 40),
    ),
    Option(
        "receive_queue_bytes",
        (int,),
        32 * 1024 * 1024,
        "Receivers: memory budget per peer for queued messages. The high-water mark is "
        "receive_queue_bytes // max_frame_bytes messages (2 to 1000; 1 with conflate), so a "
        "peer can park at most (that + 1) messages of parts up to max_frame_bytes each.",
        check=in_range(1, 1 << 40),
    ),
    Option(
        "handshake_timeout",
        (float,),
        5.0,
        "Seconds a new connection has to complete the ZeroMQ handshake before it is dropped "
        "(libzmq's default is 30), so idle raw TCP connections do not hold file descriptors.",
        check=in_range(0.1, 3600),
    ),
    Option(
        "dead_peer_timeout",
        (float,),
        20.0,
        "Seconds after which the kernel drops a TCP connection whose peer stopped answering "
        "(host gone, link cut): TCP keepalive on every socket, and on receivers and PUB "
        "senders also a limit on unacknowledged data (TCP_USER_TIMEOUT), so a publisher "
        "reconnects instead of retransmitting into a dead link. None: the OS defaults (hours).",
        check=in_range(3, 86400),
        nullable=True,
    ),
    Option(
        "heartbeat_interval",
        (float,),
        None,
        "Seconds between ZMTP heartbeats (PING), which also drop a peer whose process stopped "
        "answering. Off by default: libzmq 4.3 can abort the process when a heartbeat meets a "
        "full receive queue whose peer left (libzmq issues 3937, 4364, 4767).",
        check=in_range(0.05, 3600),
        nullable=True,
    ),
    Option(
        "heartbeat_timeout",
        (float,),
        10.0,
        "With heartbeat_interval: seconds without any message from a peer after a heartbeat "
        "before its connection is dropped. Must exceed the time one frame takes on the "
        "slowest link.",
        check=in_range(0.1, 6553),
    ),
    Option(
        "conflate",
        (bool,),
        False,
        "Receivers with patterns 0 and 2: recv() returns the newest frame of each stream and "
        "discards older queued ones (counted in stats as conflated), for live viewing.",
    ),
    Option(
        "send_window",
        (int,),
        1,
        "REQ/REP and bidirectional PAIR senders: 1 lets send() return once the frame is sent, "
        "collecting its reply at the next send() or close() (so one thread can send() then "
        "recv(), as with vidgear; bidirectional send() returns the previous frame's data). "
        "0: send() waits for this frame's own reply (strict lockstep). 2 to 64 (REQ/REP "
        "only): that many frames in flight, pipelined on a DEALER socket, still lossless "
        "and in order; send() waits only when the window is full (see docs/reliability.md).",
        check=in_range(0, 64),
    ),
    Option(
        "force_terminate",
        (bool,),
        False,
        "Accepted for vidgear compatibility. netgear's close() is always bounded, so this "
        "changes nothing.",
    ),
    Option(
        "shm_slot_bytes",
        (int,),
        DEFAULT_SLOT_BYTES,
        "protocol='shm' senders: bytes of one slot of the stream's ring in /dev/shm, the "
        "largest frame payload (with its message array) it carries; a larger frame raises "
        "PayloadError. The default fits one 4K BGR frame; /dev/shm only holds the pages "
        "frames touch.",
        check=in_range(1024, 1 << 40),
    ),
    Option(
        "shm_slots",
        (int,),
        None,
        "protocol='shm' senders: frames the ring holds. PAIR and REQ/REP: how far the sender "
        "may run ahead of its receiver (None: 4). PUB/SUB: keep it above the subscribers + 2 "
        "(None: 8).",
        check=in_range(2, MAX_SLOTS),
        nullable=True,
    ),
    Option(
        "shm_group",
        (str, int),
        None,
        "protocol='shm' senders: a group (name or gid) whose members may read the stream: the "
        "segment becomes 0640 and the wake-up socket 0660 with that group. None: owner only "
        "(0600).",
        nullable=True,
    ),
)


def validate_options(
    options: Mapping[str, Any], specs: Iterable[Option]
) -> dict[str, Any]:
    """Validate ``options`` against ``specs`` and return a complete dict with defaults.

    Unknown keys raise :class:`OptionError` with the closest known key as a hint.
    """
    by_key: dict[str, Option] = {}
    for spec in specs:
        for name in (spec.key, *spec.aliases):
            by_key[name] = spec
    resolved: dict[str, Any] = {}
    for key, value in options.items():
        if not isinstance(key, str):
            raise OptionError(f"option keys must be strings, got {key!r}", key=str(key))
        spec = by_key.get(key)
        if spec is None:
            raise OptionError(_unknown_key_message(key, by_key), key=key)
        if spec.key in resolved:
            raise OptionError(
                f"option {spec.key!r} given twice (once as {key!r})", key=spec.key
            )
        resolved[spec.key] = spec.coerce(value)
    for spec in set(by_key.values()):
        resolved.setdefault(spec.key, spec.default)
    return resolved


def _unknown_key_message(key: str, known: Mapping[str, Option]) -> str:
    hint = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    message = f"unknown option {key!r}"
    if hint:
        message += f"; did you mean {hint[0]!r}?"
    return message + " Known options: " + ", ".join(sorted(known)) + "."


def options_table(groups: Iterable[tuple[str, Iterable[Option]]]) -> str:
    """The markdown reference table of ``groups`` of options (docs/options.md embeds it)."""
    lines: list[str] = []
    for title, specs in groups:
        lines += [f"### {title}", "", "| key | type | default | meaning |",
                  "| --- | --- | --- | --- |"]
        for spec in specs:
            text = spec.doc.replace("|", "\\|")
            lines.append(f"| `{spec.key}` | {spec.describe_type()} | `{spec.default!r}` | {text} |")
        lines.append("")
    return "\n".join(lines)
