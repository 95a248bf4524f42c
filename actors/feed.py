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

Sources (``feed.source``) come from :mod:`engine.feeds.registry`, which gives
each one's factory and capabilities; this actor never tests a source's name.
A *pulse-driven* source (``simulated``) is stepped here: a TimerActor pulses
this actor ``ticks_per_second`` times a second; each pulse makes one book and
one trade (inside that book) per symbol, routed in that order, and once a
second a 24 h ticker. A *thread source* (``replay``:
:class:`~engine.feeds.replay.ReplaySource`; ``binance``:
:class:`~engine.feeds.binance.BinanceSource`) runs its own thread(s).

A source thread sends :class:`FeedBatch` (and single :class:`TradeTick`, still
accepted) to this actor, and :class:`SourceUp` /
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

For a source that ``dedupes`` (Binance), every trade first passes the
:class:`~engine.market.plausibility.TradeGuard` (an id far ahead of the last
one, or a price outside the band around the last trade or the ticker's last
price, is held and dropped unless the next trade vouches for it: dropped
trades are counted in :class:`~engine.feeds.base.FeedShared` by reason and
logged, at most one line per :data:`DROP_LOG_EVERY_S` plus the first). Then
trades are routed only if their aggregate-trade id is newer than the last one
routed for the symbol (and tickers, best bid/ask and depth snapshots only if
newer), so the overlap of two connections during a rotation never routes a
trade twice
(:class:`~engine.market.dedupe.Watermarks`). Both live in this actor, so a
new generation (a new connection after a failure) starts with fresh
watermarks; the guard is seeded with the previous generation's last trusted
trades (soft references, see the guard's docstring).

Symbols added live (a source with ``live_symbols``, ``feed.dynamic_symbols``):
:class:`~engine.market.live_symbols.LiveSymbols` decides which may be added
and what each waiting client is answered; this actor carries the decisions
out (SUBSCRIBED / ERROR to the waiters, SUBSCRIBE / UNSUBSCRIBE upstream) and
keeps one ``threading.Timer``, a transport only, that wakes it at the
earliest deadline to ask what has expired. The hub reports each symbol's
first and last subscriber (:class:`SymbolInterest`); a live symbol nobody
watched for ``unsubscribe_grace_s`` is withdrawn (no longer served,
UNSUBSCRIBE upstream). Owners and served live symbols live in FeedShared, so
a new generation takes them over (and looks at the hub for who watches).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pykka

from actors.base import ActorSlot, ExpectedFailure, FailureHook, TickdeskActor
from actors.messages import (
    AddSymbol,
    BookTick,
    ControlAnswer,
    FeedBatch,
    Pulse,
    RecentTradesRequest,
    RequestId,
    RotateSource,
    SendBookSnapshot,
    SendSnapshot,
    SourceFailed,
    SourceUp,
    SymbolInfoLoaded,
    SymbolInterest,
    TradeTick,
)
from actors.timer import TimerActor
from actors.trade_relay import TradeRelay
from engine.binance import stream_payloads as bp
from engine.clock import Clock
from engine.config import FeedConfig
from engine.feeds.base import FeedShared, FeedSource, MarketItem
from engine.feeds.binance import ControlSent
from engine.feeds.registry import LiveSymbolSource, OpenSource, PulsedMarket, source_kind
from engine.market.binance_codec import ControlError
from engine.market.board import MarketBoard
from engine.market.dedupe import Watermarks
from engine.market.live_symbols import (
    Decision,
    LiveSymbols,
    Refused,
    Subscribe,
    Subscribed,
    Withdraw,
)
from engine.market.plausibility import TradeGuard
from engine.market.quote_book import BookView
from engine.market.recent_trades import RecentTrade, RecentTrades
from engine.market.simulated import SimStep
from engine.market.symbol_info import SymbolCatalog, SymbolInfo
from engine.messages import (
    BookLevel,
    BookTicker,
    DepthSnapshot,
    MarketSnapshot,
    Ticker24h,
    Trade,
)
from engine.protocol import server_messages as sm
from engine.server.bus import Bus, InProcessBus
from engine.server.channel import Channel
from engine.server.hub import Hub
from engine.stats import counter

__all__ = ["DROP_LOG_EVERY_S", "FeedActor", "FeedSourceError", "FeedStatistics"]

log = logging.getLogger("tickdesk.feed")

#: Implausible trades: the first drop is logged, then at most one line this often.
DROP_LOG_EVERY_S = 10.0

_source_ids = itertools.count(1)


class FeedSourceError(ExpectedFailure):
    """The feed's upstream was lost; raised in the actor so that it fails."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.failure_reason = reason


@dataclass(frozen=True, slots=True)
class FeedStatistics:
    """What one FeedActor generation counts (``/metrics``: ``tickdesk_feed_*``)."""

    trades: int = counter("Trades routed to the subscribers, the order monitor and the "
                          "portfolio (since the feed last started).")
    rotations: int = counter("Upstream connections replaced by a new one (24 h rotations, "
                             "since the feed last started).")


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


@dataclass(frozen=True, slots=True)
class _CheckDeadlines:
    """Time to ask :meth:`LiveSymbols.expired` (the wake-up timer → this actor)."""


#: Who waits for a live symbol: the client's channel and its request id.
_Waiter = tuple[Channel, RequestId]


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
        symbols: SymbolCatalog | None = None,
        load_symbol_info: Callable[[str], SymbolInfo | None] | None = None,
        bus: Bus | None = None,
        relay: TradeRelay | None = None,
    ) -> None:
        """``bus``: where market frames and Binance stream events go
        (:mod:`engine.server.bus`; default: the hub's subscribers directly).
        ``symbols`` and ``load_symbol_info`` (Binance): a symbol added live
        whose exchange info is not in ``symbols`` is loaded first, in a loader
        thread (the call blocks, with bounded retries and timeouts), and refused
        ``UNKNOWN_SYMBOL`` without being subscribed when it cannot be.
        ``relay``: shared with the command desks (:mod:`actors.trade_relay`);
        a trade is told to the order monitor and the portfolio through it."""
        super().__init__("feed", on_failure, generation)
        self._catalog = symbols
        self._load_symbol_info = load_symbol_info
        self._cfg = cfg
        self._hub = hub
        self._out: Bus = bus if bus is not None else InProcessBus(hub, lambda _req: False)
        self._orders = order_monitor
        self._portfolio = portfolio
        self._relay = relay if relay is not None else TradeRelay()
        self._clock = clock
        self._board = MarketBoard()
        self._latest: dict[str, sm.Outgoing] = {}
        #: The best bid/ask last sent on each symbol's ``@bookTicker``.
        self._binance_tops: dict[str, tuple[BookLevel, BookLevel]] = {}
        #: The book last sent on each symbol's ``@depth`` (while someone follows it).
        self._binance_books: dict[str, BookView] = {}
        #: The recent trades of each symbol for the REST trade endpoints (bounded:
        #: 1000 per symbol, the oldest dropped), under their stream ids.
        self._recent = RecentTrades()
        self._kind = source_kind(cfg.source)
        self._market: PulsedMarket | None = None
        self._pulses = 0
        self._pulses_per_ticker = 1
        self._timer: pykka.ActorRef[Any] | None = None
        self._on_trade_published = on_trade_published
        self._on_tick_latency = on_tick_latency
        self._shared = shared if shared is not None else FeedShared(cfg.symbols)
        self._on_up = on_up
        self._sources: dict[int, FeedSource] = {}
        self._primary: int | None = None
        self._pending: int | None = None  # a rotation's new source, until it is up
        self.rotations = 0
        self._dedupe = Watermarks() if self._kind.dedupes else None
        self._guard: TradeGuard | None = None
        if self._kind.dedupes:
            self._guard = TradeGuard(cfg.binance.max_trade_id_jump,
                                     cfg.binance.max_price_deviation_pct)
            self._guard.seed(self._shared.references())
        self._drops_unlogged = 0
        self._drop_logged_at: float | None = None
        self._live = self._kind.live_symbols
        self._live_symbols: LiveSymbols[_Waiter] = LiveSymbols(
            cfg.binance.subscribe_timeout_s, max_per_account=cfg.max_live_symbols_per_account,
            grace_s=cfg.binance.unsubscribe_grace_s)
        #: Transport only: wakes this actor at the earliest live-symbol deadline.
        self._wake: threading.Timer | None = None
        self._wake_at: float | None = None
        self.trades = 0
        self.handlers = {
            Pulse: self._on_pulse,
            TradeTick: self._on_trade_tick,
            FeedBatch: self._on_batch,
            SourceUp: self._on_source_up,
            SourceFailed: self._on_source_failed,
            RotateSource: self._on_rotate,
            AddSymbol: self._on_add_symbol,
            _CheckDeadlines: self._on_check_deadlines,
            ControlAnswer: self._on_control_answer,
            SymbolInterest: self._on_interest,
            SendSnapshot: self._on_send_snapshot,
            SymbolInfoLoaded: self._on_symbol_info_loaded,
            SendBookSnapshot: self._on_send_book_snapshot,
            RecentTradesRequest: self._on_recent_trades,
        }

    def statistics(self) -> FeedStatistics:
        return FeedStatistics(self.trades, self.rotations)

    def started(self) -> None:
        kind = self._kind
        if kind.pulsed is not None:
            pulsed = kind.pulsed(self._cfg, self._shared.last_prices())
            self._market = pulsed.market
            self._pulses_per_ticker = max(1, round(pulsed.ticks_per_second))
            me = ActorSlot("feed-self")
            me.set(self.actor_ref)
            self._timer = TimerActor.start(
                "feed-pulse", me, Pulse("sim"), 1.0 / pulsed.ticks_per_second, self._clock,
                max_backlog=10,
            )
            now = self._clock.now_ms()
            t0 = self._clock.monotonic()
            for sym in self._market.symbols:  # a price for every symbol from the start
                self._route_step(self._market.step(sym, now), now, t0)
                self._route_ticker(self._market.ticker(sym, now))
        elif kind.open is not None:
            if self._live:
                self._live_symbols.restore(self._shared.live_owners(),
                                           self._hub.watched_symbols(),
                                           self._clock.monotonic())
                self._arm_wake()
            self._add_source(kind.open)

    def _add_source(self, make: OpenSource) -> int:
        sid = next(_source_ids)
        source = make(self._cfg, _ActorSink(self.actor_ref, sid, self._clock.monotonic),
                      self._clock, self._shared)
        self._sources[sid] = source
        if self._primary is None:
            self._primary = sid
        source.start()
        return sid

    def _live_source(self) -> LiveSymbolSource | None:
        """The serving source, if this kind of source can add symbols while it runs."""
        if not self._live or self._primary is None:
            return None
        source = self._sources.get(self._primary)
        return cast(LiveSymbolSource, source) if source is not None else None

    def cleanup(self) -> None:
        if self._market is not None:  # the next generation resumes from here
            self._shared.keep_prices(self._market.last_prices())
        timer = self._timer
        self._timer = None
        if timer is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                timer.stop(block=True, timeout=2.0)
        sources = list(self._sources.values())
        self._sources.clear()
        self._primary = None
        self._pending = None
        self._carry(self._live_symbols.abandon())
        self._cancel_wake()
        if self._guard is not None:
            for trade, reason in self._guard.give_up():
                self._count_drop(trade, reason)
            self._shared.keep_references(self._guard.references())
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
        sim = self._market
        if sim is None:
            return
        now = self._clock.now_ms()
        t0 = self._clock.monotonic()
        self._pulses += 1
        ticker_due = self._pulses % self._pulses_per_ticker == 0
        for sym in sim.symbols:
            self._route_step(sim.step(sym, now), now, t0)
            if ticker_due:
                self._route_ticker(sim.ticker(sym, now))

    def _on_trade_tick(self, msg: TradeTick) -> None:
        self._route_trade(msg.trade, msg.received_ms, self._clock.monotonic())

    def _on_batch(self, msg: FeedBatch) -> None:
        t0 = msg.received_mono if msg.received_mono is not None else self._clock.monotonic()
        try:
            if msg.source not in self._sources:
                return  # a source already replaced or stopped
            for item in msg.items:
                if self._live and not self._shared.serves(item.symbol):
                    confirmed = self._live_symbols.first_event(item.symbol)
                    if confirmed is None:
                        continue  # e.g. the tail of a timed-out subscription
                    self._carry([confirmed])
                    self._arm_wake()
                if isinstance(item, Trade):
                    self._admit_trade(item, msg.received_ms, t0)
                    continue
                if self._guard is not None and isinstance(item, Ticker24h):
                    self._guard.note_quote(item.symbol, item.last_price)
                if self._dedupe is not None and not self._dedupe.admit(item):
                    continue
                if isinstance(item, BookTicker | DepthSnapshot):
                    self._route_book(item, msg.received_ms)
                else:
                    self._route_ticker(item)
        finally:
            if msg.done is not None:
                msg.done()

    def _admit_trade(self, trade: Trade, received_ms: int, t0: float) -> None:
        """Plausibility, then de-duplication, then routing (see the module docstring)."""
        if self._guard is None:
            self._route_trade(trade, received_ms, t0)
            return
        verdict = self._guard.check(trade)
        for dropped, reason in verdict.dropped:
            self._count_drop(dropped, reason)
        for item in verdict.route:
            if self._dedupe is None or self._dedupe.admit(item):
                self._note_gap(item)
                self._route_trade(item, received_ms, t0)

    def _note_gap(self, trade: Trade) -> None:
        """Aggregate-trade id continuity (across reconnects: kept in FeedShared)."""
        if trade.trade_id is None:
            return
        gap = self._shared.observe_trade(trade.symbol, trade.trade_id)
        if gap:
            log.warning("%s: %d aggregate trade(s) missed before id %d",
                        trade.symbol, gap, trade.trade_id)

    def _count_drop(self, trade: Trade, reason: str) -> None:
        self._shared.count_dropped(reason)
        now = self._clock.monotonic()
        last = self._drop_logged_at
        if last is not None and now - last < DROP_LOG_EVERY_S:
            self._drops_unlogged += 1
            return
        more = self._drops_unlogged
        self._drops_unlogged = 0
        self._drop_logged_at = now
        log.warning("feed: dropped an implausible trade (%s): %s id %s price %s%s", reason,
                    trade.symbol, trade.trade_id, trade.price,
                    f"; {more} more dropped since the last report" if more else "")

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
        assert self._kind.open is not None  # only a thread source asks to rotate
        self._pending = self._add_source(self._kind.open)

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
        self._carry(self._live_symbols.add(
            msg.symbol, (msg.channel, msg.request_id), served=self._shared.serves(msg.symbol),
            supported=self._live_source() is not None, served_count=len(self._shared.served()),
            max_symbols=self._kind.symbol_limit(self._cfg), account=msg.account))

    def _on_interest(self, msg: SymbolInterest) -> None:
        self._live_symbols.interest(msg.symbol, msg.watched, self._clock.monotonic())
        self._arm_wake()

    def _on_control_answer(self, msg: ControlAnswer) -> None:
        reply = msg.reply
        if isinstance(reply, ControlSent):
            self._live_symbols.sent(reply.id, self._clock.monotonic())
            self._arm_wake()
        elif isinstance(reply, ControlError):
            self._carry(self._live_symbols.refused(reply.id))
            self._arm_wake()

    def _on_check_deadlines(self, _msg: _CheckDeadlines) -> None:
        self._wake = None
        self._wake_at = None
        self._carry(self._live_symbols.expired(self._clock.monotonic(),
                                               self._hub.watched_symbols()))
        self._arm_wake()

    def _carry(self, decisions: list[Decision[_Waiter]]) -> None:
        """Carry out what :class:`~engine.market.live_symbols.LiveSymbols` decided."""
        for d in decisions:
            if isinstance(d, Subscribed):
                if d.new:
                    owner = self._live_symbols.owners().get(d.symbol, "")
                    self._shared.add_symbol(d.symbol, owner)
                    log.info("feed: %s added live (by account %s)", d.symbol, owner or "?")
                for ch, rid in d.waiters:
                    self._hub.subscribe(ch, d.symbol)
                    ch.deliver(sm.subscribed(d.symbol, self._clock.now_ms(), rid))
                    if not d.new:
                        self._on_send_snapshot(SendSnapshot(ch, d.symbol))
                if d.new and self._hub.subscriber_count(d.symbol) == 0:
                    # every waiter left meanwhile: its grace starts now
                    self._live_symbols.interest(d.symbol, False, self._clock.monotonic())
            elif isinstance(d, Withdraw):
                self._shared.remove_symbol(d.symbol)
                self._latest.pop(d.symbol, None)
                self._recent.forget(d.symbol)
                if self._guard is not None:
                    self._guard.forget([d.symbol])
                log.info("feed: %s withdrawn (added live by %s; no subscriber for %.0fs)",
                         d.symbol, d.owner or "?", self._cfg.binance.unsubscribe_grace_s)
                source = self._live_source()
                if source is not None:
                    source.unsubscribe([d.symbol])
            elif isinstance(d, Refused):
                now = self._clock.now_ms()
                for ch, rid in d.waiters:
                    ch.deliver(sm.error(d.code, d.message, now, rid))
            else:
                source = self._live_source()
                if source is None:
                    continue  # the source is gone; so is its subscription
                if isinstance(d, Subscribe):
                    if self._needs_info(d.symbol):
                        self._start_info_loader(d.symbol)
                        continue
                    request = source.subscribe([d.symbol])
                    self._live_symbols.requested(d.symbol, request)
                    log.info("feed: subscribing %s live (request %d)", d.symbol, request)
                else:
                    source.unsubscribe([d.symbol])

    def _cancel_wake(self) -> None:
        if self._wake is not None:
            self._wake.cancel()
        self._wake = None
        self._wake_at = None
    def _needs_info(self, symbol: str) -> bool:
        """A symbol to add live whose exchange filters must be loaded first."""
        return (self._load_symbol_info is not None and self._catalog is not None
                and self._catalog.get(symbol) is None)

    def _start_info_loader(self, symbol: str) -> None:
        """Load ``symbol``'s exchange info in a short-lived thread (at most
        ``MAX_PENDING_SYMBOLS`` symbols are pending, so at most that many run)."""
        load = self._load_symbol_info
        assert load is not None
        me = self.actor_ref

        def run() -> None:
            try:
                found = load(symbol) is not None
            except Exception:
                log.exception("feed: loading the exchange info of %s failed", symbol)
                found = False
            with contextlib.suppress(pykka.ActorDeadError):
                me.tell(SymbolInfoLoaded(symbol, found))

        threading.Thread(target=run, name=f"feed-exchange-info-{symbol}", daemon=True).start()

    def _on_symbol_info_loaded(self, msg: SymbolInfoLoaded) -> None:
        symbol = msg.symbol
        if symbol not in self._live_symbols:
            return  # answered meanwhile (the feed went away)
        if not msg.found:
            self._carry(self._live_symbols.unavailable(
                symbol, f"symbol {symbol}: its exchange filters could not be loaded "
                        "(unknown to the exchange, or no answer)"))
            return
        source = self._live_source()
        if source is None:
            return  # the source is gone; abandon() answers the waiters
        request = source.subscribe([symbol])
        self._live_symbols.requested(symbol, request)
        log.info("feed: subscribing %s live (request %d)", symbol, request)

    def _arm_wake(self) -> None:
        """Keep one timer armed for the earliest live-symbol deadline (none if none)."""
        due = self._live_symbols.next_deadline()
        if due is not None and self._wake_at is not None and self._wake_at <= due:
            return  # armed already, early enough
        self._cancel_wake()
        if due is None:
            return
        me = self.actor_ref

        def wake() -> None:
            with contextlib.suppress(pykka.ActorDeadError):
                me.tell(_CheckDeadlines())

        timer = threading.Timer(max(0.0, due - self._clock.monotonic()), wake)
        timer.daemon = True
        self._wake, self._wake_at = timer, due
        timer.start()

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

    def _on_recent_trades(self, msg: RecentTradesRequest) -> list[RecentTrade]:
        return self._recent.query(msg.query)

    # -- routing ------------------------------------------------------------

    def _route_step(self, step: SimStep, now_ms: int, received_mono: float) -> None:
        """A pulse-driven market's step: its book first, then the trade made inside it."""
        self._route_book(step.book, now_ms)
        self._route_trade(step.trade, now_ms, received_mono)

    def _route_book(self, item: BookTicker | DepthSnapshot, received_ms: int) -> None:
        """Publish one book input if it changed the board's book: BookTick to the
        order monitor and the portfolio first (like trades), then BOOK_UPDATE to the
        book subscribers (encoded only if the bus says it has some: a new subscriber's
        snapshot is encoded from the board) and, if the best bid/ask moved,
        MARKET_UPDATE. A depth snapshot travels as the board's merged book (a newer
        best bid/ask may lead it); a best bid/ask as received."""
        change = self._board.apply_book(item)
        if change is None:
            return
        if isinstance(item, DepthSnapshot):
            item = DepthSnapshot(item.symbol, change.book.bids, change.book.asks,
                                 item.last_update_id, item.event_time)
        tick = BookTick(item, received_ms)
        self._orders.tell(tick)
        self._portfolio.tell(tick)
        now = self._clock.now_ms()
        if self._out.book_subscriber_count(item.symbol):  # across Redis: always
            self._out.publish_book(item.symbol, sm.book_update(change.book, now))
        if change.market is not None:
            out = sm.market_update(change.market, now)
            self._latest[item.symbol] = out
            self._out.publish(item.symbol, out)
            self._publish_binance_ticker(change.market)
        update_id = (item.update_id if isinstance(item, BookTicker) else item.last_update_id)
        self._publish_binance_book(change.book, update_id)

    # -- Binance streams (docs/binance-compat.md, "Streams") -------------------

    def _publish_binance_trade(self, trade: Trade, seq: int) -> None:
        """``@trade`` and ``@aggTrade`` of one routed trade, each encoded once and only
        if someone subscribes it (every trade, in order: never conflated); the trade is
        recorded for the REST trade endpoints under the same id."""
        lower = trade.symbol.lower()
        trade_id = trade.trade_id if trade.trade_id is not None else seq
        self._recent.add(trade, trade_id)
        for name, build in ((f"{lower}@trade", bp.trade), (f"{lower}@aggTrade", bp.agg_trade)):
            if self._out.has_stream(name):
                payload = build(trade, trade_id, trade.event_time)
                self._out.publish_stream(name, payload, None)

    def _publish_binance_ticker(self, snap: MarketSnapshot) -> None:
        """``@ticker`` and ``@miniTicker`` of each new MARKET_UPDATE state
        (conflated per stream)."""
        lower = snap.symbol.lower()
        for name, build in ((f"{lower}@ticker", bp.ticker_24h),
                            (f"{lower}@miniTicker", bp.mini_ticker)):
            if self._out.has_stream(name):
                payload = build(snap, snap.event_time)
                self._out.publish_stream(name, payload, name)

    def _publish_binance_book(self, book: BookView, update_id: int) -> None:
        """``@depth`` (every change, in order: diffs are never conflated) and
        ``@bookTicker`` when the best bid or ask (price or quantity) changed
        (conflated per symbol for a slow client, like MARKET_UPDATE)."""
        lower = book.symbol.lower()
        names = [n for n in (f"{lower}@depth", f"{lower}@depth@100ms", f"{lower}@depth@1000ms")
                 if self._out.has_stream(n)]
        prev = self._binance_books.get(book.symbol)
        if names:
            self._binance_books[book.symbol] = book
            payload = bp.depth_update(prev, book, book.event_time)
            for n in names:
                self._out.publish_stream(n, payload, None)
        elif prev is not None:
            del self._binance_books[book.symbol]  # nobody follows: the next diff starts whole
        name = f"{lower}@bookTicker"
        bid, ask = book.best_bid, book.best_ask
        if bid is None or ask is None or not self._out.has_stream(name):
            return
        top = (bid, ask)
        if self._binance_tops.get(book.symbol) == top:
            return
        self._binance_tops[book.symbol] = top
        payload = bp.book_ticker(book.symbol, update_id, bid[0], bid[1], ask[0], ask[1])
        self._out.publish_stream(name, payload, name)

    def _route_trade(self, trade: Trade, received_ms: int, received_mono: float) -> None:
        """Publish one trade; ``received_mono`` (Clock.monotonic()) is when the engine
        received it: the tick latency is measured from there to the end of the fan-out."""
        snap = self._board.apply_trade(trade)
        out = sm.market_update(snap, self._clock.now_ms())
        self._latest[trade.symbol] = out
        # The order monitor and the portfolio hear of the trade after the
        # fan-out (so they do not wake up during it), but before any command a
        # client sends in reaction to this price: the relay tells them as soon
        # as a command is submitted (actors.trade_relay).
        tick = TradeTick(trade, received_ms)
        orders, portfolio = self._orders, self._portfolio

        def tell() -> None:
            orders.tell(tick)
            portfolio.tell(tick)

        self._relay.hold(tell)
        try:
            self._out.publish(trade.symbol, out)
        finally:
            self._relay.flush()
        self._publish_binance_trade(trade, snap.seq)
        self._publish_binance_ticker(snap)
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
        self._out.publish(ticker.symbol, out)
        self._publish_binance_ticker(snap)
