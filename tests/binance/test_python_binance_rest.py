"""python-binance's Client, unchanged but for its API URL and keys, drives a live
daemon: exchange info, ticker, book, klines, orders of every kind it places
(market, limit, stop-loss-limit, take-profit-limit, OCO), cancels, the account,
my trades, listen keys, and Binance's errors as BinanceAPIException."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_DOWN, Decimal

import pytest
from binance.client import Client
from binance.exceptions import BinanceAPIException

from tests.binance.helpers import ALICE_KEY, ALICE_SECRET, accounts_config
from tests.conftest import wait_until
from tickdesk import Engine


@pytest.fixture
def daemon() -> Iterator[Engine]:
    eng = Engine(accounts_config()).start()
    try:
        yield eng
    finally:
        eng.stop()


def _p(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_DOWN))


def test_python_binance_bot_loop(daemon: Engine) -> None:
    client = Client(ALICE_KEY, ALICE_SECRET, ping=False)
    client.API_URL = f"http://127.0.0.1:{daemon.port}/api"
    try:
        assert client.ping() == {}
        info = client.get_symbol_info("BTCUSDT")
        assert info is not None and info["baseAsset"] == "BTC"
        assert {f["filterType"] for f in info["filters"]} >= {"PRICE_FILTER", "LOT_SIZE"}
        wait_until(lambda: bool(client.get_orderbook_ticker(symbol="BTCUSDT")["bidPrice"]
                                != "0.00000000"), 10, "a book")
        last = Decimal(client.get_symbol_ticker(symbol="BTCUSDT")["price"])
        book = client.get_order_book(symbol="BTCUSDT", limit=5)
        assert Decimal(book["bids"][0][0]) < Decimal(book["asks"][0][0])
        assert isinstance(client.get_klines(symbol="BTCUSDT", interval="1m"), list)
        stats = client.get_ticker(symbol="BTCUSDT")
        assert Decimal(stats["lastPrice"]) > 0

        bought = client.order_market_buy(symbol="BTCUSDT", quantity="0.01")
        assert bought["status"] == "FILLED" and bought["fills"]
        assert client.get_asset_balance(asset="BTC")["free"] == "1.01000000"
        trades = client.get_my_trades(symbol="BTCUSDT")
        assert {t["orderId"] for t in trades} == {bought["orderId"]}

        limit = client.order_limit_buy(symbol="BTCUSDT", quantity="0.01",
                                       price=_p(last * Decimal("0.95")))
        stop = client.create_order(symbol="BTCUSDT", side="SELL", type="STOP_LOSS_LIMIT",
                                   timeInForce="GTC", quantity="0.01",
                                   price=_p(last * Decimal("0.96")),
                                   stopPrice=_p(last * Decimal("0.97")))
        take = client.create_order(symbol="BTCUSDT", side="SELL", type="TAKE_PROFIT_LIMIT",
                                   timeInForce="GTC", quantity="0.01",
                                   price=_p(last * Decimal("1.04")),
                                   stopPrice=_p(last * Decimal("1.03")))
        oco = client.create_oco_order(symbol="BTCUSDT", side="SELL", quantity="0.01",
                                      aboveType="LIMIT_MAKER",
                                      abovePrice=_p(last * Decimal("1.05")),
                                      belowType="STOP_LOSS",
                                      belowStopPrice=_p(last * Decimal("0.95")))
        assert oco["listOrderStatus"] == "EXECUTING"
        open_ids = {o["orderId"] for o in client.get_open_orders(symbol="BTCUSDT")}
        assert open_ids == {limit["orderId"], stop["orderId"], take["orderId"],
                            *(o["orderId"] for o in oco["orders"])}
        assert client.get_order(symbol="BTCUSDT", orderId=stop["orderId"])["type"] == \
            "STOP_LOSS_LIMIT"
        assert client.cancel_order(symbol="BTCUSDT", orderId=limit["orderId"])["status"] == \
            "CANCELED"
        with pytest.raises(BinanceAPIException) as info_err:
            client.cancel_order(symbol="BTCUSDT", orderId=limit["orderId"])
        assert info_err.value.code == -2011
        with pytest.raises(BinanceAPIException) as info_err:
            client.order_limit_buy(symbol="BTCUSDT", quantity="1",
                                   price=_p(last * Decimal("0.99")))
        assert info_err.value.code == -2010
        assert info_err.value.message == "Account has insufficient balance for requested action."
        client.create_test_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")
        assert len(client.get_all_orders(symbol="BTCUSDT")) == 6

        key = client.stream_get_listen_key()
        assert daemon.listen_keys.account(key, daemon.clock.now_ms()) == "alice"
        client.stream_keepalive(key)
        client.stream_close(key)
        assert daemon.listen_keys.account(key, daemon.clock.now_ms()) is None
    finally:
        client.close_connection()
