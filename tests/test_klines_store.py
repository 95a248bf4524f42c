"""The store's klines (schema v5): written, bounded, read back, last prices."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from engine.market.klines import Kline, KlineBook
from engine.store import SCHEMA_VERSION, Store, migrate


def _bar(symbol: str, interval: str, minute: int, close: str, trades: int = 1) -> Kline:
    start = minute * 60_000
    return Kline(symbol, interval, start, start + 59_999, Decimal("1.5"), Decimal("2.25"),
                 Decimal("0.75"), Decimal(close), Decimal("0.00011"), Decimal("9.4714422"),
                 trades)


def test_bars_round_trip_exactly_and_an_open_bar_is_replaced(tmp_path: Path) -> None:
    db = str(tmp_path / "k.db")
    with Store(db) as store:
        store.write_klines([_bar("BTCUSDT", "1m", 0, "1"), _bar("BTCUSDT", "1m", 1, "2")], 10)
        store.write_klines([_bar("BTCUSDT", "1m", 1, "3", trades=7)], 10)  # the open bar moved
    with Store(db) as store:
        assert store.klines() == [_bar("BTCUSDT", "1m", 0, "1"),
                                  _bar("BTCUSDT", "1m", 1, "3", trades=7)]


def test_each_symbol_and_interval_keeps_its_newest_bars(tmp_path: Path) -> None:
    with Store(str(tmp_path / "k.db")) as store:
        store.write_klines([_bar("BTCUSDT", "1m", m, "1") for m in range(5)], 3)
        store.write_klines([_bar("ETHUSDT", "1m", m, "1") for m in range(2)], 3)
        store.write_klines([_bar("BTCUSDT", "5m", 0, "1")], 3)
        store.write_klines([_bar("BTCUSDT", "1m", 5, "1")], 3)
        kept = [(b.symbol, b.interval, b.open_time // 60_000) for b in store.klines()]
        assert kept == [("BTCUSDT", "1m", 3), ("BTCUSDT", "1m", 4), ("BTCUSDT", "1m", 5),
                        ("BTCUSDT", "5m", 0), ("ETHUSDT", "1m", 0), ("ETHUSDT", "1m", 1)]
        newest = [(b.symbol, b.interval, b.open_time // 60_000) for b in store.klines(keep=1)]
        assert newest == [("BTCUSDT", "1m", 5), ("BTCUSDT", "5m", 0), ("ETHUSDT", "1m", 1)]


def test_last_prices_are_the_close_of_each_symbols_newest_bar(tmp_path: Path) -> None:
    with Store(str(tmp_path / "k.db")) as store:
        assert store.last_prices() == {}
        book = KlineBook(max_bars=10)
        book.on_trade("BTCUSDT", Decimal("100"), Decimal(1), 0)
        book.on_trade("BTCUSDT", Decimal("101.5"), Decimal(1), 61_000)
        book.on_trade("ETHUSDT", Decimal("7"), Decimal(1), 5_000)
        store.write_klines(book.take_unsaved(include_open=True), 10)
        assert store.last_prices() == {"BTCUSDT": Decimal("101.5"), "ETHUSDT": Decimal("7")}


def test_a_v4_store_migrates_to_v5_and_keeps_its_data(tmp_path: Path) -> None:
    db = str(tmp_path / "v4.db")
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, target=4) == 0
    conn.execute("INSERT INTO accounts VALUES ('alice', '10000', '0', '0')")
    conn.close()
    with Store(db) as store:
        assert (store.migrated_from, store.schema_version) == (4, SCHEMA_VERSION) == (4, 5)
        assert store.account_names() == {"alice"}
        assert store.klines() == [] and store.last_prices() == {}
