"""Shared helpers for the order-engine tests (no threads, no clocks)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from engine.messages import Trade
from engine.trading import (
    ExecutionType,
    OrderBook,
    OrderEvent,
    Outcome,
    parse_bracket,
    parse_oco,
    parse_order,
)
from engine.trading.fill_model import FillModel

SYMBOL = "BTCUSDT"


def full_book(**kwargs: Any) -> OrderBook:
    """A book with ``fill_model = "full"``: the older contract (whole fills on
    the first qualifying trade, takers at the last trade) these tests pin."""
    return OrderBook(fill_model=FillModel.FULL, **kwargs)
ACCOUNT = "alice"


def D(value: object) -> Decimal:
    return Decimal(str(value))


def trade(price: object, *, at: int = 0, symbol: str = SYMBOL) -> Trade:
    return Trade(symbol, D(price), Decimal(1), event_time=at, trade_time=at)


def order_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"symbol": SYMBOL, "side": "BUY", "quantity": "1"}
    body.update(fields)
    return body


def place(
    book: OrderBook,
    last: object | None = 40000,
    *,
    account: str = ACCOUNT,
    now: int = 0,
    slippage: object = 0,
    **fields: Any,
) -> Outcome:
    return book.place(
        account,
        parse_order(order_body(**fields)),
        now_ms=now,
        last_price=None if last is None else D(last),
        slippage_bps=D(slippage),
    )


def place_oco(
    book: OrderBook, last: object | None = 40000, *, account: str = ACCOUNT, **fields: Any
) -> Outcome:
    return book.place_oco(
        account,
        parse_oco(order_body(**fields)),
        now_ms=0,
        last_price=None if last is None else D(last),
    )


def place_bracket(
    book: OrderBook,
    last: object | None = 40000,
    *,
    account: str = ACCOUNT,
    slippage: object = 0,
    **fields: Any,
) -> Outcome:
    return book.place_bracket(
        account,
        parse_bracket(order_body(**fields)),
        now_ms=0,
        last_price=None if last is None else D(last),
        slippage_bps=D(slippage),
    )


def kinds(outcome: Outcome) -> list[tuple[int, ExecutionType]]:
    """(orderId, executionType) of each ORDER_UPDATE, in order."""
    return [(e.order.order_id, e.execution_type) for e in outcome.order_events()]


def run(
    book: OrderBook, prices: Iterable[object], *, slippage: object = 0
) -> list[Outcome]:
    return [book.on_trade(trade(p), now_ms=0, slippage_bps=D(slippage)) for p in prices]


def first_event(outcome: Outcome, kind: ExecutionType) -> OrderEvent | None:
    return next((e for e in outcome.order_events() if e.execution_type is kind), None)
