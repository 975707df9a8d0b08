"""The sync contract tests, run again against the asyncio NetGear (issue 14).

Each listed test is the sync test itself, not a copy: its module's ``NetGear`` is
replaced by :class:`BlockingAsyncNetGear` (the async class, driven from the sync test
through an event loop in a background thread) for the length of the test. The list is
a focused set: every pattern end to end, timeouts, close from another thread,
bidirectional replies, JPEG, multi-server and multi-client, conflate and bad input.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import aio_helpers
import pytest

# (module, test, parameters the test takes that are not fixtures)
CONTRACT: list[tuple[str, str, dict[str, Any]]] = [
    *[("test_core", "test_tcp_exact_frames_and_end_of_stream", {"pattern": p}) for p in (0, 1, 2)],
    ("test_core", "test_other_protocols", {"pattern": 1, "protocol": "ipc"}),
    ("test_core", "test_other_protocols", {"pattern": 0, "protocol": "inproc"}),
    ("test_core", "test_dtypes_and_shapes_are_exact", {"pattern": 0}),
    ("test_core", "test_wrong_method_for_mode_raises_value_error", {}),
    ("test_core", "test_unsendable_frames_raise_payload_error", {"bad": [1, 2, 3]}),
    ("test_core", "test_stats_count_frames_and_gaps", {}),
    *[("test_lifecycle", "test_receiver_timeouts", {"pattern": p}) for p in (0, 2)],
    ("test_lifecycle", "test_sender_without_peer_gives_up_in_bounded_time", {"pattern": 1}),
    ("test_lifecycle", "test_close_from_another_thread_unblocks_recv", {"pattern": 1}),
    ("test_lifecycle", "test_close_from_another_thread_unblocks_send", {}),
    ("test_lifecycle", "test_close_is_idempotent_bounded_and_a_context_manager",
     {"pattern": 1, "receive_mode": True}),
    *[("test_bidirectional", "test_each_reply_carries_the_data_given_for_that_frame",
       {"pattern": p, "window": w}) for p, w in ((0, 1), (1, 0))],
    ("test_bidirectional", "test_message_and_return_data_need_the_mode", {}),
    ("test_compression", "test_jpeg_over_sockets_keeps_shape_and_quality", {}),
    ("test_compression", "test_a_refused_frame_leaves_the_stream_usable", {}),
    ("test_multiserver", "test_every_server_reaches_the_client_then_the_stream_ends",
     {"pattern": 1}),
    ("test_multiclient", "test_reqrep_spreads_frames_round_robin_and_close_reaches_every_client",
     {}),
    ("test_multiclient",
     "test_bidirectional_send_returns_the_client_port_and_its_data_for_that_frame", {}),
    ("test_bad_input", "test_flood_of_bad_messages_is_counted_and_the_receiver_keeps_serving",
     {"pattern": 1}),
    ("test_stale",
     "test_multiserver_conflate_returns_the_newest_per_stream_and_streams_take_turns", {}),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("module", "name", "params"), CONTRACT,
                         ids=[f"{m}::{n}{list(p.values()) or ''}" for m, n, p in CONTRACT])
def test_sync_contract_holds_for_the_async_class(module: str, name: str, params: dict[str, Any],
                                                 request: pytest.FixtureRequest,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    mod = importlib.import_module(module)
    monkeypatch.setattr(mod, "NetGear", aio_helpers.BlockingAsyncNetGear)
    test = getattr(mod, name)
    given = {**first_case(test), **params}
    kwargs = {arg: given[arg] if arg in given else request.getfixturevalue(arg)
              for arg in inspect.signature(test).parameters}
    made = aio_helpers.BlockingAsyncNetGear.made
    aio_helpers.loop()  # started before the test counts its threads
    test(**kwargs)
    assert aio_helpers.BlockingAsyncNetGear.made > made  # the test did build async instances


def first_case(test: Any) -> dict[str, Any]:
    """The test's own first parameter set, for arguments CONTRACT does not give."""
    values: dict[str, Any] = {}
    for mark in getattr(test, "pytestmark", []):
        if mark.name == "parametrize":
            names = mark.args[0]
            names = [n.strip() for n in names.split(",")] if isinstance(names, str) else names
            first = mark.args[1][0]
            values.update(zip(names, first if len(names) > 1 else [first]))
    return values
