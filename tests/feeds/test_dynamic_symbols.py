"""Symbols added live on the Binance feed (``feed.dynamic_symbols``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from engine.config import BinanceConfig, FeedConfig
from tests.fakes.binance_upstream import FakeBinanceUpstream
from tests.feeds.helpers import engine_config, is_update, wait_until
from tickdesk.app import Engine

LISTED = {"BTCUSDT": "50000.0", "ETHUSDT": "3000.0", "SOLUSDT": "150.0",
          **{f"X{i}USDT": f"{i + 1}.0" for i in range(8)}}
#: listed on the exchange, but nothing trades: SUBSCRIBE is accepted, no data comes
SILENT = "NOSUCHCOIN"


@pytest.fixture
def upstream() -> Iterator[FakeBinanceUpstream]:
    with FakeBinanceUpstream(known_symbols=[SILENT], stream_prices=LISTED) as fake:
        yield fake


def _engine(url: str, dynamic: bool = True) -> Engine:
    feed = FeedConfig(source="binance", symbols=("BTCUSDT", "ETHUSDT"), dynamic_symbols=dynamic,
                      binance=BinanceConfig(url=url, stall_timeout_s=0.5,
                                            subscribe_timeout_s=0.5))
    return Engine(engine_config(feed), listen=False)


def _reply(rid: str) -> Any:
    return lambda m: m.get("id") == rid


def _up(engine: Engine) -> None:
    wait_until(lambda: engine.feed_status()["status"] == "UP", what="feed UP")


def test_listed_symbol_is_added_live_and_kept_after_reconnect(
        upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url) as engine:
        _up(engine)
        session = engine.connect()
        session.send({"action": "subscribe_ticker", "symbol": "solusdt", "id": "s1"})
        ok = session.wait_for(_reply("s1"), timeout=5)
        assert ok["type"] == "SUBSCRIBED" and ok["symbol"] == "SOLUSDT"
        session.wait_for(is_update("SOLUSDT", 150.0), timeout=5)
        assert upstream.control_requests[0]["method"] == "SUBSCRIBE"
        assert upstream.control_requests[0]["params"] == ["solusdt@aggTrade", "solusdt@ticker",
                                                          "solusdt@bookTicker"]
        assert engine.feed_shared.snapshot()["dynamicSymbols"] == ["SOLUSDT"]
        # a second client gets it at once, with the snapshot
        other = engine.connect()
        other.send({"action": "subscribe_ticker", "symbol": "SOLUSDT", "id": 2})
        assert other.wait_for(lambda m: m.get("id") == 2,
                              timeout=5)["type"] == "SUBSCRIBED"
        other.wait_for(is_update("SOLUSDT"), timeout=5)
        # after a reconnect the symbol is in the combined URL
        upstream.drop_all()
        assert upstream.wait_until(lambda: upstream.accepted_connections >= 2, timeout=5)
        assert "solusdt@aggTrade" in upstream.request_targets[-1]
        upstream.set_price("SOLUSDT", "151.0")
        session.wait_for(is_update("SOLUSDT", 151.0), timeout=5)


def test_symbol_without_data_is_unknown_after_the_timeout(upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url) as engine:
        _up(engine)
        session = engine.connect()
        session.send({"action": "subscribe_ticker", "symbol": SILENT, "id": "n"})
        err = session.wait_for(_reply("n"), timeout=5)
        assert err["type"] == "ERROR" and err["code"] == "UNKNOWN_SYMBOL"
        wait_until(lambda: [c["method"] for c in upstream.control_requests] == ["SUBSCRIBE",
                                                                                 "UNSUBSCRIBE"],
                   what="the subscription withdrawn")
        assert not engine.feed_shared.serves(SILENT)


def test_control_messages_respect_five_per_second(upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url) as engine:
        _up(engine)
        session = engine.connect()
        for i in range(8):
            session.send({"action": "subscribe_ticker", "symbol": f"X{i}USDT", "id": i})
        for i in range(8):
            assert session.wait_for(lambda m, i=i: m.get("id") == i,
                                    timeout=5)["type"] == "SUBSCRIBED"
        times = upstream.control_times
        assert len(times) == 8
        for k in range(len(times) - 5):
            assert times[k + 5] - times[k] >= 0.95  # any 6 span at least ~1 s


def test_dynamic_off_answers_unknown_at_once(upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url, dynamic=False) as engine:
        _up(engine)
        session = engine.connect()
        session.send({"action": "subscribe_ticker", "symbol": "SOLUSDT", "id": 1})
        err = session.wait_for(lambda m: m.get("id") == 1, timeout=5)
        assert err["code"] == "UNKNOWN_SYMBOL"
        assert upstream.control_requests == []
