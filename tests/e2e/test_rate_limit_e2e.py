"""Per-client rate limiting over loopback: RATE_LIMITED, then 1008 for a flood."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import websocket

from engine.config import ServerConfig
from tests.conftest import make_config
from tests.e2e.wsclient import WsClient
from tickdesk import Engine

BURST = 10
RATE = 2.0  # one token per 0.5 s


@pytest.fixture
def limited() -> Iterator[Engine]:
    cfg = make_config(server=ServerConfig(port=0, rate_limit_per_s=RATE, rate_limit_burst=BURST))
    eng = Engine(cfg).start()
    try:
        yield eng
    finally:
        eng.stop()


def test_a_burst_gets_some_rate_limited_and_the_connection_stays_open(limited: Engine) -> None:
    c = WsClient(limited.url)
    try:
        assert c.recv()["type"] == "CONNECTED"
        n = BURST + 5
        for i in range(n):
            c.send({"action": "ping", "id": i})
        replies = [c.reply(i) for i in range(n)]
        kinds = [r["type"] if r["type"] == "PONG" else r["code"] for r in replies]
        assert set(kinds) <= {"PONG", "RATE_LIMITED"}
        assert kinds[:BURST] == ["PONG"] * BURST  # the bucket starts full
        assert "RATE_LIMITED" in kinds
        limited_err = replies[kinds.index("RATE_LIMITED")]
        assert limited_err["message"] and isinstance(limited_err["id"], int)
        # Still open: the server keeps pushing, and a ping passes once a token is back
        # (three positions broadcasts are 0.6 s, more than one token's 0.5 s; at most
        # 3 more refusals, which stays below BURST).
        for attempt in range(3):
            for _ in range(3):
                c.wait_for(lambda m: m["type"] == "POSITION_UPDATE")
            c.send({"action": "ping", "id": f"again-{attempt}"})
            if c.reply(f"again-{attempt}")["type"] == "PONG":
                break
        else:
            raise AssertionError("no PONG after the bucket refilled")
    finally:
        c.close()


def test_a_sustained_flood_is_closed_with_1008(limited: Engine) -> None:
    c = WsClient(limited.url)
    try:
        assert c.recv()["type"] == "CONNECTED"
        sent = 0
        try:
            for i in range(20 * BURST):
                c.send({"action": "ping", "id": i})
                sent += 1
        except (OSError, websocket.WebSocketConnectionClosedException):
            pass  # the server may close us while we are still flooding
        assert sent > 2 * BURST
        assert c.wait_closed() == 1008
    finally:
        c.close()


def test_the_limit_is_per_connection(limited: Engine) -> None:
    a, b = WsClient(limited.url), WsClient(limited.url)
    try:
        a.recv(), b.recv()
        for i in range(BURST + 3):
            a.send({"action": "ping", "id": i})
        assert a.reply(BURST + 2)["code"] == "RATE_LIMITED"
        b.send({"action": "ping", "id": "b"})
        assert b.reply("b")["type"] == "PONG"
    finally:
        a.close()
        b.close()


def test_in_process_sessions_are_not_rate_limited() -> None:
    cfg = make_config(server=ServerConfig(port=0, rate_limit_per_s=1.0, rate_limit_burst=1))
    with Engine(cfg, listen=False) as eng, eng.connect() as session:
        for i in range(5):
            session.send({"action": "ping", "id": i})
        replies = [session.wait_for(lambda m: "id" in m) for _ in range(5)]
        assert [(r["type"], r["id"]) for r in replies] == [("PONG", i) for i in range(5)]
