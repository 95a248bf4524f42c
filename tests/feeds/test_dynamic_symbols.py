"""Symbols added live on the Binance feed (``feed.dynamic_symbols``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from engine.clock import Clock
from engine.config import BinanceConfig, FeedConfig
from tests.clock import FakeClock
from tests.fakes.binance_rest import FakeBinanceRest, entry, shared_rest
from tests.fakes.binance_upstream import FakeBinanceUpstream
from tests.feeds.helpers import engine_config, is_update, wait_until
from tickdesk.app import Engine

LISTED = {"BTCUSDT": "50000.0", "ETHUSDT": "3000.0", "SOLUSDT": "150.0",
          **{f"X{i}USDT": f"{i + 1}.0" for i in range(8)}}
WATCHDOG = "feed-binance-watch"
#: listed on the exchange, but nothing trades: SUBSCRIBE is accepted, no data comes
SILENT = "NOSUCHCOIN"


@pytest.fixture
def upstream(binance_rest: FakeBinanceRest) -> Iterator[FakeBinanceUpstream]:
    with FakeBinanceUpstream(known_symbols=[SILENT], stream_prices=LISTED) as fake:
        yield fake


def _rest() -> FakeBinanceRest:
    """The exchange's REST API knows every listed symbol (the silent ones too) and
    UNLISTED, so that the WebSocket's own refusal is what these tests see (a symbol
    exchangeInfo does not know is refused before any SUBSCRIBE: test_exchange_info.py)."""
    rest = shared_rest()
    for symbol in [*LISTED, SILENT, "SILENTTWO", "UNLISTED"]:
        if symbol not in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):  # in the snapshot
            rest.add(entry(symbol, symbol.removesuffix("USDT"), "USDT"))
    return rest


def _engine(url: str, dynamic: bool = True, clock: Clock | None = None) -> Engine:
    feed = FeedConfig(source="binance", symbols=("BTCUSDT", "ETHUSDT"), dynamic_symbols=dynamic,
                      binance=BinanceConfig(url=url, stall_timeout_s=0.5,
                                            subscribe_timeout_s=0.5,
                                            rest_url=_rest().base_url))
    return Engine(engine_config(feed), listen=False, clock=clock)


def _reply(rid: str) -> Any:
    return lambda m: m.get("id") == rid


def _up(engine: Engine) -> None:
    wait_until(lambda: engine.feed_status()["status"] == "UP", what="feed UP")


def test_listed_symbol_is_added_live_and_kept_after_reconnect(
        upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url) as engine:
        _up(engine)
        session = engine.connect()
        session.send({"action": "subscribe_ticker", "symbol": "solusdt", "id": "s1"})
        ok = session.wait_for(_reply("s1"), timeout=5)
        assert ok["type"] == "SUBSCRIBED" and ok["symbol"] == "SOLUSDT"
        session.wait_for(is_update("SOLUSDT", 150.0), timeout=5)
        assert upstream.control_requests[0]["method"] == "SUBSCRIBE"
        assert upstream.control_requests[0]["params"] == ["solusdt@aggTrade", "solusdt@ticker"]
        assert engine.feed_shared.snapshot()["dynamicSymbols"] == ["SOLUSDT"]
        # a second client gets it at once, with the snapshot
        other = engine.connect()
        other.send({"action": "subscribe_ticker", "symbol": "SOLUSDT", "id": 2})
        assert other.wait_for(lambda m: m.get("id") == 2,
                              timeout=5)["type"] == "SUBSCRIBED"
        other.wait_for(is_update("SOLUSDT"), timeout=5)
        # after a reconnect the symbol is in the combined URL
        upstream.drop_all()
        assert upstream.wait_until(lambda: upstream.accepted_connections >= 2, timeout=5)
        assert "solusdt@aggTrade" in upstream.request_targets[-1]
        upstream.set_price("SOLUSDT", "151.0")
        session.wait_for(is_update("SOLUSDT", 151.0), timeout=5)


def test_symbol_without_data_is_unknown_after_the_timeout(upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url) as engine:
        _up(engine)
        session = engine.connect()
        session.send({"action": "subscribe_ticker", "symbol": SILENT, "id": "n"})
        err = session.wait_for(_reply("n"), timeout=5)
        assert err["type"] == "ERROR" and err["code"] == "UNKNOWN_SYMBOL"
        wait_until(lambda: [c["method"] for c in upstream.control_requests] == ["SUBSCRIBE",
                                                                                 "UNSUBSCRIBE"],
                   what="the subscription withdrawn")
        assert not engine.feed_shared.serves(SILENT)


def test_control_messages_respect_five_per_second(binance_rest: FakeBinanceRest) -> None:
    """On the feed's own clock: five SUBSCRIBEs go out at once, the sixth only
    when that clock has moved a full second past them."""
    clock = FakeClock()
    # The fake's own limit counts real seconds; here time is the FakeClock's.
    with FakeBinanceUpstream(known_symbols=[SILENT], stream_prices=LISTED,
                             control_rate_limit=None) as upstream, \
            _engine(upstream.base_url, clock=clock) as engine:
        _up(engine)
        session = engine.connect()
        for i in range(8):
            session.send({"action": "subscribe_ticker", "symbol": f"X{i}USDT", "id": i})
        assert upstream.wait_until(lambda: upstream.control_messages == 5)

        def held_after(seconds: float) -> None:
            clock.advance(seconds)
            reads = clock.reads_from(WATCHDOG)  # it sends the queued control messages
            wait_until(lambda: clock.reads_from(WATCHDOG) >= reads + 2,
                       what="the feed's watchdog to look at its clock again")
            assert upstream.control_messages == 5

        held_after(0)
        held_after(0.999)
        clock.advance(0.001)
        # each symbol's filters are loaded first (one loader thread each), so the
        # answers may come in any order
        answers: dict[Any, str] = {}

        def all_answered(m: dict[str, Any]) -> bool:
            if m.get("id") in range(8):
                answers[m["id"]] = m["type"]
            return len(answers) == 8

        session.wait_for(all_answered, timeout=5)
        assert answers == dict.fromkeys(range(8), "SUBSCRIBED")
        assert upstream.control_messages == 8


def test_dynamic_off_answers_unknown_at_once(upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url, dynamic=False) as engine:
        _up(engine)
        session = engine.connect()
        session.send({"action": "subscribe_ticker", "symbol": "SOLUSDT", "id": 1})
        err = session.wait_for(lambda m: m.get("id") == 1, timeout=5)
        assert err["code"] == "UNKNOWN_SYMBOL"
        assert upstream.control_requests == []


def test_refused_and_silent_symbols_each_get_exactly_one_answer(
        binance_rest: FakeBinanceRest) -> None:
    # UNLISTED is refused by the exchange at once; the two silent ones time out, a few
    # milliseconds apart (one wake-up timer serves both deadlines); SOLUSDT is added.
    with FakeBinanceUpstream(known_symbols=[SILENT, "SILENTTWO"], stream_prices=LISTED) as fake, \
            _engine(fake.base_url) as engine:
        _up(engine)
        session = engine.connect()
        for rid, symbol in (("r", "UNLISTED"), ("s1", SILENT), ("s2", "SILENTTWO"),
                            ("ok", "SOLUSDT")):
            session.send({"action": "subscribe_ticker", "symbol": symbol, "id": rid})
        answers: dict[str, list[dict[str, Any]]] = {}

        def answered(msg: dict[str, Any]) -> bool:
            if msg.get("type") in ("SUBSCRIBED", "ERROR"):
                answers.setdefault(str(msg.get("id")), []).append(msg)
            return len(answers) == 4

        session.wait_for(answered, timeout=10)
        # every waiter is answered; a ping afterwards shows no second answer is queued
        session.send({"action": "ping", "id": "end"})
        session.wait_for(lambda m: answered(m) and m.get("id") == "end", timeout=5)
        assert {rid: [m["type"] for m in msgs] for rid, msgs in answers.items()} == {
            "r": ["ERROR"], "s1": ["ERROR"], "s2": ["ERROR"], "ok": ["SUBSCRIBED"]}
        assert "refused by the exchange" in answers["r"][0]["message"]
        assert answers["s1"][0]["code"] == answers["s2"][0]["code"] == "UNKNOWN_SYMBOL"
        assert "no market data" in answers["s2"][0]["message"]
        wait_until(lambda: sorted((c["method"], tuple(c["params"]))
                                  for c in fake.control_requests if c["method"] == "UNSUBSCRIBE")
                   == [("UNSUBSCRIBE", (f"{s}@aggTrade", f"{s}@ticker"))
                       for s in ("nosuchcoin", "silenttwo")],
                   what="both silent subscriptions withdrawn")
        assert engine.feed_shared.snapshot()["dynamicSymbols"] == ["SOLUSDT"]
