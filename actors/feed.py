"""FeedActor: owns the market feed and routes every tick.

Runs in its own pykka thread. For each trade it updates the
:class:`~engine.market.board.MarketBoard`, encodes and frames the
MARKET_UPDATE **once**, writes the same bytes to every subscriber's channel
(:meth:`Hub.publish`, non-blocking), and forwards the trade to the
OrderMonitorActor (triggers) and the PortfolioActor (mark price), whether or
not any client watches the symbol. A book input (best bid/ask, depth) that
changes the board's book goes the same way, as :class:`BookTick`, to the
OrderMonitorActor and the PortfolioActor first, then as BOOK_UPDATE to the
symbol's book subscribers (:meth:`Hub.publish_book`) and, when the best
bid/ask moved, as MARKET_UPDATE.

Sources (``feed.source``):

``simulated``  a TimerActor pulses this actor ``ticks_per_second`` times a
               second; each pulse makes one book and one trade (inside that
               book) per symbol, routed in that order, and once a second a
               24 h ticker.
``replay``     :class:`~engine.feeds.replay.ReplaySource`, a thread playing a
               recorded file (see its module for pacing, bounds, re-stamped
               event times and what happens at the end of the file).
``binance``    :class:`~engine.feeds.binance.BinanceSource`, one combined-stream
               WebSocket connection in its own thread.

A source thread sends :class:`FeedBatch` (and single :class:`TradeTick` /
:class:`TickerTick`, still accepted) to this actor, and :class:`SourceUp` /
:class:`SourceFailed`. The source is started in ``started()`` and stopped
and joined in ``cleanup()``, which pykka runs on stop and on failure.

Failure model: a lost upstream (disconnect, data stall, error, Binance's
``serverShutdown``) is a failure of this actor. The :class:`SourceFailed`
handler raises :class:`FeedSourceError`, pykka stops the actor, the
Supervisor learns of it and restarts a fresh generation with backoff
(FEED_STATUS RECONNECTING, then UP once the new connection is open: this
actor calls ``on_up`` when its source reports :class:`SourceUp`). State
that must outlive a generation (counters, aggregate-trade id positions, the
connection-attempt window) lives in :class:`~engine.feeds.base.FeedShared`.

Binance trades are routed only if their aggregate-trade id is newer than the
last one routed for the symbol (and tickers, best bid/ask and depth
snapshots only if newer), so the overlap of two connections during a
rotation never routes a trade twice.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from actors.base import ActorSlot, ExpectedFailure, FailureHook, TickdeskActor
from actors.messages import (
    AddSymbol,
    BookTick,
    ControlAnswer,
    FeedBatch,
    Pulse,
    RequestId,
    RotateSource,
    SendBookSnapshot,
    SendSnapshot,
    SourceFailed,
    SourceUp,
    SymbolTimeout,
    TickerTick,
    TradeTick,
)
from actors.timer import TimerActor
from engine.clock import Clock
from engine.config import FeedConfig
from engine.feeds.base import FeedShared, FeedSource, MarketItem
from engine.feeds.binance import BinanceSource, ControlSent
from engine.feeds.replay import ReplaySource
from engine.market.binance_codec import (
    MAX_STREAMS_PER_CONNECTION,
    ControlError,
    streams_per_symbol,
)
from engine.market.board import MarketBoard
from engine.market.simulated import SimStep, SimulatedMarket
from engine.messages import BookTicker, DepthSnapshot, Ticker24h, Trade
from engine.protocol import server_messages as sm
from engine.server.channel import Channel
from engine.server.hub import Hub

__all__ = ["FeedActor", "FeedSourceError"]

log = logging.getLogger("tickdesk.feed")

_source_ids = itertools.count(1)


class FeedSourceError(ExpectedFailure):
    """The feed's upstream was lost; raised in the actor so that it fails."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.failure_reason = reason


class _ActorSink:
    """A :class:`~engine.feeds.base.FeedSink` that turns calls into messages to the actor."""

    def __init__(self, ref: pykka.ActorRef[Any], source: int,
                 monotonic: Callable[[], float]) -> None:
        self._ref = ref
        self._source = source
        self._monotonic = monotonic

    def deliver(self, items: tuple[MarketItem, ...], received_ms: int,
                done: Callable[[], None] | None = None) -> None:
        try:
            self._ref.tell(FeedBatch(self._source, items, received_ms, done,
                                     self._monotonic()))
        except pykka.ActorDeadError:
            if done is not None:
                done()

    def up(self) -> None:
        self._tell(SourceUp(self._source))

    def failed(self, reason: str) -> None:
        self._tell(SourceFailed(self._source, reason))

    def rotate_due(self) -> None:
        self._tell(RotateSource(self._source))

    def control(self, reply: Any) -> None:
        self._tell(ControlAnswer(self._source, reply))

    def _tell(self, msg: Any) -> None:
        # The actor may be gone already; its successor has its own source.
        with contextlib.suppress(pykka.ActorDeadError):
            self._ref.tell(msg)


@dataclass(slots=True)
class _PendingSymbol:
    """A live subscription waiting for its first event (or an error, or the timeout)."""

    request: int
    waiters: list[tuple[Channel, RequestId]]
    #: Started once the SUBSCRIBE is actually sent (it may wait for the rate limit).
    timer: threading.Timer | None = None


#: At most this many live subscriptions may wait for their first event at once.
MAX_PENDING_SYMBOLS = 16


class FeedActor(TickdeskActor):
    def __init__(
        self,
        cfg: FeedConfig,
        hub: Hub,
        order_monitor: ActorSlot,
        portfolio: ActorSlot,
        clock: Clock,
        *,
        on_failure: FailureHook | None = None,
        generation: int = 0,
        on_trade_published: Callable[[Trade, int], None] | None = None,
        shared: FeedShared | None = None,
        on_up: Callable[[], None] | None = None,
        on_tick_latency: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__("feed", on_failure, generation)
        self._cfg = cfg
        self._hub = hub
        self._orders = order_monitor
        self._portfolio = portfolio
        self._clock = clock
        self._board = MarketBoard()
        self._latest: dict[str, sm.Outgoing] = {}
        self._sim: SimulatedMarket | None = None
        self._pulses = 0
        self._pulses_per_ticker = 1
        self._timer: pykka.ActorRef[Any] | None = None
        self._on_trade_published = on_trade_published
        self._on_tick_latency = on_tick_latency
        self._shared = shared if shared is not None else FeedShared(cfg.symbols)
        self._on_up = on_up
        self._symbols = frozenset(cfg.symbols)
        self._sources: dict[int, FeedSource] = {}
        self._primary: int | None = None
        self._pending: int | None = None  # a rotation's new source, until it is up
        self.rotations = 0
        self._dedupe = cfg.source == "binance"
        self._last_trade_id: dict[str, int] = {}
        self._last_ticker_ms: dict[str, int] = {}
        self._last_book_id: dict[tuple[str, type], int] = {}
        self._pending_symbols: dict[str, _PendingSymbol] = {}
        self.trades = 0
        self.handlers = {
            Pulse: self._on_pulse,
            TradeTick: self._on_trade_tick,
            TickerTick: self._on_ticker_tick,
            FeedBatch: self._on_batch,
            SourceUp: self._on_source_up,
            SourceFailed: self._on_source_failed,
            RotateSource: self._on_rotate,
            AddSymbol: self._on_add_symbol,
            SymbolTimeout: self._on_symbol_timeout,
            ControlAnswer: self._on_control_answer,
            SendSnapshot: self._on_send_snapshot,
            SendBookSnapshot: self._on_send_book_snapshot,
        }

    def started(self) -> None:
        if self._cfg.source == "simulated":
            sim_cfg = self._cfg.simulated
            self._sim = SimulatedMarket(self._cfg.symbols, sim_cfg.seed)
            self._pulses_per_ticker = max(1, round(sim_cfg.ticks_per_second))
            me = ActorSlot("feed-self")
            me.set(self.actor_ref)
            self._timer = TimerActor.start(
                "feed-pulse", me, Pulse("sim"), 1.0 / sim_cfg.ticks_per_second, self._clock,
                max_backlog=10,
            )
            now = self._clock.now_ms()
            t0 = self._clock.monotonic()
            for sym in self._sim.symbols:  # a price for every symbol from the start
                self._route_sim_step(self._sim.step(sym, now), now, t0)
                self._route_ticker(self._sim.ticker(sym, now))
        elif self._cfg.source == "replay":
            self._add_source(lambda sink: ReplaySource(
                self._cfg.replay, self._symbols, sink, self._clock, self._shared))
        elif self._cfg.source == "binance":
            self._add_source(self._binance_source)

    def _binance_source(self, sink: _ActorSink) -> FeedSource:
        # every symbol served so far, the ones added live included
        return BinanceSource(self._cfg.binance, self._shared.served(), sink, self._clock,
                             self._shared, rotate_after_s=self._cfg.binance.rotate_after_s,
                             on_rotate=sink.rotate_due, on_control=sink.control)

    def _add_source(self, make: Callable[[_ActorSink], FeedSource]) -> int:
        sid = next(_source_ids)
        source = make(_ActorSink(self.actor_ref, sid, self._clock.monotonic))
        self._sources[sid] = source
        if self._primary is None:
            self._primary = sid
        source.start()
        return sid

    def cleanup(self) -> None:
        timer = self._timer
        self._timer = None
        if timer is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                timer.stop(block=True, timeout=2.0)
        sources = list(self._sources.values())
        self._sources.clear()
        self._primary = None
        self._pending = None
        for symbol in list(self._pending_symbols):
            self._reject_symbol(symbol, f"symbol {symbol} could not be checked: the feed is "
                                        "reconnecting; try again")
        for source in sources:
            try:
                source.stop(timeout=2.0)
            except Exception:
                log.exception("feed: stopping a source failed")

    @property
    def shared(self) -> FeedShared:
        return self._shared

    # -- handlers -----------------------------------------------------------

    def _on_pulse(self, _msg: Pulse) -> None:
        sim = self._sim
        if sim is None:
            return
        now = self._clock.now_ms()
        t0 = self._clock.monotonic()
        self._pulses += 1
        ticker_due = self._pulses % self._pulses_per_ticker == 0
        for sym in sim.symbols:
            self._route_sim_step(sim.step(sym, now), now, t0)
            if ticker_due:
                self._route_ticker(sim.ticker(sym, now))

    def _on_trade_tick(self, msg: TradeTick) -> None:
        self._route_trade(msg.trade, msg.received_ms, self._clock.monotonic())

    def _on_ticker_tick(self, msg: TickerTick) -> None:
        self._route_ticker(msg.ticker)

    def _on_batch(self, msg: FeedBatch) -> None:
        t0 = msg.received_mono if msg.received_mono is not None else self._clock.monotonic()
        try:
            if msg.source not in self._sources:
                return  # a source already replaced or stopped
            for item in msg.items:
                if self._dedupe and not self._shared.serves(item.symbol):
                    if item.symbol not in self._pending_symbols:
                        continue  # e.g. the tail of a timed-out subscription
                    self._confirm_symbol(item.symbol)
                if isinstance(item, Trade):
                    if self._dedupe and not self._newer_trade(item):
                        continue
                    self._route_trade(item, msg.received_ms, t0)
                elif isinstance(item, BookTicker | DepthSnapshot):
                    if self._dedupe and not self._newer_book(item):
                        continue
                    self._route_book(item, msg.received_ms)
                else:
                    if self._dedupe and not self._newer_ticker(item):
                        continue
                    self._route_ticker(item)
        finally:
            if msg.done is not None:
                msg.done()

    def _newer_trade(self, trade: Trade) -> bool:
        tid = trade.trade_id
        if tid is None:
            return True
        last = self._last_trade_id.get(trade.symbol)
        if last is not None and tid <= last:
            return False
        self._last_trade_id[trade.symbol] = tid
        return True

    def _newer_ticker(self, ticker: Ticker24h) -> bool:
        last = self._last_ticker_ms.get(ticker.symbol)
        if last is not None and ticker.event_time <= last:
            return False
        self._last_ticker_ms[ticker.symbol] = ticker.event_time
        return True

    def _newer_book(self, item: BookTicker | DepthSnapshot) -> bool:
        """Best bid/ask and depth snapshots each route only with a larger update id."""
        uid = item.update_id if isinstance(item, BookTicker) else item.last_update_id
        key = (item.symbol, type(item))
        last = self._last_book_id.get(key)
        if last is not None and uid <= last:
            return False
        self._last_book_id[key] = uid
        return True

    def _on_source_up(self, msg: SourceUp) -> None:
        if msg.source == self._pending:
            self._promote(msg.source)
            return
        if msg.source != self._primary:
            return
        log.info("feed: upstream open (%s)", self._cfg.source)
        if self._on_up is not None:
            self._on_up()

    def _on_rotate(self, msg: RotateSource) -> None:
        """Connect-new-first: open a second connection; the old one is retired once the
        new one is up (both are routed meanwhile, de-duplicated by trade id)."""
        if msg.source != self._primary or self._pending is not None:
            return
        log.info("feed: rotating the upstream connection (connect new first)")
        self._pending = self._add_source(self._binance_source)

    def _promote(self, new: int) -> None:
        old = self._primary
        self._primary = new
        self._pending = None
        self.rotations += 1
        source = self._sources.pop(old, None) if old is not None else None
        if source is not None:
            # Closing waits for the close handshake: not on this (routing) thread.
            threading.Thread(target=source.stop, name="feed-retire", daemon=True).start()
        log.info("feed: rotation done; the new connection is serving")

    # -- symbols added live (Binance, feed.dynamic_symbols) ------------------------

    def _on_add_symbol(self, msg: AddSymbol) -> None:
        symbol, ch, rid = msg.symbol, msg.channel, msg.request_id
        if self._shared.serves(symbol):  # added meanwhile by another client
            self._answer_subscribed(symbol, ch, rid)
            self._on_send_snapshot(SendSnapshot(ch, symbol))
            return
        pending = self._pending_symbols.get(symbol)
        if pending is not None:
            pending.waiters.append((ch, rid))
            return
        source = self._sources.get(self._primary) if self._primary is not None else None
        now = self._clock.now_ms()
        if not isinstance(source, BinanceSource):
            ch.deliver(sm.error("UNKNOWN_SYMBOL", f"symbol {symbol} is not served by this feed",
                                now, rid))
            return
        if len(self._pending_symbols) >= MAX_PENDING_SYMBOLS:
            ch.deliver(sm.error("RATE_LIMITED", "too many symbols being added; try again",
                                now, rid))
            return
        per_symbol = streams_per_symbol(self._cfg.binance.depth_levels)
        if per_symbol * (len(self._shared.served()) + 1) > MAX_STREAMS_PER_CONNECTION:
            ch.deliver(sm.error("UNKNOWN_SYMBOL", f"symbol {symbol} cannot be added: the "
                                "feed's stream limit is reached", now, rid))
            return
        request = source.subscribe([symbol])
        self._pending_symbols[symbol] = _PendingSymbol(request, [(ch, rid)])
        log.info("feed: subscribing %s live (request %d)", symbol, request)

    def _start_symbol_timer(self, symbol: str, pending: _PendingSymbol) -> None:
        me = self.actor_ref
        request = pending.request

        def expire() -> None:
            with contextlib.suppress(pykka.ActorDeadError):
                me.tell(SymbolTimeout(symbol, request))

        timer = threading.Timer(self._cfg.binance.subscribe_timeout_s, expire)
        timer.daemon = True
        pending.timer = timer
        timer.start()

    def _answer_subscribed(self, symbol: str, ch: Channel, rid: RequestId) -> None:
        self._hub.subscribe(ch, symbol)
        ch.deliver(sm.simple("SUBSCRIBED", self._clock.now_ms(), rid, symbol=symbol))

    def _confirm_symbol(self, symbol: str) -> None:
        pending = self._pending_symbols.pop(symbol)
        if pending.timer is not None:
            pending.timer.cancel()
        self._shared.add_symbol(symbol)
        log.info("feed: %s added live", symbol)
        for ch, rid in pending.waiters:
            self._answer_subscribed(symbol, ch, rid)

    def _reject_symbol(self, symbol: str, message: str) -> None:
        pending = self._pending_symbols.pop(symbol, None)
        if pending is None:
            return
        if pending.timer is not None:
            pending.timer.cancel()
        now = self._clock.now_ms()
        for ch, rid in pending.waiters:
            ch.deliver(sm.error("UNKNOWN_SYMBOL", message, now, rid))

    def _on_symbol_timeout(self, msg: SymbolTimeout) -> None:
        pending = self._pending_symbols.get(msg.symbol)
        if pending is None or pending.request != msg.request:
            return
        self._reject_symbol(msg.symbol, f"symbol {msg.symbol}: no market data from the "
                                        "exchange (unknown or not trading)")
        source = self._sources.get(self._primary) if self._primary is not None else None
        if isinstance(source, BinanceSource):
            source.unsubscribe([msg.symbol])

    def _on_control_answer(self, msg: ControlAnswer) -> None:
        reply = msg.reply
        for symbol, pending in list(self._pending_symbols.items()):
            if pending.request != reply.id:
                continue
            if isinstance(reply, ControlSent) and pending.timer is None:
                self._start_symbol_timer(symbol, pending)
            elif isinstance(reply, ControlError):
                self._reject_symbol(symbol, f"symbol {symbol} was refused by the exchange")

    def _on_source_failed(self, msg: SourceFailed) -> None:
        if msg.source not in self._sources:
            return
        log.warning("feed: source failed: %s", msg.reason)
        raise FeedSourceError(msg.reason)

    def _on_send_snapshot(self, msg: SendSnapshot) -> None:
        out = self._latest.get(msg.symbol)
        if out is not None:
            msg.channel.deliver(out)

    def _on_send_book_snapshot(self, msg: SendBookSnapshot) -> None:
        book = self._board.book(msg.symbol)
        if book is not None:
            msg.channel.deliver(sm.book_update(book, self._clock.now_ms()))

    # -- routing ------------------------------------------------------------

    def _route_sim_step(self, step: SimStep, now_ms: int, received_mono: float) -> None:
        """The simulated book first, then the trade made inside it."""
        self._route_book(step.book, now_ms)
        self._route_trade(step.trade, now_ms, received_mono)

    def _route_book(self, item: BookTicker | DepthSnapshot, received_ms: int) -> None:
        """Publish one book input if it changed the board's book: BookTick to the
        order monitor and the portfolio first (like trades), then BOOK_UPDATE to the
        book subscribers (encoded only if the symbol has some: a new subscriber's
        snapshot is encoded from the board) and, if the best bid/ask moved,
        MARKET_UPDATE."""
        change = self._board.apply_book(item)
        if change is None:
            return
        if isinstance(item, DepthSnapshot):
            # the board's merged book: a newer best bid/ask may lead it
            item = DepthSnapshot(item.symbol, change.book.bids, change.book.asks,
                                 item.last_update_id, item.event_time)
        tick = BookTick(item, received_ms)
        self._orders.tell(tick)
        self._portfolio.tell(tick)
        now = self._clock.now_ms()
        if self._hub.book_subscriber_count(item.symbol):  # else a snapshot encodes it
            self._hub.publish_book(item.symbol, sm.book_update(change.book, now))
        if change.market is not None:
            out = sm.market_update(change.market, now)
            self._latest[item.symbol] = out
            self._hub.publish(item.symbol, out)

    def _route_trade(self, trade: Trade, received_ms: int, received_mono: float) -> None:
        """Publish one trade; ``received_mono`` (Clock.monotonic()) is when the engine
        received it: the tick latency is measured from there to the end of the fan-out."""
        snap = self._board.apply_trade(trade)
        out = sm.market_update(snap, self._clock.now_ms())
        self._latest[trade.symbol] = out
        # The order monitor and the portfolio hear of the trade *before* any
        # client does, so a command a client sends in reaction to this price
        # always reaches the order monitor after the trade itself.
        tick = TradeTick(trade, received_ms)
        self._orders.tell(tick)
        self._portfolio.tell(tick)
        self._hub.publish(trade.symbol, out)
        self.trades += 1
        if self._on_tick_latency is not None:
            self._on_tick_latency(self._clock.monotonic() - received_mono)
        if self._on_trade_published is not None:
            self._on_trade_published(trade, received_ms)

    def _route_ticker(self, ticker: Ticker24h) -> None:
        snap = self._board.apply_ticker(ticker)
        if snap is None:
            return
        out = sm.market_update(snap, self._clock.now_ms())
        self._latest[ticker.symbol] = out
        self._hub.publish(ticker.symbol, out)
