"""The edge before the upgrade, over real sockets: timeouts, caps, RFC 9112 framing, Host."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import websocket

from engine.config import ServerConfig
from tests.conftest import make_config, timeout, wait_until
from tests.e2e.wsclient import WsClient
from tickdesk import Engine
from tickdesk.app import WS_PATH


def _engine(**server: object) -> Engine:
    return Engine(make_config(server=ServerConfig(port=0, **server))).start()  # type: ignore[arg-type]


@pytest.fixture
def eng() -> Iterator[Engine]:
    e = _engine(handshake_timeout_s=1.0, max_header_bytes=2048)
    try:
        yield e
    finally:
        e.stop()


def _connect(e: Engine) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", e.port), timeout=timeout(5))
    return s


def _read_all(s: socket.socket, seconds: float = 5.0) -> bytes:
    """Everything until the server closes (bounded)."""
    s.settimeout(timeout(seconds))
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return out
        if not chunk:
            return out
        out += chunk


def _exchange(e: Engine, raw: bytes) -> bytes:
    with _connect(e) as s:
        s.sendall(raw)
        return _read_all(s)


def _status(resp: bytes) -> int:
    assert resp.startswith(b"HTTP/1.1 "), resp[:80]
    return int(resp[9:12])


def _get(path: str, host: str = "127.0.0.1", extra: str = "") -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n").encode()


def test_slowloris_is_closed_at_the_handshake_timeout_while_others_stream(eng: Engine) -> None:
    slow = _connect(eng)
    request = _get("/healthz")
    result: dict[str, object] = {}

    def drip() -> None:
        # The attacker: one header byte every 0.2 s, until the server gives up.
        slow.settimeout(0.2)
        start = time.monotonic()
        for byte in request:
            try:
                slow.send(bytes([byte]))
                data = slow.recv(4096)  # the 0.2 s pace; returns once the server answers
            except TimeoutError:
                continue
            except OSError:
                data = b""
            result["answer"] = data
            result["after"] = time.monotonic() - start
            return
        result["answer"] = b"completed?"

    t = threading.Thread(target=drip)
    t.start()
    client = WsClient(eng.url)
    client.send({"action": "subscribe_ticker", "symbol": "BTCUSDT"})
    updates = 0
    while t.is_alive() and updates < 1000:
        if client.wait_for(lambda m: m["type"] == "MARKET_UPDATE")["symbol"] == "BTCUSDT":
            updates += 1
    t.join(timeout(10))
    client.close()
    slow.close()
    answer = result["answer"]
    assert isinstance(answer, bytes) and answer.startswith(b"HTTP/1.1 408"), answer
    assert 0.9 <= float(result["after"]) < timeout(5)  # type: ignore[arg-type]
    assert updates >= 5  # the other client kept streaming meanwhile
    assert eng.edge.stats.handshake_timeouts == 1


def test_an_idle_connection_is_closed_silently(eng: Engine) -> None:
    with _connect(eng) as s:
        assert _read_all(s) == b""
    assert eng.edge.stats.handshake_timeouts == 1


def test_oversized_headers_get_431_and_an_oversized_target_414(eng: Engine) -> None:
    big = _get("/healthz", extra="X-Pad: " + "a" * 4000 + "\r\n")
    assert _status(_exchange(eng, big)) == 431
    assert _status(_exchange(eng, _get("/" + "a" * 5000))) == 414


def test_pending_connections_are_capped_per_ip_and_in_total() -> None:
    e = _engine(max_pending_per_ip=3, max_pending_connections=100)
    try:
        held = [_connect(e) for _ in range(3)]
        wait_until(lambda: e.edge.pending == 3, what="three pending connections")
        with _connect(e) as extra:
            assert _read_all(extra) == b""  # closed at once, nothing said
        assert e.edge.stats.pending_refused == 1
        for s in held:
            s.close()
        wait_until(lambda: e.edge.pending == 0, what="the pending slots to free")
        assert _status(_exchange(e, _get("/healthz"))) == 200
    finally:
        e.stop()
    e = _engine(max_pending_per_ip=50, max_pending_connections=2)
    try:
        held = [_connect(e) for _ in range(2)]
        wait_until(lambda: e.edge.pending == 2, what="two pending connections")
        with _connect(e) as extra:
            assert _read_all(extra) == b""
        for s in held:
            s.close()
    finally:
        e.stop()


def test_addresses_filling_the_pending_cap_cannot_lock_out_another_address() -> None:
    # A slowloris from one address (127.0.0.2, loopback too) holds every pending
    # slot; a client from 127.0.0.1 still gets in, in place of the attacker's
    # oldest connection, and the attacker gets no more than it had.
    e = _engine(max_pending_per_ip=50, max_pending_connections=4, handshake_timeout_s=30.0)
    held: list[socket.socket] = []
    try:
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", e.port), timeout=timeout(5),
                                         source_address=("127.0.0.2", 0))
            s.sendall(b"GET / HTTP/1.1\r\n")  # and never the rest
            held.append(s)
        wait_until(lambda: e.edge.pending == 4, what="four pending connections")
        assert _status(_exchange(e, _get("/healthz"))) in (200, 503)  # answered, not cut
        assert _read_all(held[0]) == b""  # the attacker's oldest made room
        assert e.edge.stats.pending_evicted == 1
        # held[1:] still wait for their heads; the answered one lingers a moment
        wait_until(lambda: e.edge.pending == 3, what="the answered connection to go")
        again = socket.create_connection(("127.0.0.1", e.port), timeout=timeout(5),
                                         source_address=("127.0.0.2", 0))
        held.append(again)  # the free slot: the cap is full again, all of 127.0.0.2
        wait_until(lambda: e.edge.pending == 4, what="the attacker to fill the cap again")
        with socket.create_connection(("127.0.0.1", e.port), timeout=timeout(5),
                                      source_address=("127.0.0.2", 0)) as extra:
            assert _read_all(extra) == b""  # the busiest address gets no more
        assert e.edge.stats.pending_refused == 1 and e.edge.stats.pending_evicted == 1
        assert e.edge.pending == 4
    finally:
        for s in held:
            s.close()
        e.stop()


def test_a_malformed_request_gets_400_and_one_log_line_without_traceback(
        eng: Engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tickdesk")
    resp = _exchange(eng, b"GARBAGE \x01\x02 nonsense\r\n\r\n")
    assert _status(resp) == 400
    lines = [r for r in caplog.records if "bad request" in r.getMessage()]
    assert len(lines) == 1
    assert all(r.exc_info is None for r in caplog.records)
    assert "Traceback" not in caplog.text
    assert _status(_exchange(eng, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")) == 400


def test_a_get_with_a_body_is_never_read_as_a_second_request(eng: Engine) -> None:
    inner = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    raw = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
           + str(len(inner)).encode() + b"\r\n\r\n" + inner)
    resp = _exchange(eng, raw)
    assert resp.count(b"HTTP/1.1 ") == 1 and b"tickdesk_" not in resp
    assert _status(resp) in (200, 503) and b'"feed"' in resp
    chunked = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               + hex(len(inner))[2:].encode() + b"\r\n" + inner + b"\r\n0\r\n\r\n")
    resp = _exchange(eng, chunked)
    assert resp.count(b"HTTP/1.1 ") == 1 and b"tickdesk_" not in resp


def test_keep_alive_serves_pipelined_requests_in_order(eng: Engine) -> None:
    raw = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
           b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    resp = _exchange(eng, raw)
    assert resp.count(b"HTTP/1.1 ") == 2
    assert resp.index(b'"feed"') < resp.index(b"tickdesk_uptime_seconds")


def test_head_answers_like_get_without_a_body(eng: Engine) -> None:
    get = _exchange(eng, _get("/"))
    head = _exchange(eng, _get("/").replace(b"GET", b"HEAD", 1))
    get_head, _, get_body = get.partition(b"\r\n\r\n")
    head_head, _, head_body = head.partition(b"\r\n\r\n")
    assert _status(head) == _status(get) == 200
    assert head_body == b"" and get_body
    length = [h for h in head_head.split(b"\r\n") if h.lower().startswith(b"content-length")]
    assert length == [b"Content-Length: " + str(len(get_body)).encode()]
    assert get_head.split(b"\r\n")[0] == head_head.split(b"\r\n")[0]


def test_options_is_204_with_allow_and_other_methods_405(eng: Engine) -> None:
    resp = _exchange(eng, _get("/healthz").replace(b"GET", b"OPTIONS", 1))
    assert _status(resp) == 204 and b"Allow: GET, HEAD, OPTIONS" in resp
    resp = _exchange(eng, b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Length: 2\r\n\r\n{}")
    assert _status(resp) == 405 and b"Allow: GET, HEAD, OPTIONS" in resp


@pytest.mark.parametrize("path", ["/", "/metrics", "/healthz", WS_PATH])
def test_dns_rebinding_gets_421_on_every_path(eng: Engine, path: str) -> None:
    extra = ("Origin: http://evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
    raw = (f"GET {path} HTTP/1.1\r\nHost: evil.example:{eng.port}\r\n{extra}\r\n").encode()
    resp = _exchange(eng, raw)
    assert _status(resp) == 421
    assert eng.config.open_mode  # the daemon that would have placed the attacker's orders


def test_the_websocket_path_refuses_rebinding_through_the_client_library(eng: Engine) -> None:
    url = f"ws://127.0.0.1:{eng.port}{WS_PATH}"
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(url, timeout=5, host=f"evil.example:{eng.port}",
                                    origin="http://evil.example")
    assert info.value.status_code == 421
    # Our own names still work, with or without a port, and an Origin on them.
    for host in (f"localhost:{eng.port}", "127.0.0.1"):
        c = WsClient(url, host=host, origin=f"http://localhost:{eng.port}")
        assert c.recv()["type"] == "CONNECTED"
        c.close()
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(url, timeout=5, origin=f"http://localhost:{eng.port + 1}")
    assert info.value.status_code == 403  # one of our names, but not our port


def test_the_configured_host_and_extra_names_are_accepted() -> None:
    e = _engine(allowed_hosts=("desk.example",))
    try:
        raw = _get("/healthz", host=f"desk.example:{e.port}")
        assert _status(_exchange(e, raw)) in (200, 503)
        # 127.0.0.1 is the configured host; localhost is no longer listed.
        assert _status(_exchange(e, _get("/healthz", host="127.0.0.1"))) in (200, 503)
        assert _status(_exchange(e, _get("/healthz", host="localhost"))) == 421
    finally:
        e.stop()
