"""``netgear record``: receive like ``netgear view`` and record every stream to disk."""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..record import FORMATS, Recorder, Retention
from ..record.hub import RecordingHub
from ._common import (
    CliError,
    add_secure_args,
    non_negative_float,
    port_number,
    positive_float,
    say,
    secure_options,
    stop_on_signals,
)
from ._montage import wait_loop

__all__ = ["add_parser", "add_record_args", "make_recorder", "recorder_for_view", "run"]

HELP = "receive from many senders and record every stream (MP4 segments or JPEG files)"
DESCRIPTION = """\
A multi-server client like `netgear view`: binds every --port on --address and records
each sender's frames under --out, one folder per stream, as fragmented MP4 segments of
--segment-seconds (or JPEG files with --format jpeg), plus an event log in OUT/events/.
A recorder killed outright keeps everything up to the last frame it wrote.
"""
EPILOG = """\
examples:
  netgear record --port 5566 5567 --out ~/recordings
  netgear record --port 5566 --out rec --segment-seconds 300 --max-age 7d --max-bytes 20G
  netgear record --port 5566 --out rec --format jpeg
"""
_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}
_TIMES = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def byte_size(text: str) -> int:
    """``"500M"`` -> 500_000_000 (k/M/G/T are powers of 1000), for argparse."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)b?\s*", text.lower())
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 500M or 20G")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def duration(text: str) -> float:
    """``"7d"`` -> 604800.0 (s, m, h, d; plain numbers are seconds), for argparse."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text.lower())
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 12h or 7d")
    return float(match.group(1)) * _TIMES[match.group(2)]


def add_record_args(p: argparse.ArgumentParser) -> None:
    """The recording options shared by ``record`` and ``view --record``."""
    p.add_argument("--segment-seconds", type=positive_float, default=60.0, metavar="S",
                   help="length of each MP4 segment (default 60)")
    p.add_argument("--format", choices=FORMATS, default="mp4", dest="record_format",
                   help="mp4: H.264 segments through PyAV (default); jpeg: one JPEG "
                   "file per frame, by date")
    p.add_argument("--crf", type=int, default=23, metavar="N",
                   help="libx264 quality for encoded segments, 0-51, lower is better "
                   "(default 23)")
    p.add_argument("--reencode", action="store_true",
                   help="encode H.264/HEVC streams again with libx264 like raw and JPEG "
                   "ones, instead of storing their packets as they arrive (costs CPU; "
                   "e.g. so HEVC streams play in a browser)")
    p.add_argument("--max-age", type=duration, default=None, metavar="AGE",
                   help="delete recordings older than AGE (e.g. 12h, 7d)")
    p.add_argument("--max-bytes", type=byte_size, default=None, metavar="SIZE",
                   help="keep each stream's recordings under SIZE (e.g. 20G), oldest "
                   "deleted first")
    p.add_argument("--max-bytes-total", type=byte_size, default=None, metavar="SIZE",
                   help="keep all streams' recordings together under SIZE")


def make_recorder(args: argparse.Namespace, out: str) -> Recorder:
    """A Recorder from the parsed options; bad values end as one plain error line."""
    if not 0 <= args.crf <= 51:
        raise CliError(f"--crf {args.crf} is outside 0-51 (23 is a good default)")
    retention = Retention(args.max_age, args.max_bytes, args.max_bytes_total)
    return Recorder(Path(out).expanduser(), format=args.record_format,
                    segment_seconds=args.segment_seconds, retention=retention,
                    stale_after=getattr(args, "stale_after", 2.0), crf=args.crf)


def recorder_for_view(args: argparse.Namespace) -> Recorder | None:
    """``view --record DIR``'s recorder; recording flags without --record are a mistake."""
    if args.record:
        return make_recorder(args, args.record)
    given = [flag for flag, key in (("--max-age", "max_age"), ("--max-bytes", "max_bytes"),
                                    ("--max-bytes-total", "max_bytes_total"))
             if getattr(args, key) is not None] + (["--reencode"] if args.reencode else [])
    if given:
        raise CliError(f"{given[0]} needs --record DIR (it limits what is recorded)")
    return None


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("record", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=port_number, nargs="+", default=[5566], metavar="PORT",
                   help="one port per sender (default 5566)")
    p.add_argument("--out", required=True, metavar="DIR", help="the recordings folder")
    p.add_argument("--address", default="*", metavar="HOST",
                   help="interface to receive on (default *, every interface)")
    p.add_argument("--pattern", type=int, choices=(1, 2), default=1,
                   help="the senders' pattern: 1 REQ/REP (default), 2 PUB/SUB")
    add_record_args(p)
    add_secure_args(p)
    p.add_argument("--stale-after", type=positive_float, default=2.0, metavar="S",
                   help="seconds without a frame before a stream is logged as stale "
                   "(default 2)")
    p.add_argument("--seconds", type=positive_float, default=None, metavar="N",
                   help="record N seconds, then stop and exit 0 (default: until Ctrl-C)")
    p.add_argument("--stats-every", type=non_negative_float, default=10.0, metavar="S",
                   help="print per-stream fps every S seconds (default 10; 0 = never)")
    p.set_defaults(run=run, cli_parser=p)


def _ports(ports: list[int]) -> list[int]:
    if 0 in ports:
        raise CliError("--port 0 is not a usable port: senders need to know it")
    if len(set(ports)) != len(ports):
        raise CliError(f"--port lists a port twice: {' '.join(map(str, ports))}")
    return ports


def run(args: argparse.Namespace) -> int:
    ports = _ports(args.port)
    options = secure_options(args)
    recorder = make_recorder(args, args.out)  # validated before any socket opens
    with stop_on_signals() as stop:
        hub = RecordingHub(recorder, ports, passthrough=not args.reencode,
                           address=args.address, pattern=args.pattern,
                           stale_after=args.stale_after, **options)
        try:
            hub.start()
            say(f"record: recording port(s) {' '.join(map(str, ports))} into "
                f"{recorder.out} (Ctrl-C to stop)")
            deadline = None if args.seconds is None else time.monotonic() + args.seconds
            return wait_loop(hub, stop, deadline, args.stats_every,
                             on_tick=_error_reporter(hub))
        finally:
            hub.close()


def _error_reporter(hub: RecordingHub) -> Callable[[], None]:
    """Say each new recorder error once on the terminal (receiving goes on)."""
    shown: list[str | None] = [None]

    def report() -> None:
        error = hub.recorder.status()["error"]
        if error and error != shown[0]:
            say(f"record: ERROR {error} (receiving goes on)")
        shown[0] = error

    return report
