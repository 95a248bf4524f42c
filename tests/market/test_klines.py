"""KlineBook: bars built from real recorded Binance trades, checked against
references built without the code under test.

* freqtrade's own 1m and 5m XRP/ETH candles of the same window (shared data
  files 6, 7), made by a different program from the same Binance trades;
* a plain group-by of the trades (file 5) for what those candles lack
  (quote volume, trade count, close time, every interval).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from engine.errors import BadRequest
from engine.market.klines import (
    INTERVALS,
    BadKlineQuery,
    Kline,
    KlineBook,
    UnknownInterval,
)
from tests.market.conftest import data_file
from tests.market.kline_reference import SYMBOL, Tape, group_by, recorded_trades


@pytest.fixture(scope="module")
def trades() -> Tape:
    return recorded_trades()


@pytest.fixture(scope="module")
def full_book(trades: Tape) -> KlineBook:
    """Every recorded trade counted (read-only in the tests that use it)."""
    return _book(trades)


def _book(trades: Tape, max_bars: int = 5000) -> KlineBook:
    book = KlineBook(max_bars=max_bars)
    for price, qty, ts in trades:
        book.on_trade(SYMBOL, price, qty, ts)
    return book


def _row(bar: Kline) -> tuple[Any, ...]:
    return (bar.open_time, bar.close_time, bar.open, bar.high, bar.low, bar.close, bar.volume,
            bar.quote_volume, bar.trades)


@pytest.mark.parametrize("interval,candles", [("1m", "freqtrade/XRP_ETH-1m.json"),
                                              ("5m", "freqtrade/XRP_ETH-5m.json")])
def test_bars_match_freqtrades_candles_of_the_same_trades(
        full_book: KlineBook, interval: str, candles: str) -> None:
    book = full_book
    ours: dict[int, Kline] = {}
    start = 0
    while page := book.klines(SYMBOL, interval, start_ms=start, limit=1000):  # as clients page
        ours.update((b.open_time, b) for b in page)
        start = page[-1].open_time + 1
    with open(data_file(candles)) as f:
        reference = json.load(f)
    compared = 0
    for open_time, o, h, low, c, v in reference:
        if v == 0 and open_time not in ours:
            continue  # freqtrade fills an empty minute; we keep no bar there
        bar = ours.pop(open_time)
        assert (float(bar.open), float(bar.high), float(bar.low), float(bar.close),
                float(bar.volume)) == (o, h, low, c, v), open_time
        compared += 1
    assert compared > 700
    # any bar left is after freqtrade's last candle (the window's last minutes)
    assert all(t > reference[-1][0] for t in ours)


@pytest.mark.parametrize("interval", list(INTERVALS))
def test_every_interval_matches_a_plain_group_by(
        trades: Tape, full_book: KlineBook, interval: str) -> None:
    book = full_book
    expected = group_by(trades, INTERVALS[interval])
    got = [_row(b) for b in book.klines(SYMBOL, interval, start_ms=0, limit=1000)]
    assert got == expected[:1000]
    assert book.current(SYMBOL, interval) is not None
    assert _row(book.current(SYMBOL, interval)) == expected[-1]  # type: ignore[arg-type]


def test_a_bar_is_aligned_to_utc_multiples_like_binance() -> None:
    book = KlineBook(max_bars=10)
    # 2021-11-27T00:00:59.999Z is still the 00:00 minute of Binance's ADABTC CSV
    bars = book.on_trade("ADABTC", Decimal("0.00002853"), Decimal(1), 1637971259999)
    assert [(b.interval, b.open_time, b.close_time) for b in bars] == [
        ("1m", 1637971200000, 1637971259999),  # as in the recorded Binance CSV row
        ("5m", 1637971200000, 1637971499999),
        ("15m", 1637971200000, 1637972099999),
        ("1h", 1637971200000, 1637974799999),
        ("4h", 1637971200000, 1637985599999),
        ("1d", 1637971200000, 1638057599999),
    ]


def test_a_trade_older_than_the_current_bar_changes_nothing_for_that_interval() -> None:
    book = KlineBook(max_bars=10)
    book.on_trade("BTCUSDT", Decimal(100), Decimal(1), 120_000)  # minute 2
    late = book.on_trade("BTCUSDT", Decimal(50), Decimal(1), 59_000)  # minute 0: too late
    assert [b.interval for b in late] == ["5m", "15m", "1h", "4h", "1d"]
    assert [(b.open_time, b.close) for b in book.klines("BTCUSDT", "1m")] == [
        (120_000, Decimal(100))]
    assert book.current("BTCUSDT", "5m") == Kline(
        "BTCUSDT", "5m", 0, 299_999, Decimal(100), Decimal(100), Decimal(50), Decimal(50),
        Decimal(2), Decimal(150), 2)


def test_quote_volume_is_exact() -> None:
    book = KlineBook(max_bars=10)
    for _ in range(3):
        book.on_trade("BTCUSDT", Decimal("86104.02"), Decimal("0.00011"), 1_000)
    bar = book.current("BTCUSDT", "1m")
    assert bar is not None
    assert bar.quote_volume == Decimal("28.4143266")
    assert bar.volume == Decimal("0.00033")


def test_the_bound_keeps_the_newest_bars_of_each_series() -> None:
    book = KlineBook(max_bars=3)
    for minute in range(10):
        book.on_trade("BTCUSDT", Decimal(minute + 1), Decimal(1), minute * 60_000)
    assert [b.open_time for b in book.klines("BTCUSDT", "1m")] == [420_000, 480_000, 540_000]
    assert len(book.klines("BTCUSDT", "5m")) == 2  # only two 5m bars exist
    # what the bound dropped is never handed out to be saved
    unsaved = book.take_unsaved(include_open=True)
    assert [b.open_time for b in unsaved if b.interval == "1m"] == [420_000, 480_000, 540_000]


def test_binance_query_semantics() -> None:
    book = KlineBook(max_bars=100)
    for minute in range(10):
        book.on_trade("BTCUSDT", Decimal(minute + 1), Decimal(1), minute * 60_000 + 5)

    def opens(**kw: Any) -> list[int]:
        return [b.open_time // 60_000 for b in book.klines("BTCUSDT", "1m", **kw)]

    assert opens() == list(range(10))
    assert opens(limit=3) == [7, 8, 9]  # the newest
    assert opens(start_ms=120_000, limit=3) == [2, 3, 4]  # from the start
    assert opens(start_ms=120_001, limit=3) == [3, 4, 5]  # open time >= startTime
    assert opens(end_ms=300_000, limit=2) == [4, 5]  # open time <= endTime, newest
    assert opens(start_ms=60_000, end_ms=180_000) == [1, 2, 3]
    assert opens(start_ms=60_000, end_ms=600_000, limit=2) == [1, 2]
    assert opens(start_ms=10 * 60_000) == []
    assert book.klines("ETHUSDT", "1m") == []
    assert book.current("ETHUSDT", "1m") is None


@pytest.mark.parametrize("kw", [{"limit": 0}, {"limit": 1001}, {"limit": True},
                                {"start_ms": 2, "end_ms": 1}])
def test_a_bad_query_is_a_typed_bad_request(kw: dict[str, Any]) -> None:
    book = KlineBook(max_bars=10)
    with pytest.raises(BadKlineQuery) as err:
        book.klines("BTCUSDT", "1m", **kw)
    assert isinstance(err.value, BadRequest)


@pytest.mark.parametrize("interval", ["1s", "3m", "1M", "", "1H"])
def test_an_unknown_interval_is_a_typed_bad_request(interval: str) -> None:
    book = KlineBook(max_bars=10)
    with pytest.raises(UnknownInterval) as err:
        book.klines("BTCUSDT", interval)
    assert isinstance(err.value, BadRequest)
    assert "1m, 5m, 15m, 1h, 4h, 1d" in err.value.message
    with pytest.raises(UnknownInterval):
        book.current("BTCUSDT", interval)


def test_unsaved_bars_closed_first_open_on_request_and_again_after_a_failed_write() -> None:
    book = KlineBook(max_bars=10)
    book.on_trade("BTCUSDT", Decimal(1), Decimal(1), 0)
    assert not book.has_closed_unsaved()
    book.on_trade("BTCUSDT", Decimal(2), Decimal(1), 60_000)  # closes the first 1m bar
    assert book.has_closed_unsaved()
    closed = book.take_unsaved(include_open=False)
    assert [(b.interval, b.open_time) for b in closed] == [("1m", 0)]
    assert not book.has_closed_unsaved()
    book.unsaved_again(closed)  # the write failed
    assert book.take_unsaved(include_open=False) == closed
    opened = book.take_unsaved(include_open=True)
    assert {(b.interval, b.open_time) for b in opened} == (
        {("1m", 60_000)} | {(i, 0) for i in INTERVALS if i != "1m"})
    assert book.take_unsaved(include_open=True) == []
    # a failed write of an open bar that changed since: the newer bar is saved
    book.on_trade("BTCUSDT", Decimal(3), Decimal(1), 61_000)
    stale = book.take_unsaved(include_open=True)
    book.on_trade("BTCUSDT", Decimal(4), Decimal(1), 62_000)
    book.unsaved_again(stale)
    again = {b.interval: b for b in book.take_unsaved(include_open=True)}
    assert again["1m"].close == Decimal(4) and again["1m"].trades == 3


def test_restore_then_continue_is_the_same_as_never_stopping(
        trades: Tape) -> None:
    half = len(trades) // 2
    whole = _book(trades, max_bars=200)
    first = _book(trades[:half], max_bars=200)
    saved = first.take_unsaved(include_open=True)
    resumed = KlineBook(max_bars=200)
    resumed.restore(reversed(saved))  # any order
    assert resumed.take_unsaved(include_open=True) == []
    for price, qty, ts in trades[half:]:
        resumed.on_trade(SYMBOL, price, qty, ts)
    for interval in INTERVALS:
        assert resumed.klines(SYMBOL, interval, limit=200) == whole.klines(
            SYMBOL, interval, limit=200)


def test_restore_keeps_the_bound() -> None:
    bars = [Kline("BTCUSDT", "1m", m * 60_000, m * 60_000 + 59_999, Decimal(1), Decimal(1),
                  Decimal(1), Decimal(1), Decimal(1), Decimal(1), 1) for m in range(5)]
    book = KlineBook(max_bars=2)
    book.restore([*bars, Kline("BTCUSDT", "3m", 0, 1, *(Decimal(1),) * 6, 1)])
    assert [b.open_time for b in book.klines("BTCUSDT", "1m")] == [180_000, 240_000]
    assert book.symbols() == {"BTCUSDT"}


def test_max_bars_must_be_positive() -> None:
    with pytest.raises(ValueError):
        KlineBook(max_bars=0)
