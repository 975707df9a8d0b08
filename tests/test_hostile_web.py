"""The web viewer against hostile clients (issue 16, finding 6): rebinding, no token,
slowloris, browsers that stop reading, and log floods. Real HTTP on 127.0.0.0/8 only."""

from __future__ import annotations

import base64
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import httpx
import pytest
from conftest import free_port
from web_helpers import running_viewer, wait_for

from netgear import OptionError
from netgear.cli import main
from netgear.web import MontageHub, ViewerServer
from netgear.web.access import COOKIE, TOKEN_ENV, allowed_hosts_for, is_loopback
from netgear.web.guard import RateLimitFilter

TOKEN = "correct-horse-battery-staple"


@contextmanager
def token_viewer(**limits) -> Iterator[tuple[ViewerServer, str]]:
    """A hub on one loopback port with a token-protected viewer (loopback may opt in)."""
    hub = MontageHub([free_port()], address="127.0.0.1").start()
    web = ViewerServer(hub, port=0, token=TOKEN, **limits)
    try:
        web.start()
        yield web, web.url
    finally:
        web.stop()
        hub.close()


# -- Host header (DNS rebinding) ---------------------------------------------------------
@pytest.mark.timeout(30)
def test_dns_rebinding_host_header_is_refused():
    with running_viewer(streams=1, start_senders=False) as viewer:
        port = viewer.web.port
        for path in ("", "stats", "montage.jpg", "montage.mjpg"):
            # what a page on evil.example (rebound to 127.0.0.1) makes the browser send
            res = httpx.get(viewer.url + path, headers={"Host": f"evil.example:{port}"},
                            timeout=5)
            assert res.status_code == 400, path
            assert "stream" not in res.text
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
            assert httpx.get(viewer.url + "stats", headers={"Host": host}).status_code == 200


def test_allowed_hosts_come_from_the_bind_address_plus_extra_names():
    assert allowed_hosts_for("127.0.0.1") == ["localhost", "127.0.0.1", "[::1]"]
    assert "127.0.0.2" in allowed_hosts_for("127.0.0.2")
    assert "[::1]" in allowed_hosts_for("::1")
    hosts = allowed_hosts_for("0.0.0.0", ["cams.lan", " "])
    assert socket.gethostname().lower() in hosts and "cams.lan" in hosts
    assert "evil.example" not in hosts


@pytest.mark.timeout(30)
def test_an_added_host_name_is_answered():
    hub = MontageHub([free_port()], address="127.0.0.1").start()
    web = ViewerServer(hub, port=0, allowed_hosts=["cams.lan"])
    try:
        web.start()
        assert httpx.get(web.url + "stats", headers={"Host": "cams.lan"}).status_code == 200
        assert httpx.get(web.url + "stats", headers={"Host": "cams.evil"}).status_code == 400
    finally:
        web.stop()
        hub.close()


# -- the token ---------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_means_127_8_and_ipv6_loopback(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "192.168.1.20", "10.0.0.1", "cams.lan"])
def test_every_interface_or_a_lan_address_is_beyond_loopback(host):
    assert not is_loopback(host)
    hub = MontageHub.__new__(MontageHub)  # never started: refused before anything binds
    with pytest.raises(OptionError) as info:
        ViewerServer(hub, host=host, port=0)
    assert info.value.key == "token"
    assert "--web-token" in str(info.value) and TOKEN_ENV in str(info.value)


def test_a_short_token_is_refused():
    with pytest.raises(OptionError, match="at least 8"):
        ViewerServer(MontageHub.__new__(MontageHub), port=0, token="1234")


@pytest.mark.timeout(30)
def test_cli_refuses_a_network_wide_page_without_a_token(capsys, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    port = free_port()
    code = main(["view", "--port", str(port), "--address", "127.0.0.1", "--web-host",
                 "0.0.0.0", "--web-port", "0", "--seconds", "1"])
    assert code == 1
    assert TOKEN_ENV in capsys.readouterr().err
    with socket.socket() as probe:  # refused before the hub bound its port
        probe.bind(("127.0.0.1", port))


@pytest.mark.timeout(30)
def test_requests_without_the_token_get_401_and_each_way_in_works():
    with token_viewer() as (_web, url):
        for path in ("", "stats", "montage.jpg", "montage.mjpg"):
            res = httpx.get(url + path, timeout=5)
            assert res.status_code == 401, path
            assert res.headers["www-authenticate"].startswith("Basic realm=")
        bad = {"Authorization": "Bearer not-the-token-at-all"}
        assert httpx.get(url + "stats", headers=bad).status_code == 401
        assert httpx.get(url + "stats?token=wrong-token-x").status_code == 401

        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(url + "stats", headers=bearer).status_code == 200
        # HTTP basic: any user name, the token as password (what a browser prompt sends)
        assert httpx.get(url + "stats", auth=("anyone", TOKEN)).status_code == 200
        assert httpx.get(url + "stats", auth=("anyone", "nope-nope-nope")).status_code == 401

        # ?token= once: a cookie (not the token itself) and a redirect to the bare URL
        login = httpx.get(url + "?token=" + TOKEN)
        assert login.status_code == 303 and login.headers["location"] == "/"
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        with httpx.Client(base_url=url, cookies=login.cookies, timeout=5) as browser:
            assert browser.get("/").status_code == 200
            assert browser.get("/stats").json()["web"]["unauthorized"] == 7
            # what <img src="/montage.mjpg"> sends: the cookie, nothing else
            with browser.stream("GET", "/montage.mjpg") as res:
                assert res.status_code == 200
                assert next(res.iter_bytes()).startswith(b"--netgearframe")
        assert httpx.get(url + "stats", cookies={COOKIE: "0" * 64}).status_code == 401


# -- slowloris, connection cap, log volume (the viewer in a subprocess, few fds) ---------
VIEWER_SCRIPT = textwrap.dedent("""
    import logging, sys, threading
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    from netgear.web import MontageHub, ViewerServer
    hub = MontageHub([int(sys.argv[1])], address="127.0.0.1").start()
    web = ViewerServer(hub, port=0, max_connections=20, max_streams=4, header_timeout=2.0,
                       send_timeout=1.0).start()
    print(web.port, flush=True)
    sys.stdin.read()  # until the test closes our stdin
    web.stop(); hub.close()
""")
FD_LIMIT = 256


@contextmanager
def viewer_process(log_path) -> Iterator[str]:
    def limit_fds() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))

    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", VIEWER_SCRIPT, str(free_port())],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                preexec_fn=limit_fds)
    try:
        line = proc.stdout.readline().decode().strip()
        assert line.isdigit(), f"viewer did not start: {log_path.read_text()[-2000:]}"
        yield f"http://127.0.0.1:{line}/"
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _slow_clients(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")  # never finished
        socks.append(s)
    return socks


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server closed or reset ``sock`` (data still queued is read first)."""
    sock.settimeout(0.2)
    try:
        for _ in range(1000):
            if sock.recv(65536) == b"":
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


@pytest.mark.timeout(60)
def test_slowloris_is_bounded_and_a_real_client_is_still_served(tmp_path):
    log_path = tmp_path / "viewer.log"
    socks: list[socket.socket] = []
    with viewer_process(log_path) as url:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        try:
            # twice the viewer's whole file-descriptor budget, all holding half a request
            socks = _slow_clients(port, 2 * FD_LIMIT)
            started = time.monotonic()
            res = httpx.get(url + "stats", timeout=5)
            assert res.status_code == 200 and time.monotonic() - started < 3
            web = res.json()["web"]
            assert web["open_connections"] <= 20
            assert web["connections_evicted"] + web["connections_refused"] >= 2 * FD_LIMIT - 20
            # trickling bytes does not keep a connection: headers are due within 2 s
            for _ in range(3):
                for s in socks:
                    with suppress(OSError):
                        s.send(b"a")
                time.sleep(0.5)
            wait_for(lambda: all(_closed_by_server(s) for s in socks), timeout=10, every=0.2)
            assert httpx.get(url + "stats", timeout=5).json()["web"]["header_timeouts"] >= 1
        finally:
            for s in socks:
                s.close()
    log = log_path.read_bytes()
    print(f"viewer log: {len(log)} bytes, {log.count(b'Too many open files')} EMFILE records")
    # asyncio accepts a batch of 128 before the cap can close any, so at a 256-fd limit
    # some accepts still fail; the rate limit lets 20 records through per 10 s window
    # (the test runs under 20 s), where the unguarded viewer wrote megabytes a second
    assert log.count(b"Too many open files") <= 2 * 20
    assert len(log) < 50_000, log[-3000:]


@pytest.mark.timeout(60)
def test_clients_that_stop_reading_the_mjpeg_stream_are_dropped():
    with running_viewer(streams=1) as viewer:
        viewer.web.stop()  # swapped for one with a short send timeout on the same hub
        web = ViewerServer(viewer.hub, port=0, send_timeout=1.0, max_streams=8).start()
        socks = []
        try:
            for _ in range(5):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect
                s.connect(("127.0.0.1", web.port))
                s.sendall(b"GET /montage.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                socks.append(s)  # and never read
            started = time.monotonic()
            wait_for(lambda: web.counters.streams_dropped == 5, timeout=30, every=0.2)
            dropped_after = time.monotonic() - started
            assert all(_closed_by_server(s) for s in socks)
            assert web.counters.open_connections == 0
            # a client that reads is still served meanwhile and afterwards
            with httpx.stream("GET", web.url + "montage.mjpg", timeout=5) as res:
                assert next(res.iter_bytes()).startswith(b"--netgearframe")
            print(f"5 non-reading MJPEG clients dropped after {dropped_after:.1f} s")
        finally:
            for s in socks:
                s.close()
            web.stop()


@pytest.mark.timeout(30)
def test_mjpeg_streams_are_capped():
    with running_viewer(streams=1) as viewer:
        viewer.web.stop()
        web = ViewerServer(viewer.hub, port=0, max_streams=2).start()
        try:
            with httpx.Client(timeout=5) as client:
                opened = [client.send(client.build_request("GET", web.url + "montage.mjpg"),
                                      stream=True) for _ in range(2)]
                assert all(r.status_code == 200 for r in opened)
                third = client.get(web.url + "montage.mjpg")
                assert third.status_code == 503 and third.headers["retry-after"] == "5"
                assert web.counters.streams_refused == 1
                for r in opened:
                    r.close()
                # a closed stream frees its slot (the server noticed the disconnect)
                wait_for(lambda: client.get(web.url + "montage.jpg").status_code == 200
                         and _stream_opens(client, web.url), timeout=10)
        finally:
            web.stop()


def _stream_opens(client: httpx.Client, url: str) -> bool:
    res = client.send(client.build_request("GET", url + "montage.mjpg"), stream=True)
    try:
        return res.status_code == 200
    finally:
        res.close()


def test_log_rate_limit_lets_n_through_then_counts():
    log = logging.getLogger("netgear.test.flood")
    log.propagate = False
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Keep()
    flood = RateLimitFilter(limit=20, interval=0.5)
    log.addHandler(handler)
    log.addFilter(flood)
    try:
        for i in range(2000):  # a connection flood's worth of errors
            log.error("accept failed: Too many open files (%d)", i)
        assert len(seen) == 20 and flood.suppressed == 1980
        time.sleep(0.6)
        log.error("next window")
        assert seen[-1].startswith("next window") and "1980 similar" in seen[-1]
    finally:
        log.removeHandler(handler)
        log.removeFilter(flood)


def test_page_builds_stream_names_as_text_never_markup():
    # names come from senders (netgear serve --name): the page must never parse them as
    # HTML (tests/test_browser.py checks the same in Chromium)
    from netgear.web.page import PAGE

    assert "td.textContent = text" in PAGE
    assert "innerHTML" not in PAGE and "insertAdjacentHTML" not in PAGE


def test_basic_header_garbage_is_a_401_not_a_500():
    with token_viewer() as (_web, url):
        for value in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Bearer"):
            assert httpx.get(url + "stats", headers={"Authorization": value}).status_code == 401


@pytest.mark.timeout(30)
def test_a_pipelined_stream_is_not_cut_by_the_header_timeout():
    # two requests in one write: the MJPEG one starts inside the first one's completion
    with running_viewer(streams=1) as viewer:
        viewer.web.stop()
        web = ViewerServer(viewer.hub, port=0, header_timeout=0.5).start()
        try:
            with socket.create_connection(("127.0.0.1", web.port), timeout=5) as s:
                s.sendall(b"GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                          b"GET /montage.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                received = 0
                deadline = time.monotonic() + 2.0  # four header timeouts
                while time.monotonic() < deadline:
                    chunk = s.recv(65536)
                    assert chunk, "the stream was cut"
                    received += len(chunk)
                assert received > 10_000 and web.counters.header_timeouts == 0
        finally:
            web.stop()
