"""Filters from Binance's REST API: the loader (engine/feeds/exchange_info.py)
against a fake exchangeInfo server on 127.0.0.1, and the Binance-fed engine
at start and for symbols added live."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from engine.config import BinanceConfig, FeedConfig
from engine.feeds.exchange_info import fetch_exchange_info
from engine.market.symbol_info import LotSize
from tests.fakes.binance_rest import FakeBinanceRest, entry
from tests.fakes.binance_upstream import FakeBinanceUpstream
from tests.feeds.helpers import engine_config, wait_until
from tickdesk import Engine


@pytest.fixture
def rest() -> Iterator[FakeBinanceRest]:
    with FakeBinanceRest() as fake:
        yield fake


def _asked(rest: FakeBinanceRest) -> list[list[str]]:
    out = []
    for target in rest.requests:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
        out.append(json.loads(query["symbols"][0]))
    return out


def test_loads_the_symbols_in_one_request(rest: FakeBinanceRest) -> None:
    found = fetch_exchange_info(rest.base_url, ["ETHUSDT", "BTCUSDT"], timeout_s=2)
    assert sorted(found) == ["BTCUSDT", "ETHUSDT"]
    assert found["BTCUSDT"].lot_size == LotSize(Decimal("0.000001"), Decimal(9000),
                                                 Decimal("0.000001"))
    assert found["BTCUSDT"].source == "exchange"
    assert _asked(rest) == [["BTCUSDT", "ETHUSDT"]]
    assert rest.requests[0].startswith("/api/v3/exchangeInfo?symbols=")


def test_an_unknown_symbol_is_left_out_the_others_load(rest: FakeBinanceRest) -> None:
    found = fetch_exchange_info(rest.base_url, ["BTCUSDT", "NOPEUSDT", "ETHUSDT"], timeout_s=2)
    assert sorted(found) == ["BTCUSDT", "ETHUSDT"]
    # the list is refused (400), then each symbol once; the unknown one is not retried
    assert _asked(rest) == [["BTCUSDT", "ETHUSDT", "NOPEUSDT"], ["BTCUSDT"], ["ETHUSDT"],
                            ["NOPEUSDT"]]


def test_server_errors_are_retried_with_backoff(rest: FakeBinanceRest) -> None:
    sleeps: list[float] = []
    rest.fail_next(2, status=503)
    found = fetch_exchange_info(rest.base_url, ["BTCUSDT"], timeout_s=2, sleep=sleeps.append)
    assert list(found) == ["BTCUSDT"]
    assert rest.request_count() == 3 and sleeps == [0.5, 1.0]


def test_gives_up_after_three_attempts(rest: FakeBinanceRest) -> None:
    sleeps: list[float] = []
    rest.fail_next(10, status=429)
    assert fetch_exchange_info(rest.base_url, ["BTCUSDT"], timeout_s=2,
                               sleep=sleeps.append) == {}
    assert rest.request_count() == 3 and sleeps == [0.5, 1.0]


def test_each_request_times_out() -> None:
    with FakeBinanceRest(delay_s=0.5) as slow:
        assert fetch_exchange_info(slow.base_url, ["BTCUSDT"], timeout_s=0.1, attempts=2,
                                   sleep=lambda s: None) == {}
        # the fake records a request when its handler thread reads it, which under
        # load may be after the client's 0.1 s gave up: wait for it, then count
        wait_until(lambda: slow.request_count() >= 2, what="both attempts recorded")
        assert slow.request_count() == 2


def test_nothing_listening_is_no_filters() -> None:
    with FakeBinanceRest() as gone:
        url = gone.base_url
    assert fetch_exchange_info(url, ["BTCUSDT"], timeout_s=0.5, sleep=lambda s: None) == {}


# ------------------------------------------------------------ the engine


LISTED = {"BTCUSDT": "50000.0", "ETHUSDT": "3000.0", "FILTUSDT": "2.0", "GHOSTUSDT": "1.0"}


@pytest.fixture
def upstream(binance_rest: FakeBinanceRest) -> Iterator[FakeBinanceUpstream]:
    # FILTUSDT: listed with filters; GHOSTUSDT: streams, but exchangeInfo does not know it
    binance_rest.add(entry("FILTUSDT", "FILT", "USDT", tick="0.001", step="1"))
    with FakeBinanceUpstream(stream_prices=LISTED) as fake:
        yield fake


def _engine(upstream: FakeBinanceUpstream, rest: FakeBinanceRest,
            symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")) -> Engine:
    feed = FeedConfig(source="binance", symbols=symbols,
                      binance=BinanceConfig(url=upstream.base_url, stall_timeout_s=5,
                                            subscribe_timeout_s=2, rest_url=rest.base_url,
                                            rest_timeout_s=1))
    return Engine(engine_config(feed), listen=False)


def _reply(rid: Any) -> Any:
    return lambda m: m.get("id") == rid


def test_filters_load_at_start_and_apply(upstream: FakeBinanceUpstream,
                                         binance_rest: FakeBinanceRest) -> None:
    with _engine(upstream, binance_rest) as engine:
        wait_until(lambda: engine.feed_status()["status"] == "UP", what="feed UP")
        info = engine.symbols.get("BTCUSDT")
        assert info is not None and info.source == "exchange"
        s = engine.connect()
        s.send({"action": "subscribe_ticker", "symbol": "BTCUSDT", "id": "s"})
        s.wait_for(lambda m: m["type"] == "MARKET_UPDATE", timeout=5)
        s.send({"action": "place_order", "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                "quantity": "0.0000001", "id": 1})
        assert s.wait_for(_reply(1), timeout=5)["order"]["rejectReason"] == (
            "Filter failure: LOT_SIZE")


def test_a_configured_symbol_without_filters_is_unknown(upstream: FakeBinanceUpstream,
                                                        binance_rest: FakeBinanceRest) -> None:
    with _engine(upstream, binance_rest, ("BTCUSDT", "GHOSTUSDT")) as engine:
        wait_until(lambda: engine.feed_status()["status"] == "UP", what="feed UP")
        s = engine.connect()
        s.send({"action": "place_order", "symbol": "GHOSTUSDT", "side": "BUY",
                "type": "LIMIT", "price": "1", "quantity": "100", "id": 1})
        err = s.wait_for(_reply(1), timeout=5)
        assert err["type"] == "ERROR" and err["code"] == "UNKNOWN_SYMBOL"
        s.send({"action": "get_symbol_info", "symbol": "GHOSTUSDT", "id": 2})
        assert s.wait_for(_reply(2), timeout=5)["code"] == "UNKNOWN_SYMBOL"


def test_a_symbol_added_live_loads_its_filters_first(upstream: FakeBinanceUpstream,
                                                     binance_rest: FakeBinanceRest) -> None:
    with _engine(upstream, binance_rest) as engine:
        wait_until(lambda: engine.feed_status()["status"] == "UP", what="feed UP")
        s = engine.connect()
        s.send({"action": "subscribe_ticker", "symbol": "FILTUSDT", "id": "f"})
        assert s.wait_for(_reply("f"), timeout=5)["type"] == "SUBSCRIBED"
        s.wait_for(lambda m: m.get("type") == "MARKET_UPDATE" and m["symbol"] == "FILTUSDT",
                   timeout=5)
        s.send({"action": "get_symbol_info", "symbol": "FILTUSDT", "id": "i"})
        info = s.wait_for(_reply("i"), timeout=5)
        assert info["baseAsset"] == "FILT" and info["filtersSource"] == "exchange"
        s.send({"action": "place_order", "symbol": "FILTUSDT", "side": "BUY", "type": "LIMIT",
                "price": "2.0005", "quantity": "10", "id": 1})
        assert s.wait_for(_reply(1), timeout=5)["order"]["rejectReason"] == (
            "Filter failure: PRICE_FILTER")
        s.send({"action": "place_order", "symbol": "FILTUSDT", "side": "BUY", "type": "LIMIT",
                "price": "1.999", "quantity": "10", "id": 2})
        assert s.wait_for(_reply(2), timeout=5)["order"]["status"] == "NEW"


def test_a_symbol_unknown_to_exchange_info_is_not_subscribed(
        upstream: FakeBinanceUpstream, binance_rest: FakeBinanceRest) -> None:
    with _engine(upstream, binance_rest) as engine:
        wait_until(lambda: engine.feed_status()["status"] == "UP", what="feed UP")
        s = engine.connect()
        s.send({"action": "subscribe_ticker", "symbol": "GHOSTUSDT", "id": "g"})
        err = s.wait_for(_reply("g"), timeout=5)
        assert err["type"] == "ERROR" and err["code"] == "UNKNOWN_SYMBOL"
        assert "filters" in err["message"]
        assert upstream.control_requests == []
        assert not engine.feed_shared.serves("GHOSTUSDT")
