"""Upstream faults against the fake Binance on loopback: nothing hangs, nothing lies.

Each fault ends with a clear log line, a truthful FEED_STATUS (RECONNECTING
with a growing attempt, never a premature UP) and recovery once the fault is
gone. Every wait is bounded; backoff is small (50 ms doubling to 400 ms).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from engine.config import FeedConfig
from tests.fakes.binance_rest import binance_config
from tests.fakes.binance_upstream import FakeBinanceUpstream
from tests.feeds.helpers import engine_config, is_update, wait_until
from tickdesk.app import Engine, LocalSession

Msg = dict[str, Any]
POISON_ID = 2**63 - 1


def _engine(url: str, **binance: Any) -> Engine:
    opts: dict[str, Any] = {"stall_timeout_s": 5.0, "connect_timeout_s": 0.3}
    opts.update(binance)
    feed = FeedConfig(source="binance", symbols=("BTCUSDT",),
                      binance=binance_config(url, **opts))
    return Engine(engine_config(feed, backoff_min_s=0.05, backoff_max_s=0.4),
                  listen=False)


def _statuses(session: LocalSession, until: Callable[[Msg], bool], timeout: float = 10.0
              ) -> list[Msg]:
    """The FEED_STATUS messages (and CONNECTED's) up to the first that matches."""
    out: list[Msg] = []
    while True:
        msg = session.wait_for(lambda m: m.get("type") in ("FEED_STATUS", "CONNECTED"),
                               timeout=timeout)
        status = msg["feed"] if msg["type"] == "CONNECTED" else msg
        out.append(status)
        if until(status):
            return out


def _attempt(n: int) -> Callable[[Msg], bool]:
    return lambda m: m.get("status") == "RECONNECTING" and m.get("attempt", 0) >= n


def _lost(caplog: pytest.LogCaptureFixture, prefix: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.getMessage().startswith(f"binance feed lost: {prefix}")]


def test_an_upstream_that_never_answers_the_handshake_is_a_failed_attempt(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with FakeBinanceUpstream(stream_prices={"BTCUSDT": "50000"}) as fake:
        fake.never_answer()
        with _engine(fake.base_url) as engine:
            session = engine.connect()
            seen = _statuses(session, _attempt(3))
            assert all(m["status"] == "RECONNECTING" for m in seen)
            failed = [m for m in seen if m["attempt"] >= 1]
            assert [m["attempt"] for m in failed] == list(range(1, len(failed) + 1))
            assert all(m["reason"] == "connect timeout (no handshake within 0.3s)"
                       for m in failed)
            assert failed[-1]["retryInMs"] > failed[0]["retryInMs"]  # backing off
            assert fake.unanswered_handshakes >= 3
            assert _lost(caplog, "connect timeout")
            fake.never_answer(False)
            _statuses(session, lambda m: m.get("status") == "UP")
            session.send({"action": "subscribe_ticker", "symbol": "BTCUSDT"})
            session.wait_for(is_update("BTCUSDT", 50000.0), timeout=5)


def test_an_upstream_that_closes_after_the_handshake_never_reports_up(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with FakeBinanceUpstream(stream_prices={"BTCUSDT": "50000"}) as fake:
        fake.close_at_once()
        with _engine(fake.base_url) as engine:
            session = engine.connect()
            seen = _statuses(session, _attempt(4))
            assert [m["status"] for m in seen] == ["RECONNECTING"] * len(seen)  # no flapping
            assert fake.closed_at_once >= 4
            assert engine.feed_shared.statistics().connections_opened >= 4  # handshakes done
            delays = [m["retryInMs"] for m in seen if m["attempt"] >= 1]
            assert delays[-1] > delays[0]
            assert _lost(caplog, "upstream closed")
            fake.close_at_once(False)
            _statuses(session, lambda m: m.get("status") == "UP")


def test_an_oversized_frame_closes_the_connection_before_it_is_buffered(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    size = 20 * 1024 * 1024
    with (FakeBinanceUpstream(stream_prices={"BTCUSDT": "50000"}) as fake,
          _engine(fake.base_url, max_frame_bytes=1 << 20) as engine):
        session = engine.connect()
        _statuses(session, lambda m: m.get("status") == "UP")
        sent = fake.send_oversized(size)
        seen = _statuses(session, _attempt(1))
        assert seen[-1]["reason"] == f"frame too large: {size} bytes (max 1048576)"
        # the client stopped reading at the header (not even while closing): most
        # of the 20 MB could never be sent
        assert sent < size // 2, sent
        assert _lost(caplog, "frame too large")
        _statuses(session, lambda m: m.get("status") == "UP")
        session.send({"action": "subscribe_ticker", "symbol": "BTCUSDT"})
        session.wait_for(is_update("BTCUSDT", 50000.0), timeout=5)


# -- poison trades ---------------------------------------------------------------------


@pytest.fixture
def scripted() -> Iterator[FakeBinanceUpstream]:
    with FakeBinanceUpstream(known_symbols={"BTCUSDT"}) as fake:
        yield fake


def _market(engine: Engine, fake: FakeBinanceUpstream) -> LocalSession:
    session = engine.connect()
    session.send({"action": "subscribe_ticker", "symbol": "BTCUSDT", "id": "s"})
    session.wait_for(lambda m: m.get("id") == "s", timeout=5)
    assert fake.wait_until(lambda: fake.subscribers("btcusdt@aggTrade") == 1)
    return session


def _read_until(session: LocalSession, pred: Callable[[Msg], bool], timeout: float = 5.0
                ) -> list[Msg]:
    """Every message up to and including the first that matches ``pred``."""
    out: list[Msg] = []
    while not out or not pred(out[-1]):
        out.append(session.wait_for(lambda _m: True, timeout=timeout))
    return out


def test_the_issue_poison_trade_fills_nothing_and_freezes_nothing(
        scripted: FakeBinanceUpstream, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with _engine(scripted.base_url) as engine:
        session = _market(engine, scripted)
        scripted.push_trade("BTCUSDT", "40000", "0.5")
        scripted.push_trade("BTCUSDT", "40000", "0.5")  # vouches for the first
        session.wait_for(is_update("BTCUSDT", 40000.0), timeout=5)
        session.send({"action": "place_order", "symbol": "BTCUSDT", "side": "SELL",
                      "type": "STOP_LOSS", "quantity": "0.1", "stopPrice": "30000", "id": "o"})
        assert session.wait_for(lambda m: m.get("id") == "o", timeout=5)[
            "executionType"] == "NEW"
        # a = 2^63-1, p = 0.01; then a plausible id at 0.01; then genuine trades
        scripted.push_trade("BTCUSDT", "0.01", "1", agg_id=POISON_ID, advance=False)
        scripted.push_trade("BTCUSDT", "0.01", "1", advance=False)
        for price in ("40010", "40020", "40030"):
            scripted.push_trade("BTCUSDT", price, "0.5")
        seen = _read_until(session, is_update("BTCUSDT", 40030.0))
        session.send({"action": "get_orders", "status": "open", "id": "q"})
        seen += _read_until(session, lambda m: m.get("id") == "q")
        assert 0.01 not in [m["price"] for m in seen if m["type"] == "MARKET_UPDATE"]
        assert [m["type"] for m in seen if m["type"] == "ORDER_UPDATE"] == []  # no trigger
        orders = seen[-1]["orders"]
        assert [(o["type"], o["status"]) for o in orders] == [("STOP_LOSS", "NEW")]
        dropped = engine.feed_shared.dropped_trades()
        assert dropped["id_jump"] == 1 and dropped["price_band"] == 1
        assert engine.feed_shared.statistics().agg_trades_missed == 0  # nor a "gap" of 2^63
        drops = [r.getMessage() for r in caplog.records
                 if "dropped an implausible trade" in r.getMessage()]
        # the first drop is logged; the second, seconds later at most, waits for the
        # next report (at most one line per DROP_LOG_EVERY_S = 10 s)
        assert drops == [f"feed: dropped an implausible trade (id_jump): BTCUSDT id {POISON_ID}"
                         " price 0.01"]


def test_a_new_connection_is_not_frozen_by_the_old_watermark(
        scripted: FakeBinanceUpstream) -> None:
    with _engine(scripted.base_url) as engine:
        session = _market(engine, scripted)
        scripted.push_trade("BTCUSDT", "40000", "0.5", agg_id=5000)
        scripted.push_trade("BTCUSDT", "40001", "0.5")
        session.wait_for(is_update("BTCUSDT", 40001.0), timeout=5)
        opened = engine.feed_shared.statistics().connections_opened
        scripted.drop_all()
        wait_until(lambda: engine.feed_shared.statistics().connections_opened > opened,
                   what="a new connection")
        assert scripted.wait_until(lambda: scripted.subscribers("btcusdt@aggTrade") == 1)
        # the new connection's ids are far behind the old watermark (an upstream
        # whose ids restarted): they flow once the second vouches for the first
        scripted.push_trade("BTCUSDT", "40100", "0.5", agg_id=10)
        scripted.push_trade("BTCUSDT", "40101", "0.5")
        session.wait_for(is_update("BTCUSDT", 40101.0), timeout=5)
        scripted.push_trade("BTCUSDT", "40102", "0.5")
        session.wait_for(is_update("BTCUSDT", 40102.0), timeout=5)
        assert engine.feed_shared.dropped_trades() == {"id_jump": 0, "price_band": 0,
                                                       "unconfirmed": 0}
