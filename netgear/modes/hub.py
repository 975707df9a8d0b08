"""The one-port hub: a multi-server client on a single port takes any number of named servers.

Each server tags its messages with its ``stream_name`` (header key ``n``); the hub keys
streams, stats, decoders and results by that name. The live set is bounded
(``max_streams``), a server that stays silent turns stale after ``stale_after`` and is
dropped after ``drop_after``; the stream ends once every joined server has closed, unless
``run_forever``. Under IronHouse, ``stream_keys`` ties each name to a CURVE public key.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from ..core.options import Option, in_range
from ..core.settings import Settings
from ..core.wire import END, Incoming
from ..errors import OptionError, SecurityError
from .base import DELIVER, DROP, FINISH, Mode
from .multiserver import NAME_KEY, PORT_KEY, check_name

__all__ = ["HubMode"]

logger = logging.getLogger(__name__)

MAX_STREAMS = 64
STALE_AFTER = 2.0
DROP_AFTER = 30.0
HUB_ONLY = ("max_streams", "stale_after", "drop_after", "run_forever", "stream_keys")
ENDED_MEMORY = 256  # (name, instance) pairs whose END was seen: their repeats are dropped
REFUSED_MEMORY = 1024  # refused names remembered, so each is counted and logged once
LOUD_REFUSALS = 16  # refused names logged as warnings; later ones at DEBUG
SWEEP_EVERY = 0.25  # seconds between looks for streams silent past drop_after
KEY_RELOAD_EVERY = 1.0  # an unknown key re-reads the key files at most this often


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _check_keys(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if not value or not all(isinstance(k, str) and check_name(k) is None
                            and isinstance(v, str) and v.strip() for k, v in value.items()):
        return ("must be True (names are the allowed/ key file names) or a non-empty dict "
                "{stream_name: path of that sender's public .key file}")
    return None


class HubMode(Mode):
    """``multiserver_mode=True`` on a receiver given one port (not a list): the hub."""

    key = "multiserver_mode"
    options: ClassVar[tuple[Option, ...]] = (
        Option("max_streams", (int,), None,
               f"One-port multi-server client (hub): most servers in the live set at once "
               f"(None: {MAX_STREAMS}). Frames of further names are dropped, counted in "
               "stats['hub']['refused'] and logged once per name.",
               check=in_range(1, 100_000), nullable=True),
        Option("stale_after", (float,), None,
               f"Hub: seconds without a message after which a server shows as stale "
               f"(stats['streams'][name]['state']); None: {STALE_AFTER:g}.",
               check=in_range(0.01, 86400), nullable=True),
        Option("drop_after", (float,), None,
               f"Hub: seconds without a message after which a server leaves the live set "
               f"(as if it had closed); must exceed stale_after. None: {DROP_AFTER:g}.",
               check=in_range(0.01, 86400), nullable=True),
        Option("run_forever", (bool,), None,
               "Hub: True never ends the stream because every server left (recv() returns "
               "None only at close()); servers may join again at any time. None: False.",
               nullable=True),
        Option("stream_keys", (bool, dict), None,
               "Hub with secure_mode=2: tie each stream_name to a CURVE key. True: a sender's "
               "name must be the file name (without .key) of its key in allowed/; a dict "
               "{name: public .key file}. A mismatch is dropped, counted as forged.",
               check=_check_keys, nullable=True),
    )
    carries_message = True

    @classmethod
    def is_hub(cls, settings: Settings) -> bool:
        return (bool(settings.options.get(cls.key)) and settings.receive_mode
                and not settings.port_given_as_list)

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        # a hub option elsewhere also "enables" it, so validate() refuses it instead of
        # the option being ignored without a word
        return cls.is_hub(settings) or any(settings.options.get(k) is not None
                                           for k in HUB_ONLY)

    @classmethod
    def validate(cls, settings: Settings, enabled: frozenset[str]) -> None:
        opts = settings.options
        if not cls.is_hub(settings):
            given = next(k for k in HUB_ONLY if opts.get(k) is not None)
            raise OptionError(f"option {given!r} applies to a one-port hub: a receiver with "
                              "multiserver_mode=True and a single port (not a list); drop it "
                              "here", key=given)
        if not settings.policy.multi_peer:
            raise OptionError(f"multiserver_mode supports pattern 1 (REQ/REP) and 2 (PUB/SUB) "
                              f"only, got pattern {settings.pattern}", key="pattern")
        stale, drop = _or(opts["stale_after"], STALE_AFTER), _or(opts["drop_after"], DROP_AFTER)
        if drop <= stale:
            raise OptionError(f"drop_after={drop:g} must exceed stale_after={stale:g}: a "
                              "server is stale before it is dropped", key="drop_after")
        if opts["stream_keys"] and opts["secure_mode"] != 2:
            raise OptionError("stream_keys ties names to IronHouse keys; set secure_mode=2 "
                              "or drop stream_keys", key="stream_keys")
        if opts["stream_name"] is not None:
            raise OptionError("stream_name names a server (sender); the hub takes each "
                              "server's own name, so drop it here", key="stream_name")

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        opts = settings.options
        self.max_streams: int = _or(opts["max_streams"], MAX_STREAMS)
        self.stale_after: float = _or(opts["stale_after"], STALE_AFTER)
        self.drop_after: float = _or(opts["drop_after"], DROP_AFTER)
        self.run_forever: bool = bool(opts["run_forever"])
        flt = opts["filter"]
        self._accept = (None if flt is None else
                        frozenset(str(f) for f in (flt if isinstance(flt, (list, tuple))
                                                   else [flt])))
        self._lock = threading.Lock()  # stats are read from other threads (a viewer)
        self._live: dict[str, float] = {}  # name -> time.monotonic() of its last message
        self._ended: OrderedDict[tuple[str, Any], None] = OrderedDict()
        self._refused: OrderedDict[str, None] = OrderedDict()
        self.counts = {"joined": 0, "left": 0, "dropped": 0, "refused": 0, "forged": 0,
                       "unnamed": 0}
        self._next_sweep = 0.0
        self._forget: Callable[[str], None] = lambda name: None
        self._keys = _KeyNames(settings) if opts["stream_keys"] else None
        self._level = logging.INFO if settings.logging else logging.DEBUG

    def configure(self, transport: Any) -> None:
        if self._keys is not None:
            for channel in transport.channels:
                channel.want_peer = True  # the link reads each message's ZAP User-Id

    def attach(self, forget: Callable[[str], None]) -> None:
        self._forget = forget

    # -- naming, before the core judges the message -------------------------------------
    def name_stream(self, incoming: Incoming, channel: Any) -> str | None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_EVERY
            self._sweep(now)
        name = incoming.header.get(NAME_KEY)
        # the port is irrelevant here (NAT, tunnels): the name identifies the server
        port = incoming.header.pop(PORT_KEY, None)
        if not isinstance(name, str) or check_name(name) is not None:
            name = port if isinstance(port, str) and check_name(port) is None else None
            if name is None:
                self._count("unnamed", "dropping messages without a stream name: is the "
                            "server missing multiserver_mode=True?")
                return None
        if self._accept is not None and name not in self._accept:
            return None
        if self._keys is not None and not self._keys.allows(name, getattr(channel, "peer",
                                                                           None)):
            self._count("forged", f"dropped a message naming itself {name!r}: its CURVE key "
                        "is not that name's key (stream_keys)")
            return None
        origin = incoming.header.get("i")
        if incoming.kind == END:
            # a repeated END (PUB/SUB sends a few) or one from a server that never joined
            if (name, origin) in self._ended or name not in self._live:
                return None
            return name
        if name not in self._live and len(self._live) >= self.max_streams:
            if name not in self._refused:
                self._refused[name] = None
                if len(self._refused) > REFUSED_MEMORY:
                    self._refused.popitem(last=False)
                self.counts["refused"] += 1
                # a peer spraying names must not flood the log: the first few are warned of
                loud = self.counts["refused"] <= LOUD_REFUSALS
                logger.log(logging.WARNING if loud else logging.DEBUG,
                           "server %r refused: the hub holds max_streams=%d%s", name,
                           self.max_streams, " (further refusals are logged at DEBUG)"
                           if self.counts["refused"] == LOUD_REFUSALS else "")
            return None
        return name

    def on_recv(self, incoming: Incoming, verdict: str) -> str:
        name = incoming.source
        if verdict == DELIVER:
            with self._lock:
                joined = name not in self._live
                self._live[name] = time.monotonic()
            if joined:
                self.counts["joined"] += 1
                self._refused.pop(name, None)
                logger.log(self._level, "server %r joined (%d live)", name, len(self._live))
            return DELIVER
        if verdict != FINISH:
            return verdict
        self._ended[(name, incoming.header.get("i"))] = None
        if len(self._ended) > ENDED_MEMORY:
            self._ended.popitem(last=False)
        with self._lock:
            self._live.pop(name, None)
        self.counts["left"] += 1
        self._forget(name)
        logger.log(self._level, "server %r closed (%d live)", name, len(self._live))
        return DROP if self._live or self.run_forever else FINISH

    def _sweep(self, now: float) -> None:
        with self._lock:
            gone = [n for n, seen in self._live.items() if now - seen > self.drop_after]
            for name in gone:
                del self._live[name]
        for name in gone:
            self.counts["dropped"] += 1
            self._forget(name)
            logger.warning("server %r dropped: silent for more than drop_after=%gs", name,
                           self.drop_after)

    def _count(self, what: str, text: str) -> None:
        if not self.counts[what]:
            logger.warning("%s (further ones are only counted in stats['hub'])", text)
        self.counts[what] += 1

    # -- results and stats ----------------------------------------------------------------
    def shape_result(self, incoming: Incoming, result: Any) -> Any:
        frame = result[-1] if isinstance(result, tuple) else result  # bidirectional's tuple
        if incoming.message is not None:
            return (incoming.source, incoming.message, frame)
        return (incoming.source, frame)

    def add_stats(self, data: dict[str, Any]) -> None:
        now = time.monotonic()
        with self._lock:
            ages = {name: now - seen for name, seen in self._live.items()}
        live = {name: {"age": round(age, 3), "state": self._state(age)}
                for name, age in ages.items() if age <= self.drop_after}
        for name, entry in data["streams"].items():
            entry["state"] = live[name]["state"] if name in live else "gone"
        data["hub"] = {"live": live, "max_streams": self.max_streams,
                       "stale_after": self.stale_after, "drop_after": self.drop_after,
                       **self.counts}

    def _state(self, age: float) -> str:
        return "stale" if age > self.stale_after else "live"


class _KeyNames:
    """Which stream name each CURVE public key (ZAP User-Id, z85) may use."""

    def __init__(self, settings: Settings) -> None:
        from ..security.keys import KeyFolder

        spec = settings.options["stream_keys"]
        self.files: dict[str, Path] | None = None
        self.allowed: Path | None = None
        if spec is True:
            self.allowed = KeyFolder.at(settings.options["custom_cert_location"]).allowed
        else:
            self.files = {name: Path(path).expanduser() for name, path in spec.items()}
        self.names: dict[str, str] = {}
        self._loaded = 0.0
        self._load()  # a missing or corrupt key file fails at construction, not later

    def _load(self) -> None:
        from ..security.keys import load_allowed, load_public_key

        self._loaded = time.monotonic()
        if self.files is not None:
            self.names = {load_public_key(path).decode(): name
                          for name, path in self.files.items()}
            return
        assert self.allowed is not None  # set whenever files is None
        try:
            found = load_allowed(self.allowed, strict=False)
        except SecurityError as exc:
            raise OptionError(f"stream_keys=True reads {self.allowed}: {exc}",
                              key="stream_keys") from exc
        self.names = {key.decode(): file.removesuffix(".key") for key, file in found.items()}

    def allows(self, name: str, peer: str | None) -> bool:
        if peer is None:
            return False
        if (peer not in self.names and self.allowed is not None
                and time.monotonic() - self._loaded > KEY_RELOAD_EVERY):
            try:
                self._load()  # a key added to allowed/ since: the authenticator took it
            except OptionError:
                logger.exception("stream_keys: cannot re-read %s", self.allowed)
        return self.names.get(peer) == name
