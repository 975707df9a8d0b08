"""Socket option policy: queue sizes, limits and reconnect pacing for every socket."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import zmq

from .settings import Settings

if TYPE_CHECKING:
    from .transport import Channel

__all__ = ["MAX_QUEUE_FRAMES", "QUEUE_FRAMES", "base_options"]

QUEUE_FRAMES = 4  # receivers, per peer; senders until their first frame tells its size
MAX_QUEUE_FRAMES = 1000
# REP receivers: still bounded, should a raw peer (DEALER) push requests without waiting
REPLIER_QUEUE_FRAMES = 64
SocketHook = Callable[[zmq.Socket, "Channel"], None]


def base_options(settings: Settings) -> SocketHook:
    """The socket options every netgear socket gets, as a hook run on each (re)build."""
    pattern, receiving = settings.pattern, settings.receive_mode
    max_bytes = settings.options["max_frame_bytes"]
    conflate = settings.options["conflate"] and receiving

    def apply(sock: zmq.Socket, channel: Channel) -> None:
        if pattern == 2 and receiving:
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        if not receiving and pattern in (0, 1):
            # queue nothing for a peer that is not connected: send() waits instead (bounded)
            sock.setsockopt(zmq.IMMEDIATE, 1)
        # Video frames are megabytes: libzmq's default of 1000 queued messages per side would
        # let a fast sender pile up gigabytes in front of a slow receiver.
        # A REQ peer has at most one request in flight, so on REQ/REP the queues bound
        # nothing, while a small high-water mark costs a thread wakeup per frame (libzmq
        # signals the writer every (hwm + 1) // 2 messages read): 2 extra syscalls a frame.
        if receiving:
            # Replies are tiny and at most one per request; a small SNDHWM here made libzmq's
            # REP socket drop replies now and then (the sender then stalls a request_timeout).
            sock.setsockopt(zmq.SNDHWM, MAX_QUEUE_FRAMES)
            depth = REPLIER_QUEUE_FRAMES if pattern == 1 else QUEUE_FRAMES
            sock.setsockopt(zmq.RCVHWM, 1 if conflate else depth)
        else:
            sock.setsockopt(zmq.SNDHWM, MAX_QUEUE_FRAMES if pattern == 1 else channel.queue_frames)
            sock.setsockopt(zmq.RCVHWM, MAX_QUEUE_FRAMES)  # acknowledgements only
        # a peer announcing a larger part is disconnected before libzmq allocates for it
        sock.setsockopt(zmq.MAXMSGSIZE, max_bytes)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)

    return apply
