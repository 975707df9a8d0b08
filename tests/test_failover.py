"""Failover: a sender given a list of hubs moves on when one stops answering, loses nothing.

Two receiver processes stand for two hubs on one port, at 127.0.0.1 and 127.0.0.2 (both
loopback). Killing one (SIGKILL: the kernel closes its connections) and stopping one
(SIGSTOP: nothing closes, the link just goes silent, as a dead Wi-Fi link does) are the
two ways a hub disappears.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from peers import Peer, stamp, value_of

from netgear import NetGear, OptionError, PeerTimeoutError

HUBS = ["127.0.0.1", "127.0.0.2"]
TIMEOUT, RETRIES = 0.5, 1  # budget per hub: 0.5 s x 2 attempts


@pytest.mark.parametrize("address, receive_mode, words", [
    (["127.0.0.1", "127.0.0.2"], True, "receiver binds one address"),
    ([], False, "at least one hub"),
    (["10.0.0.1", "10.0.0.1"], False, "names a hub twice"),
    (["10.0.0.1", 5], False, "non-empty string"),
    (["10.0.0.1", None], False, "non-empty string"),
    (["tcp://10.0.0.1"], False, "scheme"),
])
def test_address_list_validated_before_any_socket(address: list, receive_mode: bool,
                                                  words: str, port: int) -> None:
    with pytest.raises(OptionError, match=words) as info:
        NetGear(address=address, port=port, pattern=1, receive_mode=receive_mode)
    assert info.value.key == "address"


@pytest.mark.parametrize("options, words", [
    ({"multiclient_mode": True}, "multiclient_mode"),
    ({"ssh_tunnel_mode": "me@example.org"}, "ssh_tunnel_mode"),
])
def test_address_list_refused_where_it_has_no_meaning(options: dict, words: str,
                                                      port: int) -> None:
    port_arg = [port, port + 1] if "multiclient_mode" in options else port
    with pytest.raises(OptionError, match=words):
        NetGear(address=HUBS, port=port_arg, pattern=1, **options)


def _hub(host: str, port: int) -> Peer:
    return Peer("receiver", 1, port, address=host).wait_ready()


def _send(gear: NetGear, values: range) -> None:
    for value in values:
        gear.send(stamp(value))


@pytest.mark.parametrize("window", [1, pytest.param(4, marks=pytest.mark.slow)])
def test_req_rep_fails_over_on_kill_and_comes_back_in_turn(port: int, window: int) -> None:
    """Frames in flight when the hub dies (send_window 1 and 4); the silent test is lockstep."""
    a, b = _hub(HUBS[0], port), _hub(HUBS[1], port)
    a2 = None
    gear = NetGear(address=HUBS, port=port, pattern=1, request_timeout=TIMEOUT,
                   max_retries=RETRIES, send_window=window)
    try:
        _send(gear, range(0, 10))
        # killed once it printed the last frame sent: a frame it took but did not print
        # before dying would look lost, though its reply reached the sender
        a.wait_for(lambda lines: "frame 9" in lines)
        a.kill()
        _send(gear, range(10, 20))  # the first of these waits out A's budget, then goes to B
        b.wait_for(lambda lines: "frame 18" in lines)
        # A comes back; the sender stays with B (it never leaves a working hub) ...
        a2 = _hub(HUBS[0], port)
        _send(gear, range(20, 25))
        b.wait_for(lambda lines: "frame 24" in lines)
        assert a2.values() == []
        # ... until B fails in turn: then A, the next in the list, is used again
        b.kill()
        _send(gear, range(25, 35))
        gear.close()
        a2.wait_for(lambda lines: "end" in lines)
    finally:
        gear.close()
        for peer in (a, b, a2):
            if peer is not None:
                peer.kill()
    got = a.values() + b.values() + a2.values()
    assert set(got) == set(range(35)), f"lost {sorted(set(range(35)) - set(got))}"
    for peer in (a, b, a2):
        assert peer.values() == sorted(peer.values()), "a hub got frames out of order"
    assert b.values()[0] <= 11 and a2.values()[0] <= 26
    # a frame a dying hub took but never answered may reach the next one as well
    assert len(got) - len(set(got)) <= 2 * window


def test_silent_hub_noticed_within_the_budget(port: int) -> None:
    """SIGSTOP: no FIN, no RST, the kernel even keeps accepting bytes; only replies stop."""
    a, b = _hub(HUBS[0], port), _hub(HUBS[1], port)
    gear = NetGear(address=HUBS, port=port, pattern=1, request_timeout=TIMEOUT,
                   max_retries=RETRIES, send_window=0)
    try:
        _send(gear, range(0, 5))
        a.wait_for(lambda lines: "frame 4" in lines)  # replied before printing
        os.kill(a.proc.pid, signal.SIGSTOP)
        started = time.monotonic()
        gear.send(stamp(5))
        stall = time.monotonic() - started
        _send(gear, range(6, 10))
        gear.close()
        b.wait_for(lambda lines: "end" in lines)
    finally:
        gear.close()
        # SIGKILL ends a stopped process too; a SIGCONT first would let it read frame 5,
        # which the kernel took into its socket while it was stopped
        a.kill()
        b.kill()
    bound = TIMEOUT * (RETRIES + 1)
    assert bound * 0.9 <= stall <= bound + 3.0, f"failover after {stall:.2f}s, bound {bound}s"
    assert a.values() == list(range(5)) and b.values() == list(range(5, 10))


def test_every_hub_down_raises_within_the_stated_bound_then_sends_on(port: int) -> None:
    gear = NetGear(address=HUBS, port=port, pattern=1, request_timeout=TIMEOUT,
                   max_retries=RETRIES, send_window=0)
    hub = None
    try:
        started = time.monotonic()
        with pytest.raises(PeerTimeoutError, match="every hub failed in turn"):
            gear.send(stamp(0))
        took = time.monotonic() - started
        # the same instance goes on once a hub is back: no restart
        hub = NetGear(address=HUBS[1], port=port, pattern=1, receive_mode=True,
                      receive_timeout=10.0)
        got: list[int] = []
        reader = threading.Thread(target=lambda: got.append(value_of(hub.recv())))
        reader.start()
        gear.send(stamp(1))
        reader.join(10)
    finally:
        gear.close(kill=True)
        if hub is not None:
            hub.close(kill=True)
    bound = len(HUBS) * TIMEOUT * (RETRIES + 1)
    assert bound * 0.9 <= took <= bound + 3.0, f"raised after {took:.2f}s, bound {bound}s"
    assert got == [1]


@pytest.mark.parametrize("pattern", [0, 1])
def test_first_hub_never_up_frames_go_to_the_second(port: int, pattern: int) -> None:
    """PAIR fails over too (no peer takes the frame within the budget), REQ/REP likewise."""
    hub = NetGear(address=HUBS[1], port=port, pattern=pattern, receive_mode=True,
                  receive_timeout=10.0)
    gear = NetGear(address=HUBS, port=port, pattern=pattern, request_timeout=TIMEOUT,
                   max_retries=RETRIES)
    try:
        started = time.monotonic()
        gear.send(stamp(0))
        took = time.monotonic() - started
        got = [value_of(hub.recv())]
        for value in range(1, 5):
            gear.send(stamp(value))
            got.append(value_of(hub.recv()))
    finally:
        gear.close(kill=True)
        hub.close(kill=True)
    assert got == list(range(5))
    assert took <= TIMEOUT * (RETRIES + 1) + 3.0, f"first frame took {took:.2f}s"


def test_pub_sub_sender_feeds_every_hub_of_the_list(port: int) -> None:
    """A publisher has nothing to fail over from: it connects to every hub at once."""
    subs = [NetGear(address=host, port=port, pattern=2, receive_mode=True,
                    receive_timeout=0.2) for host in HUBS]
    gear = NetGear(address=HUBS, port=port, pattern=2)
    seen: list[list[int]] = [[], []]
    try:
        # frames before a subscription reaches the publisher are not sent: send until
        # both hubs have one (bounded), then every later frame must reach both
        deadline = time.monotonic() + 15
        value = 0
        while not all(seen) and time.monotonic() < deadline:
            gear.send(stamp(value))
            value += 1
            for got, sub in zip(seen, subs):
                with contextlib.suppress(PeerTimeoutError):
                    got.append(value_of(sub.recv()))
        assert all(seen), f"a hub never got a frame: {seen}"
        for extra in range(value, value + 5):
            gear.send(stamp(extra))
        for got, sub in zip(seen, subs):
            while got[-1] < value + 4:
                got.append(value_of(sub.recv()))
    finally:
        gear.close(kill=True)
        for sub in subs:
            sub.close(kill=True)
    for got in seen:
        assert got == list(range(got[0], value + 5)), got


@pytest.mark.timeout(30)
def test_secure_sender_fails_over_between_hubs_sharing_keys(tmp_path: Path, port: int) -> None:
    """IronHouse: each rebuilt socket (a retry, a failover) redoes the CURVE handshake."""
    from secure_helpers import collect, frames

    keys = {"secure_mode": 2, "custom_cert_location": str(tmp_path)}
    hubs = [NetGear(address=host, port=port, pattern=1, receive_mode=True,
                    receive_timeout=10.0, **keys) for host in HUBS]
    gear = NetGear(address=HUBS, port=port, pattern=1, request_timeout=TIMEOUT,
                   max_retries=RETRIES, send_window=0, **keys)
    sent = frames(6)
    try:
        first, got_a = collect(hubs[0], 3)
        for frame in sent[:3]:
            gear.send(frame)
        first.join(10)
        hubs[0].close(kill=True)  # gone without a word
        second, got_b = collect(hubs[1], 3)
        for frame in sent[3:]:
            gear.send(frame)
        second.join(10)
    finally:
        gear.close(kill=True)
        for hub in hubs:
            hub.close(kill=True)
    assert [f.tobytes() for f in got_a + got_b] == [f.tobytes() for f in sent]
