"""The feed sources ``feed.source`` may name: each one's factory and capabilities.

Edge module (it imports every source's module), read by the FeedActor's thread
when it starts a source and by the Engine when it wires the actors. A new source
is its module plus one line in :data:`SOURCES` (and its name in
:data:`engine.config.FEED_SOURCES`, which the config validates against; a test
keeps the two in step, because the pure config may not import this edge module).

A source is either a **thread source** (``open``: a :class:`FeedSource` with its
own thread(s), reporting through a :class:`SourceSink`) or **pulse-driven**
(``pulsed``: a :class:`PulsedMarket` the FeedActor steps itself each time its
TimerActor pulses, ``ticks_per_second`` times a second; it is made with the
prices to resume from, :meth:`FeedShared.last_prices`). The FeedActor and the
Engine never test a source's name; they read its capabilities:

``dedupes``       route a trade only if its trade id is newer than the last one
                  routed for the symbol (and a ticker only if its event time is
                  newer): two connections overlap during a rotation.
``live_symbols``  ``subscribe_ticker`` of a symbol not served may subscribe it
                  upstream (with ``feed.dynamic_symbols``); the source is then a
                  :class:`LiveSymbolSource`. ``max_symbols(cfg)`` bounds how many
                  symbols one connection may carry (None: no bound; it depends
                  on the config: Binance's depth streams take a fourth stream a
                  symbol).
``up_at_start``   FEED_STATUS is UP as soon as the FeedActor started; otherwise
                  only once the source reports its upstream open.
``exchange_filters``  the symbols' filters come from the exchange's REST API
                  (``GET /api/v3/exchangeInfo``, :mod:`engine.feeds.exchange_info`)
                  at start and before a symbol is added live; otherwise from the
                  shipped snapshot (:func:`engine.market.symbol_info.load_snapshot`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from engine.clock import Clock
from engine.config import FeedConfig
from engine.feeds.base import FeedShared, FeedSink, FeedSource
from engine.feeds.binance import BinanceSource
from engine.feeds.replay import ReplaySource
from engine.market.binance_codec import MAX_STREAMS_PER_CONNECTION, streams_per_symbol
from engine.market.simulated import SimStep, SimulatedMarket
from engine.messages import Ticker24h

__all__ = [
    "SOURCES",
    "LiveSymbolSource",
    "OpenSource",
    "PulsedFeed",
    "PulsedMarket",
    "SourceKind",
    "SourceSink",
    "source_kind",
]


class SourceSink(FeedSink, Protocol):
    """A :class:`FeedSink` that also takes a source's rotation and control reports."""

    def rotate_due(self) -> None:
        """The connection should be replaced (connect new first)."""

    def control(self, reply: Any) -> None:
        """A live control request was sent, answered or refused."""


class LiveSymbolSource(FeedSource, Protocol):
    """A thread source that can add and drop symbols while it runs (``live_symbols``)."""

    def subscribe(self, symbols: Iterable[str]) -> int:
        """Queue a SUBSCRIBE; returns its request id (its outcome comes as ``control``)."""
        ...

    def unsubscribe(self, symbols: Iterable[str]) -> int:
        """Queue an UNSUBSCRIBE; returns its request id."""
        ...


class PulsedMarket(Protocol):
    """A market the FeedActor steps on every pulse (pure: time is passed in)."""

    @property
    def symbols(self) -> tuple[str, ...]: ...

    def last_prices(self) -> dict[str, Decimal]:
        """Each symbol's last price (what the next generation resumes from)."""
        ...

    def step(self, symbol: str, now_ms: int) -> SimStep:
        """The book quoted at ``now_ms``, and the trade made inside it."""
        ...

    def ticker(self, symbol: str, now_ms: int) -> Ticker24h: ...


@dataclass(frozen=True, slots=True)
class PulsedFeed:
    market: PulsedMarket
    ticks_per_second: float


#: ``open(cfg, sink, clock, shared)``: a thread source, not started yet.
OpenSource = Callable[[FeedConfig, SourceSink, Clock, FeedShared], FeedSource]


@dataclass(frozen=True, slots=True)
class SourceKind:
    """One feed source: how to make it and what it can do (see the module docstring)."""

    open: OpenSource | None = None
    #: ``pulsed(cfg, start_prices)``: the market, resuming each symbol in
    #: ``start_prices`` from that price (see engine.market.simulated).
    pulsed: Callable[[FeedConfig, Mapping[str, Decimal]], PulsedFeed] | None = None
    dedupes: bool = False
    live_symbols: bool = False
    max_symbols: Callable[[FeedConfig], int] | None = None
    up_at_start: bool = True
    exchange_filters: bool = False

    def __post_init__(self) -> None:
        if (self.open is None) == (self.pulsed is None):
            raise ValueError("a source is either a thread source (open) or pulse-driven")

    def symbol_limit(self, cfg: FeedConfig) -> int | None:
        """How many symbols one connection may carry with ``cfg`` (None: no bound)."""
        return None if self.max_symbols is None else self.max_symbols(cfg)


def _simulated(cfg: FeedConfig, start_prices: Mapping[str, Decimal]) -> PulsedFeed:
    return PulsedFeed(SimulatedMarket(cfg.symbols, cfg.simulated.seed,
                                      start_prices=start_prices),
                      cfg.simulated.ticks_per_second)


def _replay(cfg: FeedConfig, sink: SourceSink, clock: Clock, shared: FeedShared) -> FeedSource:
    return ReplaySource(cfg.replay, frozenset(cfg.symbols), sink, clock, shared)


def _binance(cfg: FeedConfig, sink: SourceSink, clock: Clock, shared: FeedShared) -> FeedSource:
    # every symbol served so far, the ones added live included
    return BinanceSource(cfg.binance, shared.served(), sink, clock, shared,
                         rotate_after_s=cfg.binance.rotate_after_s,
                         on_rotate=sink.rotate_due, on_control=sink.control)


def _binance_max_symbols(cfg: FeedConfig) -> int:
    """Binance allows 1024 streams a connection; a symbol takes three (@aggTrade,
    @ticker, @bookTicker), four with ``feed.binance.depth_levels``."""
    return MAX_STREAMS_PER_CONNECTION // streams_per_symbol(cfg.binance.depth_levels)


#: Every feed source by its ``feed.source`` name.
SOURCES: dict[str, SourceKind] = {
    "simulated": SourceKind(pulsed=_simulated),
    "replay": SourceKind(open=_replay),
    "binance": SourceKind(open=_binance, dedupes=True, live_symbols=True, up_at_start=False,
                          max_symbols=_binance_max_symbols, exchange_filters=True),
}


def source_kind(name: str) -> SourceKind:
    """The source ``feed.source`` names (the config validated the name already)."""
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown feed source {name!r}; known: {', '.join(SOURCES)}") from None
