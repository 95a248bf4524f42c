"""The ``tickdesk watch`` screen, rendered from its state at terminal sizes a
person uses: what fits, what is left out, how numbers line up, what the keys
do and what it says while the client reconnects."""

from __future__ import annotations

from typing import Any

import pytest

from tickdesk.client.watch_view import (
    MAX_FILLS,
    Intent,
    WatchModel,
    align_decimals,
    screen_lines,
    watch_view,
)

PRICES = {"BTCUSDT": 86003.26, "ETHUSDT": 3000.5, "SOLUSDT": 150.0}


def hhmmss(ms: int) -> str:
    return f"t{ms}"


def order(oid: int, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "orderId": oid, "clientOrderId": f"td-{oid}", "listId": None, "symbol": "BTCUSDT",
        "side": "BUY", "type": "LIMIT", "status": "NEW", "quantity": 0.01, "price": 80000.0,
        "stopPrice": None, "currentStopPrice": None, "filledQuantity": 0.0, "avgPrice": None,
        "fee": 0.0}
    base.update(fields)
    return base


def live_model() -> WatchModel:
    model = WatchModel(list(PRICES), url="ws://127.0.0.1:8000/api/ws/realtime")
    model.apply({"type": "CONNECTED", "account": "default",
                 "feed": {"feed": "simulated", "status": "UP"}})
    model.set_connection("OPEN")
    for sym, price in PRICES.items():
        model.apply({"type": "MARKET_UPDATE", "symbol": sym, "price": price,
                     "priceChange": -12.5 if sym == "BTCUSDT" else 3.25,
                     "priceChangePercent": -0.0145, "bid": price - 0.5, "ask": price + 0.5,
                     "high": price * 1.01, "low": price * 0.99, "volume": 1234.5})
    model.apply({"type": "POSITION_UPDATE", "positions": [
        {"symbol": "BTCUSDT", "side": "LONG", "quantity": 0.01, "entryPrice": 86000.5,
         "markPrice": 86003.26, "unrealizedPnl": 0.0276, "realizedPnl": 0.0}]})
    model.apply({"type": "PORTFOLIO_UPDATE", "portfolio": {
        "balance": 9139.1, "equity": 9999.2, "unrealizedPnl": 0.0276, "realizedPnl": 0.0,
        "fees": 0.86, "openOrdersCount": 1}})
    model.apply({"type": "ORDERS", "orders": [order(2, clientOrderId="dip")]})
    return model


def screen(model: WatchModel, width: int, height: int) -> list[str]:
    return screen_lines(model, width, height, "12:00:00", hhmmss)


def row(lines: list[str], first: str) -> str:
    return next(line for line in lines if line.startswith(first))


@pytest.mark.parametrize(("width", "height"), [(40, 24), (80, 24), (200, 50)])
def test_every_line_fits_the_terminal(width: int, height: int) -> None:
    lines = screen(live_model(), width, height)
    assert len(lines) == height  # the keys sit on the last line
    assert all(len(line) <= width for line in lines), [ln for ln in lines if len(ln) > width]
    assert lines[-1].startswith("q quit")  # the keys are always on screen
    for sym in PRICES:
        assert row(lines, sym)  # every symbol has its row


def test_columns_follow_the_width() -> None:
    narrow = row(screen(live_model(), 40, 24), "SYMBOL").split()
    assert narrow[:3] == ["SYMBOL", "PRICE", "CHG%"] and "HIGH" not in narrow
    wide = row(screen(live_model(), 200, 50), "SYMBOL").split()
    assert wide == ["SYMBOL", "PRICE", "CHG%", "BID", "ASK", "CHANGE", "HIGH", "LOW", "VOLUME"]
    # the order panel: id, symbol, side, quantity and price survive 40 columns
    narrow_orders = row(screen(live_model(), 40, 24), "ORDER").split()
    assert {"ORDER", "SYMBOL", "SIDE", "QTY", "PRICE"} <= set(narrow_orders)
    assert "CLIENT_ID" not in narrow_orders
    assert "CLIENT_ID" in row(screen(live_model(), 200, 50), "ORDER").split()


def test_prices_line_up_on_the_decimal_point() -> None:
    lines = screen(live_model(), 80, 24)
    header = row(lines, "SYMBOL")
    units = []
    for sym, price in PRICES.items():
        line = row(lines, sym)
        text = f"{price:.10f}".rstrip("0").rstrip(".")  # how the price is written
        start = line.index(text, len(sym))
        units.append(start + len(text.split(".")[0]) - 1)  # the units digit
    assert len(set(units)) == 1, units
    # the column is right-aligned under its title, the longest price ending there
    assert header.index("PRICE") + len("PRICE") == row(lines, "BTCUSDT").index("86003.26") + 8
    assert align_decimals(["86003.26", "3000.5", "150", "-"]) == [
        "86003.26", "3000.5 ", "150   ", "-   "]


def test_rows_that_do_not_fit_are_counted() -> None:
    model = live_model()
    model.apply({"type": "ORDERS", "orders": [order(i, price=80000.0 + i) for i in range(1, 31)]})
    lines = screen(model, 80, 24)
    assert len(lines) == 24
    shown = [ln for ln in lines if ln.lstrip().split(" ")[0].isdigit()]
    more = row(lines, "…")
    assert int(more.split()[1]) + len(shown) == 30
    assert row(lines, "WORKING ORDERS (30)")
    # newest (highest id) first
    assert shown[0].split()[0] == "30"


def test_reconnecting_says_so_and_does_not_vouch_for_the_feed() -> None:
    model = live_model()
    up = screen(model, 80, 24)[1]
    assert up.split()[:5] == ["connection", "OPEN", "feed", "simulated", "UP"]
    model.set_connection("RECONNECTING", retry_in_s=1.25, reconnects=3)
    lines = screen(model, 80, 24)
    assert lines[1].startswith("connection  RECONNECTING (retry in 1.2 s)")
    assert "feed unknown (was UP)" in lines[1]
    assert "simulated UP" not in "\n".join(lines)
    assert lines[lines.index(row(lines, "SYMBOL")) - 1] == "prices are stale: not connected"
    model.set_connection("OPEN")
    model.apply({"type": "FEED_STATUS", "feed": "simulated", "status": "RECONNECTING",
                 "reason": "upstream closed"})
    assert "feed simulated RECONNECTING (upstream closed)" in screen(model, 80, 24)[1]


def test_styles_say_good_and_bad() -> None:
    model = live_model()
    model.set_connection("RECONNECTING")
    status = watch_view(model, 80, 24, "12:00:00", hhmmss).renderables[1]
    spans = {status.plain[s.start:s.end]: str(s.style) for s in status.spans}
    assert spans["RECONNECTING"] == "bold red"
    model.set_connection("OPEN")
    btc = next(t for t in watch_view(model, 80, 24, "x", hhmmss).renderables
               if t.plain.startswith("BTCUSDT"))
    assert any(str(s.style) == "red" and "86003.26" in btc.plain[s.start:s.end]
               for s in btc.spans)  # down on the day


def test_keys_switch_panels_quit_and_add_a_symbol() -> None:
    model = live_model()
    assert model.key("f") is None
    lines = screen(model, 80, 24)
    assert row(lines, "LAST FILLS (0)") and not any("WORKING ORDERS" in ln for ln in lines)
    assert model.key("o") is None and row(screen(model, 80, 24), "WORKING ORDERS")
    assert model.key("/") is None
    for key in "dogx":
        model.key(key)
    model.key("\x7f")  # backspace
    assert screen(model, 80, 24)[-1].startswith("add symbol:  DOG_")
    assert model.key("e") is None
    assert model.key("\r") == Intent("add", "DOGE")
    assert model.prompt is None
    assert screen(model, 80, 24)[-1].startswith("q quit")
    model.key("/")
    model.key("b")
    assert model.key("\x1b") is None and model.prompt is None  # Esc closes the prompt
    model.key("/")
    for key in "btcusdt":
        model.key(key)
    assert model.key("\n") is None and model.notice == "BTCUSDT is already watched"
    lines = screen(model, 80, 24)
    assert lines[-2:] == ["BTCUSDT is already watched", "q quit  o orders  f fills  / add symbol"]
    assert model.key("q") == Intent("quit")


def test_orders_and_fills_follow_the_updates() -> None:
    model = live_model()
    model.apply({"type": "FILLS", "fills": [
        {"fillId": 1, "orderId": 1, "symbol": "BTCUSDT", "side": "BUY", "price": 86000.5,
         "quantity": 0.01, "fee": 0.86, "realizedPnl": 0.0, "time": 1000}]})
    filled = order(3, type="MARKET", price=None, status="FILLED", filledQuantity=0.01)
    # a TRADE already in the snapshot is not shown twice...
    model.apply({"type": "ORDER_UPDATE", "executionType": "TRADE", "timestamp": 1000,
                 "lastQty": 0.01, "lastPrice": 86000.5, "order": order(1, status="FILLED")})
    assert len(model.fills) == 1
    # ...a new one is, newest first
    model.apply({"type": "ORDER_UPDATE", "executionType": "NEW", "order": order(3)})
    assert set(model.orders or {}) == {2, 3}
    # two fills of order 3; the order's fee is what it paid so far
    model.apply({"type": "ORDER_UPDATE", "executionType": "TRADE", "timestamp": 2000,
                 "lastQty": 0.004, "lastPrice": 86010.0,
                 "order": order(3, status="PARTIALLY_FILLED", fee=0.344, filledQuantity=0.004)})
    model.apply({"type": "ORDER_UPDATE", "executionType": "TRADE", "timestamp": 2001,
                 "lastQty": 0.006, "lastPrice": 86011.0, "order": {**filled, "fee": 0.86}})
    assert set(model.orders or {}) == {2}
    assert [f["orderId"] for f in model.fills] == [3, 3, 1]
    model.key("f")
    lines = screen(model, 80, 24)
    assert row(lines, "t2000").split()[:6] == ["t2000", "BTCUSDT", "BUY", "86010", "0.004",
                                               "0.344"]
    assert row(lines, "t2001").split()[:6] == ["t2001", "BTCUSDT", "BUY", "86011", "0.006",
                                               "0.516"]  # 0.86 - 0.344, exactly
    model.apply({"type": "ORDER_UPDATE", "executionType": "CANCELED",
                 "order": order(2, status="CANCELED")})
    assert model.orders == {}
    for i in range(MAX_FILLS + 5):
        model.apply({"type": "ORDER_UPDATE", "executionType": "TRADE", "timestamp": 3000 + i,
                     "lastQty": 0.001, "lastPrice": 1.0 + i, "order": order(100 + i)})
    assert len(model.fills) == MAX_FILLS  # bounded


def test_plain_lines_for_a_pipe() -> None:
    model = live_model()
    first = model.changes("12:00:00")
    assert "12:00:00 connection OPEN" in first
    assert "12:00:00 BTCUSDT 86003.26 -12.5 (-0.01%)" in first
    assert model.changes("12:00:01") == []  # nothing changed
    model.set_connection("RECONNECTING")
    assert model.changes("12:00:02") == ["12:00:02 connection RECONNECTING",
                                         "12:00:02 feed unknown (was UP)"]
