"""ccxt.pro (bundled in ccxt), unchanged but for its URLs, against a live engine
on 127.0.0.1: watch_ticker, watch_trades, watch_order_book (diff stream synced
with the REST snapshot), watch_ohlcv and watch_orders (the WebSocket API's signed user data
subscription) with an order placed over REST by the same ccxt client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.binance.helpers import ALICE_KEY, ALICE_SECRET, accounts_config
from tests.conftest import timeout
from tickdesk import Engine

ccxt_pro = pytest.importorskip("ccxt.pro", reason="ccxt is in the test extra")


def _exchange(port: int) -> Any:
    ex = ccxt_pro.binance({"apiKey": ALICE_KEY, "secret": ALICE_SECRET, "options": {
        "fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
        "fetchMargins": False}})
    rest = f"http://127.0.0.1:{port}/api/v3"
    api = {k: rest for k, v in ex.urls["api"].items() if isinstance(v, str)}
    api["ws"] = {"spot": f"ws://127.0.0.1:{port}/ws",
                 "ws-api": {"spot": f"ws://127.0.0.1:{port}/ws-api/v3"}}
    ex.urls["api"] = api
    return ex


def _run(body: Any) -> Any:
    engine = Engine(accounts_config()).start()

    async def main() -> Any:
        ex = _exchange(engine.port)
        try:
            await ex.load_markets()
            return await asyncio.wait_for(body(ex, engine), timeout(20))
        finally:
            await ex.close()
    try:
        return asyncio.run(main())
    finally:
        engine.stop()


def test_watch_ticker_trades_order_book_and_ohlcv() -> None:
    async def body(ex: Any, _engine: Engine) -> tuple[Any, Any, Any, Any]:
        ticker = await ex.watch_ticker("BTC/USDT")
        trades = await ex.watch_trades("BTC/USDT")
        book = await ex.watch_order_book("ETH/USDT")
        book = await ex.watch_order_book("ETH/USDT")  # a diff applied on the snapshot
        candles = await ex.watch_ohlcv("BTC/USDT", "1m")
        return ticker, trades, book, candles
    ticker, trades, book, candles = _run(body)
    assert candles and all(len(c) == 6 and c[0] % 60_000 == 0 for c in candles)
    assert ticker["symbol"] == "BTC/USDT" and ticker["last"] > 0
    assert trades and all(t["symbol"] == "BTC/USDT" and t["price"] > 0 for t in trades)
    assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0]


def test_watch_orders_sees_the_fill_of_an_order_placed_over_rest() -> None:
    async def body(ex: Any, engine: Engine) -> tuple[Any, list[Any]]:
        await ex.watch_ticker("BTC/USDT")  # a price exists
        watcher = asyncio.ensure_future(ex.watch_orders("BTC/USDT"))
        # the order goes once the signed subscription is in place (bounded poll)
        for _ in range(500):
            if engine.hub.user_streams("alice"):
                break
            await asyncio.sleep(0.01)
        assert engine.hub.user_streams("alice"), "ccxt did not subscribe to user data"
        seen: list[Any] = []
        placed = await ex.create_order("BTC/USDT", "market", "buy", 0.001)
        while True:
            orders = await watcher
            seen.extend(orders)
            if any(o["id"] == placed["id"] and o["status"] == "closed" for o in seen):
                return placed, seen
            watcher = asyncio.ensure_future(ex.watch_orders("BTC/USDT"))
    placed, seen = _run(body)
    mine = [o for o in seen if o["id"] == placed["id"]]
    assert mine[-1]["status"] == "closed" and mine[-1]["filled"] == pytest.approx(0.001)
