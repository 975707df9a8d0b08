"""``netgear bench``: run the repository's benchmark suite (benchmarks/bench.py)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ._common import CliError

__all__ = ["add_parser", "find_bench", "run"]

HELP = "run the benchmarks (source checkout only); `netgear bench --help` for its options"
MODULE = "netgear_bench"
# benchmarks/ sits beside the netgear package in the repository; it is not installed.
ROOT = Path(__file__).resolve().parents[2]


def add_parser(subparsers: Any) -> None:
    # add_help=False: --help and every other argument go to bench.py's own parser.
    p = subparsers.add_parser("bench", help=HELP, add_help=False,
                              description="Run benchmarks/bench.py with the given arguments.")
    p.set_defaults(run=run, passthrough=True)


def find_bench() -> Path:
    """benchmarks/bench.py of the checkout this package was imported from."""
    path = ROOT / "benchmarks" / "bench.py"
    if not path.is_file():
        raise CliError("netgear bench runs benchmarks/bench.py from a source checkout, and "
                       f"there is none next to this installed copy (looked for {path}); "
                       "clone the repository and run it there")
    return path


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(MODULE, path)
    if spec is None or spec.loader is None:
        raise CliError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


def run(args: argparse.Namespace) -> int:
    module = _load(find_bench())
    try:
        return int(module.main(list(args.extra)) or 0)
    except SystemExit as exit_:  # its argparse exits on --help and on bad arguments
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
