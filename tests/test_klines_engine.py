"""Klines through the whole engine: recorded Binance trades replayed into it,
read back by ``get_klines`` (in process and over a real socket) and
``Engine.klines``, kept across a restart, and the protocol's errors.

The reference is a plain group-by of the same recorded trades
(:mod:`tests.market.kline_reference`), not the code under test.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.config import AccountConfig, Config, FeedConfig, MarketConfig, ReplayConfig, StoreConfig
from engine.errors import UnknownSymbol
from engine.market.klines import INTERVALS, BadKlineQuery, UnknownInterval
from engine.store import Store
from tests.conftest import timeout, wait_until
from tests.feeds.helpers import engine_config
from tests.market.conftest import data_file
from tests.market.kline_reference import (
    SYMBOL,
    TRADES_FILE,
    group_by,
    recorded_trades,
    wire_row,
)
from tests.test_kill9 import Daemon
from tickdesk.app import Engine, LocalSession
from tickdesk.client import CommandError, TickdeskClient

N_TRADES = 12477  # the recorded file's aggregate trades (shared data SOURCES.md)


def _config(replay: str, store: str, **market: Any) -> Config:
    feed = FeedConfig(source="replay", symbols=(SYMBOL,),
                      replay=ReplayConfig(path=replay, speed=0.0))
    return engine_config(feed).with_overrides(store=StoreConfig(path=store),
                                              market=MarketConfig(**market))


def _ask(session: LocalSession, rid: str, **body: Any) -> dict[str, Any]:
    session.send({"action": "get_klines", "id": rid, **body})
    return session.wait_for(lambda m: m.get("id") == rid, timeout=timeout(10))


def _day_trades(engine: Engine) -> int:
    # the PortfolioActor answers after the trades queued before the ask: a replay
    # at full speed queues thousands, so wait longer than the default
    return sum(b.trades for b in engine.klines(SYMBOL, "1d", timeout=timeout(10)))


def _one_trade_file(path: Path, price: str, ts: int) -> str:
    """A replay file of one aggregate trade (a Binance ``@aggTrade`` frame)."""
    frame = {"e": "aggTrade", "E": ts, "s": SYMBOL, "a": 99999999, "p": price,
             "q": "10.00000000", "f": 1, "l": 1, "T": ts, "m": False, "M": True}
    path.write_text(json.dumps(frame) + "\n")
    return str(path)


def test_replayed_binance_trades_become_klines_that_survive_a_restart(tmp_path: Path) -> None:
    trades = recorded_trades()
    store = str(tmp_path / "k.db")
    with Engine(_config(str(data_file(TRADES_FILE)), store), listen=False) as engine:
        wait_until(lambda: _day_trades(engine) == N_TRADES, 30, "every trade counted")
        session = engine.connect()
        for interval, length in INTERVALS.items():
            expected = [wire_row(r) for r in group_by(trades, length)]
            reply = _ask(session, interval, symbol=SYMBOL, interval=interval, limit=1000)
            assert reply["type"] == "KLINES", reply
            assert (reply["symbol"], reply["interval"]) == (SYMBOL, interval)
            assert reply["klines"] == expected[-1000:]  # the newest 1000, oldest first
        # the bound (market.kline_bars, 1000) dropped the oldest minutes
        first = _ask(session, "p", symbol=SYMBOL, interval="1m", startTime=0, limit=3)
        assert first["klines"] == [wire_row(r) for r in group_by(trades, 60_000)[-1000:][:3]]
    with Store(store) as db:
        assert db.last_prices() == {SYMBOL: trades[-1][0]}

    # Restarted on a feed that sends one more trade, a minute after the last one:
    # the bars were restored, and the new trade extends them.
    last_ts = trades[-1][2]
    later = last_ts + 60_000
    extra = _one_trade_file(tmp_path / "one.jsonl", "0.00160000", later)
    with Engine(_config(extra, store), listen=False) as engine:
        wait_until(lambda: _day_trades(engine) == N_TRADES + 1, 30, "the extra trade counted")
        got = engine.klines(SYMBOL, "1m", limit=1000)
        extra_trade = (Decimal("0.00160000"), Decimal("10.00000000"), later)
        expected_rows = group_by([*trades, extra_trade], 60_000)
        assert [(b.open_time, b.open, b.close, b.volume, b.trades) for b in got] == [
            (r[0], r[2], r[5], r[6], r[8]) for r in expected_rows[-1000:]]
    with Store(store) as db:
        assert db.last_prices() == {SYMBOL: Decimal("0.00160000")}


def test_the_store_keeps_at_most_kline_bars_per_symbol_and_interval(tmp_path: Path) -> None:
    store = str(tmp_path / "k.db")
    with Engine(_config(str(data_file(TRADES_FILE)), store, kline_bars=50),
                listen=False) as engine:
        wait_until(lambda: _day_trades(engine) == N_TRADES, 30, "every trade counted")
        assert len(engine.klines(SYMBOL, "1m", limit=1000)) == 50
    with Store(store) as db:
        counts: dict[str, int] = {}
        for bar in db.klines():
            counts[bar.interval] = counts.get(bar.interval, 0) + 1
    trades = recorded_trades()
    assert counts == {iv: min(50, len(group_by(trades, length)))
                      for iv, length in INTERVALS.items()}
    assert counts["1m"] == counts["1h"] == 50 > counts["4h"]


def test_engine_klines_refuses_bad_queries_before_asking(tmp_path: Path) -> None:
    with Engine(_config(str(data_file(TRADES_FILE)), ""), listen=False) as engine:
        with pytest.raises(UnknownInterval):
            engine.klines(SYMBOL, "2m")
        with pytest.raises(BadKlineQuery):
            engine.klines(SYMBOL, "1m", limit=1001)
        with pytest.raises(BadKlineQuery):
            engine.klines(SYMBOL, "1m", start_ms=5, end_ms=4)
        with pytest.raises(UnknownSymbol):
            engine.klines("DOGEUSDT", "1m")


def test_get_klines_over_a_socket_needs_no_token_and_answers_errors(tmp_path: Path) -> None:
    cfg = _config(str(data_file(TRADES_FILE)), "").with_overrides(
        accounts=(AccountConfig(name="alice", token="alice-secret-token"),))
    trades = recorded_trades()
    with Engine(cfg) as engine:
        wait_until(lambda: _day_trades(engine) == N_TRADES, 30, "every trade counted")
        with TickdeskClient(engine.url) as client:  # anonymous: market data only
            reply = client.get_klines(SYMBOL, "1h", limit=5)
            assert reply["klines"] == [wire_row(r) for r in group_by(trades, 3_600_000)[-5:]]
            # bars that OPEN within [startTime, endTime], like Binance
            start, end = trades[0][2], trades[0][2] + 3_600_000
            ranged = client.get_klines(SYMBOL, "15m", start_time=start, end_time=end)
            assert ranged["klines"] == [wire_row(r) for r in group_by(trades, 900_000)
                                        if start <= r[0] <= end]
            assert len(ranged["klines"]) == 4
            for kwargs, code in [({"interval": "1w"}, "BAD_REQUEST"),
                                 ({"interval": "1m", "limit": 0}, "BAD_REQUEST"),
                                 ({"interval": "1m", "start_time": 9, "end_time": 1},
                                  "BAD_REQUEST")]:
                with pytest.raises(CommandError) as err:
                    client.get_klines(SYMBOL, **kwargs)
                assert err.value.code == code
            with pytest.raises(CommandError) as err:
                client.get_klines("DOGEUSDT", "1m")
            assert err.value.code == "UNKNOWN_SYMBOL"
            with pytest.raises(CommandError) as err:
                client.request("get_klines", symbol=SYMBOL)
            assert (err.value.code, err.value.message) == ("BAD_REQUEST",
                                                           "interval: is required")
            with pytest.raises(CommandError) as err:
                client.request("get_klines", symbol=SYMBOL, interval="1m", startTime="0")
            assert err.value.code == "BAD_REQUEST"


DAEMON_CONFIG = """
[server]
host = "127.0.0.1"
port = 0

[feed]
source = "replay"
symbols = ["XRPETH"]

[feed.replay]
path = {replay!r}
speed = 0.0

[store]
path = {db!r}
"""


def _stored_day_trades(db: str) -> int:
    """Trades in the stored 1d bars, read with a read-only connection of our own."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT SUM(trades) FROM klines WHERE interval = '1d'").fetchone()
    except sqlite3.OperationalError:  # the table is not created yet
        return 0
    finally:
        conn.close()
    return int(row[0] or 0)


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    running: list[Daemon] = []
    yield running
    for d in running:
        d.ensure_dead()


def test_kill9_of_the_daemon_keeps_the_bars_written_and_restarts_from_them(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    trades = recorded_trades()
    db = str(tmp_path / "k.db")
    config = tmp_path / "tickdesk.toml"
    config.write_text(DAEMON_CONFIG.format(replay=str(data_file(TRADES_FILE)), db=db))
    first = Daemon(config, tmp_path)
    daemons.append(first)
    # the open bars are written on a cadence (docs/klines.md): wait for the last write
    wait_until(lambda: _stored_day_trades(db) == N_TRADES, 30, "every bar on disk")
    first.kill9()

    later = trades[-1][2] + 60_000
    config.write_text(DAEMON_CONFIG.format(
        replay=_one_trade_file(tmp_path / "one.jsonl", "0.00160000", later), db=db))
    second = Daemon(config, tmp_path)
    daemons.append(second)
    expected = group_by([*trades, (Decimal("0.00160000"), Decimal("10.00000000"), later)], 60_000)
    # on disk only once counted on top of the restored bars
    wait_until(lambda: _stored_day_trades(db) == N_TRADES + 1, 30, "the extra trade stored")
    with TickdeskClient(second.url) as client:
        got = client.get_klines(SYMBOL, "1m", limit=1000)["klines"]
    assert got == [wire_row(r) for r in expected[-1000:]]
    assert second.terminate() == 0
