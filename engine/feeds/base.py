"""What every feed source shares: the sink it reports to and the state that
outlives one FeedActor generation.

Edge module. A source runs its own thread(s); it reports through a
:class:`FeedSink` (thread-safe, implemented by the FeedActor, which turns
each call into a message to itself). :class:`FeedShared` is created once per
Engine and handed to every generation of the FeedActor, so counters, the
aggregate-trade id positions (to see the gap a reconnect leaves) and the
connection-attempt window survive restarts. It is guarded by one lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from engine.market.agg_gaps import AggGapTracker
from engine.market.binance_codec import CodecStats, Decoded
from engine.market.plausibility import REASONS, Reference
from engine.market.upstream_limits import SlidingWindowLimiter, connection_attempt_limiter
from engine.messages import BookTicker, DepthSnapshot, Ticker24h, Trade
from engine.stats import counter

__all__ = ["FeedShared", "FeedSharedStatistics", "FeedSink", "FeedSource", "MarketItem"]

log = logging.getLogger("tickdesk.feed")

#: What a source delivers: trades, 24 h tickers and book inputs.
MarketItem = Trade | Ticker24h | BookTicker | DepthSnapshot


class FeedSink(Protocol):
    """Where a source sends its output. Every method is thread-safe and never blocks."""

    def deliver(self, items: tuple[MarketItem, ...], received_ms: int,
                done: Callable[[], None] | None = None) -> None:
        """Decoded trades, tickers and book inputs, in feed order; ``done`` is called
        once they are routed (or dropped because the owner is gone)."""

    def up(self) -> None:
        """The upstream is open and serving."""

    def failed(self, reason: str) -> None:
        """The upstream is lost; the owner should fail (and be restarted)."""


class FeedSource(Protocol):
    """A running feed source, owned by one FeedActor."""

    def start(self) -> None: ...

    def stop(self, timeout: float = 2.0) -> None:
        """Stop reading and join the thread(s) (bounded by ``timeout``). Idempotent."""


@dataclass(frozen=True, slots=True)
class FeedSharedStatistics:
    """The feed's counters across all its generations (``/metrics``: ``tickdesk_feed_*``)."""

    connection_attempts: int = counter("Upstream connection attempts (Binance feed).")
    connections_opened: int = counter("Upstream connections that opened (Binance feed).")
    reconnects: int = counter("Upstream connection attempts after the first (retries after a "
                              "loss, and 24 h rotations).")
    agg_trade_gaps: int = counter("Aggregate-trade id jumps seen (each a run of missed trades).")
    agg_trades_missed: int = counter("Aggregate-trade ids missed in total.")
    events_skipped: int = counter("Events of symbols the feed does not serve (replay files "
                                  "with more symbols).")
    frames_decoded: Mapping[str, int] = counter(
        "Upstream frames decoded, by what they held (trade, ticker, dropped, ...).", label="kind")
    frames_dropped: Mapping[str, int] = counter(
        "Upstream frames dropped as malformed, by reason.", label="reason")
    dropped_trades: Mapping[str, int] = counter(
        "Implausible upstream trades dropped, by reason (id_jump: id far ahead; price_band: "
        "price outside the band; unconfirmed: no reference and not vouched for).",
        label="reason")


class FeedShared:
    """State and counters shared by all generations of the feed (thread-safe)."""

    def __init__(self, symbols: Iterable[str] = (),
                 attempts: SlidingWindowLimiter | None = None) -> None:
        self._lock = threading.Lock()
        self._served: dict[str, None] = dict.fromkeys(symbols)  # ordered set
        self.configured = frozenset(self._served)
        self._stats = CodecStats()
        self._gaps = AggGapTracker()
        self._attempts = attempts or connection_attempt_limiter()
        self.connects = 0
        """Connection attempts made (Binance)."""
        self.opened = 0
        """Connections that opened (Binance)."""
        self.gap_events = 0
        """Aggregate-trade id jumps seen (each a run of missed trades)."""
        self.missing_trades = 0
        """Aggregate-trade ids missed in total."""
        self.skipped_symbols = 0
        """Events of symbols the feed does not serve (replay files with more symbols)."""
        self._dropped: dict[str, int] = dict.fromkeys(REASONS, 0)
        self._references: dict[str, Reference] = {}
        self._owners: dict[str, str] = {}
        self._last_prices: dict[str, Decimal] = {}

    # -- served symbols (configured + added live) ---------------------------------

    def serves(self, symbol: str) -> bool:
        """True if the feed serves ``symbol`` (thread-safe; clients' ``known_symbol``)."""
        return symbol in self._served

    def add_symbol(self, symbol: str, owner: str | None = None) -> None:
        """Serve ``symbol`` from now on, and after every reconnect; ``owner``: the
        account that added it live."""
        with self._lock:
            self._served[symbol] = None
            if owner is not None and symbol not in self.configured:
                self._owners[symbol] = owner

    def remove_symbol(self, symbol: str) -> None:
        """Stop serving a symbol added live (configured symbols stay)."""
        with self._lock:
            if symbol not in self.configured:
                self._served.pop(symbol, None)
                self._owners.pop(symbol, None)

    def live_owners(self) -> dict[str, str]:
        """Symbols added live, and the account that added each."""
        with self._lock:
            return {s: self._owners.get(s, "") for s in self._served if s not in self.configured}

    def served(self) -> list[str]:
        with self._lock:
            return list(self._served)

    # -- counters -----------------------------------------------------------------

    def record(self, decoded: Decoded) -> Decoded:
        with self._lock:
            return self._stats.record(decoded)

    def observe_trade(self, symbol: str, agg_id: int) -> int:
        """Track aggregate-trade continuity; returns the ids missed before ``agg_id``."""
        with self._lock:
            gap = self._gaps.observe(symbol, agg_id)
            if gap:
                self.gap_events += 1
                self.missing_trades += gap
            return gap

    def count_dropped(self, reason: str) -> None:
        """An implausible trade was dropped (``reason``: one of ``plausibility.REASONS``)."""
        with self._lock:
            self._dropped[reason] = self._dropped.get(reason, 0) + 1

    def dropped_trades(self) -> dict[str, int]:
        """Implausible trades dropped, by reason (every reason, zeros included)."""
        with self._lock:
            return dict(self._dropped)

    def keep_references(self, refs: dict[str, Reference]) -> None:
        """The last trusted trade of each symbol, for the next connection's guard."""
        with self._lock:
            self._references.update(refs)

    def references(self) -> dict[str, Reference]:
        with self._lock:
            return dict(self._references)

    def keep_prices(self, prices: Mapping[str, Decimal]) -> None:
        """Prices a pulse-driven market resumes from: the stored ones at start
        (the Engine), then each generation's last ones (the FeedActor)."""
        with self._lock:
            self._last_prices.update(prices)

    def last_prices(self) -> dict[str, Decimal]:
        with self._lock:
            return dict(self._last_prices)

    def count_skipped(self) -> None:
        with self._lock:
            self.skipped_symbols += 1

    def codec_snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return self._stats.snapshot()

    def attempt_delay(self, now_s: float) -> float:
        """Seconds until a connection attempt is allowed (0: take it now, and it is counted)."""
        with self._lock:
            if self._attempts.try_acquire(now_s):
                self.connects += 1
                return 0.0
            return max(0.0, self._attempts.next_free(now_s) - now_s)

    def note_open(self) -> None:
        with self._lock:
            self.opened += 1

    def statistics(self) -> FeedSharedStatistics:
        """Any thread."""
        with self._lock:
            return FeedSharedStatistics(
                connection_attempts=self.connects, connections_opened=self.opened,
                reconnects=max(0, self.connects - 1), agg_trade_gaps=self.gap_events,
                agg_trades_missed=self.missing_trades, events_skipped=self.skipped_symbols,
                frames_decoded=dict(self._stats.decoded), frames_dropped=dict(self._stats.dropped),
                dropped_trades=dict(self._dropped))

    def snapshot(self) -> dict[str, object]:
        """Counters for logs, status and tests."""
        with self._lock:
            return {
                "codec": self._stats.snapshot(),
                "connects": self.connects,
                "opened": self.opened,
                "gapEvents": self.gap_events,
                "missingTrades": self.missing_trades,
                "skippedSymbols": self.skipped_symbols,
                "dynamicSymbols": sorted(set(self._served) - self.configured),
                "droppedTrades": dict(self._dropped),
            }
