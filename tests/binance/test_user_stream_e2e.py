"""The Binance user data stream over 127.0.0.1: an order placed over our own
protocol shows up on ``/ws/<listenKey>`` as Binance's executionReport (NEW, then
TRADE with the fill), and outboundAccountPosition carries the balances our own
PORTFOLIO_UPDATE shows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest

from tests.binance.helpers import Rest, accounts_config
from tests.e2e.wsclient import WsClient
from tickdesk import Engine

EXEC_FIELDS = {"e", "E", "s", "c", "S", "o", "f", "q", "p", "P", "F", "g", "C", "x", "X", "r",
               "i", "l", "z", "L", "n", "N", "T", "t", "I", "w", "m", "M", "O", "Z", "Y", "Q",
               "V"}


@pytest.fixture
def keyed() -> Iterator[tuple[Engine, str]]:
    """An engine with API-keyed accounts, and alice's listen key made over REST."""
    engine = Engine(accounts_config()).start()
    try:
        resp = Rest(engine.port).keyed("POST", "/api/v3/userDataStream")
        assert resp.status_code == 200
        yield engine, resp.json()["listenKey"]
    finally:
        engine.stop()


def _own(engine: Engine) -> WsClient:
    c = WsClient(engine.url + "?token=alice-token-1")
    assert c.recv()["type"] == "CONNECTED"
    return c


@contextmanager
def _sessions(engine: Engine, path: str) -> Iterator[tuple[WsClient, WsClient]]:
    """alice's user data stream at ``path`` and her own protocol session, both
    closed at the end."""
    user = WsClient(f"ws://127.0.0.1:{engine.port}{path}")
    own = _own(engine)
    try:
        yield user, own
    finally:
        user.close()
        own.close()


def _last_price(own: WsClient) -> float:
    own.send({"action": "subscribe_ticker", "symbol": "BTCUSDT"})
    price: float = own.wait_for(lambda m: m["type"] == "MARKET_UPDATE")["price"]
    return price


def _next_event(c: WsClient, kind: str) -> dict[str, Any]:
    return c.wait_for(lambda m: m.get("e") == kind)


@pytest.mark.parametrize("path", ["/ws/{key}", "/stream?streams={key}"])
def test_market_buy_reports_new_then_trade_then_balances(keyed: tuple[Engine, str],
                                                         path: str) -> None:
    engine, key = keyed
    combined = path.startswith("/stream")

    def event(kind: str) -> dict[str, Any]:
        msg = user.wait_for(lambda m: (m.get("data", {}) if combined else m).get("e") == kind)
        if combined:
            assert msg["stream"] == key
            return dict(msg["data"])
        return msg

    with _sessions(engine, path.format(key=key)) as (user, own):
        own.send({"action": "subscribe_ticker", "symbol": "BTCUSDT", "id": "s"})
        own.wait_for(lambda m: m["type"] == "MARKET_UPDATE")
        own.send({"action": "place_order", "symbol": "BTCUSDT", "side": "BUY",
                  "type": "MARKET", "quantity": 0.01, "clientOrderId": "bot-1", "id": "o"})
        fill = own.wait_for(lambda m: m["type"] == "ORDER_UPDATE"
                            and m["executionType"] == "TRADE")
        new = event("executionReport")
        assert set(new) >= EXEC_FIELDS
        assert (new["x"], new["X"], new["c"], new["s"], new["S"], new["o"]) == (
            "NEW", "NEW", "bot-1", "BTCUSDT", "BUY", "MARKET")
        assert new["i"] == fill["order"]["orderId"] and new["g"] == -1 and new["t"] == -1
        trade = event("executionReport")
        assert (trade["x"], trade["X"]) == ("TRADE", "FILLED")
        assert Decimal(trade["l"]) == Decimal(trade["z"]) == Decimal("0.01")
        price = Decimal(str(fill["lastPrice"]))
        assert Decimal(trade["L"]) == price
        assert Decimal(trade["Y"]) == Decimal(trade["l"]) * Decimal(trade["L"])
        assert Decimal(trade["Z"]) == Decimal(trade["Y"])  # one fill: cumulative == last
        assert Decimal(trade["n"]) == Decimal(str(fill["order"]["fee"])) > 0
        assert trade["N"] in ("BTC", "USDT") and trade["t"] > 0 and trade["m"] is False
        position = event("outboundAccountPosition")
        rows = {b["a"]: (Decimal(b["f"]), Decimal(b["l"])) for b in position["B"]}
        # a spot wallet: alice's 1 BTC grew by what she bought, her 10000 USDT
        # shrank by what she paid and the fee (docs/binance-compat.md)
        assert rows["BTC"] == (Decimal("1.01"), 0)
        assert trade["N"] == "USDT"
        assert rows["USDT"] == (Decimal(10000) - Decimal(trade["Z"]) - Decimal(trade["n"]), 0)
        # ... and the same numbers GET /api/v3/account shows
        account = Rest(engine.port).signed("GET", "/api/v3/account").json()
        wallet = {b["asset"]: (Decimal(b["free"]), Decimal(b["locked"]))
                  for b in account["balances"]}
        assert all(wallet[a] == v for a, v in rows.items())


def test_resting_limit_locks_then_cancel_reports_canceled(keyed: tuple[Engine, str]) -> None:
    engine, key = keyed
    with _sessions(engine, f"/ws/{key}") as (user, own):
        last = _last_price(own)
        price = round(last * 0.5, 2)
        own.send({"action": "place_order", "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                  "quantity": 0.01, "price": price, "id": "o"})
        order_id = own.wait_for(lambda m: m.get("id") == "o")["order"]["orderId"]
        new = _next_event(user, "executionReport")
        assert (new["x"], new["X"], new["w"], new["f"]) == ("NEW", "NEW", True, "GTC")
        assert Decimal(new["p"]) == Decimal(str(price)) and "W" in new
        locked = _next_event(user, "outboundAccountPosition")
        usdt = {b["a"]: b for b in locked["B"]}["USDT"]
        # docs/trading.md, Reservations: quantity x price x (1 + fee_bps / 10000)
        fee_bps = Decimal(str(engine.config.trading.fee_bps))
        expected = Decimal("0.01") * Decimal(str(price)) * (1 + fee_bps / 10000)
        assert Decimal(usdt["l"]) == expected
        own.send({"action": "cancel_order", "orderId": order_id, "id": "c"})
        canceled = _next_event(user, "executionReport")
        assert (canceled["x"], canceled["X"], canceled["i"]) == ("CANCELED", "CANCELED",
                                                                 order_id)
        assert canceled["w"] is False and canceled["C"] == new["c"]
        released = _next_event(user, "outboundAccountPosition")
        assert Decimal({b["a"]: b for b in released["B"]}["USDT"]["l"]) == 0


def test_oco_reports_list_status_and_each_leg(keyed: tuple[Engine, str]) -> None:
    engine, key = keyed
    with _sessions(engine, f"/ws/{key}") as (user, own):
        last = _last_price(own)
        own.send({"action": "place_oco", "symbol": "BTCUSDT", "side": "SELL",
                  "quantity": "0.01",
                  "above": {"type": "LIMIT_MAKER", "price": str(round(last * 1.5, 2))},
                  "below": {"type": "STOP_LOSS", "stopPrice": str(round(last * 0.5, 2))},
                  "id": "oco"})
        lst = own.wait_for(lambda m: m["type"] == "ORDER_LIST_UPDATE")["list"]
        started = _next_event(user, "listStatus")
        assert (started["c"], started["l"], started["L"], started["g"]) == (
            "OCO", "EXEC_STARTED", "EXECUTING", lst["listId"])
        assert sorted(o["i"] for o in started["O"]) == sorted(lst["orderIds"])
        assert all(o["c"] and o["s"] == "BTCUSDT" for o in started["O"])
        own.send({"action": "cancel_order", "listId": lst["listId"], "id": "c"})
        done = user.wait_for(lambda m: m.get("e") == "listStatus" and m["l"] == "ALL_DONE")
        assert done["L"] == "ALL_DONE" and done["g"] == lst["listId"]
