"""``netgear view``: receive from many senders and show them as one live montage."""

from __future__ import annotations

import argparse
from typing import Any

from ..record.hub import RecordingHub
from ..web.hub import MontageHub
from ._common import (
    CliError,
    add_secure_args,
    port_number,
    positive_float,
    positive_int,
    resolution,
    secure_options,
    stop_on_signals,
)
from ._montage import add_display_args, check_display, check_web, run_montage
from .record import add_record_args, recorder_for_view

__all__ = ["add_parser", "run"]

HELP = "receive from many senders and show a live montage (browser or window)"
DESCRIPTION = """\
A multi-server client. With one --port it is a hub: any number of senders
connect to that port, each named by `netgear serve --name`; streams appear as
they join and disappear when they leave (or after --drop-after seconds of
silence). With several ports it binds each and takes one sender per port.
The newest frames are tiled into a montage. By default the montage and
per-stream stats are served at http://127.0.0.1:8000/; --window shows it in an
OpenCV window instead. A stream with no frame for --stale-after seconds shows
as STALE.
"""
EPILOG = """\
examples:
  netgear view --port 5555          (cameras: netgear serve --connect HOST:5555 --name porch)
  netgear view --port 5566 5567 5568 5569
  netgear view --port 5566 5567 --address 0.0.0.0 --web-port 0
  netgear view --port 5566 --window
"""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("view", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=port_number, nargs="+", default=[5566], metavar="PORT",
                   help="one port: a hub any number of named senders join; several: one "
                   "port per sender, in montage order (default 5566)")
    p.add_argument("--drop-after", type=positive_float, default=30.0, metavar="S",
                   help="one-port hub: seconds without a frame before a stream is removed "
                   "(default 30; must exceed --stale-after)")
    p.add_argument("--max-streams", type=positive_int, default=64, metavar="N",
                   help="one-port hub: most senders shown at once; more are refused "
                   "(default 64)")
    p.add_argument("--address", default="*", metavar="HOST",
                   help="interface to receive on (default *, every interface; 127.0.0.1 "
                   "for this machine only)")
    p.add_argument("--pattern", type=int, choices=(1, 2), default=1,
                   help="the senders' pattern: 1 REQ/REP (default), 2 PUB/SUB")
    p.add_argument("--window", action="store_true",
                   help="show the montage in an OpenCV window instead of the browser "
                   "(needs a display and opencv-python with GUI support)")
    p.add_argument("--tile", type=resolution, default=(320, 240), metavar="WxH",
                   help="size of each stream's cell in the montage (default 320x240)")
    p.add_argument("--recordings", default=None, metavar="DIR",
                   help="a netgear record --out folder: list and play its segments and show "
                   "its event log on the page")
    add_secure_args(p)
    add_display_args(p)
    p.add_argument("--record", default=None, metavar="DIR",
                   help="also record every stream under DIR (see `netgear record`)")
    add_record_args(p)
    p.set_defaults(run=run, cli_parser=p)


def run(args: argparse.Namespace) -> int:
    ports = args.port
    if 0 in ports:
        raise CliError("--port 0 is not a usable port: senders need to know it")
    if len(set(ports)) != len(ports):
        raise CliError(f"--port lists a port twice: {' '.join(map(str, ports))}")
    options = secure_options(args)
    one_port = len(ports) == 1
    if one_port:
        if args.drop_after <= args.stale_after:
            raise CliError(f"--drop-after {args.drop_after:g} must exceed --stale-after "
                           f"{args.stale_after:g}")
        options.update(drop_after=args.drop_after, max_streams=args.max_streams)
    if args.window:
        check_display()  # before binding anything: fail fast on a headless machine
    check_web(args)
    recorder = recorder_for_view(args)
    with stop_on_signals() as stop:
        hub_kwargs = dict(address=args.address, pattern=args.pattern,
                          stale_after=args.stale_after, tile=args.tile, one_port=one_port,
                          **options)
        hub = (MontageHub(ports, **hub_kwargs) if recorder is None
               else RecordingHub(recorder, ports, passthrough=not args.reencode,
                                 **hub_kwargs)).start()
        try:
            return run_montage(hub, stop, window=args.window, web_host=args.web_host,
                               web_port=args.web_port, web_token=args.web_token,
                               web_allow_hosts=args.web_allow_host, seconds=args.seconds,
                               stats_every=args.stats_every, title="view",
                               # `--record DIR` (the recorder) implies showing what it records
                               recordings_dir=args.recordings or getattr(args, "record", None))
        finally:
            hub.close()
