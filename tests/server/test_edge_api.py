"""The edge's API paths on their own (no engine): bodies collected within a cap,
answers on the API workers in request order, a full queue answered ``busy``."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from engine.server.edge import Accepted, EdgeLimits, EdgeLoop, Site
from engine.server.http import (
    LOOPBACK_NAMES,
    ApiRequest,
    ApiSite,
    HostPolicy,
    HttpResponse,
    Refusal,
    UpgradeRequest,
)
from tests.conftest import timeout, wait_until

BUSY = HttpResponse(503, "application/json", b'{"code":-1008}')


class _Api:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Semaphore(0)
        self.seen: list[ApiRequest] = []

    def handle(self, req: ApiRequest) -> HttpResponse:
        self.seen.append(req)
        self.entered.release()
        assert self.release.wait(timeout(10))
        return HttpResponse(200, "text/plain", f"{req.method} {req.query} {req.body!r}".encode())


def _refuse(_sock: socket.socket, _req: UpgradeRequest) -> Accepted:
    raise Refusal(404, "no")


@pytest.fixture
def served() -> Iterator[tuple[int, _Api, EdgeLoop]]:
    api = _Api()
    loop = EdgeLoop(time.monotonic)
    site = Site((), _refuse, {}, HostPolicy(LOOPBACK_NAMES, (), 0),
                EdgeLimits(ping_interval_s=None),
                ApiSite("/api/v3/", api.handle, BUSY, max_body_bytes=100, workers=1,
                        max_waiting=1))
    port = loop.listen("127.0.0.1", 0, site)
    loop.start()
    try:
        yield port, api, loop
    finally:
        api.release.set()
        loop.stop()


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def _conn(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout(5))


def test_bodies_queries_and_keep_alive_in_order(served: tuple[int, _Api, EdgeLoop]) -> None:
    port, _api, _loop = served
    s = _conn(port)
    s.sendall(b"POST /api/v3/order?a=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\n"
              b"b=2&c=3"
              b"DELETE /api/v3/order?x=9 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
              b"PUT /api/v3/k HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"3\r\nk=1\r\n0\r\n\r\n"
              b"GET /api/v3/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    data = _read_all(s)
    s.close()
    assert data.count(b"HTTP/1.1 200") == 4
    bodies = [b"POST a=1 b'b=2&c=3'", b"DELETE x=9 b''", b"PUT  b'k=1'", b"GET  b''"]
    positions = [data.index(b) for b in bodies]
    assert positions == sorted(positions)  # pipelined answers keep their order


def test_a_body_over_the_cap_is_413_declared_or_chunked(
        served: tuple[int, _Api, EdgeLoop]) -> None:
    port, api, _loop = served
    s = _conn(port)
    s.sendall(b"POST /api/v3/order HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 101\r\n\r\n")
    assert _read_all(s).startswith(b"HTTP/1.1 413")
    s.close()
    s = _conn(port)
    s.sendall(b"POST /api/v3/order HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked"
              b"\r\n\r\n" + b"40\r\n" + b"x" * 64 + b"\r\n" + b"40\r\n" + b"y" * 64 + b"\r\n")
    assert _read_all(s).startswith(b"HTTP/1.1 413")
    s.close()
    assert api.seen == []  # never handled


def test_a_full_queue_is_answered_busy(served: tuple[int, _Api, EdgeLoop]) -> None:
    port, api, loop = served
    api.release.clear()
    first, second, third = _conn(port), _conn(port), _conn(port)
    request = b"GET /api/v3/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    first.sendall(request)
    assert api.entered.acquire(timeout=timeout(5))  # the one worker is busy with it
    second.sendall(request)
    wait_until(lambda: loop.api_waiting == 1, 5, "the second request queued")
    third.sendall(request)
    assert _read_all(third).startswith(b"HTTP/1.1 503")
    api.release.set()
    assert _read_all(first).startswith(b"HTTP/1.1 200")
    assert _read_all(second).startswith(b"HTTP/1.1 200")
    for s in (first, second, third):
        s.close()
