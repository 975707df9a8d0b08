"""``netgear bench``: run the benchmark suite (benchmarks/bench.py).

From a checkout it runs the checkout's ``benchmarks/``; an installed package carries the
suite's three files in ``<prefix>/share/netgear/benchmarks`` (pyproject's data-files).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import sysconfig
from pathlib import Path
from types import ModuleType
from typing import Any

from ._common import CliError

__all__ = ["add_parser", "find_bench", "run"]

HELP = "run the benchmarks; `netgear bench --help` for its options"
MODULE = "netgear_bench"
# benchmarks/ sits beside the netgear package in a checkout
ROOT = Path(__file__).resolve().parents[2]
# where pip puts the suite's files (bench.py, workers.py, contenders.py) from data-files
INSTALLED = tuple(Path(base) / "share" / "netgear" / "benchmarks"
                  for base in dict.fromkeys((sysconfig.get_path("data"), sys.prefix)))


def add_parser(subparsers: Any) -> None:
    # add_help=False: --help and every other argument go to bench.py's own parser.
    p = subparsers.add_parser("bench", help=HELP, add_help=False,
                              description="Run benchmarks/bench.py with the given arguments.")
    p.set_defaults(run=run, passthrough=True)


def find_bench() -> Path:
    """bench.py of the checkout this package was imported from, else the installed one."""
    places = (ROOT / "benchmarks", *INSTALLED)
    for place in places:
        if (place / "bench.py").is_file():
            return place / "bench.py"
    raise CliError("netgear bench found no benchmark suite (looked in "
                   f"{', '.join(str(p) for p in places)}); reinstall netgear with pip, or "
                   "run it from a source checkout")


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
