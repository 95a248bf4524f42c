"""The Binance REST API and ``get_klines`` through gateways, with real processes.

redis-server (a free loopback port, no persistence), one engine
(``tickdesk run --role engine``) and two gateways (``--role gateway``) are
subprocesses on the same config file and ``[[accounts]]``. A ccxt bot and a
python-binance bot, unchanged but for their URLs and keys, trade through
the gateways; what a user would notice:

* markets, ticker, book, OHLCV and recent trades; a limit and a market
  order placed, fetched, cancelled; the balance after the fill; an OCO and
  a cancelReplace, with the orders seen through the other gateway;
* a listen key made on gateway 1 is kept alive (and closed) on gateway 2;
* ``get_klines`` through a gateway (our protocol) is the engine's bars: the
  same as the engine answers across the bus directly and as REST klines on
  the other gateway;
* the engine killed: klines and trades through a gateway are refused with
  the documented error (-1007 / HTTP 503; ERROR INTERNAL) within the
  timeout (2 s), and so is a signed account request (within its 10 s), not
  a hang, while the tickers (from Redis) still answer; once the engine is
  back, so are the bars.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterator
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException

from engine.market.klines import Kline, KlineQuery
from engine.server.hub import Hub
from engine.server.redis_bus import RedisBus
from tests.binance.helpers import Rest, ccxt_exchange
from tests.cluster.redis_server import RedisServer
from tests.cluster.test_cluster_processes import Proc
from tests.conftest import timeout, wait_until
from tickdesk.client import CommandError, TickdeskClient

KEY = "alice-api-key-0001"
SECRET = "alice-secret-0001"
TOKEN = "alice-token-0001"

CONFIG = """
[server]
host = "127.0.0.1"
port = 0
# the klines test asks back to back until the open bar holds still
rate_limit_per_s = 1000
rate_limit_burst = 1000

[feed]
source = "simulated"
symbols = ["BTCUSDT"]

[feed.simulated]
seed = 11
ticks_per_second = 5

[store]
path = {db!r}

[[accounts]]
name = "alice"
token = "{token}"
api_key = "{key}"
api_secret = "{secret}"
balances = {{USDT = 10000, BTC = 1}}
"""


def _port(ws_url: str) -> int:
    found = re.search(r":(\d+)/", ws_url)
    assert found is not None, ws_url
    return int(found.group(1))


class Cluster:
    def __init__(self, server: RedisServer, tmp: Path) -> None:
        self.server = server
        self.tmp = tmp
        self.config = tmp / "config.toml"
        self.config.write_text(CONFIG.format(db=str(tmp / "engine.db"), token=TOKEN, key=KEY,
                                             secret=SECRET))
        self.procs: list[Proc] = []
        self.engine = self.start("engine")
        self.gateways = [self.start("gateway"), self.start("gateway")]
        self.ports = [_port(g.url) for g in self.gateways]

    def start(self, role: str) -> Proc:
        proc = Proc(role, self.config, self.server.url, self.tmp)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            proc.ensure_dead()


@pytest.fixture
def cluster(redis_server: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(redis_server, tmp_path)
    try:
        yield c
    finally:
        c.close()


def _ccxt(port: int) -> Any:
    return ccxt_exchange(port, KEY, SECRET, timeout_ms=15_000)


def _python_binance(port: int) -> Client:
    client = Client(KEY, SECRET, ping=False, requests_params={"timeout": 15})
    client.API_URL = f"http://127.0.0.1:{port}/api"
    return client


def _p(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_DOWN))


def test_ccxt_trades_through_a_gateway(cluster: Cluster) -> None:
    ex = _ccxt(cluster.ports[0])
    assert "BTC/USDT" in ex.load_markets()
    wait_until(lambda: ex.fetch_ticker("BTC/USDT")["last"] is not None, 20, "a ticker")
    ticker = ex.fetch_ticker("BTC/USDT")
    assert ticker["bid"] <= ticker["ask"]
    book = ex.fetch_order_book("BTC/USDT", 5)
    assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0]
    wait_until(lambda: len(ex.fetch_ohlcv("BTC/USDT", "1m")) > 0, 20, "a bar")
    bar = ex.fetch_ohlcv("BTC/USDT", "1m")[-1]
    assert bar[2] >= bar[3] > 0 and bar[5] > 0  # high >= low, some volume
    trades = ex.fetch_trades("BTC/USDT", limit=5)
    assert 0 < len(trades) <= 5 and all(t["price"] > 0 for t in trades)
    assert [t["timestamp"] for t in trades] == sorted(t["timestamp"] for t in trades)
    last = Decimal(str(ticker["last"]))

    limit = ex.create_order("BTC/USDT", "limit", "buy", 0.01, _p(last * Decimal("0.9")))
    assert limit["status"] == "open"
    assert ex.fetch_order(limit["id"], "BTC/USDT")["status"] == "open"
    assert [o["id"] for o in ex.fetch_open_orders("BTC/USDT")] == [limit["id"]]
    ex.cancel_order(limit["id"], "BTC/USDT")
    assert ex.fetch_order(limit["id"], "BTC/USDT")["status"] == "canceled"
    assert ex.fetch_open_orders("BTC/USDT") == []

    bought = ex.create_order("BTC/USDT", "market", "buy", 0.01)
    assert bought["status"] == "closed" and bought["filled"] == pytest.approx(0.01)
    assert ex.fetch_order(bought["id"], "BTC/USDT")["status"] == "closed"
    assert {t["order"] for t in ex.fetch_my_trades("BTC/USDT")} == {bought["id"]}
    assert ex.fetch_balance()["BTC"]["total"] == pytest.approx(1.01)
    # the other gateway sees the same orders: one engine behind both
    other = _ccxt(cluster.ports[1])
    assert {o["id"] for o in other.fetch_orders("BTC/USDT")} == {limit["id"], bought["id"]}


def test_python_binance_trades_through_gateways_and_a_listen_key_crosses_them(
        cluster: Cluster) -> None:
    gw1, gw2 = (_python_binance(p) for p in cluster.ports)
    try:
        assert gw1.ping() == {}
        assert gw1.get_server_time()["serverTime"] > 0
        wait_until(lambda: bool(gw1.get_klines(symbol="BTCUSDT", interval="1m")), 20, "a bar")
        wait_until(lambda: len(gw1.get_recent_trades(symbol="BTCUSDT", limit=3)) == 3, 20,
                   "three trades")
        aggs = gw1.get_aggregate_trades(symbol="BTCUSDT", limit=3)
        assert len(aggs) == 3 and all(Decimal(a["p"]) > 0 for a in aggs)
        book = gw1.get_order_book(symbol="BTCUSDT", limit=5)
        assert Decimal(book["bids"][0][0]) < Decimal(book["asks"][0][0])
        last = Decimal(gw1.get_symbol_ticker(symbol="BTCUSDT")["price"])
        assert Decimal(gw1.get_ticker(symbol="BTCUSDT")["lastPrice"]) > 0

        limit = gw1.order_limit_buy(symbol="BTCUSDT", quantity="0.01",
                                    price=str(_p(last * Decimal("0.9"))))
        assert limit["status"] == "NEW"
        assert gw2.get_order(symbol="BTCUSDT", orderId=limit["orderId"])["status"] == "NEW"
        assert gw2.cancel_order(symbol="BTCUSDT", orderId=limit["orderId"])["status"] == \
            "CANCELED"
        with pytest.raises(BinanceAPIException) as err:
            gw1.cancel_order(symbol="BTCUSDT", orderId=limit["orderId"])
        assert err.value.code == -2011
        bought = gw1.order_market_buy(symbol="BTCUSDT", quantity="0.01")
        assert bought["status"] == "FILLED" and bought["fills"]
        assert gw2.get_asset_balance(asset="BTC")["free"] == "1.01000000"
        assert {t["orderId"] for t in gw2.get_my_trades(symbol="BTCUSDT")} == \
            {bought["orderId"]}

        # an OCO and a cancelReplace, split over the two gateways
        r1, r2 = (Rest(p, KEY, SECRET) for p in cluster.ports)
        oco = r1.signed("POST", "/api/v3/orderList/oco", symbol="BTCUSDT", side="SELL",
                        quantity="0.01", aboveType="LIMIT_MAKER",
                        abovePrice=str(_p(last * Decimal("1.1"))), belowType="STOP_LOSS",
                        belowStopPrice=str(_p(last * Decimal("0.9"))))
        assert oco.status_code == 200, oco.text
        list_id = oco.json()["orderListId"]
        assert [x["orderListId"] for x in r2.signed("GET", "/api/v3/openOrderList").json()] \
            == [list_id]
        gone = r2.signed("DELETE", "/api/v3/orderList", symbol="BTCUSDT", orderListId=list_id)
        assert gone.status_code == 200, gone.text
        assert r1.signed("GET", "/api/v3/openOrderList").json() == []
        resting = gw1.order_limit_buy(symbol="BTCUSDT", quantity="0.01",
                                      price=str(_p(last * Decimal("0.9"))))
        cr = r2.signed("POST", "/api/v3/order/cancelReplace", symbol="BTCUSDT", side="BUY",
                       type="LIMIT", timeInForce="GTC", quantity="0.01",
                       price=str(_p(last * Decimal("0.89"))),
                       cancelReplaceMode="STOP_ON_FAILURE", cancelOrderId=resting["orderId"])
        assert cr.status_code == 200, cr.text
        new_id = cr.json()["newOrderResponse"]["orderId"]
        assert [o["orderId"] for o in gw1.get_open_orders(symbol="BTCUSDT")] == [new_id]
        gw1.cancel_order(symbol="BTCUSDT", orderId=new_id)

        key = gw1.stream_get_listen_key()
        assert gw2.stream_get_listen_key() == key  # the account's live key, on any gateway
        gw2.stream_keepalive(key)  # made on gateway 1, kept alive on gateway 2
        gw2.stream_close(key)
        with pytest.raises(BinanceAPIException) as err:
            gw1.stream_keepalive(key)
        assert err.value.code == -1125
    finally:
        gw1.close_connection()
        gw2.close_connection()


def test_get_klines_through_a_gateway_is_the_engines_bars(cluster: Cluster) -> None:
    probe = RedisBus(cluster.server.url, gateway="probe")  # the engine, asked directly
    probe.start_gateway(Hub())
    client = TickdeskClient(cluster.gateways[0].url, TOKEN,
                            request_timeout_s=timeout(10)).connect()
    try:
        wait_until(lambda: bool(client.get_klines("BTCUSDT", "1m")["klines"]), 20, "a bar")
        reply = client.get_klines("BTCUSDT", "1m", limit=5)
        assert reply["type"] == "KLINES" and reply["symbol"] == "BTCUSDT"
        assert reply["interval"] == "1m"

        def same() -> bool:
            ours = client.get_klines("BTCUSDT", "1m", limit=5)["klines"]
            direct: list[Kline] = probe.klines(KlineQuery.checked("BTCUSDT", "1m", None, None,
                                                                  5), timeout(5))
            rest = requests.get(f"http://127.0.0.1:{cluster.ports[1]}/api/v3/klines",
                                params={"symbol": "BTCUSDT", "interval": "1m", "limit": 5},
                                timeout=timeout(10)).json()
            want = [(b.open_time, b.open, b.high, b.low, b.close, b.volume) for b in direct]
            mine = [(r[0], *(Decimal(x) for x in r[1:6])) for r in ours]
            theirs = [(r[0], *(Decimal(x) for x in r[1:6])) for r in rest]
            return bool(want) and mine == want == theirs
        # the open bar moves with every trade: the three answers agree once no
        # trade fell between them (a bounded retry, not a sleep)
        wait_until(same, 20, "the gateway's bars to equal the engine's")
        with pytest.raises(CommandError) as err:
            client.get_klines("BTCUSDT", "2m")
        assert err.value.code == "BAD_REQUEST"
    finally:
        client.close()
        probe.close()


def test_the_engine_down_is_a_typed_error_not_a_hang(cluster: Cluster) -> None:
    base = f"http://127.0.0.1:{cluster.ports[0]}/api/v3"
    client = TickdeskClient(cluster.gateways[0].url, TOKEN,
                            request_timeout_s=timeout(10)).connect()
    try:
        wait_until(lambda: bool(requests.get(f"{base}/ticker/price", params={
            "symbol": "BTCUSDT"}, timeout=timeout(10)).json().get("price")), 20, "a price")
        assert client.get_klines("BTCUSDT", "1m")["type"] == "KLINES"
        cluster.engine.kill9()
        for path, params in (("klines", {"symbol": "BTCUSDT", "interval": "1m"}),
                             ("trades", {"symbol": "BTCUSDT"}),
                             ("aggTrades", {"symbol": "BTCUSDT"})):
            # bounded: requests' own timeout fails the test if the gateway hangs
            resp = requests.get(f"{base}/{path}", params=params, timeout=timeout(10))
            assert resp.status_code == 503, (path, resp.text)
            assert resp.json()["code"] == -1007
        with pytest.raises(CommandError) as err:
            client.get_klines("BTCUSDT", "1m")
        assert err.value.code == "INTERNAL"
        assert "engine" in str(err.value)
        query = urlencode({"timestamp": int(time.time() * 1000)})
        sig = hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
        # the gateway answers after its 10 s; the client waits longer than that
        orders = requests.get(f"{base}/openOrders?{query}&signature={sig}",
                              headers={"X-MBX-APIKEY": KEY}, timeout=timeout(30))
        assert orders.status_code == 503 and orders.json()["code"] == -1007
        # what the gateway takes from Redis needs no engine
        price = requests.get(f"{base}/ticker/price", params={"symbol": "BTCUSDT"},
                             timeout=timeout(10))
        assert price.status_code == 200 and Decimal(price.json()["price"]) > 0
        cluster.engine = cluster.start("engine")
        wait_until(lambda: requests.get(f"{base}/klines", params={
            "symbol": "BTCUSDT", "interval": "1m"}, timeout=timeout(10)).status_code == 200,
            20, "klines once the engine is back")
        assert client.get_klines("BTCUSDT", "1m")["type"] == "KLINES"
    finally:
        client.close()
