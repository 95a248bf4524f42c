"""POSITION_UPDATE and PORTFOLIO_UPDATE, built from a ledger (engine.protocol.server_messages).

The expected messages are worked out by hand from the documented fields: a
position's unrealized P&L is ``(mark - entry) * signed quantity``, zero with no
mark; its notional is ``|quantity| * mark`` (entry without a mark); balance is
``starting + realized - fees``; equity ``balance + unrealized``; totalPnl
``realized + unrealized - fees``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from engine.protocol import server_messages as sm
from engine.trading.ledger import Ledger, Position

D = Decimal


def account() -> Ledger:
    return Ledger("alice", D(10000), D(10), realized_pnl=D("12.5"), fees=D(3), positions={
        "BTCUSDT": Position("BTCUSDT", D("0.5"), D(40000), D("12.5")),
        "ETHUSDT": Position("ETHUSDT", D(-2), D(2000)),
        "SOLUSDT": Position("SOLUSDT", D(0), D(0), D(0)),  # flat: not listed
    })


MARKS = {"BTCUSDT": D(41000)}


def decoded(out: sm.Outgoing) -> dict[str, Any]:
    msg: dict[str, Any] = orjson.loads(out.payload)
    return msg


def test_position_update_lists_open_positions_at_their_marks() -> None:
    msg = decoded(sm.position_update(account(), MARKS, 1700000000000, "q1"))
    assert list(msg) == ["type", "positions", "timestamp", "id"]
    assert msg == {
        "type": "POSITION_UPDATE",
        "positions": [
            {"symbol": "BTCUSDT", "side": "LONG", "quantity": 0.5, "entryPrice": 40000.0,
             "markPrice": 41000.0, "unrealizedPnl": 500.0, "realizedPnl": 12.5,
             "notional": 20500.0},
            {"symbol": "ETHUSDT", "side": "SHORT", "quantity": 2.0, "entryPrice": 2000.0,
             "markPrice": None, "unrealizedPnl": 0.0, "realizedPnl": 0.0, "notional": 4000.0},
        ],
        "timestamp": 1700000000000,
        "id": "q1",
    }


def test_position_update_of_a_flat_account_is_an_empty_list() -> None:
    msg = decoded(sm.position_update(Ledger("bob", D(10000)), MARKS, 5))
    assert msg == {"type": "POSITION_UPDATE", "positions": [], "timestamp": 5}


def test_portfolio_update_sums_the_account() -> None:
    msg = decoded(sm.portfolio_update(account(), MARKS, 3, 1700000000000, 7))
    assert list(msg) == ["type", "portfolio", "timestamp", "id"]
    assert list(msg["portfolio"]) == ["balance", "equity", "unrealizedPnl", "realizedPnl",
                                      "totalPnl", "fees", "positionsCount", "openOrdersCount"]
    assert msg == {
        "type": "PORTFOLIO_UPDATE",
        "portfolio": {"balance": 10009.5, "equity": 10509.5, "unrealizedPnl": 500.0,
                      "realizedPnl": 12.5, "totalPnl": 509.5, "fees": 3.0,
                      "positionsCount": 2, "openOrdersCount": 3},
        "timestamp": 1700000000000,
        "id": 7,
    }


def test_a_pushed_portfolio_update_has_no_id() -> None:
    msg = decoded(sm.portfolio_update(Ledger("bob", D(10000)), {}, 0, 5))
    assert "id" not in msg
    assert msg["portfolio"]["equity"] == 10000.0 and msg["portfolio"]["positionsCount"] == 0
