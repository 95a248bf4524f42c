"""The edge under abuse and at scale: threads and descriptors per connection, ping
floods, token guessing, failed in-session auth, repeated tokens, account budgets."""

from __future__ import annotations

import logging
import os
import socket
import threading
import urllib.request
from collections.abc import Iterator

import pytest
import websocket

from engine.config import AccountConfig, ServerConfig
from tests.conftest import make_config, timeout, wait_until
from tests.e2e.wsclient import WsClient
from tickdesk import Engine

ALICE = AccountConfig(name="alice", token="alice-token-123")
BOB = AccountConfig(name="bob", token="bob-token-4567")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_idle_connections_cost_one_thread_and_one_descriptor_each() -> None:
    n = 200
    eng = Engine(make_config(server=ServerConfig(
        port=0, max_connections_per_ip=n + 10, max_connections=n + 10))).start()
    clients: list[websocket.WebSocket] = []
    try:
        first = websocket.create_connection(eng.url, timeout=timeout(5))
        first.recv()
        wait_until(lambda: eng.limits.live == 1, what="the first connection")
        threads0, fds0 = threading.active_count(), _fds()
        for _ in range(n):
            ws = websocket.create_connection(eng.url, timeout=timeout(5))
            clients.append(ws)
        for ws in clients:
            assert '"CONNECTED"' in ws.recv()
        wait_until(lambda: threading.active_count() - threads0 >= n,
                   what="the connection actors to start")
        threads = threading.active_count() - threads0
        # Each client socket of this test is a descriptor too: the server's share
        # is what remains.
        server_fds = _fds() - fds0 - n
        assert n <= threads <= n + 5, threads  # the actors; not 2 per client
        assert n - 5 <= server_fds <= n + 5, server_fds  # one socket each; no epoll per client
    finally:
        for ws in clients:
            ws.close(timeout=0.5)
        eng.stop()


@pytest.fixture
def secured() -> Iterator[Engine]:
    eng = Engine(make_config(accounts=(ALICE, BOB), server=ServerConfig(
        port=0, auth_failure_rate_per_s=0.01, auth_failure_burst=3,
        account_rate_limit_per_s=1.0, rate_limit_per_s=1000, rate_limit_burst=1000))).start()
    try:
        yield eng
    finally:
        eng.stop()


def _metric(eng: Engine, name: str) -> float:
    url = f"http://127.0.0.1:{eng.port}/metrics"
    with urllib.request.urlopen(url, timeout=timeout(5)) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def _status_of(url: str) -> int:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(url, timeout=timeout(5))
    return int(info.value.status_code)


def test_token_guessing_is_refused_429_counted_and_logged_sparingly(
        secured: Engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tickdesk")
    statuses = [_status_of(secured.url + f"?token=guess-{i:04d}") for i in range(8)]
    assert statuses == [401, 401, 401] + [429] * 5
    # Past the budget even the right token waits: guessing cannot be confirmed.
    assert _status_of(secured.url + f"?token={ALICE.token}") == 429
    assert _metric(secured, "tickdesk_auth_failures_total") == 3
    lines = [r for r in caplog.records if "failed token handshake" in r.getMessage()]
    assert len(lines) == 1
    assert ALICE.token not in caplog.text and "guess-0001" not in caplog.text


def test_a_repeated_token_parameter_is_400(secured: Engine) -> None:
    url = secured.url + f"?token={ALICE.token}&token={BOB.token}"
    assert _status_of(url) == 400


def test_a_failed_auth_leaves_the_connection_anonymous(secured: Engine) -> None:
    c = WsClient(secured.url + f"?token={ALICE.token}")
    assert c.recv()["account"] == "alice"
    c.send({"action": "auth", "token": "wrong-token-999", "id": 1})
    assert c.reply(1)["code"] == "UNAUTHORIZED"
    c.send({"action": "get_portfolio", "id": 2})
    reply = c.reply(2)
    assert reply["type"] == "ERROR" and reply["code"] == "UNAUTHORIZED"
    c.close()


def test_an_account_budget_is_shared_by_its_connections_and_spares_others(
        secured: Engine) -> None:
    a1 = WsClient(secured.url + f"?token={ALICE.token}")
    a2 = WsClient(secured.url + f"?token={ALICE.token}")
    b = WsClient(secured.url + f"?token={BOB.token}")
    for c in (a1, a2, b):
        c.recv()
    # Bucket of 2 at 1 command/s: the third of alice's commands (on either
    # connection) is refused, bob's are not.
    replies = []
    for i, c in enumerate((a1, a2, a1, a2)):
        c.send({"action": "get_portfolio", "id": i})
        replies.append(c.reply(i)["type"])
    assert replies[:2] == ["PORTFOLIO_UPDATE", "PORTFOLIO_UPDATE"]
    assert "ERROR" in replies[2:]
    b.send({"action": "get_portfolio", "id": "b"})
    assert b.reply("b")["type"] == "PORTFOLIO_UPDATE"
    for c in (a1, a2, b):
        c.close()


def test_protocol_pings_take_rate_limit_tokens_and_a_flood_closes_1008() -> None:
    eng = Engine(make_config(server=ServerConfig(port=0, rate_limit_per_s=1,
                                                 rate_limit_burst=5))).start()
    try:
        ws = websocket.create_connection(eng.url, timeout=timeout(5))
        ws.recv()
        for _ in range(40):
            try:
                ws.ping(b"x")
            except (OSError, websocket.WebSocketException):
                break
        pongs = 0
        code = None
        ws.settimeout(timeout(5))
        while code is None:
            try:
                opcode, data = ws.recv_data(control_frame=True)
            except (OSError, websocket.WebSocketException):
                break
            if opcode == websocket.ABNF.OPCODE_PONG:
                pongs += 1
            elif opcode == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(data[:2], "big")
        assert 5 <= pongs <= 7  # the bucket, plus what refilled meanwhile; not 40
        assert code == 1008
        ws.close(timeout=0.5)
    finally:
        eng.stop()


def test_the_descriptor_limit_refuses_new_connections_and_serves_old_ones(
        caplog: pytest.LogCaptureFixture) -> None:
    import resource

    caplog.set_level(logging.WARNING, logger="tickdesk")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    eng = Engine(make_config()).start()
    kept = WsClient(eng.url)
    kept.recv()
    # Client sockets made now, connected once no descriptor is left: connect()
    # needs none, the server's accept() does.
    late = [socket.socket() for _ in range(3)]
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (_fds(), hard))
        try:
            for s in late:
                s.connect(("127.0.0.1", eng.port))  # queued in the listen backlog
            wait_until(lambda: eng.edge.stats.descriptor_limit >= 2, seconds=5,
                       what="accept() to hit the descriptor limit twice")
            kept.send({"action": "ping", "id": "still-here"})
            assert kept.reply("still-here")["type"] == "PONG"
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        lines = [r for r in caplog.records if "descriptor limit" in r.getMessage()]
        assert len(lines) == 1  # once per interval, not once per attempt
        # Accepted after the back-off: the queued clients are served.
        late[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        late[0].settimeout(timeout(5))
        assert late[0].recv(4096).startswith(b"HTTP/1.1 ")
    finally:
        for s in late:
            s.close()
        kept.close()
        eng.stop()
