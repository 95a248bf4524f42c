"""Text formats of the CLI: numbers, order updates, the watch view."""

from __future__ import annotations

from typing import Any

from tickdesk.client.render import WatchModel, fmt_num, orders_table, update_line


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


def test_watch_screen_and_plain_changes() -> None:
    model = WatchModel(("BTCUSDT", "ETHUSDT"), url="ws://x", color=False)
    model.apply({"type": "CONNECTED", "account": "default",
                 "feed": {"feed": "simulated", "status": "UP"}})
    model.connection = "OPEN"
    model.apply({"type": "MARKET_UPDATE", "symbol": "BTCUSDT", "price": 86000.5,
                 "priceChange": -12.5, "priceChangePercent": -0.0145, "bid": 86000.0,
                 "ask": 86001.0, "high": 87000.0, "low": 85000.0})
    model.apply({"type": "MARKET_UPDATE", "symbol": "DOGEUSDT", "price": 1.0})  # not watched
    model.apply({"type": "POSITION_UPDATE", "positions": []})
    model.apply({"type": "PORTFOLIO_UPDATE", "portfolio": {
        "balance": 10000, "equity": 10000, "unrealizedPnl": 0, "realizedPnl": 0, "fees": 0,
        "openOrdersCount": 0}})
    screen = model.screen("12:00:00")
    assert "\x1b" not in "".join(screen)
    assert screen[1] == "connection OPEN  feed simulated UP  account default"
    btc = next(line for line in screen if line.startswith("BTCUSDT"))
    assert btc.split() == ["BTCUSDT", "86000.5", "-12.5", "-0.01%", "86000", "86001", "87000",
                           "85000"]
    assert any(line.startswith("ETHUSDT") and "…" in line for line in screen)
    assert "positions: none" in screen
    assert not any("DOGE" in line for line in screen)
    first = model.changes("12:00:00")
    assert "12:00:00 BTCUSDT 86000.5 -12.5 (-0.01%)" in first
    assert not any("ETHUSDT" in line for line in first)
    assert model.changes("12:00:01") == []  # nothing changed
    model.apply({"type": "FEED_STATUS", "feed": "simulated", "status": "RECONNECTING",
                 "reason": "upstream closed"})
    assert model.changes("12:00:02") == [
        "12:00:02 feed simulated RECONNECTING (upstream closed)"]
    colored = WatchModel(("BTCUSDT",), color=True).screen("t")
    assert "\x1b[" in "".join(colored)
