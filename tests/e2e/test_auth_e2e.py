"""Accounts, tokens and origins at the handshake and in-session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import websocket

from engine.config import AccountConfig
from tests.conftest import make_config
from tests.e2e.wsclient import WsClient
from tickdesk import Engine

ALICE = AccountConfig(name="alice", token="alice-token-123")
BOB = AccountConfig(name="bob", token="bob-token-4567")


@pytest.fixture
def secured() -> Iterator[Engine]:
    eng = Engine(make_config(accounts=(ALICE, BOB))).start()
    try:
        yield eng
    finally:
        eng.stop()


def test_wrong_handshake_token_is_401(secured: Engine) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(secured.url + "?token=nope-nope", timeout=5)
    assert info.value.status_code == 401


def test_foreign_origin_is_403_and_own_origin_allowed(secured: Engine) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(secured.url, timeout=5, origin="http://evil.example")
    assert info.value.status_code == 403
    for origin in ("null", f"http://127.0.0.1:{secured.port}.evil.example"):
        with pytest.raises(websocket.WebSocketBadStatusException):
            websocket.create_connection(secured.url, timeout=5, origin=origin)
    ok = WsClient(secured.url, origin=f"http://127.0.0.1:{secured.port}")
    assert ok.recv()["type"] == "CONNECTED"
    ok.close()


def test_account_commands_need_auth_and_updates_stay_in_the_account(secured: Engine) -> None:
    anon = WsClient(secured.url)
    assert anon.recv()["account"] is None
    anon.send({"action": "get_portfolio", "id": 1})
    assert anon.reply(1)["code"] == "UNAUTHORIZED"
    anon.send({"action": "auth", "token": BOB.token, "id": 2})
    authed = anon.reply(2)
    assert (authed["type"], authed["account"]) == ("AUTHENTICATED", "bob")
    alice = WsClient(secured.url + f"?token={ALICE.token}")
    assert alice.recv()["account"] == "alice"
    alice.send({"action": "place_order", "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                "quantity": 0.001, "id": "a"})
    alice.wait_for(lambda m: m.get("executionType") == "TRADE")
    # bob's connection sees no ORDER_UPDATE of alice's, and bob's ledger is untouched.
    anon.send({"action": "get_portfolio", "id": 3})
    pf = anon.wait_for(lambda m: m.get("id") == 3 or m["type"] == "ORDER_UPDATE")
    assert pf["type"] == "PORTFOLIO_UPDATE" and pf["portfolio"]["positionsCount"] == 0
    alice.close()
    anon.close()


def test_tokens_never_reach_the_logs(secured: Engine, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    c = WsClient(secured.url + f"?token={ALICE.token}")
    c.recv()
    c.close()
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(secured.url + "?token=wrong-secret-xyz", timeout=5)
    text = caplog.text
    assert "GET /api/ws/realtime" in text
    assert ALICE.token not in text and "wrong-secret-xyz" not in text


def test_a_command_is_validated_before_authentication(secured: Engine) -> None:
    anon = WsClient(secured.url)
    try:
        assert anon.recv()["account"] is None
        order = {"action": "place_order", "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET"}
        anon.send({**order, "id": 1})  # no quantity: malformed, whoever sends it
        assert anon.reply(1)["code"] == "BAD_REQUEST"
        anon.send({**order, "quantity": 0.001, "id": 2})
        assert anon.reply(2)["code"] == "UNAUTHORIZED"
        anon.send({"action": "cancel_order", "orderId": "12", "id": 3})
        assert anon.reply(3)["code"] == "BAD_REQUEST"
    finally:
        anon.close()
