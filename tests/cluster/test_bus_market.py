"""A gateway's Binance market view (tickdesk.binance_gateway.BusMarket) on a
real redis-server: the tickers and the book are the engine's latest frames
in Redis, the recent trades the engine's answer across the bus; each failure
is the Binance error a bot expects (-1001 Redis down, -1007 no engine, -1008
too many in flight), never a hang."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from engine.binance.errors import BinanceError
from engine.market.recent_trades import TradesQuery
from engine.protocol.frames import text_frame
from engine.protocol.server_messages import Outgoing
from engine.server.hub import Hub
from engine.server.redis_bus import RedisBus
from tests.cluster.redis_server import RedisServer
from tests.cluster.test_bus_contract import TRADES, FakeAnswers
from tests.conftest import timeout
from tickdesk.binance_gateway import BusMarket


def _out(**fields: object) -> Outgoing:
    payload = orjson.dumps(fields)
    return Outgoing(payload, text_frame(payload), None)


def test_tickers_and_book_come_from_redis_and_trades_from_the_engine(
        redis_server: RedisServer) -> None:
    engine, gateway = RedisBus(redis_server.url), RedisBus(redis_server.url, gateway="g1")
    gateway.start_gateway(Hub())
    engine.start_engine(lambda _req: True, FakeAnswers())
    try:
        engine.publish("BTCUSDT", _out(type="MARKET_UPDATE", symbol="BTCUSDT", price=100.10))
        engine.publish_book("BTCUSDT", _out(type="BOOK_UPDATE", symbol="BTCUSDT", seq=3,
                                            bids=[[99.5, 1.25]], asks=[[100.5, 2]]))
        market = BusMarket(gateway, gateway, timeout(5))
        tickers = market.tickers(["BTCUSDT", "ETHUSDT"])
        assert list(tickers) == ["BTCUSDT"]  # no price yet: absent
        assert tickers["BTCUSDT"]["price"] == Decimal("100.10")
        book = market.book("BTCUSDT")
        assert book is not None and book["bids"] == [[Decimal("99.5"), Decimal("1.25")]]
        assert market.book("ETHUSDT") is None
        assert market.trades(TradesQuery("BTCUSDT", 5)) == TRADES
    finally:
        gateway.close()
        engine.close()


def test_each_failure_is_binances_error(redis_server: RedisServer) -> None:
    gateway = RedisBus(redis_server.url, gateway="g1", max_queries=0, timeout_s=1)
    gateway.start_gateway(Hub())
    try:
        with pytest.raises(BinanceError) as err:  # nothing may be in flight: -1008
            BusMarket(gateway, gateway, 0.3).trades(TradesQuery("BTCUSDT", 5))
        assert (err.value.code, err.value.status) == (-1008, 503)
        lonely = RedisBus(redis_server.url, gateway="g2")
        lonely.start_gateway(Hub())
        try:
            with pytest.raises(BinanceError) as err:  # no engine answers: -1007
                BusMarket(lonely, lonely, 0.3).trades(TradesQuery("BTCUSDT", 5))
            assert (err.value.code, err.value.status) == (-1007, 503)
        finally:
            lonely.close()
        redis_server.stop()
        with pytest.raises(BinanceError) as err:  # Redis down: -1001
            BusMarket(gateway, gateway, 0.3).tickers(["BTCUSDT"])
        assert (err.value.code, err.value.status) == (-1001, 503)
        with pytest.raises(BinanceError) as err:
            BusMarket(gateway, gateway, 0.3).book("BTCUSDT")
        assert err.value.code == -1001
    finally:
        gateway.close()
