"""The recent-trades ring: bounded per symbol (the oldest dropped), queries by
limit, id and time, oldest first."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.market.recent_trades import RecentTrades, TradesQuery
from engine.messages import Trade


def _trade(symbol: str, i: int) -> Trade:
    return Trade(symbol, Decimal(100 + i), Decimal("0.5"), 1_000 + i, 2_000 + 10 * i,
                 trade_id=None, buyer_is_maker=i % 2 == 0)


def _filled(n: int, capacity: int = 1000) -> RecentTrades:
    ring = RecentTrades(capacity)
    for i in range(1, n + 1):
        ring.add(_trade("BTCUSDT", i), 500 + i)
    return ring


def test_newest_limit_oldest_first_and_each_symbol_apart() -> None:
    ring = _filled(10)
    ring.add(_trade("ETHUSDT", 1), 7)
    got = ring.query(TradesQuery("BTCUSDT", 3))
    assert [t.trade_id for t in got] == [508, 509, 510]
    assert [t.price for t in got] == [Decimal(108), Decimal(109), Decimal(110)]
    assert [t.time for t in got] == [2_080, 2_090, 2_100]
    assert [t.buyer_is_maker for t in got] == [True, False, True]
    assert [t.trade_id for t in ring.query(TradesQuery("ETHUSDT", 500))] == [7]
    assert ring.query(TradesQuery("XRPUSDT", 500)) == []


def test_the_bound_drops_the_oldest() -> None:
    ring = _filled(25, capacity=20)
    ids = [t.trade_id for t in ring.query(TradesQuery("BTCUSDT", 1000))]
    assert ids == list(range(506, 526))


def test_from_id_and_time_window_take_the_first_limit() -> None:
    ring = _filled(10)
    assert [t.trade_id for t in ring.query(TradesQuery("BTCUSDT", 2, from_id=504))] == [504, 505]
    # trade times 2010..2100; window 2030..2060 holds trades 3..6
    window = ring.query(TradesQuery("BTCUSDT", 500, start_ms=2_030, end_ms=2_060))
    assert [t.trade_id for t in window] == [503, 504, 505, 506]
    assert [t.trade_id for t in ring.query(TradesQuery("BTCUSDT", 2, start_ms=2_030))] == [
        503, 504]
    # only an end: the newest trades up to it
    assert [t.trade_id for t in ring.query(TradesQuery("BTCUSDT", 2, end_ms=2_060))] == [
        505, 506]
    assert ring.query(TradesQuery("BTCUSDT", 5, from_id=9_999)) == []


def test_forget_drops_a_symbol() -> None:
    ring = _filled(3)
    ring.forget("BTCUSDT")
    assert ring.query(TradesQuery("BTCUSDT", 500)) == []
    with pytest.raises(ValueError):
        RecentTrades(0)
