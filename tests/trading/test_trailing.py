"""Trailing stops: the five worked examples of docs/trading.md and the pure machine."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from engine.trading import ExecutionType, OrderStatus, Side, StopKind
from engine.trading.trailing import INACTIVE, start, step, trail_stop_price
from tests.trading.helpers import D, first_event, full_book, place, run

EXAMPLES = [
    # (type, side, stopPrice, delta, limit price, path, trigger price)
    (
        "STOP_LOSS_LIMIT", "BUY", 44000, 500, 50000,
        [37000, 44000, 46000, 42000, 44100], "44100",
    ),
    (
        "STOP_LOSS_LIMIT", "SELL", 39000, 1000, 30000,
        [41500, 39000, 37000, 41000, 36900], "36900",
    ),
    (
        "TAKE_PROFIT_LIMIT", "BUY", 38000, 850, 50000,
        [42000, 38000, 37000, 39000, 38000, 40145], "40145",
    ),
    (
        "TAKE_PROFIT_LIMIT", "SELL", 42000, 750, 30000,
        [41500, 39000, 42000, 45000, 44000, 46500, "43012.5"], "43012.5",
    ),
    ("STOP_LOSS", "SELL", None, 700, None, [42000, 39500, 45500, 42315], "42315"),
]


@pytest.mark.parametrize(
    ("kind", "side", "stop", "delta", "limit", "path", "trigger"),
    EXAMPLES,
    ids=["1-SLL-BUY", "2-SLL-SELL", "3-TPL-BUY", "4-TPL-SELL", "5-SL-SELL"],
)
def test_worked_example(
    kind: str,
    side: str,
    stop: int | None,
    delta: int,
    limit: int | None,
    path: list[object],
    trigger: str,
) -> None:
    book = full_book()
    fields: dict[str, Any] = {"type": kind, "side": side, "trailingDelta": delta}
    if stop is not None:
        fields["stopPrice"] = stop
    if limit is not None:
        fields["price"] = limit
    placed = place(book, 40000, **fields)
    assert placed.order_events()[0].execution_type is ExecutionType.NEW
    outcomes = run(book, path)
    triggered = [i for i, o in enumerate(outcomes) if first_event(o, ExecutionType.TRIGGERED)]
    assert triggered == [len(path) - 1], "only the last trade of the path triggers"
    event = first_event(outcomes[-1], ExecutionType.TRIGGERED)
    assert event is not None
    assert event.order.current_stop_price == Decimal(trigger)
    final = outcomes[-1].order_events()[-1].order
    assert final.status is OrderStatus.FILLED
    assert final.avg_price == Decimal(trigger)  # trade price; the limit is not worse


def test_example_1_ignores_moves_before_activation() -> None:
    book = full_book()
    place(book, 40000, type="STOP_LOSS_LIMIT", side="BUY", stopPrice=44000,
          trailingDelta=500, price=50000)
    (first,) = run(book, [37000])
    assert not first.events
    (activation,) = run(book, [44000])
    (amended,) = activation.order_events()
    assert amended.execution_type is ExecutionType.AMENDED
    assert amended.order.trailing_extreme == D(44000)
    assert amended.order.current_stop_price == D(46200)


def test_example_5_amends_each_move() -> None:
    book = full_book()
    placed = place(book, 40000, type="STOP_LOSS", side="SELL", trailingDelta=700)
    new = placed.order_events()[0].order
    assert (new.trailing_extreme, new.current_stop_price) == (D(40000), D(37200))
    outcomes = run(book, [42000, 39500, 45500])
    moves = [[(e.order.trailing_extreme, e.order.current_stop_price)
              for e in o.order_events()] for o in outcomes]
    assert moves == [[(D(42000), D(39060))], [], [(D(45500), D(42315))]]


def test_trail_stop_price_is_exact() -> None:
    assert trail_stop_price(Side.SELL, D(46500), 750) == D("43012.5")
    assert trail_stop_price(Side.BUY, D(37000), 850) == D(40145)
    assert trail_stop_price(Side.BUY, D("0.1"), 1) == D("0.10001")


def test_step_inclusive_trigger_and_no_loosening() -> None:
    state = start(Side.SELL, D(100), 1000)  # stop 90
    assert step(StopKind.STOP_LOSS, Side.SELL, None, 1000, state, D(90)).triggered
    lower = step(StopKind.STOP_LOSS, Side.SELL, None, 1000, state, D(95))
    assert lower.state == state and not lower.moved and not lower.triggered
    equal = step(StopKind.STOP_LOSS, Side.SELL, None, 1000, state, D(100))
    assert not equal.moved


def test_step_inactive_without_condition_stays_inactive() -> None:
    result = step(StopKind.TAKE_PROFIT, Side.SELL, D(42000), 750, INACTIVE, D(41999))
    assert result == (INACTIVE, False, False)
