"""Property tests over random price paths, books and order mixes (hypothesis),
under every fill model (``full``, the older contract, and the realistic
``book`` and ``queue``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.messages import BookTicker, Trade
from engine.money import MONEY
from engine.protocol import server_messages as sm
from engine.trading import (
    BracketRequest,
    Event,
    ExecutionType,
    FillIntent,
    Ledger,
    ListType,
    OcoLeg,
    OcoRequest,
    Order,
    OrderBook,
    OrderEvent,
    OrderRequest,
    OrderStatus,
    OrderType,
    Outcome,
    Side,
    UnknownOrder,
)
from engine.trading.fill_model import FillModel
from tests.trading.helpers import SYMBOL

Op = tuple[int, int, int, int, int]

op_strategy = st.tuples(
    st.integers(0, 9),
    st.integers(-400, 400),
    st.integers(0, 1000),
    st.integers(1, 800),
    st.integers(0, 1000),
)
ops_strategy = st.lists(op_strategy, min_size=1, max_size=70)
SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
ACCOUNTS = ("a", "b")
TYPES = list(OrderType)
MODELS = pytest.mark.parametrize("model", list(FillModel))


def cents(value: int) -> Decimal:
    return Decimal(max(value, 1)).scaleb(-2)


@dataclass
class Driver:
    """Interprets primitive ops against a book, relative to the last price."""

    book: OrderBook
    last_cents: int = 10000
    now: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    #: The trade each outcome came from (None for placements and cancels).
    causes: list[Trade | None] = field(default_factory=list)
    last_book: BookTicker | None = None

    @property
    def last(self) -> Decimal:
        return cents(self.last_cents)

    def run(self, ops: list[Op]) -> None:
        for op in ops:
            self.now += 1
            out = self.apply(op)
            if out is not None:
                self.outcomes.append(out)
                self.causes.append(self.cause)

    def apply(self, op: Op) -> Outcome | None:
        kind, a, b, c, d = op
        account = ACCOUNTS[b % 2]
        self.cause: Trade | None = None
        if kind == 3 and c % 2:  # a book around the last price
            spread = 1 + d % 4
            self.last_book = BookTicker(
                SYMBOL, cents(self.last_cents - spread + a % 2), Decimal(1 + b % 9).scaleb(-1),
                cents(self.last_cents + spread), Decimal(1 + c % 7).scaleb(-1), self.now,
                self.now)
            self.book.on_book(self.last_book, now_ms=self.now)
            return None
        if kind <= 3:
            self.last_cents = max(self.last_cents + a, 100)
            self.cause = Trade(SYMBOL, self.last, Decimal(1 + d % 6).scaleb(-1),
                               event_time=self.now, trade_time=self.now)
            return self.book.on_trade(self.cause, now_ms=self.now, slippage_bps=Decimal(b % 3))
        qty = Decimal(1 + b % 5).scaleb(-1)
        side = Side.BUY if c % 2 else Side.SELL
        if kind <= 6:
            request = self.single(side, qty, a, c, d)
            return self.book.place(account, request, now_ms=self.now, last_price=self.last,
                                   slippage_bps=Decimal(d % 3))
        if kind == 7:
            return self.book.place_oco(account, self.oco(side, qty, a, c, d), now_ms=self.now,
                                       last_price=self.last)
        if kind == 8:
            return self.book.place_bracket(account, self.bracket(side, qty, a, c, d),
                                           now_ms=self.now, last_price=self.last,
                                           slippage_bps=Decimal(b % 3))
        try:
            return self.book.cancel(account, order_id=1 + c % max(self.book.next_order_id, 1),
                                    now_ms=self.now)
        except UnknownOrder:
            return None

    def single(self, side: Side, qty: Decimal, a: int, c: int, d: int) -> OrderRequest:
        kind = TYPES[(a + 400) % len(TYPES)]
        off = self.last_cents + (d if c % 3 else -d)
        price = stop = None
        delta = None
        if kind.is_limit:
            price = cents(off)
        elif kind.is_stop:
            stop = cents(off)
            if kind is OrderType.TRAILING_STOP or c % 4 == 0:
                delta = 1 + (c * 7 + d) % 600
                if c % 8 == 0 or (kind is OrderType.TRAILING_STOP and c % 2):
                    stop = None
            if kind.limit_after_trigger:
                price = cents(off + (d % 50) - 25)
        return OrderRequest(SYMBOL, side, kind, qty, price, stop, delta)

    def oco(self, side: Side, qty: Decimal, a: int, c: int, d: int) -> OcoRequest:
        up = self.last_cents + d - (50 if c % 5 == 0 else 0)  # sometimes bad prices
        down = self.last_cents - 1 - (a % 300)
        delta = 1 + d % 300 if c % 3 == 0 else None
        if side is Side.SELL:
            limit_leg = OcoLeg(OrderType.LIMIT_MAKER, price=cents(up)) if c % 2 else OcoLeg(
                OrderType.TAKE_PROFIT, stop_price=cents(up))
            stop_leg = OcoLeg(OrderType.STOP_LOSS_LIMIT if c % 7 == 0 else OrderType.STOP_LOSS,
                              price=cents(down - 10) if c % 7 == 0 else None,
                              stop_price=cents(down), trailing_delta=delta)
            return OcoRequest(SYMBOL, side, qty, above=limit_leg, below=stop_leg)
        stop_leg = OcoLeg(OrderType.STOP_LOSS, stop_price=cents(up), trailing_delta=delta)
        limit_leg = OcoLeg(OrderType.LIMIT_MAKER, price=cents(down))
        return OcoRequest(SYMBOL, side, qty, above=stop_leg, below=limit_leg)

    def bracket(self, side: Side, qty: Decimal, a: int, c: int, d: int) -> BracketRequest:
        market = c % 3 == 0
        entry = self.last_cents + (a // 4)
        ref = self.last_cents if market else entry
        sign = 1 if side is Side.BUY else -1
        tp = ref + sign * (1 + d % 300) - (400 if c % 11 == 0 else 0)
        sl = ref - sign * (1 + (d * 3) % 300)
        return BracketRequest(
            SYMBOL, side, qty,
            entry_type=OrderType.MARKET if market else OrderType.LIMIT,
            entry_price=None if market else cents(entry),
            take_profit_price=cents(tp),
            stop_price=cents(sl),
            stop_limit_price=cents(sl - sign * 20) if c % 4 == 1 else None,
            stop_trailing_delta=1 + d % 200 if c % 5 == 2 else None,
        )


def order_events(outcomes: list[Outcome]) -> list[OrderEvent]:
    return [e for o in outcomes for e in o.order_events()]


def fills(outcomes: list[Outcome]) -> list[FillIntent]:
    return [f for o in outcomes for f in o.fills]


def _event_fields(event: Event) -> Any:
    """What the wire says of an event (ORDER_UPDATE / ORDER_LIST_UPDATE), Decimals exact."""
    if isinstance(event, OrderEvent):
        return (event.execution_type, sm.order_object(event.order))
    return ("LIST", sm.list_object(event.order_list))


def wire(outcomes: list[Outcome]) -> list[Any]:
    return [([_event_fields(e) for e in o.events], list(o.fills)) for o in outcomes]


def drive(ops: list[Op], model: FillModel = FillModel.FULL, **kwargs: Any) -> Driver:
    driver = Driver(OrderBook(fill_model=model, **kwargs))
    driver.run(ops)
    return driver


@MODELS
@SETTINGS
@given(ops_strategy)
def test_trailing_stop_never_loosens(model: FillModel, ops: list[Op]) -> None:
    seen: dict[int, Order] = {}
    for event in order_events(drive(ops, model).outcomes):
        order = event.order
        before = seen.get(order.order_id)
        if (
            before is not None
            and before.current_stop_price is not None
            and order.current_stop_price is not None
        ):
            if order.side is Side.SELL:
                assert order.current_stop_price >= before.current_stop_price
                assert order.trailing_extreme >= before.trailing_extreme  # type: ignore[operator]
            else:
                assert order.current_stop_price <= before.current_stop_price
                assert order.trailing_extreme <= before.trailing_extreme  # type: ignore[operator]
        if event.execution_type is ExecutionType.AMENDED:
            assert order.current_stop_price is not None
            assert before is None or (
                before.current_stop_price,
                before.trailing_extreme,
            ) != (order.current_stop_price, order.trailing_extreme)
        seen[order.order_id] = order


@MODELS
@SETTINGS
@given(ops_strategy)
def test_lists_are_exclusive_and_brackets_wait_for_entry(model: FillModel, ops: list[Op]) -> None:
    trades: dict[int, set[int]] = defaultdict(set)
    entry_filled: set[int] = set()
    terminal: set[int] = set()
    for event in order_events(drive(ops, model).outcomes):
        order = event.order
        assert order.order_id not in terminal, "no event after a final state"
        if order.status in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED):
            terminal.add(order.order_id)
        if order.list_id is None:
            continue
        acting = event.execution_type in (
            ExecutionType.TRADE, ExecutionType.TRIGGERED, ExecutionType.AMENDED
        )
        if order.list_type is ListType.BRACKET and order.leg is not None:
            if order.leg.value == "ENTRY":
                if order.status is OrderStatus.FILLED:
                    entry_filled.add(order.list_id)
            elif acting or order.status is OrderStatus.NEW:
                assert order.list_id in entry_filled, "exit acted before the entry filled"
        if event.execution_type is ExecutionType.TRADE and order.leg is not None and (
            order.leg.value != "ENTRY"
        ):
            trades[order.list_id].add(order.order_id)
    assert all(len(filled) == 1 for filled in trades.values()), "both legs filled"


@MODELS
@SETTINGS
@given(ops_strategy)
def test_fills_reconcile_with_the_ledger(model: FillModel, ops: list[Op]) -> None:
    all_fills = fills(drive(ops, model).outcomes)
    start = Decimal(10000)
    for account in ACCOUNTS:
        ledger = Ledger.single(account, start, fee_bps=Decimal(10))
        signed: dict[str, Decimal] = defaultdict(Decimal)
        fees = Decimal(0)
        for fill in all_fills:
            if fill.account != account:
                continue
            result = ledger.apply_fill(fill.symbol, fill.side, fill.quantity, fill.price)
            assert result.fee == fill.fee
            signed[fill.symbol] += fill.quantity * fill.side.sign
            fees = MONEY.add(fees, fill.fee)
        assert ledger.balance == MONEY.subtract(MONEY.add(start, ledger.realized_pnl),
                                                ledger.home_fees)
        assert ledger.home_fees == fees
        for symbol, quantity in signed.items():
            assert ledger.position(symbol).quantity == quantity


@MODELS
@SETTINGS
@given(ops_strategy, st.integers(0, 70))
def test_restore_then_continue_matches(model: FillModel, ops: list[Op], split: int) -> None:
    split = min(split, len(ops))
    straight = drive(ops, model)
    first = drive(ops[:split], model)
    records = [o.to_record() for o in first.book.all_orders()]
    restored = OrderBook.restore(
        [Order.from_record(r) for r in records], first.book.next_order_id, first.book.next_list_id,
        fill_model=model,
    )
    if first.last_book is not None:  # after a restart the feed sends the book again
        restored.on_book(first.last_book, now_ms=first.now)
    second = Driver(restored, last_cents=first.last_cents, now=first.now,
                    last_book=first.last_book)
    second.run(ops[split:])
    assert wire(first.outcomes + second.outcomes) == wire(straight.outcomes)


@MODELS
@SETTINGS
@given(ops_strategy)
def test_price_index_matches_full_scan(model: FillModel, ops: list[Op]) -> None:
    assert wire(drive(ops, model).outcomes) == wire(drive(ops, model, full_scan=True).outcomes)


@pytest.mark.parametrize("model", [FillModel.BOOK, FillModel.QUEUE])
@SETTINGS
@given(ops_strategy)
def test_realistic_fills_add_up_and_resting_fills_never_exceed_the_trade(
    model: FillModel, ops: list[Op]
) -> None:
    driver = drive(ops, model)
    per_order: dict[int, list[FillIntent]] = defaultdict(list)
    final: dict[int, Order] = {}
    for outcome, cause in zip(driver.outcomes, driver.causes, strict=True):
        triggered = {e.order.order_id for e in outcome.order_events()
                     if e.execution_type is ExecutionType.TRIGGERED}
        for event in outcome.order_events():
            final[event.order.order_id] = event.order
        for f in outcome.fills:
            per_order[f.order_id].append(f)
            order = final[f.order_id]
            if cause is not None and f.order_id not in triggered:
                # a resting order filled by this trade: at its limit, at most the trade
                assert f.price == order.price and f.quantity <= cause.quantity
    for oid, parts in per_order.items():
        order = final[oid]
        total = sum((f.quantity for f in parts), Decimal(0))
        assert total == order.filled_quantity <= order.quantity
        assert order.fee == sum((f.fee for f in parts), Decimal(0))
        notional = sum((f.quantity * f.price for f in parts), Decimal(0))
        assert abs(order.avg_price * total - notional) <= Decimal("1e-40")  # type: ignore[operator]
        assert (order.status is OrderStatus.FILLED) == (total == order.quantity) or (
            order.status in (OrderStatus.EXPIRED, OrderStatus.CANCELED))
