"""Small link probes to run inside the namespaces of a ``netfault`` topology.

Each prints JSON lines on stdout: servers ``{"event": "ready"}`` once bound, and every
probe ``{"event": "result", ...}`` when done. Subcommands::

    netprobe.py udp-echo PORT                       # echo datagrams until killed
    netprobe.py udp-rtt HOST PORT --count 60 --interval 0.02
    netprobe.py udp-sink PORT --idle 1.0 [--last N] # count distinct sequence numbers
    netprobe.py udp-blast HOST PORT --count 3000 --pps 2000
    netprobe.py tcp-sink PORT                       # one connection: bytes and seconds
    netprobe.py tcp-source HOST PORT --seconds 3
    netprobe.py tcp-echo PORT                       # echo one connection until EOF
    netprobe.py tcp-hold HOST PORT --interval 0.1   # ping over one connection until stdin
                                                    # says "stop"; report gaps and losses
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import struct
import sys
import time
from typing import Any

PING = struct.Struct("!Id")  # sequence number, send time (monotonic; same host)
BIG_BUF = 4 << 20


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def udp_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BIG_BUF)
    sock.bind(("0.0.0.0", port))
    return sock


def udp_echo(a: argparse.Namespace) -> None:
    sock = udp_socket(a.port)
    emit("ready")
    while True:
        data, peer = sock.recvfrom(65536)
        sock.sendto(data, peer)


def udp_rtt(a: argparse.Namespace) -> None:
    sock = udp_socket()
    rtts: dict[int, float] = {}
    order: list[int] = []  # sequence numbers in arrival order (shows any reordering)
    next_send, sent = time.monotonic(), 0
    deadline = None
    while True:
        now = time.monotonic()
        if sent < a.count and now >= next_send:
            sock.sendto(PING.pack(sent, now), (a.host, a.port))
            sent += 1
            next_send += a.interval
            if sent == a.count:
                deadline = now + a.wait
        if deadline is not None and (now >= deadline or len(rtts) == a.count):
            break
        wake = next_send if sent < a.count else deadline
        if select.select([sock], [], [], max(0.0, wake - now))[0]:
            seq, stamp = PING.unpack(sock.recv(65536)[:PING.size])
            rtts[seq] = time.monotonic() - stamp
            order.append(seq)
    emit("result", sent=sent, rtts=[rtts[k] for k in sorted(rtts)], order=order)


def udp_sink(a: argparse.Namespace) -> None:
    sock = udp_socket(a.port)
    emit("ready")
    seen: set[int] = set()
    end = time.monotonic() + a.timeout
    while True:
        left = end - time.monotonic()
        wait = min(a.idle, left) if seen else left
        if wait <= 0 or not select.select([sock], [], [], wait)[0]:
            break
        seq = PING.unpack(sock.recv(65536)[:PING.size])[0]
        seen.add(seq)
        if a.last is not None and seq >= a.last:  # in-order link: nothing more to come
            break
    emit("result", received=len(seen))


def udp_blast(a: argparse.Namespace) -> None:
    sock = udp_socket()
    start = time.monotonic()
    for seq in range(a.count):
        due = start + seq / a.pps  # paced, so only the bridge loses datagrams
        time.sleep(max(0.0, due - time.monotonic()))
        sock.sendto(PING.pack(seq, time.monotonic()) + bytes(a.size), (a.host, a.port))
    emit("result", sent=a.count)


def tcp_listen(port: int) -> socket.socket:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(1)
    emit("ready")
    return srv


def tcp_sink(a: argparse.Namespace) -> None:
    conn, _ = tcp_listen(a.port).accept()
    total, first = 0, None
    while data := conn.recv(1 << 20):
        first = first or time.monotonic()
        total += len(data)
    emit("result", bytes=total, seconds=time.monotonic() - (first or time.monotonic()))


def tcp_source(a: argparse.Namespace) -> None:
    conn = socket.create_connection((a.host, a.port), timeout=10)
    chunk, end, total = bytes(65536), time.monotonic() + a.seconds, 0
    while time.monotonic() < end:
        conn.sendall(chunk)
        total += len(chunk)
    conn.close()
    emit("result", bytes=total)


def tcp_echo(a: argparse.Namespace) -> None:
    conn, _ = tcp_listen(a.port).accept()
    while data := conn.recv(65536):
        conn.sendall(data)
    emit("result")


def tcp_hold(a: argparse.Namespace) -> None:
    conn = socket.create_connection((a.host, a.port), timeout=10)
    conn.setblocking(False)
    emit("connected", local=conn.getsockname())
    sent = echoed = 0
    buf, last_echo, max_gap = b"", time.monotonic(), 0.0
    stopping, next_send, drain_end = False, time.monotonic(), 0.0
    while True:
        now = time.monotonic()
        if stopping and (echoed == sent or now >= drain_end):
            break
        if not stopping and now >= next_send:
            conn.sendall(PING.pack(sent, now))  # small: never blocks on a 4 MB buffer
            sent += 1
            next_send += a.interval
        wait = (drain_end if stopping else next_send) - now
        ready = select.select([conn, sys.stdin], [], [], max(0.0, wait))[0]
        if sys.stdin in ready and sys.stdin.readline().strip() in ("stop", ""):
            stopping, drain_end = True, time.monotonic() + a.drain
        if conn in ready:
            data = conn.recv(65536)
            if not data:
                raise SystemExit("tcp-hold: the server closed the connection")
            buf += data
            while len(buf) >= PING.size:
                seq, _ = PING.unpack(buf[:PING.size])
                buf = buf[PING.size:]
                if seq != echoed:
                    raise SystemExit(f"tcp-hold: echo {seq} out of order, expected {echoed}")
                echoed += 1
                max_gap = max(max_gap, time.monotonic() - last_echo)
                last_echo = time.monotonic()
    emit("result", sent=sent, echoed=echoed, max_gap=max_gap)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    servers = {"udp-echo": udp_echo, "udp-sink": udp_sink, "tcp-sink": tcp_sink,
               "tcp-echo": tcp_echo}
    clients = {"udp-rtt": udp_rtt, "udp-blast": udp_blast, "tcp-source": tcp_source,
               "tcp-hold": tcp_hold}
    for name, fn in {**servers, **clients}.items():
        p = sub.add_parser(name)
        if name in clients:
            p.add_argument("host")
        p.add_argument("port", type=int)
        p.set_defaults(fn=fn)
        if name == "udp-rtt":
            p.add_argument("--count", type=int, default=60)
            p.add_argument("--interval", type=float, default=0.02)
            p.add_argument("--wait", type=float, default=2.0, help="after the last ping")
        elif name == "udp-sink":
            p.add_argument("--idle", type=float, default=1.0, help="stop when this quiet")
            p.add_argument("--last", type=int, help="stop at this sequence number")
            p.add_argument("--timeout", type=float, default=30.0)
        elif name == "udp-blast":
            p.add_argument("--count", type=int, default=3000)
            p.add_argument("--pps", type=float, default=2000.0)
            p.add_argument("--size", type=int, default=100, help="padding bytes")
        elif name == "tcp-source":
            p.add_argument("--seconds", type=float, default=3.0)
        elif name == "tcp-hold":
            p.add_argument("--interval", type=float, default=0.1)
            p.add_argument("--drain", type=float, default=20.0, help="after stop, at most")
    args = ap.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
