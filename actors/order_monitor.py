"""OrderMonitorActor: owns the order book and works every order on every trade.

Runs in its own pykka thread. Every trade (and every book change,
:class:`~actors.messages.BookTick`) the FeedActor routes reaches it,
whether or not a client watches the symbol; the pure
:class:`~engine.trading.book.OrderBook` decides triggers and fills. An
outcome is *settled* before it is announced: the PortfolioActor applies the
fills to the ledgers and persists orders, fills and balances in one
transaction (``ask``), and only then are the ORDER_UPDATE /
ORDER_LIST_UPDATE events sent, in order, to the account's connections. The
connection that placed the order gets the events of its command with its
request ``id``.

If the store cannot write (the PortfolioActor answers the settle with
:class:`~engine.errors.StoreUnavailable`: disk full, I/O error) nothing is
announced and nothing crashes: the book, which the outcome had already
changed, is rebuilt from the store (which holds exactly what was announced,
``LoadBook``), and a command is answered ``ERROR STORE_UNAVAILABLE`` with its
``id``. An outcome of a *trade* (a fill, a trigger, a trailing move) is
dropped the same way: the order is back to what the store holds, keeps
working, and is tried again on the next trade, at that trade's price. The
first settle that commits again works normally: no restart is needed.

While the store is known to be unwritable (the engine's
:class:`~engine.store_health.StoreHealth`), at most one settle a second is
attempted (:data:`STORE_RETRY_MS`): in between, commands that would write
are answered ``STORE_UNAVAILABLE`` at once, without touching the book, and
trades are not matched against the book (they still update the last
prices). That bounds the rebuilds to one a second, so a refused store cannot
make this actor fall behind its trades; the first attempt after the store
writes again (a probe of the PortfolioActor, or this actor's own retry)
works normally.

Group commit: on a Drain this actor takes up to :data:`SETTLE_BATCH`
account commands at once (:meth:`~actors.command_desk.CommandDesk.take_batch`:
round-robin over the accounts, so one account's backlog cannot fill a batch
ahead of another's command). A lone command is settled at once, as above
(no waiting for a batch to fill). Several are run against the book in
order, each outcome settled with ``Settle(hold=True)`` (applied to the
PortfolioActor's working ledgers, which the next command's risk check sees,
not yet written), then ``Commit`` writes them all in ONE transaction (one
fsync), and only then are the outcomes announced, in order, and each
command answered once (an error a command got, e.g. ``UNKNOWN_ORDER``, is
delivered in its place in that order). A ``get_orders`` in a batch first
commits and announces what is before it, so it never shows an uncommitted
order. If the commit is refused, nothing of the group is kept (the
PortfolioActor drops its working ledgers, this actor reloads its book) or
announced, and every command of the group is answered ``ERROR
STORE_UNAVAILABLE``. Outcomes of trades are settled alone (they arrive as
their own messages, between batches).

Any other settle failure (the PortfolioActor gone, a timeout) still raises:
the command is answered ``ERROR INTERNAL`` first, then the Supervisor
restarts this actor and the new generation reloads the book from what was
persisted, so what clients were told and what is stored never diverge.

Restore: ``started()`` (in this actor's thread) asks the PortfolioActor for
the persisted orders and id counters (``LoadBook``; the PortfolioActor is
the only thread that touches SQLite) and rebuilds the book with
``OrderBook.restore``: open orders keep working with their trailing state.
With no store configured the book starts empty.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from actors.base import ActorSlot, FailureHook, TickdeskActor
from actors.command_desk import Drain
from actors.messages import AccountRequest, BookTick, OpenOrdersChanged, TradeTick
from actors.portfolio import BookState, Commit, LoadBook, RiskQuery, Settle, SettleReport
from engine.binance.user_stream import user_events
from engine.config import TradingConfig
from engine.errors import InternalError, ProtocolError, StoreUnavailable, UnknownSymbol
from engine.market.symbol_info import SymbolCatalog
from engine.protocol import server_messages as sm
from engine.protocol.commands import OrdersQuery
from engine.protocol.enums import Action
from engine.server.bus import Bus
from engine.store_health import StoreHealth
from engine.trading.assets import UnknownAssets, symbol_assets
from engine.trading.book import OrderBook, bps_fee
from engine.trading.events import OrderEvent, Outcome
from engine.trading.fill_model import FillModel
from engine.trading.filters import check_order
from engine.trading.ledger import AssetsFn
from engine.trading.order import Order, OrderType
from engine.trading.requests import (
    AmendRequest,
    BracketRequest,
    CancelRequest,
    OcoRequest,
    OrderRequest,
)
from engine.trading.triggers import taker_price

__all__ = ["SETTLE_BATCH", "STORE_RETRY_MS", "OrderMonitorActor"]

_SETTLE_TIMEOUT_S = 10.0
#: While the store is unwritable, attempt a settle at most this often.
STORE_RETRY_MS = 1000
#: At most this many account commands are taken from the desk at once and
#: settled in one store transaction (group commit: the module docstring).
SETTLE_BATCH = 16
#: Commands that write (settle) when they succeed.
_WRITING = frozenset({Action.PLACE_ORDER, Action.PLACE_OCO, Action.PLACE_BRACKET,
                      Action.CANCEL_ORDER})


@dataclass(frozen=True, slots=True)
class _Held:
    """One command of a group, run and (unless it failed) settled, not yet committed."""

    req: AccountRequest
    outcome: Outcome | None = None
    report: SettleReport | None = None
    #: The command's answer instead of an outcome (delivered after the commit).
    error: ProtocolError | None = None


class OrderMonitorActor(TickdeskActor):
    def __init__(
        self,
        bus: Bus,
        portfolio: ActorSlot,
        trading: TradingConfig,
        now_ms: Callable[[], int],
        known_symbol: Callable[[str], bool],
        *,
        book: OrderBook | None = None,
        on_failure: FailureHook | None = None,
        generation: int = 0,
        on_order_event: Callable[[str], None] | None = None,
        assets_of: AssetsFn = symbol_assets,
        store_health: StoreHealth | None = None,
        symbols: SymbolCatalog | None = None,
    ) -> None:
        super().__init__("order_monitor", on_failure, generation)
        self._store_health = store_health
        #: When a settle was last refused by the store (None: not since it wrote).
        self._refused_at: int | None = None
        self._bus = bus
        self._portfolio = portfolio
        self._trading = trading
        self._now_ms = now_ms
        self._known_symbol = known_symbol
        self._on_order_event = on_order_event
        #: Binance's ``t`` of each fill on a user data stream (per process).
        self._trade_ids = itertools.count(1)
        self._assets_of = assets_of
        self._max_age_ms = int(trading.max_tick_age_s * 1000)
        self._given_book = book
        self._symbols = symbols
        self._fill_model = FillModel(trading.fill_model)
        self._book = book if book is not None else OrderBook(
            fee_for=bps_fee(trading.fee_bps), order_check=self._filters,
            fill_model=self._fill_model)
        self._last: dict[str, Decimal] = {}
        self._open_counts: dict[str, int] = {}
        self.handlers = {TradeTick: self._on_tick, BookTick: self._on_book,
                         AccountRequest: self._on_request, Drain: self._on_drain}

    def started(self) -> None:
        if self._given_book is not None:
            return
        self._reload()

    def _reload(self) -> bool:
        """Rebuild the book from the store (False: no store configured)."""
        state: BookState | None = self._portfolio.ask(LoadBook(), timeout=_SETTLE_TIMEOUT_S)
        if state is None:
            return False
        previous = self._book
        self._book = OrderBook.restore(state.orders, state.next_order_id, state.next_list_id,
                                       fee_for=bps_fee(self._trading.fee_bps),
                                       order_check=self._filters,
                                       fill_model=self._fill_model)
        self._book.keep_quotes(previous)  # market data, not stored: it survives a reload
        accounts = {o.account for o in state.orders} | set(self._open_counts)
        self._recount(accounts)
        return True

    def _recount(self, accounts: set[str]) -> None:
        """Tell the PortfolioActor the open-order counts that changed."""
        for account in accounts:
            count = self._book.order_count(account)
            if self._open_counts.get(account) != count:
                self._open_counts[account] = count
                self._portfolio.tell(OpenOrdersChanged(account, count))

    def orphaned(self, message: object) -> None:
        """An account command left in the mailbox when this actor failed: its
        client still gets its one answer (``ERROR INTERNAL``, not applied)."""
        if isinstance(message, Drain):
            message.desk.fail_one()
        elif isinstance(message, AccountRequest):
            err = InternalError(message.request_id)
            message.channel.deliver(sm.error(err.code, err.message, self._now_ms(),
                                             message.request_id))

    # -- trades -------------------------------------------------------------

    def _store_refusing(self, now: int) -> bool:
        """True while the store is known unwritable and the last refused
        settle is less than :data:`STORE_RETRY_MS` old (see the docstring)."""
        if self._refused_at is None:
            return False
        if self._store_health is not None and self._store_health.writable:
            return False  # it writes again (a probe succeeded): try at once
        return now - self._refused_at < STORE_RETRY_MS

    def _on_tick(self, msg: TradeTick) -> None:
        trade = msg.trade
        now = self._now_ms()
        if trade.is_stale(now, self._max_age_ms):
            return  # sets no price: no fill, no trigger, no placement reference
        self._last[trade.symbol] = trade.price
        if self._store_refusing(self._now_ms()):
            return  # not matched: the outcome could not be stored
        outcome = self._book.on_trade(
            trade,
            now_ms=now,
            max_tick_age_ms=self._max_age_ms,
            slippage_bps=self._trading.slippage_bps,
        )
        if outcome:
            self._settle_and_announce(outcome, None)  # on a store failure: retried next trade

    def _on_book(self, msg: BookTick) -> None:
        """A book change: remembered for the next fills (books fill nothing
        by themselves, so there is nothing to settle or announce)."""
        self._book.on_book(msg.book, now_ms=self._now_ms(), max_tick_age_ms=self._max_age_ms)

    # -- commands -----------------------------------------------------------

    def _on_drain(self, msg: Drain) -> None:
        """The desk's next commands, round-robin: one is run and settled alone;
        several are run in order and committed together (the module docstring)."""
        batch = msg.desk.take_batch(SETTLE_BATCH)
        if len(batch) == 1:
            self._on_request(batch[0])
        elif batch:
            self._run_batch(batch)

    def _run_batch(self, batch: list[AccountRequest]) -> None:
        group: list[_Held] = []  # run and settled, not committed nor answered yet
        rest = list(batch)  # not run yet
        try:
            while rest:
                req = rest[0]
                if isinstance(req.args, OrdersQuery):
                    # it answers from the book: what it shows must be committed
                    self._commit(group)
                    rest.pop(0)
                    self._on_request(req)  # answers even when it fails
                else:
                    group.append(self._hold(req))
                    rest.pop(0)
            self._commit(group)
        except Exception:
            # a bug or a lost PortfolioActor: each command not answered yet is
            # answered once, then the Supervisor restarts this actor and the
            # book reloads from the store (which has nothing of the group)
            for req in [held.req for held in group] + rest:
                self._answer(req, InternalError(req.request_id))
            raise

    def _hold(self, req: AccountRequest) -> _Held:
        """Run one command of a group and settle its outcome uncommitted."""
        rid = req.request_id
        if req.action in _WRITING and self._store_refusing(self._now_ms()):
            return _Held(req, error=StoreUnavailable(rid))
        try:
            outcome = self._run(req)
        except ProtocolError as exc:  # UnknownOrder, UnknownSymbol, a field the book refuses
            return _Held(req, error=exc)
        if outcome is None or not (outcome.fills or outcome.events):
            return _Held(req, outcome)
        report: SettleReport = self._portfolio.ask(
            Settle(outcome, self._book.next_order_id, self._book.next_list_id, hold=True),
            timeout=_SETTLE_TIMEOUT_S)
        return _Held(req, outcome, report)

    def _commit(self, group: list[_Held]) -> None:
        """Commit the group's settles in one transaction, then answer each
        command in order; if the store refuses, every one is answered
        STORE_UNAVAILABLE and the book is rebuilt from the store. ``group`` is
        emptied as its commands are answered."""
        settles = sum(1 for held in group if held.report is not None)
        if settles:
            try:
                self._portfolio.ask(Commit(settles), timeout=_SETTLE_TIMEOUT_S)
            except StoreUnavailable:
                self._refused_at = self._now_ms()
                self._reload()
                while group:
                    req = group.pop(0).req
                    self._answer(req, StoreUnavailable(req.request_id))
                return
            self._refused_at = None
        while group:
            held = group.pop(0)
            if held.error is not None:
                self._answer(held.req, held.error)
            elif held.outcome is not None:
                self._announce(held.outcome, held.req, held.report)

    def _on_request(self, req: AccountRequest) -> None:
        rid = req.request_id
        if req.action in _WRITING and self._store_refusing(self._now_ms()):
            self._answer(req, StoreUnavailable(rid))
            return
        try:
            outcome = self._run(req)
        except ProtocolError as exc:  # UnknownOrder, UnknownSymbol, a field the book refuses
            req.channel.deliver(sm.error(exc.code, exc.message, self._now_ms(), rid))
            return
        except Exception:
            self._answer(req, InternalError(rid))  # answered, then restarted from the store
            raise
        if outcome is None:
            return
        try:
            self._settle_and_announce(outcome, req)
        except Exception:
            self._answer(req, InternalError(rid))
            raise

    def _answer(self, req: AccountRequest, err: ProtocolError) -> None:
        req.channel.deliver(sm.error(err.code, err.message, self._now_ms(), req.request_id))

    def _run(self, req: AccountRequest) -> Outcome | None:
        """Run one validated account command (``req.args`` was parsed by the decoder)."""
        args = req.args
        now = self._now_ms()
        account = req.account
        if isinstance(args, OrdersQuery):
            found = (self._book.all_orders(account) if args.include_closed
                     else self._book.open_orders(account))
            req.channel.deliver(sm.orders(found, now, req.request_id))
            return None
        if isinstance(args, CancelRequest):
            return self._book.cancel(account, order_id=args.order_id,
                                     client_order_id=args.client_order_id,
                                     list_id=args.list_id, now_ms=now)
        if isinstance(args, AmendRequest):
            return self._book.amend(account, args, now_ms=now)
        if isinstance(args, OrderRequest):
            self._check_symbol(args.symbol, req)
            return self._book.place(account, args, now_ms=now,
                                    last_price=self._last.get(args.symbol),
                                    slippage_bps=self._trading.slippage_bps, risk=self._risk)
        if isinstance(args, OcoRequest):
            self._check_symbol(args.symbol, req)
            return self._book.place_oco(account, args, now_ms=now,
                                        last_price=self._last.get(args.symbol), risk=self._risk)
        if isinstance(args, BracketRequest):
            self._check_symbol(args.symbol, req)
            return self._book.place_bracket(account, args, now_ms=now,
                                            last_price=self._last.get(args.symbol),
                                            slippage_bps=self._trading.slippage_bps,
                                            risk=self._risk)
        # A bug, not a client's error (the ConnectionActor forwards only the requests
        # above): the actor fails and the Supervisor restarts it from the store.
        raise TypeError(f"unexpected account request {type(args).__name__}")

    def _check_symbol(self, symbol: str, req: AccountRequest) -> None:
        if not self._known_symbol(symbol):
            raise UnknownSymbol(f"symbol {symbol} is not served by this feed", req.request_id)
        if self._symbols is not None and self._symbols.get(symbol) is None:
            raise UnknownSymbol(f"symbol {symbol}: its exchange filters could not be loaded",
                                req.request_id)
        try:
            self._assets_of(symbol)  # the ledger books every fill in the symbol's quote asset
        except UnknownAssets:
            raise UnknownSymbol(f"symbol {symbol}: its base and quote asset are not known",
                                req.request_id) from None

    def _filters(self, order: Order) -> str | None:
        """The book's placement check: the symbol's Binance filters. A MARKET
        order's notional is valued at the price it would fill at (the taker
        price of the last trade: slippage included)."""
        info = self._symbols.get(order.symbol) if self._symbols is not None else None
        if info is None:
            return None
        last = self._last.get(order.symbol)
        fill = (taker_price(order.side, last, self._trading.slippage_bps)
                if last is not None and order.type is OrderType.MARKET else None)
        failure = check_order(info, order, last_price=last, market_fill_price=fill)
        return None if failure is None else failure.value

    def _risk(self, orders: Sequence[Order], reference: Decimal) -> str | None:
        reason: str | None = self._portfolio.ask(
            RiskQuery(orders[0].account, tuple(orders), reference), timeout=_SETTLE_TIMEOUT_S)
        return reason

    # -- settle, then announce -----------------------------------------------

    def _settle_and_announce(self, outcome: Outcome, origin: AccountRequest | None) -> None:
        """Settle one outcome alone (one transaction), then announce it."""
        report: SettleReport | None = None
        if outcome.fills or outcome.events:
            try:
                report = self._portfolio.ask(Settle(outcome, self._book.next_order_id,
                                                    self._book.next_list_id),
                                             timeout=_SETTLE_TIMEOUT_S)
            except StoreUnavailable:
                # Nothing was stored or applied: forget the outcome (the book
                # goes back to the store's state) and say so (module docstring).
                self._refused_at = self._now_ms()
                self._reload()
                if origin is not None:
                    self._answer(origin, StoreUnavailable(origin.request_id))
                return
            self._refused_at = None
            # Any other failure raises: the actor dies and the Supervisor
            # restarts it from the persisted state.
        self._announce(outcome, origin, report)

    def _announce(self, outcome: Outcome, origin: AccountRequest | None,
                  report: SettleReport | None) -> None:
        """The committed outcome's events to the accounts, in order (the
        issuing connection gets its command's with its id)."""
        now = self._now_ms()
        accounts: set[str] = set()
        for event in outcome.events:
            accounts.add(event.account)
            if self._on_order_event is not None and isinstance(event, OrderEvent):
                self._on_order_event(event.execution_type)
            out = sm.order_event(event, now)
            if origin is not None and origin.account == event.account:
                # the command's own connection gets its events with the command's id
                rid = origin.request_id
                self._bus.to_account(event.account, out, origin.channel,
                                     None if rid is None else sm.order_event(event, now, rid))
            else:
                self._bus.to_account(event.account, out)
        if report is not None and any(self._bus.has_user_stream(a) for a in accounts):
            self._announce_binance(outcome, report, origin is not None, now)
        self._recount(accounts)

    def _announce_binance(self, outcome: Outcome, report: SettleReport, from_command: bool,
                          now: int) -> None:
        """The same outcome as Binance user data events (executionReport,
        listStatus, outboundAccountPosition) to the accounts' user data streams,
        after our own messages: docs/binance-compat.md, "Streams"."""
        events = user_events(outcome, from_command=from_command,
                             fee_assets=report.fee_assets, changes=report.changes,
                             lookup=self._book.get, next_trade_id=self._trade_ids.__next__,
                             now_ms=now)
        for account, payloads in events.items():
            if self._bus.has_user_stream(account):
                self._bus.to_user(account, payloads)
