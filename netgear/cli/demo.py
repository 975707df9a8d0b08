"""``netgear demo``: synthetic cameras, a montage viewer and its web page, all on loopback."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from ..core.netgear import NetGear
from ..gears import TestPatternGear
from ..web.hub import MontageHub
from ._common import (
    add_codec_args,
    chosen_codec,
    codec_options,
    free_port,
    positive_float,
    positive_int,
    resolution,
    say,
    stop_on_signals,
)
from ._montage import add_display_args, check_web, run_montage
from .serve import FrameSender

__all__ = ["add_parser", "run"]

logger = logging.getLogger(__name__)

MAX_STREAMS = 64
HOST = "127.0.0.1"

HELP = "run synthetic cameras and show them as a live montage in the browser"
DESCRIPTION = """\
Start --streams synthetic cameras (moving test patterns with a frame counter and
a clock), each a netgear server on its own loopback port, and one multi-server
client that tiles them into a montage served at http://127.0.0.1:PORT/.
No camera, no network and no display needed. Per-stream fps is printed
periodically. Ctrl-C (or SIGTERM) stops everything.
"""
EPILOG = """\
examples:
  netgear demo                              # 4 cameras, page on port 8000
  netgear demo --streams 9 --jpeg --fps 10
  netgear demo --codec h264 --resolution 1280x720   # needs netgear[video]
  netgear demo --web-port 0 --seconds 30    # a free port, stop after 30 s
  netgear demo --protocol shm               # cameras to hub through shared memory
"""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("demo", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=positive_int, default=4, metavar="N",
                   help=f"number of synthetic cameras (default 4, at most {MAX_STREAMS})")
    p.add_argument("--pattern", type=int, choices=(1, 2), default=1,
                   help="messaging pattern: 1 REQ/REP (default), 2 PUB/SUB")
    add_codec_args(p)
    p.add_argument("--protocol", choices=("tcp", "shm"), default="tcp",
                   help="tcp (default): each camera on a loopback port; shm: through shared "
                        "memory (streams demo<pid>-1, -2, ... in /dev/shm)")
    p.add_argument("--resolution", type=resolution, default=(640, 480), metavar="WxH",
                   help="size of each camera's frames (default 640x480)")
    p.add_argument("--fps", type=positive_float, default=15.0,
                   help="frames per second of each camera (default 15)")
    add_display_args(p, stats_every=2.0)
    p.set_defaults(run=run, cli_parser=p)


def run(args: argparse.Namespace) -> int:
    from ._common import CliError

    if args.streams > MAX_STREAMS:
        raise CliError(f"--streams {args.streams} is more than {MAX_STREAMS}")
    codec = chosen_codec(args)
    check_web(args)  # before any socket opens
    options: dict[str, Any] = codec_options(codec)
    # The receiver reads each frame's codec from its header; video options are the sender's.
    hub_options = {} if "video_codec" in options else dict(options)
    address = HOST
    if args.protocol == "shm":
        # a stream per camera, named address-port as ipc names its endpoints
        address, ports = f"demo{os.getpid()}", list(range(1, args.streams + 1))
        options["protocol"] = hub_options["protocol"] = "shm"
    else:
        ports = [free_port(HOST) for _ in range(args.streams)]
    senders: list[FrameSender] = []
    with stop_on_signals() as stop:
        hub = MontageHub(ports, address=address, pattern=args.pattern,
                         stale_after=args.stale_after, **hub_options).start()
        try:
            for index, port in enumerate(ports, 1):
                gear = TestPatternGear(resolution=args.resolution, framerate=args.fps).start()
                try:
                    gear_net = NetGear(address=address, port=port, pattern=args.pattern,
                                       multiserver_mode=True, **options)
                except BaseException:
                    gear.stop()
                    raise
                senders.append(FrameSender(gear, gear_net, name=f"camera {index}").start())
            say(f"demo: {args.streams} synthetic cameras at {args.resolution[0]}x"
                f"{args.resolution[1]} {args.fps:g} fps, pattern {args.pattern}"
                f", {codec}, {_where(args.protocol, address, ports)}")
            code = run_montage(hub, stop, web_host=args.web_host, web_port=args.web_port,
                               web_token=args.web_token, web_allow_hosts=args.web_allow_host,
                               seconds=args.seconds, stats_every=args.stats_every,
                               title="demo")
        finally:
            # Senders first, while the hub still answers their end-of-stream; in parallel
            # so shutdown takes one close() bound, not one per camera.
            for sender in senders:
                sender.request_stop()
            for sender in senders:
                sender.stop()
            hub.close()
    errors = [s.error for s in senders if s.error is not None]
    if errors:
        raise errors[0]
    say("demo stopped")
    return code


def _where(protocol: str, address: str, ports: list[int]) -> str:
    if protocol == "shm":
        return "shm streams " + ", ".join(f"{address}-{p}" for p in ports)
    return "ports " + ", ".join(map(str, ports))
