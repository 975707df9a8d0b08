"""Who may use the viewer: the Host header it answers to, and the access token.

Host check: a DNS-rebinding page (``evil.example`` resolving to 127.0.0.1) makes the
browser send ``Host: evil.example``; starlette's TrustedHostMiddleware answers 400 to any
name not derived from the bind address or added with ``allowed_hosts``.

Token: required when the viewer listens beyond loopback. A browser can present it in
three ways, all compared in constant time:

* ``?token=T`` on any page once: the viewer sets an HttpOnly, SameSite=Strict cookie
  (holding a digest of the token, not the token) and redirects to the bare URL, so the
  page's ``<img src="/montage.mjpg">`` and ``fetch("/stats")`` carry it from then on;
* HTTP basic authentication with the token as password (any user name): a browser
  prompts for it after the 401;
* ``Authorization: Bearer T``, for scripts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from .guard import GuardCounters

__all__ = ["COOKIE", "TOKEN_ENV", "TokenMiddleware", "allowed_hosts_for", "is_loopback"]

TOKEN_ENV = "NETGEAR_WEB_TOKEN"
COOKIE = "netgear_token"
REALM = "netgear viewer"
LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]")


def is_loopback(host: str) -> bool:
    """True when ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost).

    The wildcards ``0.0.0.0``, ``::`` and ``""`` listen on every interface: not loopback.
    """
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # a host name other than localhost: whatever it resolves to today
        return False


def allowed_hosts_for(bind_host: str, extra: Iterable[str] = ()) -> list[str]:
    """Host header names the viewer answers to: local names, the bind address, ``extra``.

    A wildcard bind adds this machine's host name and its fully qualified name. ``"*"``
    in ``extra`` turns the check off.
    """
    hosts = list(LOCAL_NAMES)
    name = bind_host.strip("[]")
    if name in ("", "0.0.0.0", "::"):
        for candidate in (socket.gethostname(), socket.getfqdn()):
            if candidate:
                hosts.append(candidate.lower())
    else:
        hosts.append(f"[{name}]" if ":" in name else name.lower())
    hosts.extend(h.strip().lower() for h in extra if h.strip())
    return list(dict.fromkeys(hosts))


def _cookie_value(token: str) -> str:
    # The cookie must not be the token itself: a leaked cookie jar then does not leak it.
    return hmac.new(token.encode(), b"netgear-viewer-cookie", hashlib.sha256).hexdigest()


class TokenMiddleware:
    """Pure ASGI middleware: 401 unless the request carries the token (see module doc)."""

    def __init__(self, app: Any, token: str, counters: GuardCounters) -> None:
        self.app = app
        self.token = token.encode()
        self.cookie = _cookie_value(token).encode()
        self.counters = counters

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])  # lower-cased names; a repeated header: last wins
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        given = [v for k, v in query if k == "token"]
        if given:
            if self._same(given[-1].encode()):
                await self._login(scope, send, [(k, v) for k, v in query if k != "token"])
            else:
                await self._refuse(send)
            return
        if self._authorized(headers):
            await self.app(scope, receive, send)
        else:
            await self._refuse(send)

    def _same(self, candidate: bytes) -> bool:
        # digests first: equal lengths, so not even the token's length leaks through timing
        return hmac.compare_digest(hashlib.sha256(candidate).digest(),
                                   hashlib.sha256(self.token).digest())

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        auth = headers.get(b"authorization", b"")
        scheme, _, value = auth.partition(b" ")
        if scheme.lower() == b"bearer" and self._same(value.strip()):
            return True
        if scheme.lower() == b"basic":
            try:
                _, _, password = base64.b64decode(value.strip(), validate=True).partition(b":")
            except ValueError:
                password = b""
            if self._same(password):
                return True
        for part in headers.get(b"cookie", b"").split(b";"):
            name, _, value = part.strip().partition(b"=")
            if name == COOKIE.encode() and hmac.compare_digest(value, self.cookie):
                return True
        return False

    async def _login(self, scope: dict[str, Any], send: Any, rest: list[tuple[str, str]]
                     ) -> None:
        location = scope.get("path", "/") + (f"?{urlencode(rest)}" if rest else "")
        cookie = (f"{COOKIE}={self.cookie.decode()}; Path=/; HttpOnly; SameSite=Strict")
        await send({"type": "http.response.start", "status": 303, "headers": [
            (b"location", location.encode("latin-1", "replace")),
            (b"set-cookie", cookie.encode()), (b"cache-control", b"no-store"),
            (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    async def _refuse(self, send: Any) -> None:
        self.counters.add("unauthorized")
        body = (b"this viewer needs its access token: open /?token=TOKEN once, use HTTP basic "
                b"auth with the token as password, or send Authorization: Bearer TOKEN\n")
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"www-authenticate", f'Basic realm="{REALM}", charset="UTF-8"'.encode()),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})
