"""Orders over the Binance-compatible REST API, on a live daemon: the same orders a
WebSocket client of the account sees, Binance's shapes and error codes.

References are built from the documented rules (fee = price x qty x fee_bps, the
fills' sum), never from the code under test."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest

from tests.binance.helpers import Rest, accounts_config
from tests.conftest import timeout, wait_until
from tickdesk import Engine

FEE = Decimal(10) / Decimal(10000)  # trading.fee_bps default


@pytest.fixture
def daemon() -> Iterator[Engine]:
    eng = Engine(accounts_config()).start()
    try:
        yield eng
    finally:
        eng.stop()


def _last(rest: Rest, symbol: str = "BTCUSDT") -> Decimal:
    holder: dict[str, Decimal] = {}

    def priced() -> bool:
        r = rest.public("GET", "/api/v3/ticker/price", symbol=symbol)
        if r.status_code == 200:
            holder["p"] = Decimal(r.json()["price"])
            return True
        return False

    wait_until(priced, 10, "a price")
    return holder["p"]


def _tick(price: Decimal) -> str:
    return str(price.quantize(Decimal("0.01"), rounding=ROUND_DOWN))


def _err(resp: Any) -> tuple[int, str]:
    body = resp.json()
    return int(body["code"]), str(body["msg"])


def test_market_order_full_answer_fills_and_account(daemon: Engine) -> None:
    rest = Rest(daemon.port)
    _last(rest)
    seen: list[dict[str, Any]] = []
    ws = daemon.connect(callback=seen.append, token="alice-token-1")  # the account's client
    try:
        r = rest.signed("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET",
                        quantity="0.01")
        assert r.status_code == 200, r.text
        o = r.json()
        assert o["status"] == "FILLED" and o["type"] == "MARKET" and o["side"] == "BUY"
        assert o["origQty"] == "0.01000000" and o["executedQty"] == "0.01000000"
        assert o["orderListId"] == -1 and o["clientOrderId"]
        fills = o["fills"]
        assert fills and sum(Decimal(f["qty"]) for f in fills) == Decimal("0.01")
        quote = sum(Decimal(f["price"]) * Decimal(f["qty"]) for f in fills)
        assert Decimal(o["cummulativeQuoteQty"]) == quote.quantize(Decimal("0.00000001"))
        for f in fills:
            assert f["commissionAsset"] == "USDT"
            expected = (Decimal(f["price"]) * Decimal(f["qty"]) * FEE)
            assert abs(Decimal(f["commission"]) - expected) <= Decimal("0.00000001")
        # the account's WebSocket client saw the very same order fill
        wait_until(lambda: any(m.get("type") == "ORDER_UPDATE"
                               and m["order"]["orderId"] == o["orderId"]
                               and m["order"]["status"] == "FILLED" for m in seen),
                   5, "the REST order on the account's session")
        trades = rest.signed("GET", "/api/v3/myTrades", symbol="BTCUSDT").json()
        assert [t["orderId"] for t in trades] == [o["orderId"]] * len(fills)
        assert sorted(Decimal(t["price"]) for t in trades) == sorted(
            Decimal(f["price"]) for f in fills)
        assert all(t["isBuyer"] for t in trades)
        acct = rest.signed("GET", "/api/v3/account").json()
        bal = {b["asset"]: b for b in acct["balances"]}
        assert Decimal(bal["BTC"]["free"]) == Decimal("1.01")
        spent = quote + sum(Decimal(f["commission"]) for f in fills)
        assert abs(Decimal(bal["USDT"]["free"]) - (Decimal(10000) - spent)) <= Decimal("0.0000001")
    finally:
        ws.close()


def test_limit_order_lifecycle_and_websocket_orders_visible_over_rest(daemon: Engine) -> None:
    rest = Rest(daemon.port)
    last = _last(rest)
    below = _tick(last * Decimal("0.95"))
    r = rest.signed("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT",
                    timeInForce="GTC", quantity="0.01", price=below, newClientOrderId="bot-1",
                    newOrderRespType="RESULT")
    assert r.status_code == 200, r.text
    o = r.json()
    assert o["status"] == "NEW" and o["price"] == f"{Decimal(below):.8f}"
    assert o["clientOrderId"] == "bot-1" and "fills" not in o
    got = rest.signed("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="bot-1")
    assert got.json()["orderId"] == o["orderId"] and got.json()["status"] == "NEW"
    # an order placed by the account's WebSocket client is in openOrders too
    ws = daemon.connect(token="alice-token-1")
    try:
        ws.send({"action": "place_order", "symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT",
                 "quantity": "0.02", "price": _tick(last * Decimal("1.05")), "id": "w1"})
        ws.wait_for(lambda m: m.get("id") == "w1", timeout(5))
        open_ids = {x["clientOrderId"] for x in
                    rest.signed("GET", "/api/v3/openOrders", symbol="BTCUSDT").json()}
        assert "bot-1" in open_ids and len(open_ids) == 2
        c = rest.signed("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=o["orderId"])
        assert c.status_code == 200 and c.json()["status"] == "CANCELED"
        assert c.json()["origClientOrderId"] == "bot-1"
        ws.wait_for(lambda m: m.get("type") == "ORDER_UPDATE"
                    and m["order"]["orderId"] == o["orderId"]
                    and m["executionType"] == "CANCELED", timeout(5))
        again = rest.signed("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=o["orderId"])
        assert _err(again) == (-2011, "Unknown order sent.")
        missing = rest.signed("GET", "/api/v3/order", symbol="BTCUSDT", orderId=999999)
        assert _err(missing) == (-2013, "Order does not exist.")
        # the wrong symbol does not find it either
        other = rest.signed("GET", "/api/v3/order", symbol="ETHUSDT", orderId=o["orderId"])
        assert _err(other)[0] == -2013
        gone = rest.signed("DELETE", "/api/v3/openOrders", symbol="BTCUSDT").json()
        assert [x["status"] for x in gone] == ["CANCELED"]
        assert rest.signed("GET", "/api/v3/openOrders").json() == []
        every = rest.signed("GET", "/api/v3/allOrders", symbol="BTCUSDT").json()
        assert [x["status"] for x in every] == ["CANCELED", "CANCELED"]
    finally:
        ws.close()


def test_rejections_are_binance_errors_and_change_nothing(daemon: Engine) -> None:
    rest = Rest(daemon.port)
    last = _last(rest)
    price = _tick(last * Decimal("0.99"))
    cases = [
        (dict(type="LIMIT", timeInForce="GTC", quantity="1", price=price),  # ~1 BTC > 10000 USDT
         (-2010, "Account has insufficient balance for requested action.")),
        (dict(type="LIMIT", timeInForce="GTC", quantity="0.0123456", price=price),
         (-1013, "Filter failure: LOT_SIZE")),
        (dict(type="LIMIT", timeInForce="GTC", quantity="0.01", price=price + "1"),
         (-1013, "Filter failure: PRICE_FILTER")),  # off the 0.01 tick
        (dict(type="LIMIT", timeInForce="GTC", quantity="0.0001",
              price=_tick(last * Decimal("0.1"))),
         (-1013, "Filter failure: PERCENT_PRICE")),
        (dict(type="MARKET", quantity="0.01", timeInForce="GTC"),
         (-1106, "Parameter 'timeInForce' sent when not required.")),
        (dict(type="LIMIT", quantity="0.01", price=price),
         (-1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, or "
                 "malformed.")),
        (dict(type="NOPE", quantity="0.01"), (-1116, "Invalid orderType.")),
        (dict(type="STOP_LOSS_LIMIT", timeInForce="GTC", quantity="0.01", price=price,
              stopPrice=_tick(last * Decimal("1.02"))),  # a SELL stop above the market
         (-2010, "Stop price would trigger immediately.")),
    ]
    for extra, expected in cases:
        side = "SELL" if extra["type"] == "STOP_LOSS_LIMIT" else "BUY"
        r = rest.signed("POST", "/api/v3/order", symbol="BTCUSDT", side=side, **extra)
        assert r.status_code == 400, (extra, r.text)
        assert _err(r) == expected, extra
    r = rest.signed("POST", "/api/v3/order", symbol="NOPEUSDT", side="BUY", type="MARKET",
                    quantity="0.01")
    assert _err(r) == (-1121, "Invalid symbol.")
    r = rest.signed("POST", "/api/v3/order/test", symbol="BTCUSDT", side="BUY",
                    type="MARKET", quantity="0.01")
    assert r.status_code == 200 and r.json() == {}
    assert rest.signed("GET", "/api/v3/allOrders", symbol="BTCUSDT").json() == []
    acct = rest.signed("GET", "/api/v3/account").json()
    assert {b["asset"]: b["free"] for b in acct["balances"]} == {
        "BTC": "1.00000000", "USDT": "10000.00000000"}


def test_ack_answer_and_oco_lists_and_cancel_replace(daemon: Engine) -> None:
    rest = Rest(daemon.port)
    last = _last(rest)
    r = rest.signed("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT",
                    timeInForce="GTC", quantity="0.01", price=_tick(last * Decimal("0.95")),
                    newOrderRespType="ACK")
    ack = r.json()
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    oco = rest.signed("POST", "/api/v3/orderList/oco", symbol="BTCUSDT", side="SELL",
                      quantity="0.1", aboveType="LIMIT_MAKER",
                      abovePrice=_tick(last * Decimal("1.05")), belowType="STOP_LOSS_LIMIT",
                      belowStopPrice=_tick(last * Decimal("0.97")),
                      belowPrice=_tick(last * Decimal("0.96")), belowTimeInForce="GTC")
    assert oco.status_code == 200, oco.text
    lst = oco.json()
    assert lst["contingencyType"] == "OCO" and lst["listOrderStatus"] == "EXECUTING"
    assert [o["type"] for o in lst["orderReports"]] == ["LIMIT_MAKER", "STOP_LOSS_LIMIT"]
    assert all(o["orderListId"] == lst["orderListId"] for o in lst["orderReports"])
    lists = rest.signed("GET", "/api/v3/openOrderList").json()
    assert [x["orderListId"] for x in lists] == [lst["orderListId"]]
    bad = rest.signed("POST", "/api/v3/orderList/oco", symbol="BTCUSDT", side="SELL",
                      quantity="0.1", aboveType="LIMIT_MAKER",
                      abovePrice=_tick(last * Decimal("0.97")), belowType="STOP_LOSS",
                      belowStopPrice=_tick(last * Decimal("0.98")))
    assert bad.status_code == 400 and _err(bad)[0] == -2010
    gone = rest.signed("DELETE", "/api/v3/orderList", symbol="BTCUSDT",
                       orderListId=lst["orderListId"])
    assert gone.status_code == 200, gone.text
    assert {o["status"] for o in gone.json()["orderReports"]} <= {"CANCELED", "EXPIRED"}
    assert rest.signed("GET", "/api/v3/openOrderList").json() == []
    # cancelReplace: the ACK'd order is replaced by one at another price
    new_price = _tick(last * Decimal("0.94"))
    cr = rest.signed("POST", "/api/v3/order/cancelReplace", symbol="BTCUSDT", side="BUY",
                     type="LIMIT", timeInForce="GTC", quantity="0.01", price=new_price,
                     cancelReplaceMode="STOP_ON_FAILURE", cancelOrderId=ack["orderId"])
    assert cr.status_code == 200, cr.text
    body = cr.json()
    assert body["cancelResult"] == "SUCCESS" and body["newOrderResult"] == "SUCCESS"
    assert body["cancelResponse"]["status"] == "CANCELED"
    open_now = rest.signed("GET", "/api/v3/openOrders", symbol="BTCUSDT").json()
    assert [(o["orderId"], o["price"]) for o in open_now] == [
        (body["newOrderResponse"]["orderId"], f"{Decimal(new_price):.8f}")]
    failed = rest.signed("POST", "/api/v3/order/cancelReplace", symbol="BTCUSDT", side="BUY",
                         type="LIMIT", timeInForce="GTC", quantity="0.01", price=new_price,
                         cancelReplaceMode="STOP_ON_FAILURE", cancelOrderId=ack["orderId"])
    assert _err(failed)[0] == -2022
    assert failed.json()["data"]["newOrderResult"] == "NOT_ATTEMPTED"
    assert len(rest.signed("GET", "/api/v3/openOrders", symbol="BTCUSDT").json()) == 1
