"""The ``netgear`` command line: demo, serve, view, record, relay, keys, bench.

Each command lives in its own module with ``add_parser(subparsers)`` and
``run(args) -> int``. User errors (bad options, busy ports, missing camera or
packages) end with one plain line on stderr and exit status 1; bad arguments
with argparse's usage message and status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import NetGearError
from ._common import CliError, raise_file_limit, warn

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
Stream video frames over ZeroMQ, and watch many streams as one live montage.

Start here:  netgear demo     (synthetic cameras + montage page, no camera needed)
"""
EPILOG = "Run `netgear COMMAND --help` for the options of each command."


def build_parser() -> argparse.ArgumentParser:
    from . import bench, demo, keys, record, relay, serve, view

    parser = argparse.ArgumentParser(
        prog="netgear", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"netgear {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log netgear's progress (INFO) to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (demo, serve, view, record, relay, keys, bench):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (the console script exits with it)."""
    parser = build_parser()
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        args, extra = parser.parse_known_args(args_list)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed
        return exit_.code if isinstance(exit_.code, int) else 2
    if getattr(args, "passthrough", False):
        args.extra = extra
    elif extra:
        try:
            # the command's own parser, so the usage shown is the command's
            getattr(args, "cli_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) else 2
    _setup_logging(args.verbose)
    raise_file_limit()
    try:
        return int(args.run(args))
    except (CliError, NetGearError) as exc:
        warn(f"netgear {args.command}: error: {exc}")
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C while shutting down
        warn("interrupted")
        return 130


def _setup_logging(verbose: bool) -> None:
    # Only when nobody configured logging (e.g. a test runner did): the CLI owns the terminal.
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.WARNING,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if verbose:
        logging.getLogger("netgear").setLevel(logging.INFO)
