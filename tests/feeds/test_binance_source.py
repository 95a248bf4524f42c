"""BinanceSource alone: the connection-attempt window, and a clean stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from engine.clock import SystemClock
from engine.config import BinanceConfig
from engine.feeds.base import FeedShared, MarketItem
from engine.feeds.binance import BinanceSource
from engine.market.upstream_limits import SlidingWindowLimiter
from tests.conftest import timeout
from tests.fakes.binance_upstream import FakeBinanceUpstream
from tests.feeds.helpers import wait_until

PRICES = {"BTCUSDT": "50000.0", "ETHUSDT": "3000.0"}


class _Sink:
    def __init__(self) -> None:
        self.items: list[MarketItem] = []
        self.up_event = threading.Event()
        self.failures: list[str] = []
        self.got = threading.Event()

    def deliver(self, items: tuple[MarketItem, ...], received_ms: int,
                done: Callable[[], None] | None = None) -> None:
        self.items.extend(items)
        self.got.set()
        if done is not None:
            done()

    def up(self) -> None:
        self.up_event.set()

    def failed(self, reason: str) -> None:
        self.failures.append(reason)


def test_attempt_window_counts_and_delays() -> None:
    shared = FeedShared(attempts=SlidingWindowLimiter(2, 10.0))
    assert shared.attempt_delay(100.0) == 0.0
    assert shared.attempt_delay(101.0) == 0.0
    assert shared.attempt_delay(102.0) == 8.0  # the first slot frees at 110
    assert shared.snapshot()["connects"] == 2


def test_a_full_attempt_window_holds_the_connection_and_stop_is_prompt() -> None:
    with FakeBinanceUpstream(stream_prices=PRICES) as fake:
        shared = FeedShared(attempts=SlidingWindowLimiter(1, 60.0))
        assert shared.attempt_delay(time.monotonic()) == 0.0  # window now full
        sink = _Sink()
        src = BinanceSource(BinanceConfig(url=fake.base_url, stall_timeout_s=0.2), ["BTCUSDT"],
                            sink, SystemClock(), shared)
        src.start()
        assert not sink.up_event.wait(0.5)  # longer than the stall timeout: no attempt
        t0 = time.monotonic()
        src.stop()
        assert time.monotonic() - t0 < timeout(1.9)  # before stop's own 2 s deadline
        assert fake.connection_attempts == 0 and sink.failures == []


def test_stop_closes_politely_and_reports_nothing() -> None:
    with FakeBinanceUpstream(stream_prices=PRICES) as fake:
        sink = _Sink()
        src = BinanceSource(BinanceConfig(url=fake.base_url, stall_timeout_s=1.0), ["ETHUSDT"],
                            sink, SystemClock(), FeedShared())
        src.start()
        assert sink.up_event.wait(5) and sink.got.wait(5)
        src.stop()
        assert src.done.is_set()
        assert sink.failures == []
        wait_until(lambda: fake.open_connections() == 0, what="the upstream side closed")
        assert {i.symbol for i in sink.items} == {"ETHUSDT"}
