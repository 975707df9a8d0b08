"""CURVE keys on a socket, as hooks the link runs on every (re)built socket."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import zmq

from ..errors import SecurityError
from .auth import ZAP_DOMAIN

if TYPE_CHECKING:
    from ..link.zmq import Channel, SocketHook

__all__ = ["client_hook", "server_hook"]


def _set(sock: zmq.Socket, options: list[tuple[int, Any]]) -> None:
    try:
        for option, value in options:
            sock.setsockopt(option, value)
    except zmq.ZMQError as exc:
        raise SecurityError(f"cannot set up CURVE on the socket: {exc}") from exc


def server_hook(public: bytes, secret: bytes) -> SocketHook:
    def apply(sock: zmq.Socket, channel: Channel) -> None:
        _set(sock, [(zmq.CURVE_SERVER, 1), (zmq.CURVE_PUBLICKEY, public),
                    (zmq.CURVE_SECRETKEY, secret), (zmq.ZAP_DOMAIN, ZAP_DOMAIN.encode()),
                    # no ZAP handler answering -> handshake refused, never let in unchecked
                    (zmq.ZAP_ENFORCE_DOMAIN, 1)])

    return apply


def client_hook(server_key: bytes, public: bytes, secret: bytes) -> SocketHook:
    def apply(sock: zmq.Socket, channel: Channel) -> None:
        _set(sock, [(zmq.CURVE_SERVERKEY, server_key), (zmq.CURVE_PUBLICKEY, public),
                    (zmq.CURVE_SECRETKEY, secret)])

    return apply
