"""Text formats of the CLI: numbers, order updates, the watch view."""

from __future__ import annotations

from typing import Any

from tickdesk.client.render import (
    fmt_num,
    orders_table,
    portfolio_lines,
    positions_table,
    update_line,
)


def order(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "orderId": 7, "clientOrderId": "td-7", "listId": None, "symbol": "BTCUSDT",
        "side": "BUY", "type": "LIMIT", "status": "NEW", "quantity": 0.01, "price": 80000.0,
        "stopPrice": None, "trailingDelta": None, "currentStopPrice": None,
        "trailingExtreme": None, "filledQuantity": 0.0, "avgPrice": None, "fee": 0.0,
        "rejectReason": None, "createTime": 1, "updateTime": 1}
    base.update(fields)
    return base


def test_numbers_for_people() -> None:
    assert fmt_num(None) == "-"
    assert fmt_num(80000.0) == "80000"
    assert fmt_num(0.8600326) == "0.8600326"
    assert fmt_num(1e-7) == "0.0000001"
    assert fmt_num(-0.0) == "0"
    assert fmt_num(3, signed=True) == "+3"
    assert fmt_num(-1.5, signed=True) == "-1.5"


def test_update_lines() -> None:
    new = {"type": "ORDER_UPDATE", "executionType": "NEW", "order": order()}
    assert update_line(new) == "NEW       #7 td-7 BUY LIMIT 0.01 BTCUSDT @ 80000 NEW"
    trade = {"type": "ORDER_UPDATE", "executionType": "TRADE",
             "order": order(type="MARKET", price=None, status="FILLED", filledQuantity=0.01,
                            avgPrice=86000.5, fee=0.86)}
    assert update_line(trade).endswith("FILLED filled 0.01 avg 86000.5 fee 0.86")
    rejected = {"type": "ORDER_UPDATE", "executionType": "REJECTED",
                "order": order(status="REJECTED", rejectReason="INSUFFICIENT_BALANCE")}
    assert update_line(rejected).endswith("reason INSUFFICIENT_BALANCE")
    trailing = {"type": "ORDER_UPDATE", "executionType": "AMENDED",
                "order": order(type="STOP_LOSS", price=None, trailingDelta=200,
                               currentStopPrice=78400.0, listId=3)}
    assert "trail 200bps (stop now 78400) list 3" in update_line(trailing)
    lst = {"type": "ORDER_LIST_UPDATE", "list": {"listId": 3, "listType": "OCO",
                                                 "status": "REJECTED", "orderIds": [8, 9],
                                                 "rejectReason": "OCO_BAD_PRICES"}}
    assert update_line(lst) == "LIST      OCO list 3 orders 8,9 REJECTED reason OCO_BAD_PRICES"


def test_orders_table() -> None:
    assert orders_table([]) == ["no orders"]
    header, row = orders_table([order()])
    assert header.split() == ["ORDER", "CLIENT_ID", "SYMBOL", "SIDE", "TYPE", "STATUS", "QTY",
                              "FILLED", "PRICE", "STOP", "AVG"]
    assert row.split() == ["7", "td-7", "BTCUSDT", "BUY", "LIMIT", "NEW", "0.01", "0", "80000",
                           "-", "-"]


def test_positions_table_and_portfolio_lines() -> None:
    assert positions_table([]) == ["no positions"]
    header, row = positions_table([{"symbol": "BTCUSDT", "side": "LONG", "quantity": 0.01,
                                    "entryPrice": 86000.5, "markPrice": 86100.0,
                                    "unrealizedPnl": 0.995, "realizedPnl": -1.25}])
    assert header.split() == ["SYMBOL", "SIDE", "QTY", "ENTRY", "MARK", "UNREALIZED",
                              "REALIZED"]
    assert row.split() == ["BTCUSDT", "LONG", "0.01", "86000.5", "86100", "+0.995", "-1.25"]
    lines = portfolio_lines({
        "homeAsset": "USDT", "balance": 9139.1, "equity": 10000.095, "unrealizedPnl": 0.995,
        "realizedPnl": 0.0, "totalPnl": 0.095, "fees": 0.9, "positionsCount": 1,
        "openOrdersCount": 2, "unvalued": ["XYZ"],
        "balances": [{"asset": "USDT", "free": 9000.0, "locked": 139.1, "total": 9139.1,
                      "value": 9139.1},
                     {"asset": "BTC", "free": 0.01, "locked": 0.0, "total": 0.01,
                      "value": 861.0}]})
    assert lines[0].split() == ["equity", "10000.095", "USDT"]
    assert lines[2].split() == ["unrealized", "P&L", "+0.995", "USDT"]
    assert "open orders     2" in lines
    table = lines[lines.index("") + 1:]
    assert table[0].split() == ["ASSET", "FREE", "LOCKED", "TOTAL", "VALUE", "USDT"]
    assert table[1].split() == ["USDT", "9000", "139.1", "9139.1", "9139.1"]
    assert table[2].split() == ["BTC", "0.01", "0", "0.01", "861"]
    assert table[-1] == "not valued (no price): XYZ"
