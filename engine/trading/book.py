"""The order book: every open order and order list of every account.

Pure core: no threads, sockets, clocks or pykka. :class:`OrderBook` is a state
machine owned by one caller (the OrderMonitorActor). Commands and trades go in
with the time (``now_ms``) and the market facts the caller knows; an
:class:`~engine.trading.events.Outcome` comes out.

Contract with the caller
------------------------
* **Events.** Every state change of an order is one
  :class:`~engine.trading.events.OrderEvent`, in order: ``NEW`` on accept (a
  bracket's exit legs are announced ``NEW`` with status ``PENDING_NEW``, and
  ``NEW`` again with status ``NEW`` when the entry has filled), ``TRIGGERED``
  when a stop fires, ``AMENDED`` when a trailing stop's ``currentStopPrice`` /
  ``trailingExtreme`` move (including the moment tracking begins), ``TRADE``
  per fill, ``CANCELED``, ``EXPIRED``, ``REJECTED``. A list status change is a
  :class:`~engine.trading.events.ListEvent` (``EXECUTING`` at placement,
  ``ALL_DONE`` when no order of the list is open any more, ``REJECTED``).
* **Fills.** The book decides fills; it computes each fill's fee with the
  ``fee_for(account, quantity, price)`` function given at construction
  (:func:`bps_fee` charges :func:`~engine.money.fill_fee`, as ``Ledger.fee_for``
  does) and sets ``filledQuantity``, ``avgPrice`` and ``fee`` on the order.
  Each fill is also returned as a :class:`~engine.trading.events.FillIntent`
  that the caller applies to the ledger. How much fills and at what price is
  the fill model's (:mod:`engine.trading.fill_model`, chosen at
  construction): takers walk the known book (:meth:`OrderBook.on_book`),
  resting orders fill at most each trade's quantity (``PARTIALLY_FILLED`` in
  between); with ``full`` the whole quantity fills on the first qualifying
  trade.
* **Buying power.** At placement the book calls the optional
  ``risk(orders, reference)`` callback last (the caller owns the ledgers and
  knows ``max_leverage`` and ``allow_short``) with the orders that reserve
  funds (the order; an OCO's two legs, reserved once; a bracket's entry) and
  the reference price: the last trade price, or the order's price / stop
  price when no trade is known yet. A returned string, e.g.
  ``INSUFFICIENT_BALANCE: ...`` or ``SHORT_NOT_ALLOWED: ...``, rejects the
  order; None accepts it (nothing after the callback can reject it).
* **Stale ticks.** A trade with ``now_ms - trade.event_time > max_tick_age_ms``
  changes nothing at all: no fill, no trigger, no trailing move.

Execution rules (docs/trading.md, and Binance where it is silent)
-----------------------------------------------------------------
* MARKET fills at once: at the known book (walking its levels), or without a
  book at ``last_price`` moved ``slippage_bps`` against the taker; with
  neither it is REJECTED ``NO_MARKET_PRICE``.
* A LIMIT that is marketable at placement (the best opposite price, or
  without a book the last trade, at or through its price) takes at once as a
  taker, never worse than its limit; the rest rests (GTC) or expires (IOC;
  FOK fills all at once or expires all). A resting LIMIT fills at its limit
  price when a trade reaches it. A LIMIT_MAKER that would take is REJECTED
  ``ORDER_WOULD_MATCH_IMMEDIATELY`` instead.
* A stop whose condition holds at placement is REJECTED
  ``STOP_PRICE_WOULD_TRIGGER_IMMEDIATELY`` (also for a trailing stop with a
  ``stopPrice``: that price is its activation condition). A trailing stop
  without ``stopPrice`` needs a last price (else ``NO_MARKET_PRICE``).
* A triggered STOP_LOSS / TAKE_PROFIT / TRAILING_STOP executes at once as a
  MARKET (without a book: at the triggering trade's slipped price). A
  triggered ``*_LIMIT`` becomes a LIMIT at ``price`` and is worked as a LIMIT
  just placed (without a book, marketable iff the triggering trade reaches it).
* ``amend`` reduces an open order's quantity in place (queue kept).
* OCO: when a leg triggers or fills, the other open leg is EXPIRED in the same
  call, so both can never fill. Bad price relation: ``OCO_BAD_PRICES``; with no
  last price: ``NO_MARKET_PRICE``.
* Bracket: exits wait in PENDING_NEW; when the entry fills they become NEW and
  work as an OCO from the **next** trade on (never on the entry's own trade).
  ``BRACKET_BAD_PRICES`` when take-profit/stop are not on the correct sides of
  the entry price (its limit price, or the last price for MARKET).
* Other rejections: ``DUPLICATE_CLIENT_ORDER_ID`` (a clientOrderId already
  used by an accepted order of the account, open or closed; rejected orders are
  not kept and do not reserve their id) and ``TOO_MANY_OPEN_ORDERS`` (more than
  ``max_open_orders`` open orders, list legs included, for the account).
  Rejected orders and lists consume an id but are not stored.
* Ids are increasing integers; an absent clientOrderId becomes ``td-<orderId>``.

Evaluation cost: each open order of a symbol has a pair ``(lo, hi)`` such that
a trade can change it only if ``price <= lo or price >= hi``; a trade scans that
index and evaluates only the candidates, in orderId order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from decimal import Decimal, localcontext

from engine.messages import BookTicker, DepthSnapshot, Trade
from engine.money import MONEY, ZERO, Side, fill_fee
from engine.protocol.enums import ExecutionType
from engine.trading import trailing
from engine.trading.errors import AmendRefused, UnknownOrder
from engine.trading.events import (
    EMPTY,
    Event,
    FillIntent,
    ListEvent,
    OrderEvent,
    Outcome,
)
from engine.trading.fill_model import (
    FillModel,
    Quote,
    Slice,
    level_quantity,
    merge_quote,
    resting_fill,
    take,
    worse_than,
)
from engine.trading.order import (
    LegRole,
    ListStatus,
    ListType,
    Order,
    OrderStatus,
    OrderType,
    StopKind,
    TimeInForce,
)
from engine.trading.order_list import OrderList
from engine.trading.requests import AmendRequest, BracketRequest, OcoRequest, OrderRequest
from engine.trading.triggers import (
    bracket_prices_ok,
    limit_fills,
    limit_maker_would_match,
    oco_prices_ok,
    stop_condition,
    taker_price,
)

__all__ = ["FeeFn", "OrderBook", "OrderCheck", "RejectReason", "RiskCheck", "bps_fee"]

#: ``fee_for(account, quantity, price) -> fee``.
FeeFn = Callable[[str, Decimal, Decimal], Decimal]
#: ``risk(orders, reference_price) -> reject reason or None``.
RiskCheck = Callable[[Sequence[Order], Decimal], str | None]
#: ``check(order) -> reject reason or None``, run on every new order and list
#: leg at placement (the symbol filters, :mod:`engine.trading.filters`).
OrderCheck = Callable[[Order], str | None]

#: Types that carry a time in force (a list's legs are always GTC).
_HAS_TIME_IN_FORCE = frozenset(
    {OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT}
)
_NEG = Decimal("-Infinity")
_POS = Decimal("Infinity")


class RejectReason:
    """The ``rejectReason`` strings the book produces."""

    NO_MARKET_PRICE = "NO_MARKET_PRICE"
    DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
    TOO_MANY_OPEN_ORDERS = "TOO_MANY_OPEN_ORDERS"
    STOP_PRICE_WOULD_TRIGGER_IMMEDIATELY = "STOP_PRICE_WOULD_TRIGGER_IMMEDIATELY"
    ORDER_WOULD_MATCH_IMMEDIATELY = "ORDER_WOULD_MATCH_IMMEDIATELY"
    OCO_BAD_PRICES = "OCO_BAD_PRICES"
    BRACKET_BAD_PRICES = "BRACKET_BAD_PRICES"
    #: The account checks of :mod:`engine.trading.risk`.
    SHORT_NOT_ALLOWED = "SHORT_NOT_ALLOWED"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"


def bps_fee(fee_bps: Decimal) -> FeeFn:
    """A fee function charging ``fee_bps`` of the notional with
    :func:`~engine.money.fill_fee`, as ``Ledger.fee_for`` does (so a ledger
    with the same ``fee_bps`` agrees)."""

    def fee_for(account: str, quantity: Decimal, price: Decimal) -> Decimal:
        return fill_fee(quantity, price, fee_bps)

    return fee_for


class _Out:
    """Collects one operation's events and fills."""

    __slots__ = ("events", "fills")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.fills: list[FillIntent] = []

    def order(self, kind: ExecutionType, order: Order) -> None:
        self.events.append(OrderEvent(kind, order))

    def trade(self, order: Order, quantity: Decimal, price: Decimal) -> None:
        self.events.append(OrderEvent(ExecutionType.TRADE, order, quantity, price))

    def build(self) -> Outcome:
        return Outcome(tuple(self.events), tuple(self.fills))


class OrderBook:
    """All orders and order lists of all accounts. Not thread-safe: one owner."""

    def __init__(
        self,
        *,
        fee_for: FeeFn | None = None,
        max_open_orders: int = 200,
        next_order_id: int = 1,
        next_list_id: int = 1,
        full_scan: bool = False,
        order_check: OrderCheck | None = None,
        fill_model: FillModel = FillModel.BOOK,
    ) -> None:
        """``full_scan`` evaluates every open order on every trade instead of
        using the price index (for tests that check the index); ``order_check``
        may reject each new order (and each leg of a list) at placement.
        ``fill_model`` is ``trading.fill_model`` (see :mod:`engine.trading.fill_model`)."""
        self._order_check = order_check
        self._model = fill_model
        self._quotes: dict[str, Quote] = {}
        self._fee_for: FeeFn = fee_for if fee_for is not None else bps_fee(Decimal(10))
        self._max_open = max_open_orders
        self._next_order_id = next_order_id
        self._next_list_id = next_list_id
        self._full_scan = full_scan
        self._orders: dict[int, Order] = {}
        self._lists: dict[int, OrderList] = {}
        self._account_orders: dict[str, dict[int, None]] = {}
        self._account_open: dict[str, dict[int, None]] = {}
        self._client_ids: dict[str, dict[str, int]] = {}
        self._watch: dict[str, dict[int, tuple[Decimal, Decimal]]] = {}

    # ------------------------------------------------------------------ state

    @classmethod
    def restore(
        cls,
        orders: Iterable[Order],
        next_order_id: int,
        next_list_id: int,
        *,
        fee_for: FeeFn | None = None,
        max_open_orders: int = 200,
        full_scan: bool = False,
        order_check: OrderCheck | None = None,
        fill_model: FillModel = FillModel.BOOK,
    ) -> OrderBook:
        """A book holding persisted ``orders`` (open ones keep working, with
        their trailing state). Lists are rebuilt from the orders' ``list_id``;
        the id counters never go below the largest id seen plus one."""
        ordered = sorted(orders, key=lambda o: o.order_id)
        max_order = max((o.order_id for o in ordered), default=0)
        max_list = max((o.list_id or 0 for o in ordered), default=0)
        book = cls(
            fee_for=fee_for,
            max_open_orders=max_open_orders,
            next_order_id=max(next_order_id, max_order + 1),
            next_list_id=max(next_list_id, max_list + 1),
            full_scan=full_scan,
            order_check=order_check,
            fill_model=fill_model,
        )
        members: dict[int, list[Order]] = {}
        for order in ordered:
            book._put(order)
            if order.list_id is not None:
                members.setdefault(order.list_id, []).append(order)
        for list_id, legs in members.items():
            first = legs[0]
            assert first.list_type is not None, "a list order needs its list_type"
            book._lists[list_id] = OrderList(
                list_id=list_id,
                list_type=first.list_type,
                account=first.account,
                symbol=first.symbol,
                status=(
                    ListStatus.EXECUTING
                    if any(o.is_open for o in legs)
                    else ListStatus.ALL_DONE
                ),
                order_ids=tuple(o.order_id for o in legs),
                create_time=min(o.create_time for o in legs),
                update_time=max(o.update_time for o in legs),
            )
        return book

    @property
    def fill_model(self) -> FillModel:
        return self._model

    def quote(self, symbol: str) -> Quote | None:
        """The known book of ``symbol`` (None before any book message)."""
        return self._quotes.get(symbol)

    def keep_quotes(self, other: OrderBook) -> None:
        """Take the known books of ``other`` (a book rebuilt from the store
        keeps the market data the old one had)."""
        self._quotes.update(other._quotes)

    def _quote_for(self, symbol: str) -> Quote | None:
        """The book the fill model uses: none at all with ``full``."""
        return None if self._model is FillModel.FULL else self._quotes.get(symbol)

    @property
    def next_order_id(self) -> int:
        return self._next_order_id

    @property
    def next_list_id(self) -> int:
        return self._next_list_id

    def get(self, order_id: int) -> Order | None:
        return self._orders.get(order_id)

    def open_orders(self, account: str) -> list[Order]:
        """The account's open orders (PENDING_NEW bracket exits included), by id."""
        ids = self._account_open.get(account, {})
        return [self._orders[i] for i in sorted(ids)]

    def all_orders(self, account: str | None = None) -> list[Order]:
        """Every accepted order of ``account`` (of all accounts if None), by id."""
        if account is None:
            return [self._orders[i] for i in sorted(self._orders)]
        ids = self._account_orders.get(account, {})
        return [self._orders[i] for i in sorted(ids)]

    def order_count(self, account: str) -> int:
        """Number of open orders of ``account`` (``openOrdersCount``)."""
        return len(self._account_open.get(account, ()))

    def _put(self, order: Order) -> None:
        """Store ``order`` (new or replaced) and keep every index right."""
        oid = order.order_id
        account = order.account
        self._orders[oid] = order
        self._account_orders.setdefault(account, {})[oid] = None
        self._client_ids.setdefault(account, {})[order.client_order_id] = oid
        open_ids = self._account_open.setdefault(account, {})
        watch = self._watch.setdefault(order.symbol, {})
        if order.is_open:
            open_ids[oid] = None
        else:
            open_ids.pop(oid, None)
        bounds = _bounds(order)
        if bounds is None:
            watch.pop(oid, None)
        else:
            watch[oid] = bounds

    def _take_order_id(self) -> int:
        oid = self._next_order_id
        self._next_order_id += 1
        return oid

    def _take_list_id(self) -> int:
        lid = self._next_list_id
        self._next_list_id += 1
        return lid

    def _client_id(self, account: str, given: str | None, order_id: int) -> str:
        if given is not None:
            return given
        taken = self._client_ids.get(account, {})
        cid = f"td-{order_id}"
        n = 1
        while cid in taken:
            cid = f"td-{order_id}-{n}"
            n += 1
        return cid

    def _common_reject(self, account: str, orders: list[Order]) -> str | None:
        taken = self._client_ids.get(account, {})
        wanted = {o.client_order_id for o in orders}
        if len(wanted) != len(orders) or any(cid in taken for cid in wanted):
            return RejectReason.DUPLICATE_CLIENT_ORDER_ID
        if self.order_count(account) + len(orders) > self._max_open:
            return RejectReason.TOO_MANY_OPEN_ORDERS
        if self._order_check is not None:
            for order in orders:
                reason = self._order_check(order)
                if reason is not None:
                    return reason
        return None

    # -------------------------------------------------------------- placement

    def place(
        self,
        account: str,
        request: OrderRequest,
        *,
        now_ms: int,
        last_price: Decimal | None,
        slippage_bps: Decimal = ZERO,
        risk: RiskCheck | None = None,
    ) -> Outcome:
        """Place one order: ``NEW`` (then perhaps ``TRADE``) or ``REJECTED``."""
        oid = self._take_order_id()
        order = Order(
            order_id=oid,
            client_order_id=self._client_id(account, request.client_order_id, oid),
            account=account,
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            status=OrderStatus.NEW,
            quantity=request.quantity,
            create_time=now_ms,
            update_time=now_ms,
            price=request.price,
            stop_price=request.stop_price,
            trailing_delta=request.trailing_delta,
            time_in_force=request.time_in_force,
            iceberg_qty=request.iceberg_qty,
        )
        quote = self._quote_for(order.symbol)
        reason = self._common_reject(account, [order]) or _placement_reject(
            order, last_price, quote
        )
        if reason is None and risk is not None:
            ref = _reference_price(order, last_price, quote)
            assert ref is not None  # else _placement_reject refused it
            reason = risk([order], ref)
        out = _Out()
        if reason is not None:
            out.order(ExecutionType.REJECTED, _rejected(order, reason))
            return out.build()
        order = _seed_trailing(order, last_price)
        self._put(order)
        out.order(ExecutionType.NEW, order)
        self._execute_at_once(order, last_price, slippage_bps, now_ms, out)
        return out.build()

    def amend(self, account: str, request: AmendRequest, *, now_ms: int) -> Outcome:
        """Reduce an open order's quantity, keeping its place in the queue
        (Binance's "order amend keep priority"): one ``AMENDED`` event. Raises
        :class:`~engine.trading.errors.UnknownOrder` for an order that is not
        the account's open order, :class:`~engine.trading.errors.AmendRefused`
        for an increase (or the same quantity), a quantity at or below what
        has filled, or an order of a list; both change nothing."""
        target = self._find(account, request.order_id, request.client_order_id)
        if target is None or target.account != account or not target.is_open:
            raise UnknownOrder("unknown order or not open")
        if target.list_id is not None:
            raise AmendRefused("orderId", "an order of an order list cannot be amended")
        new_qty = request.new_qty
        if new_qty >= target.quantity:
            raise AmendRefused("newQty", "must be less than the order's quantity "
                               f"{target.quantity} (amend only reduces)")
        if new_qty <= target.filled_quantity:
            raise AmendRefused("newQty", "must be greater than the filled quantity "
                               f"{target.filled_quantity}")
        left = new_qty - target.filled_quantity
        slice_left = None if target.slice_left is None else min(target.slice_left, left)
        amended = target.evolve(quantity=new_qty, slice_left=slice_left, update_time=now_ms)
        self._put(amended)
        out = _Out()
        out.order(ExecutionType.AMENDED, amended)
        return out.build()

    def _find(self, account: str, order_id: int | None, client_order_id: str | None
              ) -> Order | None:
        if order_id is not None:
            return self._orders.get(order_id)
        if client_order_id is not None:
            found = self._client_ids.get(account, {}).get(client_order_id)
            return None if found is None else self._orders[found]
        return None

    def place_oco(
        self,
        account: str,
        request: OcoRequest,
        *,
        now_ms: int,
        last_price: Decimal | None,
        slippage_bps: Decimal = ZERO,
        risk: RiskCheck | None = None,
    ) -> Outcome:
        """Place an OCO: ``EXECUTING`` + two ``NEW``, or ``REJECTED`` for all."""
        del slippage_bps  # an accepted OCO never executes at placement
        list_id = self._take_list_id()
        legs = [
            self._list_leg(
                account, request.symbol, request.quantity, ListType.OCO, list_id, role,
                request.side, leg.type, leg.client_order_id, leg.price, leg.stop_price,
                leg.trailing_delta, now_ms,
            )
            for leg, role in ((request.above, LegRole.ABOVE), (request.below, LegRole.BELOW))
        ]
        reason = self._common_reject(account, legs)
        if reason is None and last_price is None:
            reason = RejectReason.NO_MARKET_PRICE
        if reason is None:
            assert last_price is not None
            limit_leg, stop_leg = legs if request.side is Side.SELL else legs[::-1]
            limit_ref = (
                limit_leg.price if limit_leg.type is OrderType.LIMIT_MAKER else limit_leg.stop_price
            )
            if not oco_prices_ok(request.side, limit_ref, last_price, stop_leg.stop_price):
                reason = RejectReason.OCO_BAD_PRICES
        if reason is None and risk is not None:
            assert last_price is not None
            reason = risk(legs, last_price)
        return self._open_list(ListType.OCO, list_id, legs, reason, last_price, now_ms)

    def place_bracket(
        self,
        account: str,
        request: BracketRequest,
        *,
        now_ms: int,
        last_price: Decimal | None,
        slippage_bps: Decimal = ZERO,
        risk: RiskCheck | None = None,
    ) -> Outcome:
        """Place a bracket: ``EXECUTING`` + entry ``NEW`` + two exits ``NEW`` in
        ``PENDING_NEW`` (then perhaps the entry's ``TRADE`` and the exits going
        ``NEW``), or ``REJECTED`` for all."""
        list_id = self._take_list_id()
        exit_side = request.side.opposite

        def leg(
            role: LegRole,
            side: Side,
            kind: OrderType,
            client_id: str | None,
            price: Decimal | None,
            stop_price: Decimal | None = None,
            delta: int | None = None,
        ) -> Order:
            return self._list_leg(
                account, request.symbol, request.quantity, ListType.BRACKET, list_id, role,
                side, kind, client_id, price, stop_price, delta, now_ms,
            )

        entry = leg(
            LegRole.ENTRY, request.side, request.entry_type, request.entry_client_order_id,
            request.entry_price,
        )
        take_profit = leg(
            LegRole.TAKE_PROFIT, exit_side, OrderType.LIMIT_MAKER,
            request.take_profit_client_order_id, request.take_profit_price,
        )
        stop_loss = leg(
            LegRole.STOP_LOSS,
            exit_side,
            OrderType.STOP_LOSS if request.stop_limit_price is None else OrderType.STOP_LOSS_LIMIT,
            request.stop_loss_client_order_id,
            request.stop_limit_price,
            request.stop_price,
            request.stop_trailing_delta,
        )
        entry_id = entry.order_id
        legs = [entry, take_profit, stop_loss]
        reason = self._common_reject(account, legs)
        if reason is None and entry.type is OrderType.MARKET and last_price is None:
            reason = RejectReason.NO_MARKET_PRICE
        if reason is None:
            ref = entry.price if entry.type is OrderType.LIMIT else last_price
            assert ref is not None
            if not bracket_prices_ok(
                request.side, ref, request.take_profit_price, request.stop_price
            ):
                reason = RejectReason.BRACKET_BAD_PRICES
            elif risk is not None:
                reason = risk([entry], last_price if last_price is not None else ref)
        out = _Out()
        self._open_list_into(ListType.BRACKET, list_id, legs, reason, last_price, now_ms, out)
        if reason is None:
            self._execute_at_once(self._orders[entry_id], last_price, slippage_bps, now_ms, out)
        return out.build()

    def _list_leg(
        self,
        account: str,
        symbol: str,
        quantity: Decimal,
        list_type: ListType,
        list_id: int,
        role: LegRole,
        side: Side,
        kind: OrderType,
        client_id: str | None,
        price: Decimal | None,
        stop_price: Decimal | None,
        trailing_delta: int | None,
        now_ms: int,
    ) -> Order:
        """A new leg of a list (a bracket's exits start PENDING_NEW)."""
        oid = self._take_order_id()
        pending = role in (LegRole.TAKE_PROFIT, LegRole.STOP_LOSS)
        return Order(
            order_id=oid,
            client_order_id=self._client_id(account, client_id, oid),
            account=account,
            symbol=symbol,
            side=side,
            type=kind,
            status=OrderStatus.PENDING_NEW if pending else OrderStatus.NEW,
            quantity=quantity,
            create_time=now_ms,
            update_time=now_ms,
            price=price,
            stop_price=stop_price,
            trailing_delta=trailing_delta,
            list_id=list_id,
            list_type=list_type,
            leg=role,
            time_in_force=TimeInForce.GTC if kind in _HAS_TIME_IN_FORCE else None,
        )

    def _open_list(
        self,
        list_type: ListType,
        list_id: int,
        legs: list[Order],
        reason: str | None,
        last_price: Decimal | None,
        now_ms: int,
    ) -> Outcome:
        out = _Out()
        self._open_list_into(list_type, list_id, legs, reason, last_price, now_ms, out)
        return out.build()

    def _open_list_into(
        self,
        list_type: ListType,
        list_id: int,
        legs: list[Order],
        reason: str | None,
        last_price: Decimal | None,
        now_ms: int,
        out: _Out,
    ) -> None:
        first = legs[0]
        order_list = OrderList(
            list_id=list_id,
            list_type=list_type,
            account=first.account,
            symbol=first.symbol,
            status=ListStatus.EXECUTING if reason is None else ListStatus.REJECTED,
            order_ids=tuple(o.order_id for o in legs),
            create_time=now_ms,
            update_time=now_ms,
            reject_reason=reason,
        )
        out.events.append(ListEvent(order_list))
        if reason is not None:
            for leg in legs:
                out.order(ExecutionType.REJECTED, _rejected(leg, reason))
            return
        self._lists[list_id] = order_list
        for leg in legs:
            if leg.status is not OrderStatus.PENDING_NEW:
                leg = _seed_trailing(leg, last_price)
                if leg.type is OrderType.LIMIT_MAKER:
                    leg = self._join(leg)
            self._put(leg)
            out.order(ExecutionType.NEW, leg)

    def _execute_at_once(
        self,
        order: Order,
        last_price: Decimal | None,
        slippage_bps: Decimal,
        now_ms: int,
        out: _Out,
    ) -> None:
        """Work a just-accepted order: a MARKET or LIMIT takes what it can at
        once, a LIMIT_MAKER joins the queue, a stop waits for its trigger."""
        if order.type is OrderType.LIMIT_MAKER:
            self._put(self._join(order))
            return
        if order.type not in (OrderType.MARKET, OrderType.LIMIT):
            return
        order = self._take_now(order, last_price, slippage_bps, now_ms, out)
        self._list_effects(order, now_ms, out)

    def _take_now(
        self,
        order: Order,
        last_price: Decimal | None,
        slippage_bps: Decimal,
        now_ms: int,
        out: _Out,
    ) -> Order:
        """Fill what ``order`` (a MARKET, a LIMIT, a triggered stop) takes at
        once, then settle the rest by its time in force: ``IOC`` and ``FOK``
        expire it, a GTC LIMIT rests (joining the queue). ``last_price`` is
        the last trade (for a stop, the triggering trade)."""
        limit = order.price if order.working_as_limit else None
        slices = self._taker_slices(order, limit, last_price, slippage_bps)
        tif = order.time_in_force
        if tif is TimeInForce.FOK and sum(s.quantity for s in slices) < order.remaining:
            slices = ()
        for part in slices:
            order = self._fill(order, part.price, part.quantity, now_ms, out)
        if order.is_open and limit is not None:
            if tif in (TimeInForce.IOC, TimeInForce.FOK):
                self._close(order, OrderStatus.EXPIRED, now_ms, out)
                return self._orders[order.order_id]
            order = self._join(order)
            self._put(order)
        return order

    def _taker_slices(
        self,
        order: Order,
        limit: Decimal | None,
        last_price: Decimal | None,
        slippage_bps: Decimal,
    ) -> tuple[Slice, ...]:
        """What a taker gets: the known book's opposite side walked level by
        level; without one, the whole quantity at the slipped last trade price
        (capped by the limit) if the last trade reaches the limit."""
        quote = self._quote_for(order.symbol)
        levels = quote.opposite(order.side) if quote is not None else ()
        if levels:
            return take(order.side, order.remaining, levels, slippage_bps, limit)
        if last_price is None:
            return ()
        if limit is not None and not limit_fills(order.side, limit, last_price):
            return ()
        return (Slice(taker_price(order.side, last_price, slippage_bps, limit), order.remaining),)

    def _join(self, order: Order) -> Order:
        """``order`` as it starts resting (or refills an iceberg slice): a new
        queue position behind what the book shows at its price (model
        ``queue``), and its visible slice (icebergs, except with ``full``)."""
        ahead: Decimal | None = ZERO
        if self._model is FillModel.QUEUE:
            assert order.price is not None
            ahead = level_quantity(order.side, order.price, self._quotes.get(order.symbol))
        slice_left = None
        if order.iceberg_qty is not None and self._model is not FillModel.FULL:
            slice_left = min(order.iceberg_qty, order.remaining)
        return order.evolve(queue_ahead=ahead, slice_left=slice_left)

    # ------------------------------------------------------------------ cancel

    def cancel(
        self,
        account: str,
        *,
        order_id: int | None = None,
        client_order_id: str | None = None,
        list_id: int | None = None,
        now_ms: int,
    ) -> Outcome:
        """Cancel one open order of ``account`` (by id or clientOrderId) or a
        list (by ``list_id``). Cancelling an order of a list cancels every open
        order of the list and ends it (``ALL_DONE``). Raises
        :class:`~engine.trading.errors.UnknownOrder` (and changes nothing) when
        the order/list is unknown, another account's, or no longer open."""
        target = self._find(account, order_id, client_order_id)
        if order_id is None and client_order_id is None and list_id is not None:
            order_list = self._lists.get(list_id)
            if order_list is not None and order_list.account == account:
                target = next(
                    (o for o in map(self._orders.__getitem__, order_list.order_ids) if o.is_open),
                    None,
                )
        if target is None or target.account != account or not target.is_open:
            raise UnknownOrder("unknown order or not open")
        out = _Out()
        if target.list_id is None:
            self._close(target, OrderStatus.CANCELED, now_ms, out)
            return out.build()
        order_list = self._lists[target.list_id]
        for oid in order_list.order_ids:
            order = self._orders[oid]
            if order.is_open:
                self._close(order, OrderStatus.CANCELED, now_ms, out)
        self._finish_list_if_done(order_list.list_id, now_ms, out)
        return out.build()

    # ------------------------------------------------------------------ books

    def on_book(
        self, book: BookTicker | DepthSnapshot, *, now_ms: int, max_tick_age_ms: int = 5000
    ) -> None:
        """Take one book message (best bid/ask or top levels) of a symbol. A
        message older than ``max_tick_age_ms`` or than the known book is
        ignored. Books fill nothing by themselves (trades do); with model
        ``queue`` a level shown smaller than the quantity ahead of a resting
        order at that price shrinks it (what left the level ahead of us was
        canceled or traded), a price inside the known book with no level
        means nothing is ahead any more, and an order whose level was not
        known yet learns the quantity ahead from the first book that shows it."""
        if now_ms - book.event_time > max_tick_age_ms:
            return
        current = self._quotes.get(book.symbol)
        quote = merge_quote(current, book)
        if quote is current:
            return
        self._quotes[book.symbol] = quote
        if self._model is not FillModel.QUEUE:
            return
        for oid in list(self._watch.get(book.symbol, ())):
            order = self._orders[oid]
            ahead = order.queue_ahead
            if not order.working_as_limit or (ahead is not None and ahead <= 0):
                continue
            assert order.price is not None
            shown = level_quantity(order.side, order.price, quote)
            if shown is not None and (ahead is None or shown < ahead):
                self._put(order.evolve(queue_ahead=shown))

    # ------------------------------------------------------------------ trades

    def on_trade(
        self,
        trade: Trade,
        *,
        now_ms: int,
        max_tick_age_ms: int = 5000,
        slippage_bps: Decimal = ZERO,
    ) -> Outcome:
        """Evaluate every open order of ``trade.symbol`` against one trade."""
        if trade.is_stale(now_ms, max_tick_age_ms):
            return EMPTY
        watch = self._watch.get(trade.symbol)
        if not watch:
            return EMPTY
        price = trade.price
        if self._full_scan:
            candidates = list(watch)
        else:
            candidates = [oid for oid, (lo, hi) in watch.items() if price <= lo or price >= hi]
            if not candidates:
                return EMPTY
        candidates.sort()
        out = _Out()
        for oid in candidates:
            if oid in watch:  # a sibling may have expired it during this trade
                self._evaluate(self._orders[oid], trade, slippage_bps, now_ms, out)
        return out.build() if out.events else EMPTY

    def _evaluate(
        self, order: Order, trade: Trade, slippage_bps: Decimal, now_ms: int, out: _Out
    ) -> None:
        side = order.side
        price = trade.price
        if order.working_as_limit:
            limit = order.price
            assert limit is not None
            quantity, ahead = resting_fill(
                self._model, side, limit, price, trade.quantity, order.visible,
                order.queue_ahead,
            )
            if quantity > 0:
                order = order.evolve(queue_ahead=ahead)
                order = self._fill(order, limit, quantity, now_ms, out)
                if order.is_open and order.slice_left is not None and order.slice_left <= 0:
                    order = self._join(order)  # the next slice: a new queue position
                    self._put(order)
                self._list_effects(order, now_ms, out)
            elif ahead != order.queue_ahead:
                self._put(order.evolve(queue_ahead=ahead))
            return
        kind = order.type.stop_kind
        assert kind is not None, "only stops and limits are watched"
        if order.trailing_delta is not None:
            state = trailing.TrailState(
                order.tracking_active, order.trailing_extreme, order.current_stop_price
            )
            result = trailing.step(
                kind, side, order.stop_price, order.trailing_delta, state, price
            )
            if result.moved:
                order = order.evolve(
                    tracking_active=True,
                    trailing_extreme=result.state.extreme,
                    current_stop_price=result.state.stop,
                    update_time=now_ms,
                )
                self._put(order)
                out.order(ExecutionType.AMENDED, order)
            fired = result.triggered
        else:
            assert order.stop_price is not None
            fired = stop_condition(kind, side, order.stop_price, price)
        if not fired:
            return
        order = order.evolve(triggered=True, update_time=now_ms)
        self._put(order)
        out.order(ExecutionType.TRIGGERED, order)
        order = self._take_now(order, price, slippage_bps, now_ms, out)
        self._list_effects(order, now_ms, out)

    # ---------------------------------------------------------------- changes

    def _fill(
        self, order: Order, price: Decimal, quantity: Decimal, now_ms: int, out: _Out
    ) -> Order:
        """One fill of ``quantity`` at ``price``: cumulative filled quantity,
        average price and fee on the order, a ``TRADE`` event carrying this
        fill, and a :class:`FillIntent` for the ledger."""
        fee = self._fee_for(order.account, quantity, price)
        done = order.filled_quantity
        total = done + quantity
        with localcontext(MONEY):
            avg = (
                price
                if order.avg_price is None or done == 0
                else (order.avg_price * done + price * quantity) / total
            )
            total_fee = order.fee + fee
        filled = order.evolve(
            status=OrderStatus.FILLED if total >= order.quantity else OrderStatus.PARTIALLY_FILLED,
            filled_quantity=total,
            avg_price=avg,
            fee=total_fee,
            slice_left=None if order.slice_left is None else order.slice_left - quantity,
            update_time=now_ms,
        )
        self._put(filled)
        out.trade(filled, quantity, price)
        out.fills.append(
            FillIntent(
                account=order.account,
                order_id=order.order_id,
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side,
                quantity=quantity,
                price=price,
                fee=fee,
                time=now_ms,
            )
        )
        return filled

    def _close(self, order: Order, status: OrderStatus, now_ms: int, out: _Out) -> None:
        closed = order.evolve(status=status, update_time=now_ms)
        self._put(closed)
        kind = ExecutionType.CANCELED if status is OrderStatus.CANCELED else ExecutionType.EXPIRED
        out.order(kind, closed)

    def _list_effects(self, order: Order, now_ms: int, out: _Out) -> None:
        """After ``order`` triggered or filled: a filled bracket entry releases
        the exits; any other leg expires its open siblings. Then end the list
        if nothing of it is open."""
        if order.list_id is None:
            return
        order_list = self._lists[order.list_id]
        siblings = [self._orders[i] for i in order_list.order_ids if i != order.order_id]
        if order.leg is LegRole.ENTRY:
            if order.status is OrderStatus.FILLED:
                for leg in siblings:
                    if leg.status is OrderStatus.PENDING_NEW:
                        released = leg.evolve(status=OrderStatus.NEW, update_time=now_ms)
                        if released.type is OrderType.LIMIT_MAKER:
                            released = self._join(released)
                        self._put(released)
                        out.order(ExecutionType.NEW, released)
        else:
            for leg in siblings:
                if leg.is_open:
                    self._close(leg, OrderStatus.EXPIRED, now_ms, out)
        self._finish_list_if_done(order_list.list_id, now_ms, out)

    def _finish_list_if_done(self, list_id: int, now_ms: int, out: _Out) -> None:
        order_list = self._lists[list_id]
        if order_list.status is not ListStatus.EXECUTING:
            return
        if any(self._orders[i].is_open for i in order_list.order_ids):
            return
        done = replace(order_list, status=ListStatus.ALL_DONE, update_time=now_ms)
        self._lists[list_id] = done
        out.events.append(ListEvent(done))


# ---------------------------------------------------------------------- helpers


def _rejected(order: Order, reason: str) -> Order:
    return order.evolve(status=OrderStatus.REJECTED, reject_reason=reason)


def _best_opposite(order: Order, quote: Quote | None) -> Decimal | None:
    """The best price ``order`` could take from the known book (BUY: the ask)."""
    if quote is None:
        return None
    levels = quote.opposite(order.side)
    return levels[0][0] if levels else None


def _reference_price(
    order: Order, last_price: Decimal | None, quote: Quote | None
) -> Decimal | None:
    """The price buying power is checked at: the last trade, else the book's
    best opposite price, else the order's own price or stop price."""
    if last_price is not None:
        return last_price
    best = _best_opposite(order, quote)
    if best is not None:
        return best
    return order.price or order.stop_price


def _placement_reject(
    order: Order, last_price: Decimal | None, quote: Quote | None
) -> str | None:
    """Market-dependent checks of a single order at placement. With a known
    book, a LIMIT_MAKER is refused iff it would take liquidity (BUY at or
    above the best ask, SELL at or below the best bid); without one, iff the
    last trade reaches its price."""
    kind = order.type
    best = _best_opposite(order, quote)
    if kind is OrderType.MARKET and last_price is None and best is None:
        return RejectReason.NO_MARKET_PRICE
    if kind is OrderType.LIMIT_MAKER:
        assert order.price is not None
        if best is not None:
            if not worse_than(order.side, best, order.price):
                return RejectReason.ORDER_WOULD_MATCH_IMMEDIATELY
        elif limit_maker_would_match(order.side, order.price, last_price):
            return RejectReason.ORDER_WOULD_MATCH_IMMEDIATELY
    stop_kind = kind.stop_kind
    if stop_kind is not None:
        if order.stop_price is None:
            if last_price is None:  # trailing-only: needs a first extreme
                return RejectReason.NO_MARKET_PRICE
        elif last_price is not None and stop_condition(
            stop_kind, order.side, order.stop_price, last_price
        ):
            return RejectReason.STOP_PRICE_WOULD_TRIGGER_IMMEDIATELY
    return None


def _seed_trailing(order: Order, last_price: Decimal | None) -> Order:
    """A trailing order without stopPrice starts tracking at the last price."""
    if order.trailing_delta is None or order.stop_price is not None or order.tracking_active:
        return order
    assert last_price is not None
    state = trailing.start(order.side, last_price, order.trailing_delta)
    return order.evolve(
        tracking_active=True,
        trailing_extreme=state.extreme,
        current_stop_price=state.stop,
    )


def _bounds(order: Order) -> tuple[Decimal, Decimal] | None:
    """``(lo, hi)``: a trade at ``p`` can change ``order`` only if ``p <= lo or
    p >= hi``. None for an order no trade can change."""
    if not order.is_open or order.status is OrderStatus.PENDING_NEW:
        return None
    buy = order.side is Side.BUY
    if order.working_as_limit:
        assert order.price is not None
        return (order.price, _POS) if buy else (_NEG, order.price)
    kind = order.type.stop_kind
    if kind is None:
        return None  # MARKET never rests
    if order.trailing_delta is not None and order.tracking_active:
        extreme = order.trailing_extreme
        stop = order.current_stop_price
        assert extreme is not None and stop is not None
        return (extreme, stop) if buy else (stop, extreme)
    stop_price = order.stop_price
    assert stop_price is not None
    rises = (kind is StopKind.STOP_LOSS) == buy
    return (_NEG, stop_price) if rises else (stop_price, _POS)
