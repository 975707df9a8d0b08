"""An instance its owner never closes must never hang the process (issue 17, item 2).

Each case runs in a subprocess under a hard timeout, since a regression hangs for good:
garbage collection of a reference cycle, an exception that skips close(), interpreter exit
with a thread still inside recv(), and a conflate reader thread left running.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import free_port

HARD_TIMEOUT = 30  # seconds before the child is killed (and the test fails)
PROMPT = 5.0  # seconds the child may take: interpreter start-up on a loaded box included
ROOT = Path(__file__).resolve().parent.parent

PRELUDE = """
import gc, sys, threading, time
import numpy as np
from netgear import NetGear
F = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
H = "127.0.0.1"
"""


def run(body: str, port: int) -> subprocess.CompletedProcess[str]:
    code = PRELUDE + f"P = {port}\n" + textwrap.dedent(body)
    start = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                              text=True, timeout=HARD_TIMEOUT)
    except subprocess.TimeoutExpired as exc:  # run() has killed the child
        pytest.fail(f"the process hung (killed after {HARD_TIMEOUT}s): {exc.stderr!r}")
    elapsed = time.monotonic() - start
    assert elapsed < PROMPT, (elapsed, done.stderr[-2000:])
    return done


CASES = {
    "reqrep": "dict(pattern=1)",
    "pair-bidirectional": "dict(pattern=0, bidirectional_mode=True)",
    "reqrep-bidirectional-lockstep": "dict(pattern=1, bidirectional_mode=True, send_window=0)",
    "jpeg-bands": "dict(pattern=1, jpeg_compression=True, jpeg_compression_threads=2)",
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("options", list(CASES.values()), ids=list(CASES))
def test_gc_of_a_reference_cycle_does_not_hang(port: int, options: str) -> None:
    # the reproduction; then the port must be free again (sockets really closed)
    done = run(f"""
        opts = {options}
        rx = NetGear(address=H, port=P, receive_mode=True, **opts)
        tx = NetGear(address=H, port=P, **opts)
        reader = threading.Thread(target=rx.recv)  # lockstep's send() needs a reader
        reader.start()
        tx.send(F)
        reader.join()
        del reader
        c = [rx, tx]; c.append(c); del rx, tx, c
        gc.collect()
        again = NetGear(address=H, port=P, receive_mode=True, **opts)
        again.close()
        print("collected")
    """, port)
    assert done.returncode == 0 and "collected" in done.stdout, done.stderr[-2000:]


@pytest.mark.timeout(60)
def test_an_exception_that_skips_close_does_not_hang(port: int) -> None:
    done = run("""
        rx = NetGear(address=H, port=P, pattern=1, receive_mode=True)
        tx = NetGear(address=H, port=P, pattern=1, bidirectional_mode=False)
        tx.send(F)          # in flight: its reply is collected by the next send(), never
        rx.recv()
        tx.send(F)          # a second frame queued, not read
        raise RuntimeError("boom")
    """, port)
    assert done.returncode == 1 and "RuntimeError: boom" in done.stderr


@pytest.mark.timeout(60)
def test_interpreter_exit_with_a_thread_inside_recv_does_not_hang(port: int) -> None:
    other = free_port()
    done = run(f"""
        rx = NetGear(address=H, port=P, pattern=1, receive_mode=True)
        idle = NetGear(address=H, port={other}, pattern=0, receive_mode=True)
        tx = NetGear(address=H, port=P, pattern=1)
        tx.send(F)
        rx.recv()
        waiting = threading.Thread(target=idle.recv, daemon=True)  # blocked for good
        waiting.start()
        time.sleep(0.05)  # let it enter recv(): the case under test, not synchronisation
        print("leaving")
    """, port)
    assert done.returncode == 0 and "leaving" in done.stdout, done.stderr[-2000:]
    assert "Assertion failed" not in done.stderr  # libzmq aborts on a socket closed in use


@pytest.mark.timeout(60)
def test_gc_stops_an_unclosed_conflate_reader_thread(port: int) -> None:
    done = run("""
        rx = NetGear(address=H, port=P, pattern=0, receive_mode=True, conflate=True)
        tx = NetGear(address=H, port=P, pattern=0)
        tx.send(F)
        assert rx.recv() is not None
        assert any(t.name == "netgear-conflate" for t in threading.enumerate())
        c = [rx, tx]; c.append(c); del rx, tx, c
        gc.collect()
        deadline = time.monotonic() + 3
        while any(t.name == "netgear-conflate" for t in threading.enumerate()):
            assert time.monotonic() < deadline, "reader thread still running"
            time.sleep(0.01)
        print("stopped")
    """, port)
    assert done.returncode == 0 and "stopped" in done.stdout, done.stderr[-2000:]
