"""The feed source registry: the names the config accepts, each source's
capabilities, and that the FeedActor and the Engine act on capabilities, not names."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from decimal import Decimal

import pytest

from engine.clock import Clock
from engine.config import FEED_SOURCES, BinanceConfig, ConfigError, FeedConfig, parse_config
from engine.feeds.base import FeedShared, FeedSource
from engine.feeds.registry import SOURCES, PulsedFeed, SourceKind, SourceSink, source_kind
from engine.market.simulated import SimulatedMarket
from engine.messages import Trade
from tests.feeds.helpers import engine_config, is_update, wait_until
from tickdesk.app import Engine


def test_the_config_accepts_exactly_the_registered_sources() -> None:
    assert set(FEED_SOURCES) == set(SOURCES)
    for name in FEED_SOURCES:
        extra = {"replay": {"path": "x.jsonl"}} if name == "replay" else {}
        assert parse_config({"feed": {"source": name, **extra}}).feed.source == name
    with pytest.raises(ConfigError) as err:
        parse_config({"feed": {"source": "kraken"}})
    assert "feed.source" in str(err.value)


def test_source_kind_names_the_known_sources_when_asked_for_another() -> None:
    with pytest.raises(ValueError, match="simulated"):
        source_kind("kraken")


def test_capabilities_of_the_built_in_sources() -> None:
    sim, replay, binance = source_kind("simulated"), source_kind("replay"), source_kind("binance")
    # simulated: stepped on the FeedActor's pulse, UP at once, no live symbols
    assert sim.pulsed is not None and sim.open is None
    assert sim.up_at_start and not sim.live_symbols and not sim.dedupes
    # replay: one thread, UP at once
    assert replay.open is not None and replay.up_at_start and not replay.live_symbols
    # binance: UP only once connected; rotations overlap (de-duplicated); live symbols,
    # 1024 streams a connection at three streams a symbol, four with depth
    assert binance.open is not None and not binance.up_at_start
    assert binance.dedupes and binance.live_symbols
    assert binance.symbol_limit(FeedConfig()) == 341
    assert binance.symbol_limit(FeedConfig(binance=BinanceConfig(depth_levels=20))) == 256
    assert sim.symbol_limit(FeedConfig()) is None


def test_a_source_is_a_thread_source_or_pulse_driven_not_both() -> None:
    def pulsed(cfg: FeedConfig, start: Mapping[str, Decimal]) -> PulsedFeed:
        return PulsedFeed(SimulatedMarket(cfg.symbols, 1), 1.0)

    def opened(cfg: FeedConfig, sink: SourceSink, clock: Clock, shared: FeedShared) -> FeedSource:
        raise AssertionError("not called")

    with pytest.raises(ValueError):
        SourceKind()
    with pytest.raises(ValueError):
        SourceKind(open=opened, pulsed=pulsed)


class _Scripted:
    """A thread source playing fixed trades, then idling until stopped."""

    def __init__(self, sink: SourceSink, clock: Clock) -> None:
        self._sink, self._clock = sink, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feed-scripted", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        now = self._clock.now_ms()
        self._sink.up()
        self._sink.deliver((Trade("BTCUSDT", Decimal("123.5"), Decimal(1), now, now, 1),), now)
        self._stop.wait(10)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


def test_a_new_source_is_one_registry_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    def open_scripted(cfg: FeedConfig, sink: SourceSink, clock: Clock,
                      shared: FeedShared) -> FeedSource:
        return _Scripted(sink, clock)

    monkeypatch.setitem(SOURCES, "scripted", SourceKind(open=open_scripted, up_at_start=False))
    feed = FeedConfig(source="scripted", symbols=("BTCUSDT",))
    with Engine(engine_config(feed), listen=False) as engine:
        wait_until(lambda: engine.feed_status()["status"] == "UP", what="the source up")
        session = engine.connect()
        session.send({"action": "subscribe_ticker", "symbol": "BTCUSDT", "id": 1})
        assert session.wait_for(is_update("BTCUSDT", 123.5), timeout=5)["price"] == 123.5
