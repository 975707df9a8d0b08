"""Faults measured across real network namespaces: loss and delay, outages, a dead link.

Sender in namespace A, hub in B (``tests/netns.py``). The bridged shape puts the lossy,
delaying bridge in a third namespace between them; the pair shape is used for outages
(``link_down`` takes B's end down: no FIN, no RST, packets just vanish). Every process
runs in ``try/finally`` and is killed by PID; the namespaces go with the topology.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from netns import Topology, available, bridged, pair
from peers import Peer

pytestmark = pytest.mark.slow

PORT = 9100  # inside our own namespaces, where nothing else listens
LOSSY = {"request_timeout": 2.0, "max_retries": 5}


@pytest.fixture(autouse=True)
def needs_namespaces() -> Iterator[None]:
    reason = available()
    if reason is not None:
        pytest.skip(f"fault tests need network namespaces: {reason}")
    yield


def _hub(topo: Topology, pattern: int, port: int = PORT, ns: str = "b",
         **options: object) -> Peer:
    return Peer("receiver", pattern, port, netns=topo.name(ns), address="*",
                options=options).wait_ready(20)


def _camera(topo: Topology, pattern: int, address: object, count: int,
            interval: float = 0.0, **options: object) -> Peer:
    return Peer("sender", pattern, PORT, netns=topo.name("a"), address=address,
                count=count, interval=interval, options=options)


def _longest_gap(peer: Peer) -> float:
    times = [t for t, line in zip(list(peer.stamps), list(peer.lines))
             if line.startswith("frame ")]
    return max((b - a for a, b in zip(times, times[1:])), default=0.0)


def test_loss_and_delay_req_rep_loses_nothing_pub_sub_drops_are_counted() -> None:
    """5 % loss, 50 ms ± 20 ms each way; REQ/REP with 1 and 4 frames in flight, PUB/SUB."""
    peers: list[Peer] = []
    try:
        with bridged(loss=0.05, delay=0.05, jitter=0.02, seed=3) as topo:
            hubs = [_hub(topo, 1), _hub(topo, 1, port=PORT + 2)]
            sub = _hub(topo, 2, port=PORT + 1, subscriber_timeout=5.0)
            peers += [*hubs, sub]
            cams = [_camera(topo, 1, topo.addr["b"], 30, **LOSSY),
                    Peer("sender", 1, PORT + 2, netns=topo.name("a"), address=topo.addr["b"],
                         count=30, options={**LOSSY, "send_window": 4})]
            pub = Peer("sender", 2, PORT + 1, netns=topo.name("a"), address=topo.addr["b"],
                       count=150, interval=0.03, quiet=1)  # 4.5 s: joining takes RTTs
            peers += [*cams, pub]
            for cam, hub in zip(cams, hubs):
                cam.wait_for(lambda lines: "done" in lines, 60)
                # not "end": REQ/REP's end-of-stream is unacknowledged and flushed within
                # close()'s 0.5 s linger, which a lost packet (RTO >= 200 ms) can outlast
                hub.wait_for(lambda lines: "frame 29" in lines, 10)
            pub.wait_for(lambda lines: "done" in lines, 60)
            stats = sub.stats(20)
            bridge = topo.bridge_stats()
    finally:
        for peer in peers:
            peer.kill()
    for hub in hubs:
        assert hub.values() == list(range(30)), "REQ/REP lost or reordered a frame"
    got = sub.values()
    assert got, "the subscriber got nothing"
    (stream,) = stats["streams"].values()
    # every frame after the subscriber joined is either delivered or counted as dropped
    assert len(got) + stream["dropped"] == 150 - got[0], (len(got), stream, got[:3])
    assert got == sorted(got)
    print(f"PUB/SUB over 5 % loss: {len(got)} of {150 - got[0]} delivered after joining, "
          f"{stream['dropped']} counted as dropped")
    # the bridge did drop packets: TCP hid them (retransmits), so the loss was real
    assert sum(d["dropped"] for d in bridge.values() if isinstance(d, dict)) > 0


def test_link_down_5s_req_rep_resumes_by_itself() -> None:
    """An outage shorter than the retry budget: no restart, nothing lost, stall reported.

    A PUB/SUB stream crosses the same outage beside it: it resumes too, and what it lost
    is counted.
    """
    peers: list[Peer] = []
    try:
        with pair() as topo:
            hub = _hub(topo, 1)
            sub = _hub(topo, 2, port=PORT + 1, subscriber_timeout=10.0)
            hub4 = _hub(topo, 1, port=PORT + 2)  # for a sender with 4 frames in flight
            # a one-port hub: its camera turns stale in the outage and live again after
            named = Peer("receiver", 1, PORT + 3, netns=topo.name("b"), address="*", states=1,
                         options={"multiserver_mode": True, "stale_after": 1.0,
                                  "receive_timeout": 0.25}).wait_ready(20)
            peers += [hub, sub, hub4, named]
            budget = {"request_timeout": 1.0, "max_retries": 9}
            cam = _camera(topo, 1, topo.addr["b"], 120, 0.02, **budget)
            cam4 = Peer("sender", 1, PORT + 2, netns=topo.name("a"), address=topo.addr["b"],
                        count=120, interval=0.02, options={**budget, "send_window": 4})
            pub = Peer("sender", 2, PORT + 1, netns=topo.name("a"), address=topo.addr["b"],
                       count=450, interval=0.02, quiet=1)
            porch = Peer("sender", 1, PORT + 3, netns=topo.name("a"), address=topo.addr["b"],
                         count=120, interval=0.02, quiet=1,
                         options={**budget, "multiserver_mode": True, "stream_name": "porch"})
            peers += [cam, cam4, pub, porch]
            hub.wait_for(lambda lines: len(lines) > 30, 20)
            hub4.wait_for(lambda lines: len(lines) > 10, 20)
            sub.wait_for(lambda lines: len(lines) > 10, 20)
            named.wait_for(lambda lines: 'states {"porch": "live"}' in lines, 20)
            topo.link_down()
            down = time.monotonic()
            # stale within stale_after (1 s) of its last frame, plus the hub's 0.25 s look
            named.wait_for(lambda lines: 'states {"porch": "stale"}' in lines, 4.5)
            stale_after = time.monotonic() - down
            time.sleep(max(0.0, 5.0 - stale_after))  # the outage itself, 5 s in all
            topo.link_up()
            back = time.monotonic()
            named.wait_for(lambda lines: lines.count('states {"porch": "live"}') >= 2, 20)
            live_again = time.monotonic() - back
            for sender, receiver in ((cam, hub), (cam4, hub4)):
                sender.wait_for(lambda lines: "done" in lines, 40)
                receiver.wait_for(lambda lines: "end" in lines, 10)
            pub.wait_for(lambda lines: "done" in lines, 40)
            stats = sub.stats(20)
    finally:
        for peer in peers:
            peer.kill()
    assert named.values() == list(range(120)), "the hub lost a frame in the outage"
    print(f"one-port hub: camera stale {stale_after:.2f}s into the outage, live again "
          f"{live_again:.2f}s after the link came back")
    for receiver in (hub, hub4):
        assert receiver.values() == list(range(120)), "REQ/REP lost a frame in the outage"
        # the outage, plus at most one request_timeout until the next rebuild connects
        stall = _longest_gap(receiver)
        assert 4.5 <= stall <= 5.0 + 1.0 + 4.0, f"longest stall {stall:.2f}s"
    stall = _longest_gap(hub)
    got = sub.values()
    (stream,) = stats["streams"].values()
    after = [t for t, line in zip(sub.stamps, sub.lines) if line.startswith("frame ")
             and t > back]
    assert after, "the PUB/SUB stream did not resume after the outage"
    assert len(got) + stream["dropped"] == 450 - got[0], (len(got), stream)
    print(f"5 s outage: REQ/REP longest stall {stall:.2f}s (window 4: "
          f"{_longest_gap(hub4):.2f}s), nothing lost; PUB/SUB longest "
          f"stall {_longest_gap(sub):.2f}s, {stream['dropped']} of {450 - got[0]} dropped "
          f"and counted, first frame {after[0] - back:.2f}s after the link came back")


def test_link_down_for_good_fails_over_or_raises_within_the_bound() -> None:
    """B's link never returns: a sender with a second hub moves there, one without raises."""
    budget = 0.5 * (3 + 1)  # request_timeout x (max_retries + 1)
    opts = {"request_timeout": 0.5, "max_retries": 3}
    peers: list[Peer] = []
    try:
        with pair() as topo:
            hub_b = _hub(topo, 1)
            hub_local = _hub(topo, 1, ns="a")  # the second hub, on A's side of the cut
            lone = _hub(topo, 1, port=PORT + 1)
            peers += [hub_b, hub_local, lone]
            cam = _camera(topo, 1, [topo.addr["b"], "127.0.0.1"], 300, 0.02, **opts)
            single = Peer("sender", 1, PORT + 1, netns=topo.name("a"), address=topo.addr["b"],
                          count=300, interval=0.02, options=opts)
            peers += [cam, single]
            hub_b.wait_for(lambda lines: len(lines) > 20, 20)
            lone.wait_for(lambda lines: len(lines) > 20, 20)
            topo.link_down()
            cut = time.monotonic()
            single.wait(15)
            raised_after = time.monotonic() - cut
            hub_local.wait_for(lambda lines: "frame 0" not in lines and len(lines) > 1, 15)
            moved_after = hub_local.stamps[1] - cut
            cam.wait_for(lambda lines: "done" in lines, 30)
            hub_local.wait_for(lambda lines: "end" in lines, 10)
    finally:
        for peer in peers:
            peer.kill()
    assert single.proc.returncode != 0
    assert "PeerTimeoutError" in "\n".join(single.errors)
    assert raised_after <= budget + 4.0, f"raised {raised_after:.2f}s after the cut"
    assert moved_after <= budget + 4.0, f"failed over {moved_after:.2f}s after the cut"
    got = hub_b.values() + hub_local.values()
    assert set(got) == set(range(300)), f"lost {sorted(set(range(300)) - set(got))}"
    print(f"link cut for good: raised after {raised_after:.2f}s, failed over after "
          f"{moved_after:.2f}s (budget {budget}s)")
