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
from typing import Any

from actors.base import ActorSlot, FailureHook, TickdeskActor
from actors.messages import AccountRequest, BookTick, OpenOrdersChanged, TradeTick
from actors.portfolio import BookState, LoadBook, RiskQuery, Settle
from engine.config import TradingConfig
from engine.errors import BadRequest, UnknownOrder, UnknownSymbol
from engine.money import Side
from engine.protocol import server_messages as sm
from engine.server.hub import Hub
from engine.trading.book import OrderBook, bps_fee
from engine.trading.errors import RequestError
from engine.trading.errors import UnknownOrder as BookUnknownOrder
from engine.trading.events import Outcome
from engine.trading.requests import parse_bracket, parse_cancel, parse_oco, parse_order

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
        self.handlers = {TradeTick: self._on_tick, AccountRequest: self._on_request,
                         BookTick: self._on_book}

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

    def _on_book(self, msg: BookTick) -> None:
        """A book change; orders do not fill at the book yet (they fill on trades)."""

    # -- commands -----------------------------------------------------------

    def _on_request(self, req: AccountRequest) -> None:
        rid = req.request_id
        try:
            outcome = self._run(req)
        except RequestError as exc:
            err = BadRequest(str(exc), rid)
            req.channel.deliver(sm.error(err.code, err.message, self._now_ms(), rid))
            return
        except BookUnknownOrder as exc:
            err2 = UnknownOrder(str(exc), rid)
            req.channel.deliver(sm.error(err2.code, err2.message, self._now_ms(), rid))
            return
        except UnknownSymbol as exc:
            req.channel.deliver(sm.error(exc.code, exc.message, self._now_ms(), rid))
            return
        if outcome is not None:
            self._settle_and_announce(outcome, req)

    def _run(self, req: AccountRequest) -> Outcome | None:
        body = req.body
        now = self._now_ms()
        account = req.account
        if req.action == "get_orders":
            every = body.get("status", "open") == "all"
            found = self._book.all_orders(account) if every else self._book.open_orders(account)
            req.channel.deliver(sm.orders([o.to_wire() for o in found], now, req.request_id))
            return None
        if req.action == "cancel_order":
            c = parse_cancel(body)
            return self._book.cancel(account, order_id=c.order_id,
                                     client_order_id=c.client_order_id, list_id=c.list_id,
                                     now_ms=now)
        if req.action == "place_order":
            r = parse_order(body)
            self._check_symbol(r.symbol, req)
            return self._book.place(account, r, now_ms=now, last_price=self._last.get(r.symbol),
                                    slippage_bps=self._trading.slippage_bps, risk=self._risk)
        if req.action == "place_oco":
            o = parse_oco(body)
            self._check_symbol(o.symbol, req)
            return self._book.place_oco(account, o, now_ms=now,
                                        last_price=self._last.get(o.symbol), risk=self._risk)
        if req.action == "place_bracket":
            b = parse_bracket(body)
            self._check_symbol(b.symbol, req)
            return self._book.place_bracket(account, b, now_ms=now,
                                            last_price=self._last.get(b.symbol),
                                            slippage_bps=self._trading.slippage_bps,
                                            risk=self._risk)
        raise BadRequest(f"unsupported action {req.action}", req.request_id)

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
            wire: dict[str, Any] = event.to_wire()
            wire["timestamp"] = now
            accounts.add(event.account)
            if self._on_order_event is not None and wire.get("type") == "ORDER_UPDATE":
                self._on_order_event(str(wire.get("executionType", "")))
            if origin is not None and origin.account == event.account:
                self._hub.to_account(event.account, sm.encode(wire), skip=origin.channel)
                wire["id"] = origin.request_id
                if origin.request_id is None:
                    del wire["id"]
                origin.channel.deliver(sm.encode(wire))
            else:
                self._hub.to_account(event.account, sm.encode(wire))
        for account in accounts:
            count = self._book.order_count(account)
            if self._open_counts.get(account) != count:
                self._open_counts[account] = count
                self._portfolio.tell(OpenOrdersChanged(account, count))
