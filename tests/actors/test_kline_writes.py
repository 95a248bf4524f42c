"""The PortfolioActor's kline writes, driven directly (no thread): what is on
disk after each ``klines`` pulse, at cleanup, after a refused write, and the
one answer of a ``get_klines`` orphaned by a failure."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from actors.messages import KlineRequest, Pulse, TradeTick
from actors.portfolio import KLINE_OPEN_SAVE_MS, PortfolioActor
from engine.config import TradingConfig
from engine.market.klines import Kline, KlineQuery
from engine.messages import Trade
from engine.protocol.server_messages import Outgoing
from engine.server.hub import Hub
from engine.store import Store
from engine.store_health import StoreHealth
from tests.clock import FakeClock

SYMBOL = "BTCUSDT"
MINUTE = 60_000


class _Channel:
    conn_id = 1
    closed = False

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    def deliver(self, out: Outgoing) -> None:
        self.got.append(orjson.loads(out.payload))

    def close(self, code: int, reason: str = "") -> None:
        pass


def _actor(db: str, clock: FakeClock, health: StoreHealth | None = None) -> PortfolioActor:
    actor = PortfolioActor(Hub(), TradingConfig(), ("alice",), clock.now_ms, store_path=db,
                           store_health=health)
    actor.started()  # opens the store in this (the test's) thread
    return actor


def _trade(actor: PortfolioActor, price: int, ts: int) -> None:
    actor._on_tick(TradeTick(Trade(SYMBOL, Decimal(price), Decimal(1), ts, ts), ts))


def _stored(db: str) -> dict[tuple[str, int], tuple[Decimal, int]]:
    """(interval, open time) -> (close, trades) as on disk, read by a connection of our own."""
    conn = sqlite3.connect(db)
    try:
        return {(iv, ot): (Decimal(c), n) for iv, ot, c, n in conn.execute(
            "SELECT interval, open_time, close, trades FROM klines")}
    finally:
        conn.close()


def test_closed_bars_at_the_next_pulse_open_bars_on_their_cadence(tmp_path: Path) -> None:
    db = str(tmp_path / "k.db")
    clock = FakeClock(start_ms=10 * MINUTE)
    actor = _actor(db, clock)
    t0 = 10 * MINUTE
    _trade(actor, 100, t0)
    actor._on_pulse(Pulse("klines"))  # the first pulse writes the open bars
    assert _stored(db)[("1m", t0)] == (Decimal(100), 1)
    _trade(actor, 101, t0 + 1000)
    clock.advance(1)
    actor._on_pulse(Pulse("klines"))  # nothing closed, open bars not due
    assert _stored(db)[("1m", t0)] == (Decimal(100), 1)
    _trade(actor, 102, t0 + MINUTE)  # closes the first minute
    clock.advance(1)
    actor._on_pulse(Pulse("klines"))
    stored = _stored(db)
    assert stored[("1m", t0)] == (Decimal(101), 2)  # the closed bar, final
    assert ("1m", t0 + MINUTE) not in stored  # the open one waits for its cadence
    assert stored[("1d", 0)] == (Decimal(100), 1)
    clock.advance(KLINE_OPEN_SAVE_MS / 1000)
    actor._on_pulse(Pulse("klines"))
    stored = _stored(db)
    assert stored[("1m", t0 + MINUTE)] == (Decimal(102), 1)
    assert stored[("1d", 0)] == (Decimal(102), 3)
    _trade(actor, 103, t0 + MINUTE + 1)
    actor.cleanup()  # a stop (or a failure) writes what is unsaved
    assert _stored(db)[("1d", 0)] == (Decimal(103), 4)


def test_a_refused_write_is_counted_and_retried_at_the_next_pulse(tmp_path: Path) -> None:
    db = str(tmp_path / "k.db")
    clock = FakeClock(start_ms=10 * MINUTE)
    health = StoreHealth()
    actor = _actor(db, clock, health)
    store = actor._store
    assert store is not None
    real = store.write_klines
    refusals = [sqlite3.OperationalError("database or disk is full")]

    def write(bars: list[Kline], keep: int) -> None:
        if refusals:
            raise refusals.pop()
        real(bars, keep)

    store.write_klines = write  # type: ignore[method-assign]
    _trade(actor, 100, 10 * MINUTE)
    actor._on_pulse(Pulse("klines"))
    assert not health.writable
    assert _stored(db) == {}
    clock.advance(1)
    _trade(actor, 101, 11 * MINUTE)  # a bar closed: due at the next pulse
    actor._on_pulse(Pulse("klines"))
    assert health.writable
    assert _stored(db)[("1m", 10 * MINUTE)] == (Decimal(100), 1)
    actor.cleanup()


def test_klines_are_restored_by_the_next_actor(tmp_path: Path) -> None:
    db = str(tmp_path / "k.db")
    clock = FakeClock(start_ms=10 * MINUTE)
    first = _actor(db, clock)
    _trade(first, 100, 10 * MINUTE)
    first.cleanup()
    again = _actor(db, clock)
    bars = again._on_klines(KlineRequest(KlineQuery(SYMBOL, "1m")))
    assert bars is not None and [(b.open_time, b.close) for b in bars] == [
        (10 * MINUTE, Decimal(100))]
    with Store(db) as store:
        assert store.last_prices() == {SYMBOL: Decimal(100)}
    again.cleanup()


def test_get_klines_gets_one_answer_even_when_the_actor_fails() -> None:
    clock = FakeClock()
    actor = PortfolioActor(Hub(), TradingConfig(), ("alice",), clock.now_ms)
    channel = _Channel()
    actor.orphaned(KlineRequest(KlineQuery(SYMBOL, "1m"), channel, "k1"))  # type: ignore[arg-type]
    assert [(m["type"], m["code"], m["id"]) for m in channel.got] == [
        ("ERROR", "INTERNAL", "k1")]
    actor._on_klines(KlineRequest(KlineQuery(SYMBOL, "1m"), channel, "k2"))  # type: ignore[arg-type]
    assert channel.got[-1] == {"type": "KLINES", "symbol": SYMBOL, "interval": "1m",
                               "klines": [], "timestamp": clock.now_ms(), "id": "k2"}
