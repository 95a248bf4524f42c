"""PortfolioActor: owns every account's ledger and the mark prices.

Runs in its own pykka thread. It answers ``get_positions``/``get_portfolio``,
broadcasts POSITION_UPDATE and PORTFOLIO_UPDATE when its TimerActors fire,
applies fills for the OrderMonitorActor (``ask``: the fill is applied, and
persisted when a store is configured, before the caller announces it), and
answers risk checks (``RiskQuery``, decided by :mod:`engine.trading.risk`). The
ledger math is pure (:mod:`engine.trading.ledger`, settled by
:mod:`engine.trading.settlement`).

Marks: a trade older than ``trading.max_tick_age_s`` on arrival (this actor's
clock) moves no mark. Reservations: a ``RiskQuery`` that passes *stages* the
plan it approved; the ``Settle`` of the same command (the OrderMonitorActor
asks it next, from its one thread) takes it when the order's ``NEW`` is
settled. Staged plans never outlive that ``Settle``.

Persistence: this actor is the one owner of the :class:`~engine.store.Store`.
It opens it in ``started()`` (its own thread; SQLite's ``check_same_thread``
holds) and closes it in ``cleanup()`` (same thread), loads the ledgers from
it, and on ``Settle`` applies the fills to *copies* of the affected ledgers,
commits the whole outcome in one transaction, and only then swaps the copies
in and replies.

Group commit: the OrderMonitorActor may settle several commands in one
transaction. Each ``Settle(hold=True)`` is applied to the group's *working*
copies of the ledgers (created at the group's first settle, each from the
previous one) and held, not written; a ``RiskQuery`` meanwhile decides on
the working copies, so a later command of the group sees the earlier ones'
reservations and fills; everything else (``get_portfolio``, the timer
updates, equity samples) still sees only the committed ledgers. ``Commit``
then writes every held outcome in ONE transaction (one fsync) and swaps the
working copies in; if it fails, the working copies are dropped and the
store rolled back, so nothing of the group is kept in memory or on disk.
``LoadBook`` (the OrderMonitorActor rebuilding its book) drops a held
group too. If a commit fails nothing in memory changed: a store error
(``sqlite3.Error``: disk full, I/O error) is counted in the engine's
:class:`~engine.store_health.StoreHealth` (the store is then *unwritable*
for ``/healthz``) and answered with :class:`~engine.errors.StoreUnavailable`,
which the OrderMonitorActor turns into ``ERROR STORE_UNAVAILABLE`` without
crashing (see its docstring). While the store is unwritable, each timer
``Pulse`` (at most one a second) probes it with a write that touches no
tickdesk data (:meth:`Store.probe`), so ``/healthz`` turns healthy again as soon as the
store writes, even on an idle daemon. ``LoadBook`` gives the
OrderMonitorActor the persisted orders, so only this thread ever touches
SQLite. After a restart of this actor the ledgers reload from the store.

History: ``get_fills`` and ``get_equity_history`` are answered here, from the
store (or, without one, from a bounded :class:`~engine.trading.history.MemoryHistory`).
Each settled fill is recorded with its fee asset and the realized P&L the
ledger computed for it, in the settle's transaction. On the ``equity`` Pulse
(``intervals.equity_s``, 60 s) :meth:`PortfolioActor.sample_equity` records
every account's equity at the injected clock's time (an account holding a
position with no mark yet is skipped: its equity is not known). A sample the
store cannot write (``sqlite3.Error``) is dropped and counted in the
StoreHealth like a failed settle; the next period samples again.

Klines: this actor also owns the :class:`~engine.market.klines.KlineBook`. It
hears every trade the FeedActor routes (after the feed's plausibility and
de-duplication checks: the same ``TradeTick`` that moves the marks, stale or
not, counted at its trade time), already owns the store and outlives feed
reconnections. The FeedActor's fan-out is not slowed (a ``tell``), and the
bars are written off the trade path, on the ``klines`` Pulse (every
:data:`KLINE_PULSE_S`): closed bars at the first pulse after they close,
the open bars every :data:`KLINE_OPEN_SAVE_MS`, and everything unsaved in
``cleanup()`` (a stop, or a failure before a Supervisor restart). A
``kill -9`` therefore loses at most the trades of the open bars since the
last write (``KLINE_OPEN_SAVE_MS``) and of bars closed within the last
pulse. A write the store refuses is counted in the StoreHealth; the bars
stay unsaved and are written at the first pulse after the store writes
again (while it is unwritable only the probe tries). ``started()`` restores the book
from the store. ``get_klines`` and ``Engine.klines`` (:class:`KlineRequest`)
are answered from the book.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from actors.base import FailureHook, TickdeskActor
from actors.command_desk import Drain
from actors.messages import (
    AccountRequest,
    BookTick,
    KlineRequest,
    OpenOrdersChanged,
    Pulse,
    TradeTick,
)
from engine.binance.stream_payloads import BalanceRow, KlineEvents
from engine.binance.translate import spot_balances
from engine.binance.user_stream import AccountChange
from engine.config import TradingConfig, account_start
from engine.errors import InternalError, StoreUnavailable
from engine.market.klines import Kline, KlineBook
from engine.money import ZERO
from engine.protocol import server_messages as sm
from engine.protocol.enums import Action
from engine.server.bus import Bus
from engine.store import FillFacts, Store
from engine.store_health import StoreHealth, error_kind
from engine.trading.assets import UnknownAssets, symbol_assets
from engine.trading.events import Outcome
from engine.trading.history import (
    EquityQuery,
    EquitySample,
    FillRecord,
    FillsQuery,
    MemoryHistory,
)
from engine.trading.ledger import AssetsFn, Ledger
from engine.trading.order import Order
from engine.trading.risk import risk_plan
from engine.trading.settlement import Staged, settle_outcome
from engine.trading.valuation import account_value

__all__ = [
    "KLINE_OPEN_SAVE_MS",
    "KLINE_PULSE_S",
    "BookState",
    "Commit",
    "LoadBook",
    "PortfolioActor",
    "RiskQuery",
    "Settle",
]

log = logging.getLogger("tickdesk.portfolio")

#: While the store is unwritable, probe it at most this often (on timer pulses).
PROBE_INTERVAL_MS = 1000
#: The ``klines`` Pulse's period: closed bars are written at the next one.
KLINE_PULSE_S = 1.0
#: The open (current) bars are written at most this often (and at cleanup()).
KLINE_OPEN_SAVE_MS = 5000


@dataclass(frozen=True, slots=True)
class Settle:
    """Apply an order-book outcome's fills (and persist it) before it is announced (ask).

    ``hold``: one outcome of a group commit: applied to the group's working
    ledgers and held until :class:`Commit` (see the module docstring)."""

    outcome: Outcome
    next_order_id: int
    next_list_id: int
    hold: bool = False


@dataclass(frozen=True, slots=True)
class Commit:
    """Commit the ``settles`` held outcomes of the group in ONE store
    transaction (ask; replies None). Raises
    :class:`~engine.errors.StoreUnavailable` when the store refuses it (nothing
    of the group kept), :class:`~engine.errors.InternalError` when this actor
    does not hold exactly ``settles`` outcomes (it restarted during the
    group, which is therefore not stored: the OrderMonitorActor fails and
    reloads its book)."""

    settles: int


@dataclass(slots=True)
class _Group:
    """The held outcomes of a group commit and the working ledgers they changed."""

    ledgers: dict[str, Ledger] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    facts: list[FillFacts] = field(default_factory=list)
    next_order_id: int = 0
    next_list_id: int = 0


@dataclass(frozen=True, slots=True)
class SettleReport:
    """The reply to :class:`Settle`: each fill's fee asset (in ``outcome.fills``
    order) and, per account, the assets whose free or locked amount changed
    (what Binance's ``outboundAccountPosition`` lists)."""

    fee_assets: tuple[str | None, ...]
    changes: dict[str, AccountChange]


@dataclass(frozen=True, slots=True)
class LoadBook:
    """The persisted orders and id counters for ``OrderBook.restore`` (ask;
    replies a :class:`BookState`, or None when no store is configured)."""


@dataclass(frozen=True, slots=True)
class BookState:
    orders: tuple[Order, ...]
    next_order_id: int
    next_list_id: int


@dataclass(frozen=True, slots=True)
class RiskQuery:
    """Would these orders (one order, or a list's legs that reserve once) be
    refused at the ``reference`` price? (ask; replies a reason or None)."""

    account: str
    orders: tuple[Order, ...]
    reference: Decimal


def _spot_view(ledger: Ledger) -> dict[str, tuple[Decimal, Decimal]]:
    """The ledger as the spot wallet the Binance API shows (``{asset: (free,
    locked)}``, :func:`engine.binance.translate.spot_balances`: GET /api/v3/account
    and outboundAccountPosition use the one rule)."""
    def pair(symbol: str) -> tuple[str, str] | None:
        try:
            assets = ledger.assets_of(symbol)
        except UnknownAssets:
            return None
        return assets.base, assets.quote

    balances = [{"asset": a, "total": ledger.balance_of(a), "locked": ledger.locked(a)}
                for a in ledger.assets()]
    positions = [{"symbol": p.symbol, "quantity": abs(p.quantity),
                  "side": "LONG" if p.quantity > 0 else "SHORT",
                  "entryPrice": p.entry_price} for p in ledger.open_positions()]
    return spot_balances({"balances": balances}, positions, pair)


def _balance_change(before: Ledger | None, after: Ledger, now_ms: int) -> AccountChange:
    """The assets whose free or locked amount (as the spot wallet shows them)
    differs between two ledgers."""
    old = _spot_view(before) if before is not None else {}
    new = _spot_view(after)
    rows = [BalanceRow(asset, *new.get(asset, (ZERO, ZERO)))
            for asset in sorted(set(old) | set(new)) if old.get(asset) != new.get(asset)]
    return AccountChange(tuple(rows), now_ms)


class PortfolioActor(TickdeskActor):
    def __init__(
        self,
        bus: Bus,
        trading: TradingConfig,
        accounts: tuple[str, ...],
        now_ms: Callable[[], int],
        *,
        store_path: str = "",
        store_synchronous: str = "full",
        store_health: StoreHealth | None = None,
        fill_bound: int | None = None,
        on_failure: FailureHook | None = None,
        generation: int = 0,
        starts: Mapping[str, tuple[str, dict[str, Decimal]]] | None = None,
        assets_of: AssetsFn = symbol_assets,
        kline_bars: int = 1000,
    ) -> None:
        """``store_path``: the SQLite database (a path, or a ``file:`` URI);
        empty means no persistence (the history is then kept in memory,
        bounded). ``store_health`` outlives this actor (the Engine's), so a
        restart keeps the counts. ``starts``: ``account -> (home asset,
        starting balances)`` (default: :func:`~engine.config.account_start` of
        ``trading``). ``assets_of``: a symbol's base and quote asset.
        ``fill_bound``: the most fills the store keeps per account (None: all;
        the Engine bounds its in-memory database). ``kline_bars``: the klines
        kept per symbol and interval (``market.kline_bars``). The Binance kline
        streams go through ``bus`` too (docs/scaling.md), built only for
        streams someone watches (``bus.has_stream``)."""
        super().__init__("portfolio", on_failure, generation)
        self._store_path = store_path
        self._health = store_health if store_health is not None else StoreHealth()
        self._last_probe_ms: int | None = None
        self._store_synchronous = store_synchronous
        self._fill_bound = fill_bound
        self._store: Store | None = None
        self._bus = bus
        self._trading = trading
        self._now_ms = now_ms
        default = account_start(trading)
        self._ledgers = {}
        for name in accounts:
            home, balances = (starts or {}).get(name, default)
            self._ledgers[name] = Ledger(name, balances, trading.fee_bps, home,
                                         assets_of=assets_of)
        self._assets_of = assets_of
        self._max_age_ms = int(trading.max_tick_age_s * 1000)
        self._staged: dict[int, Staged] = {}
        #: The group commit being held (None: no group).
        self._group: _Group | None = None
        self._marks: dict[str, Decimal] = {}
        self._open_orders: dict[str, int] = {}
        #: The history of an engine without a store (unused with one).
        self._history = MemoryHistory()
        self._klines = KlineBook(max_bars=kline_bars)
        #: The last bar sent per symbol and interval on Binance's kline streams.
        self._kline_events = KlineEvents()
        self._klines_open_saved_ms: int | None = None
        self.handlers = {
            TradeTick: self._on_tick,
            BookTick: self._on_book,
            AccountRequest: self._on_request,
            Drain: self._on_drain,
            Pulse: self._on_pulse,
            OpenOrdersChanged: self._on_open_orders,
            RiskQuery: self._on_risk,
            Settle: self._on_settle,
            Commit: self._on_commit,
            LoadBook: self._on_load_book,
            KlineRequest: self._on_klines,
        }

    def started(self) -> None:
        if not self._store_path:
            return
        store = Store(self._store_path, self._store_synchronous, fill_bound=self._fill_bound)
        try:
            state = store.load(self._trading.fee_bps,
                               {n: lg.home_asset for n, lg in self._ledgers.items()},
                               self._trading.home_asset, self._assets_of)
            ledgers = dict(state.ledgers)
            new = [ledger for name, ledger in self._ledgers.items() if name not in ledgers]
            for ledger in new:
                ledgers[ledger.name] = ledger
            # an asset configured for a stored account later starts at its amount
            grown = [ledger for name, ledger in self._ledgers.items()
                     if name in ledgers and ledger not in new
                     and set(ledger.starting) - set(ledgers[name].starting)]
            for ledger in grown:
                stored = ledgers[ledger.name]
                for asset in set(ledger.starting) - set(stored.starting):
                    stored.starting[asset] = ledger.starting[asset]
            if new or grown:  # no write at all on a plain restart: a full disk cannot stop it
                store.add_accounts([*new, *grown])
            self._klines.restore(store.klines(keep=self._klines.max_bars))
        except BaseException:
            store.close()
            raise
        self._store = store
        self._ledgers = ledgers
        migrated = (f", migrated from v{store.migrated_from}"
                    if store.migrated_from != store.schema_version else "")
        log.info("store %s opened (schema v%d%s): accounts=%d orders=%d",
                 self._store_path, store.schema_version, migrated,
                 len(ledgers), len(state.orders))

    def cleanup(self) -> None:
        store = self._store
        if store is not None:
            self._save_klines(include_open=True)
        self._store = None
        if store is not None:
            store.close()

    def _ledger(self, account: str) -> Ledger:
        ledger = self._ledgers.get(account)
        if ledger is None:
            raise KeyError(f"unknown account {account!r}")
        return ledger

    def _on_tick(self, msg: TradeTick) -> None:
        trade = msg.trade
        bars = self._klines.on_trade(trade.symbol, trade.price, trade.quantity,
                                     trade.trade_time)
        self._publish_klines(bars, trade.event_time)
        if not trade.is_stale(self._now_ms(), self._max_age_ms):
            self._marks[trade.symbol] = trade.price

    def _publish_klines(self, bars: list[Kline], event_time: int) -> None:
        """Binance's ``<symbol>@kline_<interval>`` of the bars this trade updated:
        encoded once per stream, only for streams someone subscribes; conflated
        per stream for a slow client, except a bar's final (``x: true``) event."""
        bus = self._bus
        for name, payload, final in self._kline_events.on_bars(bars, event_time,
                                                               bus.has_stream):
            bus.publish_stream(name, payload, None if final else name)

    def _on_book(self, msg: BookTick) -> None:
        """A book change: positions are marked at the last trade, so nothing to do."""

    def _on_open_orders(self, msg: OpenOrdersChanged) -> None:
        self._open_orders[msg.account] = msg.count

    def _on_drain(self, msg: Drain) -> None:
        """One account command's turn: the next one of the desk's round-robin."""
        req = msg.desk.take()
        if req is not None:
            self._on_request(req)

    def _on_request(self, req: AccountRequest) -> None:
        args = req.args
        now = self._now_ms()
        if isinstance(args, FillsQuery):
            page = (self._store.fill_page(req.account, args) if self._store is not None
                    else self._history.fills(req.account, args))
            req.channel.deliver(sm.fills(page, now, req.request_id))
            return
        if isinstance(args, EquityQuery):
            samples = (self._store.equity_samples(req.account, args) if self._store is not None
                       else self._history.samples(req.account, args))
            req.channel.deliver(sm.equity_history(samples, now, req.request_id))
            return
        req.channel.deliver(self._update(req.action is Action.GET_POSITIONS, req.account,
                                         self._ledger(req.account), now, req.request_id))

    def sample_equity(self, now: int) -> dict[str, EquitySample]:
        """Record one equity sample per account at ``now`` (epoch ms) and return
        them: the account's equity in its home asset, as PORTFOLIO_UPDATE values
        it (the valued assets only). An account with an open position whose
        symbol has no mark yet is skipped (its equity is unknown, e.g. just after
        a restart)."""
        samples = {
            name: EquitySample(now, account_value(ledger, self._marks).equity)
            for name, ledger in sorted(self._ledgers.items())
            if all(p.symbol in self._marks for p in ledger.open_positions())
        }
        if not samples:
            return samples
        if self._store is not None:
            try:
                self._store.add_equity_samples(samples)
            except sqlite3.Error as exc:  # dropped: the next minute samples again
                self._store_failed(exc, "equity sample")
                return {}
            self._store_ok()
        else:
            for name, sample in samples.items():
                self._history.add_sample(name, sample)
        return samples

    def _on_pulse(self, msg: Pulse) -> None:
        now = self._now_ms()
        self._maybe_probe(now)
        if msg.name == "equity":
            self.sample_equity(now)
            return
        if msg.name == "klines":
            self.save_klines(now)
            return
        for account in self._bus.accounts():
            ledger = self._ledgers.get(account)
            if ledger is not None:
                self._bus.to_account_now(
                    account, self._update(msg.name == "positions", account, ledger, now))

    def _update(self, positions: bool, account: str, ledger: Ledger, now: int,
                request_id: str | int | None = None) -> sm.Outgoing:
        """The POSITION_UPDATE (``positions``) or PORTFOLIO_UPDATE of one account."""
        if positions:
            return sm.position_update(ledger, self._marks, now, request_id)
        return sm.portfolio_update(ledger, self._marks, self._open_orders.get(account, 0),
                                   now, request_id)

    def _working(self, account: str) -> Ledger:
        """The account's ledger as a command of the held group sees it (the
        group's working copy, else the committed ledger)."""
        group = self._group
        held = group.ledgers.get(account) if group is not None else None
        return held if held is not None else self._ledger(account)

    def _on_settle(self, msg: Settle) -> SettleReport:
        if not msg.hold and self._group is not None:
            # Not sent by a live OrderMonitorActor (it commits or abandons a
            # group before settling alone): the group was abandoned, and what
            # was never committed was never announced.
            log.warning("dropping %d held settles of an abandoned group",
                        len(self._group.outcomes))
            self._group = None
        # Work on copies: if a fill or the commit fails, memory is unchanged.
        staged, self._staged = self._staged, {}
        touched = {f.account for f in msg.outcome.fills}
        touched.update(e.account for e in msg.outcome.events)
        before = {name: self._working(name) for name in sorted(touched)}
        changed = {name: ledger.copy() for name, ledger in before.items()}
        results = settle_outcome(changed, msg.outcome, staged, self._marks, self._trading)
        facts: list[FillFacts] = [(r.fee_asset, r.realized_pnl) for r in results]
        report = SettleReport(tuple(asset for asset, _ in facts),
                              {name: _balance_change(before[name], after, self._now_ms())
                               for name, after in changed.items()})
        if msg.hold:
            group = self._group if self._group is not None else _Group()
            self._group = group
            group.ledgers.update(changed)
            group.outcomes.append(msg.outcome)
            group.facts += facts
            group.next_order_id, group.next_list_id = msg.next_order_id, msg.next_list_id
            return report
        self._persist(msg.outcome, changed, msg.next_order_id, msg.next_list_id, facts, 1)
        self._ledgers.update(changed)
        return report

    def _on_commit(self, msg: Commit) -> None:
        group, self._group = self._group, None
        held = len(group.outcomes) if group is not None else 0
        if group is None or held != msg.settles:
            log.error("commit of %d settles, but %d held: the group is dropped",
                      msg.settles, held)
            raise InternalError()
        events = tuple(e for o in group.outcomes for e in o.events)
        fills = tuple(f for o in group.outcomes for f in o.fills)
        self._persist(Outcome(events, fills), group.ledgers, group.next_order_id,
                      group.next_list_id, group.facts, held)
        self._ledgers.update(group.ledgers)

    def _persist(self, outcome: Outcome, ledgers_after: Mapping[str, Ledger],
                 next_order_id: int, next_list_id: int, facts: list[FillFacts],
                 outcomes: int) -> None:
        """Write ``outcome`` (one, or a group's outcomes in order) in ONE
        transaction; StoreUnavailable if the store refuses it (rolled back)."""
        if self._store is not None:
            try:
                self._store.settle(outcome, ledgers_after, next_order_id, next_list_id, facts)
            except sqlite3.Error as exc:
                self._store_failed(exc, "settle")
                raise StoreUnavailable() from None
            self._store_ok()
            self._health.committed(outcomes)
        else:
            for fill, (asset, realized) in zip(outcome.fills, facts, strict=True):
                self._history.add_fill(FillRecord(
                    self._history.take_fill_id(), fill.account, fill.order_id,
                    fill.client_order_id, fill.symbol, fill.side, fill.quantity, fill.price,
                    fill.fee, asset, realized, fill.time))

    # -- klines ------------------------------------------------------------------

    def save_klines(self, now: int) -> list[Kline]:
        """The ``klines`` Pulse at ``now`` (epoch ms): write the closed bars not
        saved yet, and every :data:`KLINE_OPEN_SAVE_MS` the open ones too;
        return what was written."""
        last = self._klines_open_saved_ms
        include_open = last is None or now - last >= KLINE_OPEN_SAVE_MS
        if include_open:
            self._klines_open_saved_ms = now
        elif not self._klines.has_closed_unsaved():
            return []
        return self._save_klines(include_open=include_open)

    def _save_klines(self, *, include_open: bool) -> list[Kline]:
        if self._store is None or not self._health.writable:
            return []  # unwritable: the pulse's probe finds out when it writes again
        bars = self._klines.take_unsaved(include_open=include_open)
        if not bars:
            return bars
        try:
            self._store.write_klines(bars, self._klines.max_bars)
        except sqlite3.Error as exc:  # kept unsaved: the next pulse tries again
            self._klines.unsaved_again(bars)
            self._store_failed(exc, "klines")
            return []
        self._store_ok()
        return bars

    def _on_klines(self, msg: KlineRequest) -> list[Kline] | None:
        bars = self._klines.answer(msg.query)
        if msg.channel is None:
            return bars
        q = msg.query
        msg.channel.deliver(sm.klines(q.symbol, q.interval, bars, self._now_ms(),
                                      msg.request_id))
        return None

    def orphaned(self, message: object) -> None:
        """An account command left in the mailbox when this actor failed: its
        client still gets its one answer (``ERROR INTERNAL``, not applied)."""
        if isinstance(message, KlineRequest) and message.channel is not None:
            err = InternalError(message.request_id)
            message.channel.deliver(sm.error(err.code, err.message, self._now_ms(),
                                             message.request_id))
        elif isinstance(message, Drain):
            message.desk.fail_one()
        elif isinstance(message, AccountRequest):
            err = InternalError(message.request_id)
            message.channel.deliver(sm.error(err.code, err.message, self._now_ms(),
                                             message.request_id))

    # -- store health ------------------------------------------------------------

    def _store_failed(self, exc: sqlite3.Error, what: str) -> None:
        kind = error_kind(exc)
        if self._health.writable:
            log.error("store %s: %s failed (%s: %s); commands get STORE_UNAVAILABLE until "
                      "it writes again", self._store_path, what, kind, exc)
        else:
            log.debug("store %s: %s failed again (%s: %s)", self._store_path, what, kind, exc)
        self._health.failed(kind, str(exc))

    def _store_ok(self) -> None:
        if self._health.succeeded():
            log.info("store %s writes again", self._store_path)

    def _maybe_probe(self, now: int) -> None:
        if self._store is None or self._health.writable:
            return
        if self._last_probe_ms is not None and now - self._last_probe_ms < PROBE_INTERVAL_MS:
            return
        self._last_probe_ms = now
        try:
            self._store.probe()
        except sqlite3.Error as exc:
            self._store_failed(exc, "probe")
            return
        self._store_ok()

    def _on_load_book(self, _msg: LoadBook) -> BookState | None:
        self._group = None  # the book is rebuilt from what is committed: so are we
        if self._store is None:
            return None
        state = self._store.load(self._trading.fee_bps)
        return BookState(state.orders, state.next_order_id, state.next_list_id)

    def _on_risk(self, msg: RiskQuery) -> str | None:
        plan, reason = risk_plan(self._working(msg.account), self._marks, self._trading,
                                 msg.orders, msg.reference)
        if reason is None:
            ids = tuple(o.order_id for o in msg.orders)
            self._staged[min(ids)] = Staged(msg.account, ids, plan)
        return reason
