"""Show a MontageHub in the browser or an OpenCV window until stopped; shared by demo/view."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..web.access import TOKEN_ENV, is_loopback
from ..web.hub import MontageHub
from ._common import CliError, say, warn

__all__ = ["add_display_args", "check_display", "check_web", "format_stats", "run_montage"]

logger = logging.getLogger(__name__)

WINDOW_FPS = 15.0
WINDOW_TITLE = "netgear montage (q to quit)"


def add_display_args(parser: Any, stats_every: float = 5.0) -> None:
    from ._common import non_negative_float, port_number, positive_float

    parser.add_argument("--web-port", type=port_number, default=8000, metavar="P",
                        help="HTTP port of the montage page (default 8000; 0 picks a free "
                        "port and prints it)")
    parser.add_argument("--web-host", default="127.0.0.1", metavar="HOST",
                        help="interface the page listens on (default 127.0.0.1, this machine "
                        "only; 0.0.0.0 shares it on the network and needs --web-token)")
    parser.add_argument("--web-token", default=os.environ.get(TOKEN_ENV) or None,
                        metavar="TOKEN",
                        help="access token for the page (at least 8 characters; required "
                        f"beyond loopback). Prefer the {TOKEN_ENV} environment variable: "
                        "a flag shows in ps. Browsers open /?token=TOKEN once")
    parser.add_argument("--web-allow-host", action="append", default=[], metavar="NAME",
                        help="another Host name the page answers to (repeatable), e.g. the "
                        "machine's DNS name; '*' turns the DNS-rebinding check off")
    parser.add_argument("--seconds", type=positive_float, default=None, metavar="N",
                        help="run N seconds, then stop and exit 0 (default: until Ctrl-C)")
    parser.add_argument("--stats-every", type=non_negative_float, default=stats_every,
                        metavar="S", help="print per-stream fps every S seconds "
                        f"(default {stats_every:g}; 0 = never)")
    parser.add_argument("--stale-after", type=positive_float, default=2.0, metavar="S",
                        help="seconds without a frame before a stream shows as STALE "
                        "(default 2)")


def format_stats(hub: MontageHub) -> str:
    lines = []
    for s in hub.snapshot():
        label = s["port"] if s["name"] == s["port"] else f"{s['name']} (port {s['port']})"
        status = "" if s["status"] == "live" else f"  [{s['status'].upper()}]"
        codec = f"{s['codec']} " if s["codec"] else ""
        lines.append(f"  {label}: {codec}{s['fps']:5.1f} fps {s['kbps']:.0f} kbit/s, "
                     f"{s['frames']} frames, {s['dropped']} dropped, "
                     f"latency {s['latency_ms']:.1f} ms{status}")
    return "\n".join(lines)


def check_web(args: Any) -> None:
    """Refuse a network-wide page without a token before any socket opens; warn with one."""
    if getattr(args, "window", False) or is_loopback(args.web_host):
        return
    if not args.web_token:
        raise CliError(f"--web-host {args.web_host} shares the montage with the network; set an "
                       f"access token with {TOKEN_ENV}=... (or --web-token), or use "
                       "--web-host 127.0.0.1")
    warn(f"WARNING: the montage page listens on {args.web_host}, beyond this machine; anyone "
         "who can reach it and has the token sees every stream, unencrypted (plain HTTP)")


def check_display() -> None:
    """Fail in plain words when an OpenCV window cannot open here."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        raise CliError("--window needs a display, and none is set (no DISPLAY or "
                       "WAYLAND_DISPLAY); drop --window to watch in the browser instead")


def run_montage(hub: MontageHub, stop: threading.Event, *, window: bool = False,
                web_host: str = "127.0.0.1", web_port: int = 8000,
                web_token: str | None = None, web_allow_hosts: Sequence[str] = (),
                seconds: float | None = None, stats_every: float = 5.0,
                title: str = "montage", recordings_dir: str | None = None) -> int:
    """Serve (or show) the montage until ``stop`` is set or ``seconds`` pass; 0 on success."""
    deadline = None if seconds is None else time.monotonic() + seconds
    if window:
        return _run_window(hub, stop, deadline, stats_every)
    from ..web.server import ViewerServer

    web = ViewerServer(hub, host=web_host, port=web_port, token=web_token,
                       allowed_hosts=web_allow_hosts, recordings_dir=recordings_dir)
    try:
        web.start()
        login = " (add ?token=TOKEN once)" if web_token else ""
        say(f"{title}: open {web.url}{login} in a browser (Ctrl-C to stop)")
        return wait_loop(hub, stop, deadline, stats_every)
    finally:
        web.stop()


def wait_loop(hub: MontageHub, stop: threading.Event, deadline: float | None,
              stats_every: float, on_tick: Callable[[], None] | None = None) -> int:
    """Run until ``stop``, ``deadline`` or a receiving error, printing stats every so often.

    ``on_tick`` runs on every wake-up (at least every 0.2 s), e.g. to report a recorder error.
    """
    next_print = time.monotonic() + stats_every if stats_every else None
    while not stop.is_set():
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            break
        if hub.error is not None:
            raise CliError(f"receiving failed: {hub.error}")
        if on_tick is not None:
            on_tick()
        if next_print is not None and now >= next_print:
            next_print = now + stats_every
            say(format_stats(hub))
        waits = [0.2] + [t - now for t in (deadline, next_print) if t is not None]
        stop.wait(max(0.01, min(waits)))
    return 0


def _run_window(hub: MontageHub, stop: threading.Event, deadline: float | None,
                stats_every: float) -> int:
    import cv2

    check_display()
    try:
        cv2.namedWindow(WINDOW_TITLE, cv2.WINDOW_NORMAL)
    except cv2.error as exc:
        raise CliError("this OpenCV cannot open windows (opencv-python-headless has no GUI); "
                       "pip install opencv-python, or drop --window to use the browser") \
            from exc
    say("showing the montage in a window (q or Esc to quit)")
    next_print = time.monotonic() + stats_every if stats_every else None
    try:
        while not stop.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if next_print is not None and now >= next_print:
                next_print = now + stats_every
                say(format_stats(hub))
            cv2.imshow(WINDOW_TITLE, hub.montage())
            key = cv2.waitKey(int(1000 / WINDOW_FPS)) & 0xFF
            if key in (ord("q"), 27):
                break
            if cv2.getWindowProperty(WINDOW_TITLE, cv2.WND_PROP_VISIBLE) < 1:
                break  # the user closed the window
    finally:
        cv2.destroyAllWindows()
    return 0
