"""Connection and request limits (README "Limits"): each one refused at its bound.

Timing: the only time bounds here are generous ones that prove a connection was closed
by the server (it would otherwise stay open until the test's own socket timeout) or that
the event loop was not blocked; none measures speed.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import orjson

from tests.support.server import ThreadedServer

GET = b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n"


def _connect(srv: ThreadedServer, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (or the socket times out: then raise)."""
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send, ignoring a reset: the server may close while we are still sending."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def test_a_header_over_the_limit_is_a_431_and_the_connection_closed(
        gateway_factory: Any) -> None:
    srv: ThreadedServer = gateway_factory(max_header_bytes=4096)
    with _connect(srv) as sock:  # one large header, sent at once
        _send_quietly(sock, GET + b"x-big: " + b"a" * 8192 + b"\r\n\r\n")
        raw = _read_all(sock)
    assert _status(raw) == 431
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    err = orjson.loads(body)["error"]
    assert err["type"] == "request_header_fields_too_large" and "4096" in err["message"]
    assert err["request_id"].encode() in head
    with _connect(srv) as sock:  # 32 MiB of headers in small pieces: refused at 4 KiB
        sock.sendall(GET)
        sent = 0
        try:
            for i in range(32 * 1024):
                sock.sendall(b"x-h%d: %s\r\n" % (i, b"b" * 1000))
                sent += 1
        except (BrokenPipeError, ConnectionResetError):
            pass
        raw = _read_all(sock)
    assert sent < 32 * 1024  # the server stopped reading long before the end
    assert raw == b"" or _status(raw) == 431
    # a head just under the limit is served
    r = httpx.get(srv.url + "/healthz", headers={"x-fill": "c" * 3000}, trust_env=False)
    assert r.status_code == 200


def test_a_connection_that_never_finishes_its_head_is_closed(gateway_factory: Any) -> None:
    srv: ThreadedServer = gateway_factory(header_timeout_s=0.5)
    with _connect(srv) as idle, _connect(srv) as slow:
        slow.sendall(GET)  # the request line and a header, never the blank line
        t0 = time.monotonic()
        assert _read_all(slow) == b""  # closed without an answer
        assert _read_all(idle) == b""  # never sent a byte: closed too
        assert time.monotonic() - t0 < 8  # generous: closed by the server, not our timeout
    with _connect(srv) as sock:  # kept alive: the second request's head is bounded too
        sock.sendall(GET + b"\r\n")
        first = sock.recv(65536)
        assert _status(first) == 200
        sock.sendall(GET)
        assert b"HTTP/1.1" not in _read_all(sock)
    # a head sent slowly but within the timeout is served
    with _connect(srv) as sock:
        for piece in (b"GET /healthz HTTP/1.1\r\n", b"host: x\r\n", b"\r\n"):
            sock.sendall(piece)
            time.sleep(0.1)
        assert _status(sock.recv(65536)) == 200


def test_a_body_that_stops_mid_way_is_a_408_and_the_connection_closed(
        gateway_factory: Any) -> None:
    srv: ThreadedServer = gateway_factory(body_timeout_s=0.5)
    for path in ("/v1/chat", "/v1/chat/completions", "/v1/plan"):
        with _connect(srv) as sock:
            sock.sendall(b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                         b"content-length: 1000\r\n\r\n" % path.encode()
                         + b'{"request": {"messages": [')
            t0 = time.monotonic()
            raw = _read_all(sock)  # the 408, then the server closes
            assert time.monotonic() - t0 < 8  # generous: closed by the server
        head, _, body = raw.partition(b"\r\n\r\n")
        assert _status(raw) == 408, (path, raw)
        assert b"connection: close" in head.lower()
        err = orjson.loads(body)["error"]
        assert err["type"] == "request_timeout" and "TOKENHUB_BODY_TIMEOUT_S" in err["message"]
        assert err["request_id"].encode() in head
    with _connect(srv) as sock:  # chunked, one chunk then silence
        sock.sendall(b"POST /v1/chat HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                     b"transfer-encoding: chunked\r\n\r\n5\r\n{\"req\r\n")
        assert _status(_read_all(sock)) == 408
