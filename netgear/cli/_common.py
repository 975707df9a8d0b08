"""Pieces shared by the CLI commands: argument types, signal handling, printing."""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = [
    "CODECS",
    "CliError",
    "add_codec_args",
    "add_secure_args",
    "chosen_codec",
    "codec_options",
    "free_port",
    "non_negative_float",
    "port_number",
    "positive_float",
    "positive_int",
    "raise_file_limit",
    "resolution",
    "say",
    "secure_options",
    "stop_on_signals",
    "warn",
]


def raise_file_limit() -> tuple[int, int]:
    """Lift the soft open-file limit to the hard one; returns (soft, hard) afterwards.

    Every peer connection is a file descriptor. At a soft limit of 1024 a crowd of idle
    connections locks new senders out (libzmq cannot accept them) well before the machine
    runs short; the hard limit is what the administrator actually allows.
    """
    try:
        import resource
    except ImportError:  # not on Windows
        return (-1, -1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft, hard


class CliError(Exception):
    """A user error the CLI reports in one line (no traceback) before exiting with 1."""


def resolution(text: str) -> tuple[int, int]:
    """``"640x480"`` -> ``(640, 480)``, for argparse."""
    width, sep, height = text.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        size = (0, 0)
    if not sep or min(size) < 1 or max(size) > 16384:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 640x480")
    return size


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number greater than 0")
    return value


def non_negative_float(text: str) -> float:
    if text.strip() == "0":
        return 0.0
    return positive_float(text)


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return value


def add_secure_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--secure", type=int, choices=(0, 1, 2), default=0,
                        help="CurveZMQ security, as on the other end: 0 off (default), "
                        "1 StoneHouse (encrypted), 2 IronHouse (encrypted, allowed senders "
                        "only); see `netgear keys`")
    parser.add_argument("--keys", default=None, metavar="DIR",
                        help="key folder for --secure (default ~/.netgear/keys)")


def secure_options(args: argparse.Namespace) -> dict[str, Any]:
    """NetGear options for --secure/--keys; --keys alone is a mistake worth reporting."""
    if args.keys is not None and not args.secure:
        raise CliError("--keys needs --secure 1 or 2")
    options: dict[str, Any] = {}
    if args.secure:
        options["secure_mode"] = args.secure
        if args.keys is not None:
            options["custom_cert_location"] = args.keys
    return options


CODECS = ("raw", "jpeg", "h264", "hevc")


def add_codec_args(parser: argparse.ArgumentParser, default: str = "raw") -> None:
    """``--codec`` (and ``--jpeg``, kept as its older spelling of ``--codec jpeg``)."""
    parser.add_argument("--codec", choices=CODECS, default=None,
                        help=f"how frames travel: raw (exact pixels), jpeg, h264 or hevc "
                        f"(video codecs need netgear[video]; default {default})")
    parser.add_argument("--jpeg", action="store_true", help="the same as --codec jpeg")
    parser.set_defaults(codec_default=default)


def chosen_codec(args: argparse.Namespace) -> str:
    """The codec --codec/--jpeg ask for; both, disagreeing, is a mistake worth reporting."""
    if args.jpeg and args.codec not in (None, "jpeg"):
        raise CliError(f"--jpeg and --codec {args.codec} disagree: give one of them")
    return "jpeg" if args.jpeg else (args.codec or args.codec_default)


def codec_options(codec: str) -> dict[str, Any]:
    """The sender's NetGear options for ``codec`` (receivers read it from each frame)."""
    if codec == "jpeg":
        return {"jpeg_compression": True}
    if codec in ("h264", "hevc"):
        return {"video_codec": codec}
    return {}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the kernel says is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def say(*parts: Any) -> None:
    """Progress for the person at the terminal (stdout, flushed so pipes see it live)."""
    print(*parts, flush=True)


def warn(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by the first SIGINT/SIGTERM; a second one interrupts at once.

    Commands poll the event to shut down in order (servers, receiver, web) instead of
    being torn apart by KeyboardInterrupt in the middle of a socket call.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals only reach the main thread; the caller stops us some other way
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
