"""ccxt's binance exchange, unchanged but for its URLs, keys and the options that keep
load_markets to spot, drives a live daemon: markets, ticker, book, OHLCV, every order
type it sends to Binance Spot, an OCO, balance, my trades and the recent trades. No internet: every
API family's URL points at the daemon (docs/binance-compat.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import ROUND_DOWN, Decimal
from typing import Any

import ccxt
import pytest

from tests.binance.helpers import (
    accounts_config,
    ccxt_exchange,
    push_trades,
    upstream_daemon,
)
from tests.conftest import wait_until
from tickdesk import Engine


@pytest.fixture
def daemon() -> Iterator[Engine]:
    eng = Engine(accounts_config()).start()
    try:
        yield eng
    finally:
        eng.stop()


def _exchange(port: int) -> Any:
    return ccxt_exchange(port)


def _price(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_DOWN))


def test_ccxt_bot_loop(daemon: Engine) -> None:
    ex = _exchange(daemon.port)
    markets = ex.load_markets()
    assert {"BTC/USDT", "ETH/USDT"} <= set(markets)
    info = daemon.symbols.get("BTCUSDT")
    assert info is not None and info.lot_size is not None
    btc = markets["BTC/USDT"]
    assert btc["spot"] and btc["base"] == "BTC" and btc["quote"] == "USDT"
    assert Decimal(str(btc["limits"]["amount"]["min"])) == info.lot_size.min_qty
    wait_until(lambda: ex.fetch_ticker("BTC/USDT")["last"] is not None, 10, "a ticker")
    ticker = ex.fetch_ticker("BTC/USDT")
    assert ticker["bid"] <= ticker["ask"] and ticker["last"] > 0
    book = ex.fetch_order_book("BTC/USDT", 5)
    assert 0 < len(book["bids"]) <= 5 and book["bids"][0][0] < book["asks"][0][0]
    assert book["bids"] == sorted(book["bids"], reverse=True)
    assert isinstance(ex.fetch_ohlcv("BTC/USDT", "1m"), list)
    last = Decimal(str(ticker["last"]))

    bought = ex.create_order("BTC/USDT", "market", "buy", 0.01)
    assert bought["status"] == "closed" and bought["filled"] == 0.01
    assert ex.fetch_order(bought["id"], "BTC/USDT")["status"] == "closed"
    mine = ex.fetch_my_trades("BTC/USDT")
    assert {t["order"] for t in mine} == {bought["id"]}
    assert sum(t["amount"] for t in mine) == pytest.approx(0.01)
    balance = ex.fetch_balance()
    assert balance["BTC"]["total"] == pytest.approx(1.01)

    limit = ex.create_order("BTC/USDT", "limit", "buy", 0.01, _price(last * Decimal("0.95")))
    assert limit["status"] == "open"
    stop = ex.create_order("BTC/USDT", "limit", "sell", 0.01, _price(last * Decimal("0.96")),
                           {"stopLossPrice": _price(last * Decimal("0.97"))})
    take = ex.create_order("BTC/USDT", "limit", "sell", 0.01, _price(last * Decimal("1.04")),
                           {"takeProfitPrice": _price(last * Decimal("1.03"))})
    open_orders = {o["id"]: o for o in ex.fetch_open_orders("BTC/USDT")}
    assert set(open_orders) == {limit["id"], stop["id"], take["id"]}
    assert open_orders[stop["id"]]["info"]["type"] == "STOP_LOSS_LIMIT"
    assert open_orders[take["id"]]["info"]["type"] == "TAKE_PROFIT_LIMIT"
    assert balance["USDT"]["used"] == 0  # nothing was open then
    assert ex.fetch_balance()["USDT"]["used"] > 0  # the BUY limit reserves
    # the same orders, seen by the account's WebSocket session
    session = daemon.connect(token="alice-token-1")
    try:
        session.send({"action": "get_orders", "status": "open", "id": "o"})
        ws_open = session.wait_for(lambda m: m.get("id") == "o")
        assert {str(o["orderId"]) for o in ws_open["orders"]} == set(open_orders)
    finally:
        session.close()
    for order_id in (limit["id"], stop["id"], take["id"]):
        assert ex.cancel_order(order_id, "BTC/USDT")["status"] == "canceled"
    assert ex.fetch_order(limit["id"], "BTC/USDT")["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(limit["id"], "BTC/USDT")
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("BTC/USDT", "limit", "buy", 1, _price(last * Decimal("0.99")))
    with pytest.raises(ccxt.BadRequest, match="PERCENT_PRICE"):  # -1013 from the daemon
        ex.create_order("BTC/USDT", "limit", "buy", 0.001, _price(last * Decimal("0.1")))

    # an OCO through ccxt's implicit API (Binance's own endpoint and parameters)
    oco = ex.private_post_orderlist_oco({
        "symbol": "BTCUSDT", "side": "SELL", "quantity": "0.01",
        "aboveType": "LIMIT_MAKER", "abovePrice": str(_price(last * Decimal("1.05"))),
        "belowType": "STOP_LOSS", "belowStopPrice": str(_price(last * Decimal("0.95")))})
    assert oco["contingencyType"] == "OCO" and len(oco["orderReports"]) == 2
    assert len(ex.fetch_open_orders("BTC/USDT")) == 2
    ex.cancel_all_orders("BTC/USDT")
    assert ex.fetch_open_orders("BTC/USDT") == []
    closed = ex.fetch_orders("BTC/USDT")
    assert len(closed) == 6 and sum(o["status"] == "closed" for o in closed) == 1


def test_ccxt_fetch_trades_reads_the_trades_the_feed_routed() -> None:
    with upstream_daemon() as (eng, upstream):
        pushed = push_trades(upstream, 700, 12, int(time.time() * 1000))
        ex = _exchange(eng.port)
        ex.load_markets()
        wait_until(lambda: len(ex.fetch_trades("BTC/USDT")) == 12, 10, "12 trades")
        trades = ex.fetch_trades("BTC/USDT", limit=5)
        want = pushed[-5:]
        assert [t["id"] for t in trades] == [str(p.agg_id) for p in want]
        assert [Decimal(str(t["price"])) for t in trades] == [p.price for p in want]
        assert [Decimal(str(t["amount"])) for t in trades] == [p.qty for p in want]
        assert [t["timestamp"] for t in trades] == [p.time for p in want]
        # Binance's m: the buyer was the maker, so the taker sold
        assert [t["side"] for t in trades] == [
            "sell" if p.buyer_is_maker else "buy" for p in want]
        since = ex.fetch_trades("BTC/USDT", since=pushed[2].time, limit=3)
        assert [t["id"] for t in since] == [str(p.agg_id) for p in pushed[2:5]]
        for method in ("publicGetTrades", "publicGetHistoricalTrades"):
            other = ex.fetch_trades("BTC/USDT", limit=2, params={"fetchTradesMethod": method})
            assert [(t["id"], t["timestamp"]) for t in other] == [
                (str(p.agg_id), p.time) for p in pushed[-2:]], method
