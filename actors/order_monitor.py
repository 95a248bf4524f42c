"""OrderMonitorActor: owns the order book and works every order on every trade.

Runs in its own pykka thread. Every trade the FeedActor routes reaches it,
whether or not a client watches the symbol; the pure
:class:`~engine.trading.book.OrderBook` decides triggers and fills. An
outcome is *settled* before it is announced: the PortfolioActor applies the
fills to the ledgers and persists orders, fills and balances in one
transaction (``ask``), and only then are the ORDER_UPDATE /
ORDER_LIST_UPDATE events sent, in order, to the account's connections. The
connection that placed the order gets the events of its command with its
request ``id``.

If settling fails the actor raises: the Supervisor restarts it and the new
generation reloads the book from what was persisted, so what clients were
told and what is stored never diverge.

Restore: ``started()`` (in this actor's thread) asks the PortfolioActor for
the persisted orders and id counters (``LoadBook``; the PortfolioActor is
the only thread that touches SQLite) and rebuilds the book with
``OrderBook.restore``: open orders keep working with their trailing state.
With no store configured the book starts empty.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from actors.base import ActorSlot, FailureHook, TickdeskActor
from actors.messages import AccountRequest, OpenOrdersChanged, TradeTick
from actors.portfolio import BookState, LoadBook, RiskQuery, Settle
from engine.config import TradingConfig
from engine.errors import ProtocolError, UnknownSymbol
from engine.money import Side
from engine.protocol import server_messages as sm
from engine.protocol.commands import OrdersQuery
from engine.server.hub import Hub
from engine.trading.book import OrderBook, bps_fee
from engine.trading.events import OrderEvent, Outcome
from engine.trading.requests import BracketRequest, CancelRequest, OcoRequest, OrderRequest

__all__ = ["OrderMonitorActor"]

_SETTLE_TIMEOUT_S = 10.0


class OrderMonitorActor(TickdeskActor):
    def __init__(
        self,
        hub: Hub,
        portfolio: ActorSlot,
        trading: TradingConfig,
        now_ms: Callable[[], int],
        known_symbol: Callable[[str], bool],
        *,
        book: OrderBook | None = None,
        on_failure: FailureHook | None = None,
        generation: int = 0,
        on_order_event: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__("order_monitor", on_failure, generation)
        self._hub = hub
        self._portfolio = portfolio
        self._trading = trading
        self._now_ms = now_ms
        self._known_symbol = known_symbol
        self._on_order_event = on_order_event
        self._max_age_ms = int(trading.max_tick_age_s * 1000)
        self._given_book = book
        self._book = book if book is not None else OrderBook(fee_for=bps_fee(trading.fee_bps))
        self._last: dict[str, Decimal] = {}
        self._open_counts: dict[str, int] = {}
        self.handlers = {TradeTick: self._on_tick, AccountRequest: self._on_request}

    def started(self) -> None:
        if self._given_book is not None:
            return
        state: BookState | None = self._portfolio.ask(LoadBook(), timeout=_SETTLE_TIMEOUT_S)
        if state is None:
            return
        self._book = OrderBook.restore(state.orders, state.next_order_id, state.next_list_id,
                                       fee_for=bps_fee(self._trading.fee_bps))
        for account in {o.account for o in state.orders}:
            count = self._book.order_count(account)
            self._open_counts[account] = count
            self._portfolio.tell(OpenOrdersChanged(account, count))

    # -- trades -------------------------------------------------------------

    def _on_tick(self, msg: TradeTick) -> None:
        trade = msg.trade
        self._last[trade.symbol] = trade.price
        outcome = self._book.on_trade(
            trade,
            now_ms=self._now_ms(),
            max_tick_age_ms=self._max_age_ms,
            slippage_bps=self._trading.slippage_bps,
        )
        if outcome:
            self._settle_and_announce(outcome, None)

    # -- commands -----------------------------------------------------------

    def _on_request(self, req: AccountRequest) -> None:
        rid = req.request_id
        try:
            outcome = self._run(req)
        except ProtocolError as exc:  # UnknownOrder, UnknownSymbol, a field the book refuses
            req.channel.deliver(sm.error(exc.code, exc.message, self._now_ms(), rid))
            return
        if outcome is not None:
            self._settle_and_announce(outcome, req)

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

    def _risk(self, account: str, symbol: str, side: Side, quantity: Decimal,
              price: Decimal) -> str | None:
        reason: str | None = self._portfolio.ask(
            RiskQuery(account, symbol, side, quantity, price), timeout=_SETTLE_TIMEOUT_S)
        return reason

    # -- settle, then announce -----------------------------------------------

    def _settle_and_announce(self, outcome: Outcome, origin: AccountRequest | None) -> None:
        if outcome.fills or outcome.events:
            # Raises on failure: the actor dies and the Supervisor restarts it
            # from the persisted state (see the module docstring).
            self._portfolio.ask(Settle(outcome, self._book.next_order_id,
                                       self._book.next_list_id), timeout=_SETTLE_TIMEOUT_S)
        now = self._now_ms()
        accounts: set[str] = set()
        for event in outcome.events:
            accounts.add(event.account)
            if self._on_order_event is not None and isinstance(event, OrderEvent):
                self._on_order_event(event.execution_type)
            out = sm.order_event(event, now)
            if origin is not None and origin.account == event.account:
                # the command's own connection gets its events with the command's id
                self._hub.to_account(event.account, out, skip=origin.channel)
                rid = origin.request_id
                origin.channel.deliver(out if rid is None else sm.order_event(event, now, rid))
            else:
                self._hub.to_account(event.account, out)
        for account in accounts:
            count = self._book.order_count(account)
            if self._open_counts.get(account) != count:
                self._open_counts[account] = count
                self._portfolio.tell(OpenOrdersChanged(account, count))
