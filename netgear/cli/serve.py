"""``netgear serve``: send a camera, a video file or the test pattern to a viewer."""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
import time
from typing import Any

from ..core.netgear import NetGear
from ..errors import ClosedError, PeerTimeoutError, SourceError
from ._common import (
    CliError,
    add_codec_args,
    add_secure_args,
    chosen_codec,
    codec_options,
    positive_float,
    positive_int,
    resolution,
    say,
    secure_options,
    warn,
)

__all__ = ["FrameSender", "add_parser", "open_source", "run"]

logger = logging.getLogger(__name__)

STATS_EVERY = 5.0
GRACE = 1.0  # seconds a sender gets to finish its current send() before being cut off
JOIN_TIMEOUT = 5.0

HELP = "send frames from a camera, a video file or a test pattern"
DESCRIPTION = """\
Send frames to a netgear receiver, such as `netgear view`. By default the sender
runs in multi-server mode so one viewer can show many senders side by side: give
each sender its own --port and list them all in `netgear view --port ...`.
"""
EPILOG = """\
examples:
  netgear serve --source testpattern --port 5566 --name lobby
  netgear serve --source 0 --connect hub.local:5555 --name porch
  netgear serve --source 0 --address 192.168.1.10 --port 5567 --jpeg
  netgear serve --source clip.mp4 --fps 25 --plain --port 5555
  netgear serve --source 0 --address hub.local --codec h264   # Wi-Fi: needs netgear[video]
  netgear serve --source 0 --address hub-a.local,hub-b.local --port 5555 --name porch
"""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default="0", metavar="SRC",
                   help="camera index (0, 1, ...), video file or URL, or 'testpattern' "
                   "(default 0, the first camera)")
    p.add_argument("--address", default=None, metavar="HOST[,HOST...]",
                   help="address of the receiver (default localhost); a comma-separated "
                   "list names hubs to fail over between, all on --port (pattern 2 feeds "
                   "every one)")
    p.add_argument("--port", type=positive_int, default=None,
                   help="receiver port for this sender (default 5566)")
    p.add_argument("--connect", type=host_port, default=None, metavar="HOST:PORT",
                   help="the receiver as one HOST:PORT, e.g. a one-port `netgear view` hub "
                   "(instead of --address and --port)")
    p.add_argument("--request-timeout", type=positive_float, default=None, metavar="S",
                   help="seconds to wait for the receiver before a retry (default 4); "
                   "after 4 tries a hub of an --address list is left for the next")
    p.add_argument("--pattern", type=int, choices=(0, 1, 2), default=1,
                   help="0 PAIR (only with --plain), 1 REQ/REP (default), 2 PUB/SUB")
    add_codec_args(p)
    p.add_argument("--jpeg-quality", type=int, default=None, metavar="Q",
                   help="JPEG quality 10-100 with --codec jpeg (default 90)")
    p.add_argument("--bitrate", type=positive_int, default=None, metavar="BITS",
                   help="with --codec h264/hevc: target bits/s, e.g. 2000000 (default: "
                   "constant quality)")
    p.add_argument("--gop", type=positive_int, default=None, metavar="N",
                   help="with --codec h264/hevc: frames between forced keyframes (default: "
                   "one a second). On a slow link with pattern 1 a long GOP such as 300 "
                   "avoids a burst a second; the viewer asks for a keyframe when it needs one")
    p.add_argument("--name", default=None,
                   help="this stream's name: the hub keys it by this name, a port-list "
                   "viewer shows it as the label (default: host name plus a short suffix at "
                   "a hub, the port elsewhere)")
    p.add_argument("--fps", type=positive_float, default=None,
                   help="frames per second to send (default: the source's own rate; 30 for "
                   "the test pattern)")
    p.add_argument("--resolution", type=resolution, default=None, metavar="WxH",
                   help="frame size, e.g. 640x480 (test pattern default 640x480; cameras: "
                   "requested from the driver)")
    p.add_argument("--frames", type=positive_int, default=None, metavar="N",
                   help="stop after N frames (default: until the source ends or Ctrl-C)")
    p.add_argument("--seconds", type=positive_float, default=None, metavar="N",
                   help="stop after N seconds")
    p.add_argument("--plain", action="store_true",
                   help="send to a plain single-port NetGear receiver instead of a "
                   "multi-server one such as `netgear view` (--name is then not sent)")
    add_secure_args(p)
    p.set_defaults(run=run, cli_parser=p)


def host_port(text: str) -> tuple[str, int]:
    """``"hub:5555"`` -> ``("hub", 5555)``; ``"[::1]:5555"`` for IPv6, for argparse."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT, e.g. hub.local:5555")
    return host, int(port)


def open_source(source: str, size: tuple[int, int] | None, fps: float | None) -> Any:
    """A started gear for ``source``; SourceError (plain words) when it cannot open."""
    from ..gears import CamGear, TestPatternGear
    from ..gears.testpattern import is_testpattern

    if is_testpattern(source):
        return TestPatternGear(resolution=size or (640, 480), framerate=fps or 30).start()
    target: Any = int(source) if source.strip().isdigit() else source
    options = {}
    if size is not None:
        options = {"CAP_PROP_FRAME_WIDTH": size[0], "CAP_PROP_FRAME_HEIGHT": size[1]}
    if not logging.getLogger("netgear").isEnabledFor(logging.INFO):
        _quiet_opencv()  # its capture warnings repeat what the error below says
    try:
        return CamGear(source=target, **options).start()
    except SourceError as exc:
        hint = " (no camera here? try --source testpattern)" if isinstance(target, int) else ""
        raise CliError(f"{exc}{hint}") from exc


def _quiet_opencv() -> None:
    import cv2

    with contextlib.suppress(AttributeError):  # older OpenCV builds lack the logging utils
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


class FrameSender:
    """Reads a gear on a thread and sends every frame; used by ``serve`` and ``demo``.

    ``fps`` paces sources that do not pace themselves (files); ``name`` travels with each
    frame as the multi-server message, so the viewer can label the tile.
    """

    def __init__(self, gear: Any, netgear: NetGear, name: str | None = None,
                 fps: float | None = None, frames: int | None = None) -> None:
        self.gear = gear
        self.netgear = netgear
        self.name = name
        self.sent = 0
        self.error: BaseException | None = None
        self.ended = threading.Event()  # the source ran out or the frame limit was reached
        self._period = 1.0 / fps if fps else 0.0
        self._limit = frames
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="netgear-sender", daemon=True)

    def start(self) -> FrameSender:
        self._thread.start()
        return self

    def _run(self) -> None:
        due = time.monotonic()
        warned = False
        try:
            while not self._stop.is_set():
                if self._limit is not None and self.sent >= self._limit:
                    break
                frame = self.gear.read()
                if frame is None:
                    break
                try:
                    self.netgear.send(frame, message=self.name)
                except PeerTimeoutError:
                    # nobody answering (viewer not up yet, or restarting): keep trying
                    if not warned and not self._stop.is_set():
                        warned = True
                        warn(f"no receiver answers on port {self.netgear.core.settings.port}; "
                             "still trying")
                    continue
                self.sent += 1
                if self._period:
                    due = max(due + self._period, time.monotonic() - self._period)
                    self._stop.wait(max(0.0, due - time.monotonic()))
        except ClosedError:
            pass  # stop() closed the socket under us: that is how we were asked to end
        except Exception as exc:  # reported by the command; a thread cannot raise
            self.error = exc
        finally:
            # closing here lets several senders send their end-of-stream in parallel
            self.netgear.close()
            self.ended.set()

    def request_stop(self) -> None:
        """Ask the thread to finish (without waiting); stop() then waits for it."""
        self._stop.set()
        self.gear.stop()  # wakes a read() waiting for its time slot

    def stop(self) -> None:
        """Stop reading and sending; the receiver gets an end-of-stream. Bounded."""
        self.request_stop()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(GRACE)
        if self._thread.is_alive():
            self.netgear.close()  # wakes a send() stuck waiting for an absent receiver
            self._thread.join(JOIN_TIMEOUT)
        self.netgear.close()  # never started, or idempotent after the thread's own close


def run(args: argparse.Namespace) -> int:
    from ._common import stop_on_signals

    if args.pattern == 0 and not args.plain:
        raise CliError("pattern 0 (PAIR) works only with --plain: multi-server mode needs "
                       "pattern 1 or 2")
    codec = chosen_codec(args)
    if args.jpeg_quality is not None and codec != "jpeg":
        raise CliError("--jpeg-quality needs --codec jpeg (or --jpeg)")
    for flag, value in (("--bitrate", args.bitrate), ("--gop", args.gop)):
        if value is not None and codec not in ("h264", "hevc"):
            raise CliError(f"{flag} needs --codec h264 or hevc")
    if args.connect is not None:
        if args.address is not None or args.port is not None:
            raise CliError("--connect HOST:PORT replaces --address and --port; give one or "
                           "the other")
        args.address, args.port = args.connect
    hubs = ["localhost"] if args.address is None else [
        host.strip() for host in args.address.split(",")]
    if not all(hubs):
        raise CliError(f"--address {args.address!r} has an empty entry; give HOST or a "
                       "comma-separated list such as hub-a,hub-b")
    args.port = 5566 if args.port is None else args.port
    options = secure_options(args)
    if args.request_timeout is not None:
        options["request_timeout"] = args.request_timeout
    if not args.plain:
        options["multiserver_mode"] = True
        if args.name is not None:
            options["stream_name"] = args.name
    options.update(codec_options(codec))
    if args.jpeg_quality is not None:
        options["jpeg_compression_quality"] = args.jpeg_quality
    if args.bitrate is not None:
        options["video_bitrate"] = args.bitrate
    if args.gop is not None:
        options["video_gop"] = args.gop
    gear = open_source(args.source, args.resolution, args.fps)
    try:
        sender = NetGear(address=hubs[0] if len(hubs) == 1 else hubs, port=args.port,
                         pattern=args.pattern, **options)
    except BaseException:
        gear.stop()
        raise
    from ..gears import TestPatternGear

    pace = None if isinstance(gear, TestPatternGear) else args.fps  # the pattern paces itself
    worker = FrameSender(gear, sender, name=None if args.plain else args.name, fps=pace,
                         frames=args.frames)
    say(f"sending {args.source} to {','.join(hubs)}:{args.port} (pattern {args.pattern}"
        f"{', multi-server' if not args.plain else ''}{f', {codec}' if codec != 'raw' else ''}"
        f"{f', secure {args.secure}' if args.secure else ''}); "
        "Ctrl-C to stop")
    started = time.monotonic()
    with stop_on_signals() as stop:
        worker.start()
        next_print = started + STATS_EVERY
        while not stop.is_set() and not worker.ended.is_set():
            now = time.monotonic()
            if args.seconds is not None and now - started >= args.seconds:
                break
            if now >= next_print:
                next_print = now + STATS_EVERY
                say(f"  sent {worker.sent} frames ({worker.sent / (now - started):.1f} fps)")
            stop.wait(0.1)
        worker.stop()
    if worker.error is not None:
        raise worker.error
    say(f"sent {worker.sent} frames in {time.monotonic() - started:.1f} s")
    return 0
