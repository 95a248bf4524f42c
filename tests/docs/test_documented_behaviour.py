"""What docs/protocol.md promises about errors, checked on a running engine.

The structure tests next to this file compare the page with the code's enums
and builders; these send commands to an in-process engine and compare the
answers with the page's "Error codes" table.
"""

from __future__ import annotations

from typing import Any

import pytest

from tickdesk import Engine, LocalSession


def _error(session: LocalSession, command: dict[str, Any]) -> str:
    session.send({**command, "id": "q"})
    reply = session.wait_for(lambda m: m.get("id") == "q", timeout=5)
    assert reply["type"] == "ERROR", reply
    return str(reply["code"])


@pytest.fixture
def session(local_engine: Engine) -> LocalSession:
    return local_engine.connect()


@pytest.mark.parametrize(("command", "code"), [
    ({"action": "subscribe_ticker"}, "BAD_REQUEST"),
    ({"action": "subscribe_ticker", "symbol": 42}, "BAD_REQUEST"),
    ({"action": "subscribe_ticker", "symbol": "XXXYYY"}, "UNKNOWN_SYMBOL"),
    ({"action": "place_order", "symbol": "XXXYYY", "side": "BUY", "type": "MARKET",
      "quantity": 1}, "UNKNOWN_SYMBOL"),
    ({"action": "get_orders", "status": "closed"}, "BAD_REQUEST"),
    ({"action": "cancel_order"}, "BAD_REQUEST"),
    ({"action": "cancel_order", "orderId": 1, "listId": 1}, "BAD_REQUEST"),
    ({"action": "cancel_order", "orderId": 999}, "UNKNOWN_ORDER"),
    ({"action": "auth", "token": "not-a-token"}, "UNAUTHORIZED"),
    ({"action": "nope"}, "UNKNOWN_ACTION"),
    ({"action": "place_order", "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
      "quantity": 1, "price": 5}, "BAD_REQUEST"),
])
def test_the_documented_error_code(session: LocalSession, command: dict[str, Any],
                                   code: str) -> None:
    assert _error(session, command) == code


@pytest.mark.parametrize("command", [
    {"action": "subscribe_ticker", "symbol": "b"},
    {"action": "place_order", "symbol": "BTC-USDT", "side": "BUY", "type": "MARKET",
     "quantity": 1},
])
def test_a_malformed_symbol_is_unknown_symbol(session: LocalSession,
                                              command: dict[str, Any]) -> None:
    assert _error(session, command) == "UNKNOWN_SYMBOL"
