"""The Binance source against a fake upstream on loopback: prices, outages, recovery.

Every wait is bounded (session waits with timeouts, events); the supervisor's
backoff is small (50 ms doubling to 400 ms, ±20 %) so the file runs in seconds.
Recovery times measured here are printed (``pytest -s``) for the record.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from engine.clock import Clock
from engine.config import FeedConfig
from tests.clock import FakeClock
from tests.fakes.binance_rest import FakeBinanceRest, binance_config
from tests.fakes.binance_upstream import FakeBinanceUpstream
from tests.feeds.helpers import engine_config, is_update, wait_until
from tickdesk.app import Engine, LocalSession

BACKOFF_MIN, BACKOFF_MAX, JITTER = 0.05, 0.4, 0.2
Msg = dict[str, Any]
PRICES = {"BTCUSDT": "50000.0", "ETHUSDT": "3000.0"}


def _fake() -> FakeBinanceUpstream:
    """The fake upstream streaming :data:`PRICES` every 10 ms."""
    return FakeBinanceUpstream(stream_prices=PRICES)


@pytest.fixture
def upstream(binance_rest: FakeBinanceRest) -> Iterator[FakeBinanceUpstream]:
    with _fake() as fake:
        yield fake


def _engine(url: str, *, stall: float = 0.5, rotate_after: float = 85800.0,
            clock: Clock | None = None, **supervisor: Any) -> Engine:
    feed = FeedConfig(source="binance", symbols=("BTCUSDT", "ETHUSDT"),
                      binance=binance_config(url, stall_timeout_s=stall,
                                             rotate_after_s=rotate_after))
    return Engine(engine_config(feed, backoff_min_s=BACKOFF_MIN, backoff_max_s=BACKOFF_MAX,
                                backoff_jitter=JITTER, **supervisor), listen=False,
                  clock=clock)


def _collect(session: LocalSession, pred: Callable[[Msg], bool], timeout: float = 5.0
             ) -> list[Msg]:
    """Every message up to and including the first that matches ``pred``."""
    deadline = time.monotonic() + timeout
    seen: list[Msg] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            kinds = [(m.get("type"), m.get("status")) for m in seen[-10:]]
            raise AssertionError(f"no matching message within {timeout}s; last seen {kinds}")
        msg = session.get(timeout=left)
        seen.append(msg)
        if pred(msg):
            return seen


def _status(status: str) -> Callable[[Msg], bool]:
    return lambda m: m.get("type") == "FEED_STATUS" and m.get("status") == status


def _subscribed(engine: Engine, upstream: FakeBinanceUpstream) -> LocalSession:
    session = engine.connect()
    first = session.get(timeout=5)
    assert first["type"] == "CONNECTED"
    if first["feed"]["status"] != "UP":
        _collect(session, _status("UP"))
    session.send({"action": "subscribe_ticker", "symbol": "btcusdt"})
    session.wait_for(is_update("BTCUSDT", 50000.0), timeout=5)
    return session


def _retry_in_bounds(msg: Msg) -> None:
    lo = BACKOFF_MIN * (1 - JITTER) * 1000 - 1
    hi = BACKOFF_MAX * (1 + JITTER) * 1000 + 1
    assert lo <= msg["retryInMs"] <= hi, msg


def test_prices_flow_and_status_goes_up_only_when_open(upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url) as engine:
        session = _subscribed(engine, upstream)
        assert engine.feed_status()["status"] == "UP"
        assert upstream.request_targets[0] == (
            "/stream?streams=btcusdt@aggTrade/btcusdt@ticker/btcusdt@bookTicker"
            "/ethusdt@aggTrade/ethusdt@ticker/ethusdt@bookTicker")
        upstream.set_price("BTCUSDT", "50100.5")
        upd = session.wait_for(is_update("BTCUSDT", 50100.5), timeout=5)
        assert upd["high"] == 100201.0 or upd["high"] is None or upd["high"] > 0
        snap = engine.feed_shared.snapshot()
        assert snap["opened"] == 1 and snap["gapEvents"] == 0
    # stop closed the upstream connection and joined the source's threads
    assert not [t for t in threading.enumerate() if t.name.startswith("feed-binance")]
    wait_until(lambda: upstream.open_connections() == 0, what="upstream connection closed")


def test_first_status_is_reconnecting_until_the_upstream_opens() -> None:
    with _fake() as fake:
        fake.refuse()
        with _engine(fake.base_url) as engine:
            session = engine.connect()
            seen = _collect(session, lambda m: m.get("type") == "FEED_STATUS"
                            and m.get("attempt", 0) >= 2)
            assert seen[0]["type"] == "CONNECTED"
            assert seen[0]["feed"]["status"] == "RECONNECTING"
            statuses = [m for m in seen if m["type"] == "FEED_STATUS"]
            assert all(m["status"] == "RECONNECTING" for m in statuses)
            assert statuses[-1]["reason"] == "connect failed: WebSocketBadStatusException"
            fake.accept_upgrades()
            _collect(session, _status("UP"))


def test_repeated_drops_reconnect_with_backoff_and_prices_resume(
        upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url) as engine:
        session = _subscribed(engine, upstream)
        recoveries = []
        for outage in range(1, 4):
            accepted = upstream.accepted_connections
            t0 = time.monotonic()
            assert upstream.drop_all() == 1
            seen = _collect(session, _status("UP"), timeout=5)
            statuses = [m for m in seen if m["type"] == "FEED_STATUS"]
            assert [m["status"] for m in statuses] == ["RECONNECTING", "UP"]
            assert statuses[0]["attempt"] == outage  # no stable period in between
            _retry_in_bounds(statuses[0])
            price = 50000.0 + outage
            upstream.set_price("BTCUSDT", str(price))
            session.wait_for(is_update("BTCUSDT", price), timeout=5)
            recoveries.append(time.monotonic() - t0)
            assert upstream.accepted_connections == accepted + 1  # one attempt per outage
        print(f"\nrecovery after a drop (drop -> new price delivered): "
              f"{', '.join(f'{r * 1000:.0f} ms' for r in recoveries)}")
        # trades the fake made while we were away show as aggregate-id gaps
        snap = engine.feed_shared.snapshot()
        assert snap["gapEvents"] >= 1 and snap["missingTrades"] >= 1


def test_data_stall_is_detected_and_recovers(upstream: FakeBinanceUpstream) -> None:
    """A stall is measured on the feed's clock: silence alone is not one until
    that clock has moved more than ``stall_timeout_s`` past the last frame."""
    clock = FakeClock()
    with _engine(upstream.base_url, stall=0.3, clock=clock) as engine:
        session = _subscribed(engine, upstream)
        upstream.stall()  # connection open, pongs answered, no data

        def still_up_after(seconds: float) -> None:
            clock.advance(seconds)
            reads = clock.reads_from("feed-binance-watch")
            wait_until(lambda: clock.reads_from("feed-binance-watch") >= reads + 2,
                       what="the feed's watchdog to look at its clock again")
            assert engine.feed_status()["status"] == "UP"

        still_up_after(0)
        still_up_after(0.29)
        clock.advance(0.02)
        seen = _collect(session, _status("RECONNECTING"), timeout=5)
        assert seen[-1]["reason"] == "data stall: no data for 0.3s"  # 0.31 s, as logged
        _retry_in_bounds(seen[-1])
        upstream.unstall()
        upstream.set_price("BTCUSDT", "49000.0")
        session.wait_for(is_update("BTCUSDT", 49000.0), timeout=5)
        # UP is reported with the first data frame (the supervisor sets it meanwhile)
        wait_until(lambda: engine.feed_status()["status"] == "UP", what="feed UP")


def test_server_shutdown_event_reconnects(upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url) as engine:
        session = _subscribed(engine, upstream)
        upstream.server_shutdown_event()
        seen = _collect(session, _status("UP"), timeout=5)
        reconnecting = [m for m in seen if m.get("status") == "RECONNECTING"]
        assert reconnecting[0]["reason"] == "server shutdown"
        wait_until(lambda: upstream.accepted_connections == 2, what="a second connection")


def test_garbage_frames_are_counted_and_dropped(upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url) as engine:
        session = _subscribed(engine, upstream)
        garbage = [
            "not json at all",
            "[1, 2",
            '"a string"',
            '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT",'
            '"a":1,"p":"NaN","q":"1","T":1}}',
            '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT",'
            '"a":1,"p":"0","q":"1","T":1}}',
            '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","s":"BTCUSDT"}}',
            '{"hello":"world"}',
        ]
        for text in garbage:
            upstream.push_raw(text)
        expected = {"not_json": 2, "not_object": 1, "bad_number": 1, "non_positive": 1,
                    "missing_field": 1, "unrecognized": 1}
        wait_until(lambda: engine.feed_shared.codec_snapshot()["dropped"] == expected,
                   what="garbage counted")
        upstream.set_price("BTCUSDT", "50002.0")
        seen = _collect(session, is_update("BTCUSDT", 50002.0), timeout=5)
        assert not [m for m in seen if m["type"] == "FEED_STATUS"]  # still UP throughout
        assert upstream.accepted_connections == 1


def test_refused_for_a_while_then_recovery(upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url) as engine:
        session = _subscribed(engine, upstream)
        upstream.refuse()
        upstream.drop_all()
        seen = _collect(session, lambda m: m.get("type") == "FEED_STATUS"
                        and m.get("attempt", 0) >= 4, timeout=10)
        statuses = [m for m in seen if m["type"] == "FEED_STATUS"]
        assert [m["attempt"] for m in statuses] == [1, 2, 3, 4]
        assert all(m["status"] == "RECONNECTING" for m in statuses)
        for m in statuses:
            _retry_in_bounds(m)
        # exponential: 50, 100, 200, 400 ms (±20 %)
        assert statuses[3]["retryInMs"] > statuses[1]["retryInMs"]
        t0 = time.monotonic()
        upstream.accept_upgrades()
        upstream.set_price("BTCUSDT", "51000.0")
        session.wait_for(is_update("BTCUSDT", 51000.0), timeout=5)
        took = time.monotonic() - t0
        print(f"\nrecovery after refusals (upstream back -> price delivered): "
              f"{took * 1000:.0f} ms; refused attempts: {upstream.refused_connections}, "
              f"then 1 accepted")
        # UP travels through the Supervisor's thread: it may follow the first price
        wait_until(lambda: engine.feed_status()["status"] == "UP", what="feed UP")


def test_escalation_reports_down_and_keeps_retrying() -> None:
    with _fake() as fake, _engine(fake.base_url, max_restarts=2) as engine:
        session = _subscribed(engine, fake)
        fake.refuse()
        fake.drop_all()
        seen = _collect(session, _status("DOWN"), timeout=10)
        assert seen[-1]["attempt"] == 3
        fake.accept_upgrades()
        _collect(session, _status("UP"), timeout=5)


def test_rotation_connects_new_first_without_status_change(
        upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url, rotate_after=1.0) as engine:
        session = _subscribed(engine, upstream)
        assert upstream.wait_until(lambda: upstream.accepted_connections >= 2, timeout=5)
        wait_until(lambda: upstream.open_connections() == 1, what="the old connection closed")
        upstream.set_price("BTCUSDT", "52000.0")
        seen = _collect(session, is_update("BTCUSDT", 52000.0), timeout=5)
        assert not [m for m in seen if m["type"] == "FEED_STATUS"]
        assert engine.feed_status()["status"] == "UP"
        assert len(upstream.request_targets) == upstream.accepted_connections  # none refused
