"""``netgear relay``: take PUB/SUB streams in and republish them to many consumers, undecoded."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ._common import CliError, port_number, positive_float, positive_int, say, stop_on_signals

__all__ = ["add_parser", "run"]

HELP = "forward PUB/SUB streams to any number of viewers/recorders (libzmq proxy, no decoding)"
DESCRIPTION = """\
A forwarder built on libzmq's own proxy: binds every --port on --address, where cameras
(PUB/SUB senders, e.g. `netgear serve --pattern 2`) connect as they would to a viewer, and
republishes every message, undecoded, to the same port on each --to host, where viewers and
recorders (`netgear view/record --pattern 2`) listen as usual. Ports are kept, so a
multi-server viewer behind the relay works unchanged. Prints per-stream counts every
--stats-every seconds and when it stops (Ctrl-C).
"""
EPILOG = """\
examples:
  netgear relay --port 5566 5567 --to 192.168.1.10 --to 192.168.1.11
  netgear relay --port 5566 --address 0.0.0.0 --to viewer.local --stats-every 10 --json
"""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("relay", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=port_number, nargs="+", default=[5566], metavar="PORT",
                   help="ports the cameras connect to; each is republished on the same port "
                   "(default 5566)")
    p.add_argument("--address", default="*", metavar="HOST",
                   help="interface the cameras reach the relay on (default *, every one)")
    p.add_argument("--to", action="append", required=True, metavar="HOST",
                   help="a consumer's address (repeat for each viewer/recorder); it binds "
                   "the same ports")
    p.add_argument("--queue", type=positive_int, default=16, metavar="N",
                   help="messages queued per peer before the relay drops for that peer only "
                   "(default 16)")
    p.add_argument("--stats-every", type=positive_float, default=5.0, metavar="S",
                   help="seconds between stats lines (default 5)")
    p.add_argument("--json", action="store_true",
                   help="print stats lines as JSON (`stats {...}`) for scripts")
    p.set_defaults(run=run, cli_parser=p)


def _check(args: argparse.Namespace) -> None:
    if 0 in args.port:
        raise CliError("--port 0 is not a usable port: cameras need to know it")
    if len(set(args.port)) != len(args.port):
        raise CliError(f"--port lists a port twice: {' '.join(map(str, args.port))}")
    for host in args.to:
        with_port = host.count(":") == 1  # an IPv6 literal has several colons
        if not host.strip() or "://" in host or with_port:
            raise CliError(f"--to {host!r}: give a host name or IP only (the relay keeps "
                           "each port), e.g. --to 192.168.1.10")
    if len(set(args.to)) != len(args.to):
        raise CliError(f"--to lists a consumer twice: {' '.join(args.to)}")


def _report(streams: list[dict[str, Any]], last: dict[tuple[str, str], int],
            elapsed: float, as_json: bool) -> None:
    for stream in streams:
        key = (stream["port"], stream["name"])
        stream["fps"] = round((stream["frames"] - last.get(key, 0)) / max(elapsed, 1e-3), 2)
        last[key] = stream["frames"]
    if as_json:
        say("stats " + json.dumps({"streams": streams}))
        return
    if not streams:
        say("relay: no stream yet")
    for s in streams:
        say(f"relay: port {s['port']} stream {s['name']}: {s['frames']} frames "
            f"({s['fps']:.1f} fps), {s['bytes'] / 1e6:.1f} MB, {s['senders']} sender(s), "
            f"{s['ends']} end(s)")


def run(args: argparse.Namespace) -> int:
    _check(args)
    from ..link.zmq.relay import Relay

    ports = [str(p) for p in args.port]
    with stop_on_signals() as stop:
        relay = Relay(args.address, ports, [h.strip() for h in args.to],
                      queue_frames=args.queue)
        try:
            say(f"relaying ports {' '.join(ports)} from {args.address} to "
                f"{', '.join(args.to)} (Ctrl-C stops)")
            last: dict[tuple[str, str], int] = {}
            tick = time.monotonic()
            while not stop.wait(args.stats_every):
                if not relay.running:
                    raise CliError("relay stopped: " + "; ".join(relay.errors))
                now = time.monotonic()
                _report(relay.stats(), last, now - tick, args.json)
                tick = now
        finally:
            relay.close()
        # after close(): the proxies have stopped and every captured message is counted
        _report(relay.stats(), last, time.monotonic() - tick, args.json)
    return 0
