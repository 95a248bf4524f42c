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
    return Ledger.single("alice", D(10000), D(10), realized=D("12.5"), fees=D(3), positions=[
        Position.at("BTCUSDT", D("0.5"), D(40000), D("12.5")),
        Position.at("ETHUSDT", D(-2), D(2000)),
        Position.at("SOLUSDT", D(0), D(0), D(0)),  # flat: not listed
    ])


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
    msg = decoded(sm.position_update(Ledger.single("bob", D(10000)), MARKS, 5))
    assert msg == {"type": "POSITION_UPDATE", "positions": [], "timestamp": 5}


def test_portfolio_update_sums_the_account() -> None:
    msg = decoded(sm.portfolio_update(account(), MARKS, 3, 1700000000000, 7))
    assert list(msg) == ["type", "portfolio", "timestamp", "id"]
    assert list(msg["portfolio"]) == ["homeAsset", "balance", "equity", "unrealizedPnl",
                                      "realizedPnl", "totalPnl", "fees", "balances", "unvalued",
                                      "positionsCount", "openOrdersCount"]
    assert msg == {
        "type": "PORTFOLIO_UPDATE",
        "portfolio": {"homeAsset": "USDT", "balance": 10009.5, "equity": 10509.5,
                      "unrealizedPnl": 500.0, "realizedPnl": 12.5, "totalPnl": 509.5,
                      "fees": 3.0,
                      "balances": [{"asset": "USDT", "free": 10009.5, "locked": 0.0,
                                    "total": 10009.5, "value": 10009.5}],
                      "unvalued": [], "positionsCount": 2, "openOrdersCount": 3},
        "timestamp": 1700000000000,
        "id": 7,
    }


def test_portfolio_update_values_every_asset_in_the_home_asset() -> None:
    # USDT 1000, BTC 0.5 (BTCUSDT 40000), LRC 1000 (LRCBTC 0.000005, through BTC),
    # XYZ 7 (no pair: unvalued, never summed in).
    ledger = Ledger("carol", {"USDT": D(1000), "BTC": D("0.5"), "LRC": D(1000), "XYZ": D(7)},
                    D(0))
    marks = {"BTCUSDT": D(40000), "LRCBTC": D("0.000005")}
    p = decoded(sm.portfolio_update(ledger, marks, 0, 5))["portfolio"]
    rows = {b["asset"]: b["value"] for b in p["balances"]}
    assert rows == {"BTC": 20000.0, "LRC": 200.0, "USDT": 1000.0, "XYZ": None}
    assert p["equity"] == 21200.0 and p["unvalued"] == ["XYZ"]


def test_a_pushed_portfolio_update_has_no_id() -> None:
    msg = decoded(sm.portfolio_update(Ledger.single("bob", D(10000)), {}, 0, 5))
    assert "id" not in msg
    assert msg["portfolio"]["equity"] == 10000.0 and msg["portfolio"]["positionsCount"] == 0
