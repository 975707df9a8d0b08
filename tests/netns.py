"""The network-fault harness for tests: a re-export of ``benchmarks/netfault.py``.

The harness lives with the benchmarks (they use it too); tests import it from here::

    from netns import PROBE, available, bridged, pair
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

from netfault import (  # noqa: E402
    ADDR,
    BRIDGE,
    PREFIX,
    Events,
    NetFaultError,
    Topology,
    available,
    bridged,
    cleanup_stale,
    namespaces,
    pair,
)

PROBE = BENCHMARKS / "netprobe.py"  # link probes to run in the namespaces (see its --help)

__all__ = ["ADDR", "BRIDGE", "PREFIX", "PROBE", "Events", "NetFaultError", "Topology",
           "available", "bridged", "cleanup_stale", "namespaces", "pair"]
