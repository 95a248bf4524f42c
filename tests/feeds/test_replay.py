"""The replay source: recorded files through the whole engine, and its bounds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

from engine.clock import SystemClock
from engine.config import FeedConfig, ReplayConfig, TradingConfig
from engine.feeds.base import FeedShared, MarketItem
from engine.feeds.replay import ReplaySource
from engine.market.replay_format import ReplayRecord
from engine.messages import Trade
from tests.clock import FakeClock
from tests.conftest import timeout
from tests.feeds.helpers import data_file, engine_config, is_update, wait_until
from tickdesk.app import Engine


def _replay_engine(path: str, symbols: tuple[str, ...], **replay: object) -> Engine:
    feed = FeedConfig(source="replay", symbols=symbols,
                      replay=ReplayConfig(path=path, **replay))  # type: ignore[arg-type]
    # Some ETH too: an XRPETH order is funded from the account's ETH (docs/trading.md).
    trading = TradingConfig(balances=(("ETH", Decimal(1)), ("USDT", Decimal(10000))))
    return Engine(engine_config(feed).with_overrides(trading=trading), listen=False)


def test_cryptofeed_capture_prices_reach_a_subscriber() -> None:
    path = data_file("cryptofeed/BINANCE.ws.1.0")
    # The capture spans ~22 s of receive times; speed 100 paces it in ~0.2 s.
    with _replay_engine(str(path), ("NKNUSDT", "LRCBTC"), speed=100.0) as engine:
        wait_until(lambda: engine.feed_status()["status"] == "UP", what="feed UP")
        session = engine.connect()
        session.send({"action": "subscribe_ticker", "symbol": "nknusdt"})
        session.send({"action": "subscribe_ticker", "symbol": "LRCBTC"})
        nkn = session.wait_for(is_update("NKNUSDT", 0.3528), timeout=10)
        lrc = session.wait_for(is_update("LRCBTC", 0.00000638), timeout=10)
        now = int(time.time() * 1000)
        # event times are re-stamped with the replay's clock, not 2021's
        assert abs(nkn["eventTime"] - now) < 60_000
        assert abs(lrc["eventTime"] - now) < 60_000
        snap = engine.feed_shared.snapshot()
        codec = snap["codec"]
        assert isinstance(codec, dict)
        # 265 frames: 2 aggTrade; depth, bookTicker and kline are ignored, none dropped
        wait_until(lambda: sum(engine.feed_shared.codec_snapshot()["decoded"].values()) == 265,
                   what="the whole capture decoded")
        assert engine.feed_shared.codec_snapshot()["dropped"] == {}
        assert engine.feed_status()["status"] == "UP"  # stays up, idle, at the end


def test_freqtrade_trades_file_as_fast_as_possible() -> None:
    path = data_file("freqtrade/XRP_OLD-trades.json.gz")
    with _replay_engine(str(path), ("XRPETH",), speed=0.0) as engine:
        session = engine.connect()
        session.send({"action": "subscribe_ticker", "symbol": "XRPETH"})
        # live update or the snapshot on subscribe: the last recorded price arrives
        last = session.wait_for(is_update("XRPETH", 0.00152787), timeout=20)
        assert last["price"] == 0.00152787
        wait_until(lambda: engine.feed_shared.codec_snapshot()["decoded"].get("trade") == 12477,
                   what="all trades decoded")
        assert engine.feed_shared.codec_snapshot()["dropped"] == {}


def test_loop_restarts_at_the_end() -> None:
    path = data_file("cryptofeed/BINANCE.ws.1.0")
    with _replay_engine(str(path), ("NKNUSDT",), speed=0.0, loop=True) as engine:
        wait_until(lambda: engine.feed_shared.codec_snapshot()["decoded"].get("trade", 0) >= 20,
                   timeout=10, what="ten passes over the capture")


def test_unconfigured_symbols_are_skipped_and_counted() -> None:
    path = data_file("cryptofeed/BINANCE.ws.1.0")
    with _replay_engine(str(path), ("NKNUSDT",), speed=0.0) as engine:
        # LRCBTC's trade and 9 bookTickers, BLZETH's bookTicker
        wait_until(lambda: engine.feed_shared.snapshot()["skippedSymbols"] == 11,
                   what="LRCBTC and BLZETH skipped")


def test_missing_file_is_a_feed_failure_reported_as_reconnecting(tmp_path: object) -> None:
    with _replay_engine("/nonexistent/replay.jsonl", ("BTCUSDT",), speed=0.0) as engine:
        session = engine.connect()
        msg = session.wait_for(lambda m: m.get("type") == "FEED_STATUS"
                               and m.get("status") == "RECONNECTING", timeout=5)
        assert msg["reason"] == "replay failed: FileNotFoundError"
        assert msg["attempt"] >= 1


# -- the source alone: bounded in flight, prompt stop ---------------------------


class _HoldingSink:
    """Keeps every batch (never calls ``done``) so the source must block."""

    def __init__(self) -> None:
        self.batches: list[tuple[MarketItem, ...]] = []
        self.dones: list[Callable[[], None] | None] = []
        self.cond = threading.Condition()
        self.failures: list[str] = []

    def deliver(self, items: tuple[MarketItem, ...], received_ms: int,
                done: Callable[[], None] | None = None) -> None:
        with self.cond:
            self.batches.append(items)
            self.dones.append(done)
            self.cond.notify_all()

    def up(self) -> None:
        pass

    def failed(self, reason: str) -> None:
        self.failures.append(reason)


def _frames(n: int) -> Callable[[str], Iterator[ReplayRecord]]:
    def opener(_path: str) -> Iterator[ReplayRecord]:
        for i in range(n):
            yield ReplayRecord(None, (
                f'{{"e":"aggTrade","E":1,"s":"BTCUSDT","a":{i},"p":"1.5","q":"1",'
                f'"T":{1000 + i},"m":true}}'))
    return opener


def test_in_flight_batches_are_bounded_and_stop_is_prompt() -> None:
    sink = _HoldingSink()
    src = ReplaySource(ReplayConfig(path="x", speed=0.0), frozenset({"BTCUSDT"}), sink,
                       SystemClock(), FeedShared(), batch_max=10, max_in_flight=3,
                       opener=_frames(1000))
    src.start()
    try:
        with sink.cond:
            assert sink.cond.wait_for(lambda: len(sink.batches) == 3, timeout=5)
            # no fourth batch while none is routed
            assert not sink.cond.wait_for(lambda: len(sink.batches) > 3, timeout=0.3)
        first = sink.dones[0]
        assert first is not None
        first()
        first()  # idempotent: one slot per batch
        with sink.cond:
            assert sink.cond.wait_for(lambda: len(sink.batches) == 4, timeout=5)
            assert not sink.cond.wait_for(lambda: len(sink.batches) > 4, timeout=0.3)
        assert all(len(b) == 10 for b in sink.batches)
        trade = sink.batches[0][0]
        assert isinstance(trade, Trade)
        assert trade.price == Decimal("1.5") and trade.trade_time == 1000
        assert trade.event_time > 1_600_000_000_000  # re-stamped
    finally:
        t0 = time.monotonic()
        src.stop(timeout=2.0)
        assert time.monotonic() - t0 < timeout(1.9)  # before stop's own 2 s deadline
    assert sink.failures == []


def test_pacing_follows_recorded_times() -> None:
    """The second frame, recorded 400 ms after the first, is due 200 ms later
    at speed 2 on the source's clock: not before, and at once when it is."""
    sink = _HoldingSink()
    clock = FakeClock()

    def opener(_path: str) -> Iterator[ReplayRecord]:
        frame = '{"e":"aggTrade","E":1,"s":"BTCUSDT","a":1,"p":"2","q":"1","T":5,"m":true}'
        yield ReplayRecord(1_000_000, frame)
        yield ReplayRecord(1_000_400, frame)  # 400 ms later, at speed 2: 200 ms

    src = ReplaySource(ReplayConfig(path="x", speed=2.0), frozenset({"BTCUSDT"}), sink,
                       clock, FeedShared(), opener=opener)
    start_ms = clock.now_ms()

    def held_after(seconds: float) -> None:
        clock.advance(seconds)
        reads = clock.reads_from("feed-replay")
        wait_until(lambda: clock.reads_from("feed-replay") >= reads + 2,
                   what="the replay to look at its clock again")
        with sink.cond:
            assert len(sink.batches) == 1

    src.start()
    try:
        with sink.cond:
            assert sink.cond.wait_for(lambda: len(sink.batches) == 1, timeout=5)
        held_after(0)
        held_after(0.199)
        clock.advance(0.001)
        with sink.cond:
            assert sink.cond.wait_for(lambda: len(sink.batches) == 2, timeout=5)
        assert src.finished.wait(5)
    finally:
        src.stop()
    stamps = [item.event_time for batch in sink.batches for item in batch]
    assert stamps == [start_ms, start_ms + 200]  # re-stamped with the source's clock


def test_orders_fill_during_a_replay() -> None:
    # Event times are re-stamped, so replayed (2019) trades are not "stale" to the
    # OrderMonitor: a resting limit order fills when the replay reaches its price.
    path = data_file("freqtrade/XRP_OLD-trades.json.gz")
    with _replay_engine(str(path), ("XRPETH",), speed=0.0, loop=True) as engine:
        session = engine.connect()
        session.send({"action": "subscribe_ticker", "symbol": "XRPETH"})
        session.wait_for(is_update("XRPETH"), timeout=10)
        session.send({"action": "place_order", "id": "o1", "symbol": "XRPETH", "side": "BUY",
                      "type": "LIMIT", "quantity": "10", "price": "0.00141400"})
        placed = session.wait_for(lambda m: m.get("id") == "o1", timeout=5)
        assert placed["type"] == "ORDER_UPDATE", placed
        # resting orders fill by traded volume: a smaller trade fills it in parts
        fill = session.wait_for(lambda m: m.get("type") == "ORDER_UPDATE"
                                and m.get("executionType") == "TRADE"
                                and m["order"]["status"] == "FILLED", timeout=15)
        assert fill["order"]["filledQuantity"] == 10
        assert fill["order"]["avgPrice"] <= 0.001414
