"""De-duplication across a rotation (engine.market.dedupe), without threads."""

from __future__ import annotations

from decimal import Decimal

from engine.market.dedupe import Watermarks
from engine.messages import Ticker24h, Trade


def trade(symbol: str, tid: int | None, price: str = "100") -> Trade:
    return Trade(symbol, Decimal(price), Decimal(1), 0, 0, tid)


def ticker(symbol: str, event_time: int) -> Ticker24h:
    z = Decimal(0)
    return Ticker24h(symbol, event_time, z, z, z, z, z)


def test_two_overlapping_connections_route_each_trade_once() -> None:
    # The old connection delivers 1..5, the new one (opened meanwhile) 3..8.
    old = [trade("BTCUSDT", i) for i in range(1, 6)]
    new = [trade("BTCUSDT", i) for i in range(3, 9)]
    marks = Watermarks()
    routed = [t.trade_id for t in old[:3] + new[:2] + old[3:] + new[2:] if marks.admit(t)]
    assert routed == [1, 2, 3, 4, 5, 6, 7, 8]


def test_an_older_trade_id_is_not_routed_and_does_not_lower_the_watermark() -> None:
    marks = Watermarks()
    assert marks.admit(trade("BTCUSDT", 10))
    assert not marks.admit(trade("BTCUSDT", 10))
    assert not marks.admit(trade("BTCUSDT", 7))
    assert not marks.admit(trade("BTCUSDT", 9))
    assert marks.admit(trade("BTCUSDT", 11))


def test_watermarks_are_per_symbol() -> None:
    marks = Watermarks()
    assert marks.admit(trade("BTCUSDT", 100))
    assert marks.admit(trade("ETHUSDT", 5))  # lower id, other symbol
    assert not marks.admit(trade("ETHUSDT", 5))


def test_a_trade_without_an_id_is_always_new() -> None:
    marks = Watermarks()
    assert marks.admit(trade("BTCUSDT", 3))
    assert marks.admit(trade("BTCUSDT", None))
    assert marks.admit(trade("BTCUSDT", None))
    assert not marks.admit(trade("BTCUSDT", 3))  # the id watermark is unchanged


def test_tickers_are_routed_only_if_newer_by_event_time() -> None:
    marks = Watermarks()
    assert marks.admit(ticker("BTCUSDT", 1000))
    assert not marks.admit(ticker("BTCUSDT", 1000))
    assert not marks.admit(ticker("BTCUSDT", 999))
    assert marks.admit(ticker("ETHUSDT", 999))
    assert marks.admit(ticker("BTCUSDT", 1001))


def test_trade_and_ticker_watermarks_are_independent() -> None:
    marks = Watermarks()
    assert marks.admit(ticker("BTCUSDT", 5000))
    assert marks.admit(trade("BTCUSDT", 1))  # a trade id is not compared with a time
    assert marks.admit(ticker("BTCUSDT", 5001))
