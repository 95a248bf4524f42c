"""The wire form of the bus's market queries: lossless both ways, and a query
that does not decode is a typed error (never executed)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.market.klines import Kline, KlineQuery
from engine.market.market_query import (
    BadQuery,
    decode_klines,
    decode_query,
    decode_trades,
    encode_answer,
    encode_query,
)
from engine.market.recent_trades import RecentTrade, TradesQuery


def test_queries_round_trip() -> None:
    for q in (KlineQuery.checked("BTCUSDT", "5m", 1, 2, 10), KlineQuery.checked("ETHUSDT", "1d"),
              TradesQuery("BTCUSDT", 500), TradesQuery("BTCUSDT", 3, 9, 100, 200)):
        assert decode_query(*encode_query(q)) == q


def test_answers_round_trip_with_every_digit() -> None:
    bar = Kline("BTCUSDT", "1m", 0, 59_999, Decimal("1.10"), Decimal("2"), Decimal("0.5"),
                Decimal("1.00"), Decimal("0.00100000"), Decimal("1E-8"), 4)
    assert decode_klines(encode_answer([bar])) == [bar]
    assert str(decode_klines(encode_answer([bar]))[0].open) == "1.10"
    trade = RecentTrade(1, Decimal("3.50"), Decimal("0.1"), 5, True)
    assert decode_trades(encode_answer([trade])) == [trade]
    assert decode_klines(encode_answer([])) == []


@pytest.mark.parametrize(("kind", "body"), [
    ("klines", b"not json"),
    ("klines", b"[]"),
    ("klines", b'{"symbol": "BTCUSDT", "interval": "2m", "limit": 5}'),
    ("klines", b'{"symbol": "BTCUSDT", "interval": "1m", "limit": 5000}'),
    ("klines", b'{"symbol": "BTCUSDT", "limit": 5}'),
    ("trades", b'{"symbol": "BTCUSDT", "limit": 0}'),
    ("trades", b'{"symbol": "BTCUSDT", "limit": 5, "from": "x"}'),
    ("trades", b'{"symbol": 3, "limit": 5}'),
    ("orders", b'{"symbol": "BTCUSDT", "limit": 5}'),
])
def test_a_bad_query_is_refused(kind: str, body: bytes) -> None:
    with pytest.raises(BadQuery):
        decode_query(kind, body)


@pytest.mark.parametrize("body", [b"{}", b"[[1]]", b'[["a", "b", 1, 2, "x", "1", "1", "1", '
                                                   b'"1", "1", 1]]'])
def test_a_bad_answer_is_refused(body: bytes) -> None:
    with pytest.raises(BadQuery):
        decode_klines(body)
