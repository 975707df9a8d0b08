"""Socket option policy: queue sizes, limits, liveness and reconnect pacing for every socket."""

from __future__ import annotations

import zmq

from ...core.settings import Settings
from .channel import MAX_QUEUE_FRAMES, Channel, SocketHook

__all__ = ["base_options", "receive_queue_frames"]



def receive_queue_frames(settings: Settings) -> int:
    """A receiver's high-water mark per peer: whole messages of the largest allowed part.

    libzmq counts messages, not bytes, and cannot know how large the next one is, so the
    budget is divided by the worst case a peer may send (a part of ``max_frame_bytes``).
    """
    opts = settings.options
    if opts["conflate"]:
        return 1
    # Never below 2: with CURVE and ZAP, libzmq first queues a credential message that
    # takes a slot of its own, and at 1 a REP or SUB socket then waited forever (tested).
    return max(2, min(MAX_QUEUE_FRAMES, opts["receive_queue_bytes"] // opts["max_frame_bytes"]))


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def base_options(settings: Settings) -> SocketHook:
    """The socket options every netgear socket gets, as a hook run on each (re)build."""
    opts = settings.options
    policy, receiving = settings.policy, settings.receive_mode
    max_bytes = opts["max_frame_bytes"]
    depth = receive_queue_frames(settings)
    handshake = _ms(opts["handshake_timeout"])
    beat = opts["heartbeat_interval"]
    dead = opts["dead_peer_timeout"]
    # Only where unacknowledged data means a dead link: a receiver sends replies at most, a
    # publisher may drop anyway. A PAIR or REQ sender facing a paused receiver (zero window)
    # must not lose its queue to the kernel; request_timeout governs it instead.
    cap_unacked = receiving or policy.fans_out

    def apply(sock: zmq.Socket, channel: Channel) -> None:
        if policy.fans_out and receiving:
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        if not receiving and policy.fans_out:
            # every subscriber's subscription is reported, not only the first: a joining
            # subscriber is how a video sender knows to send a keyframe now
            sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        if not receiving and not policy.fans_out:
            # queue nothing for a peer that is not connected: send() waits instead (bounded)
            sock.setsockopt(zmq.IMMEDIATE, 1)
        # Video frames are megabytes: libzmq's default of 1000 queued messages per side would
        # let a fast sender pile up gigabytes in front of a slow receiver.
        # A REQ peer has at most one request in flight, so on REQ/REP the sender's queues
        # bound nothing, while a small high-water mark costs a thread wakeup per frame
        # (libzmq signals the writer every (hwm + 1) // 2 messages read).
        if receiving:
            # Replies are tiny and at most one per request; a small SNDHWM here made libzmq's
            # REP socket drop replies now and then (the sender then stalls a request_timeout).
            sock.setsockopt(zmq.SNDHWM, MAX_QUEUE_FRAMES)
            # Sized from a byte budget, not trust: a raw peer (a DEALER facing REP) need not
            # wait for replies, so REP gets the same bound as PAIR and SUB.
            sock.setsockopt(zmq.RCVHWM, depth)
        else:
            sock.setsockopt(zmq.SNDHWM, MAX_QUEUE_FRAMES if policy.replies
                            else channel.queue_frames)
            sock.setsockopt(zmq.RCVHWM, MAX_QUEUE_FRAMES)  # acknowledgements only
        # a peer announcing a larger part is disconnected before libzmq allocates for it
        sock.setsockopt(zmq.MAXMSGSIZE, max_bytes)
        # A TCP connection that never finishes the ZMTP greeting holds a file descriptor;
        # libzmq's default lets it do so for 30 s.
        sock.setsockopt(zmq.HANDSHAKE_IVL, handshake)
        if dead is not None:
            # Kernel-side liveness (no libzmq timers involved): idle probes every dead/6 s
            # after dead/2 s of silence, three misses and the connection is gone.
            sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
            sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, max(1, int(dead / 2)))
            sock.setsockopt(zmq.TCP_KEEPALIVE_INTVL, max(1, int(dead / 6)))
            sock.setsockopt(zmq.TCP_KEEPALIVE_CNT, 3)
            if cap_unacked:
                sock.setsockopt(zmq.TCP_MAXRT, _ms(dead))  # TCP_USER_TIMEOUT on Linux
        if beat is not None:
            # ZMTP PING/PONG also catches a peer whose kernel still answers but whose process
            # does not (stopped, or a raw connection that only greeted). Opt-in: see the
            # option's doc for the libzmq abort it can trigger.
            timeout = _ms(opts["heartbeat_timeout"])
            sock.setsockopt(zmq.HEARTBEAT_IVL, _ms(beat))
            sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, timeout)
            sock.setsockopt(zmq.HEARTBEAT_TTL, min(timeout, 6_553_500))  # peer's side too
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)

    return apply
