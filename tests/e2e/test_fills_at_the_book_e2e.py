"""Fills at the book through the whole engine: a client sees a MARKET order
walk the best ask, a resting LIMIT fill by trade volume (PARTIALLY_FILLED with
lastQty / lastPrice / executedQty), ``amend_order`` reduce it, and the ledger
settle every fill. Trades come from a fake Binance upstream; the book change
is delivered to the OrderMonitorActor as the feed does (a BookTick)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from actors.messages import BookTick
from engine.config import FeedConfig
from engine.messages import BookTicker
from tests.conftest import make_config
from tests.e2e.wsclient import WsClient
from tests.fakes.binance_rest import binance_config
from tests.fakes.binance_upstream import FakeBinanceUpstream
from tickdesk import Engine


@pytest.fixture
def upstream() -> Iterator[FakeBinanceUpstream]:
    with FakeBinanceUpstream(known_symbols={"BTCUSDT"}) as fake:
        yield fake


def test_partial_fills_amend_and_market_at_the_ask(upstream: FakeBinanceUpstream) -> None:
    feed = FeedConfig(source="binance", symbols=("BTCUSDT",),
                      binance=binance_config(upstream.base_url, stall_timeout_s=60))
    engine = Engine(make_config(feed=feed))
    engine.start()
    client = WsClient(engine.url)
    try:
        client.send({"action": "subscribe_ticker", "symbol": "BTCUSDT", "id": "s"})
        client.reply("s")
        assert upstream.wait_until(lambda: upstream.subscribers("btcusdt@aggTrade") == 1)

        def trade(price: str, qty: str) -> None:
            upstream.push_trade("BTCUSDT", price, qty)
            client.wait_for(lambda m: m["type"] == "MARKET_UPDATE" and m["price"] == float(price))

        def updates(n: int) -> list[dict[str, Any]]:
            return [client.wait_for(lambda m: m["type"] == "ORDER_UPDATE") for _ in range(n)]

        # the first trade since the start waits for the next one to vouch for it
        upstream.push_trade("BTCUSDT", "40010", "0.5")
        trade("40010", "0.5")
        now = engine.clock.now_ms()
        book = BookTicker("BTCUSDT", Decimal("39990"), Decimal(2), Decimal("40000"),
                          Decimal("0.04"), 1, now)
        assert engine.order_monitor.tell(BookTick(book, now))

        client.send({"action": "place_order", "symbol": "BTCUSDT", "side": "BUY",
                     "type": "MARKET", "quantity": "0.1", "id": "m"})
        new = client.reply("m")
        assert new["executionType"] == "NEW"
        first, second = updates(2)
        # at the ask (not the last trade 40010): 0.04 at the best level, 0.06 beyond it
        assert (first["order"]["status"], first["lastQty"], first["lastPrice"]) == (
            "PARTIALLY_FILLED", 0.04, 40000.0)
        assert (second["order"]["status"], second["executedQty"]) == ("FILLED", 0.1)

        client.send({"action": "place_order", "symbol": "BTCUSDT", "side": "BUY",
                     "type": "LIMIT", "quantity": "0.1", "price": "39990", "id": "l"})
        order_id = client.reply("l")["order"]["orderId"]
        trade("39990", "0.04")
        (part,) = updates(1)
        assert part["order"]["status"] == "PARTIALLY_FILLED"
        assert (part["lastQty"], part["lastPrice"], part["executedQty"]) == (0.04, 39990.0, 0.04)

        client.send({"action": "amend_order", "orderId": order_id, "newQty": "0.06", "id": "a"})
        amended = client.reply("a")
        assert amended["executionType"] == "AMENDED" and amended["order"]["quantity"] == 0.06
        client.send({"action": "amend_order", "orderId": order_id, "newQty": "0.09", "id": "x"})
        refused = client.reply("x")
        assert refused["type"] == "ERROR" and refused["code"] == "BAD_REQUEST"
        assert "newQty" in refused["message"]

        trade("39980", "1")
        (done,) = updates(1)
        assert done["order"]["status"] == "FILLED" and done["lastQty"] == 0.02
        assert done["order"]["filledQuantity"] == 0.06

        client.send({"action": "get_positions", "id": "p"})
        (pos,) = client.reply("p")["positions"]
        assert (pos["side"], pos["quantity"]) == ("LONG", 0.16)
    finally:
        client.close()
        engine.stop()
