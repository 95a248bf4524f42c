"""The trailing-stop state machine (docs/trading.md, "Trailing").

Pure core: no threads, sockets, clocks or pykka.

A SELL trailing order tracks the highest trade price and triggers on a trade
``<= highest * (1 - delta/10000)``; a BUY tracks the lowest and triggers on a
trade ``>= lowest * (1 + delta/10000)``. Without ``stopPrice`` tracking begins
at placement, seeded by the last trade price (:func:`start`). With
``stopPrice`` it begins on the first trade meeting the stop condition of the
trigger table; that trade seeds the extreme and earlier moves are ignored.

:func:`step` consumes one trade. It reports ``moved`` whenever
``currentStopPrice`` or ``trailingExtreme`` changed (the caller then sends
``AMENDED``) and ``triggered`` when the order fires. The extreme only moves in
the order's favour, so the stop only ever tightens. The activating trade never
triggers (a positive delta puts the stop strictly beyond it).
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from engine.money import BPS, MONEY, Side
from engine.trading.order import StopKind
from engine.trading.triggers import stop_condition

__all__ = ["INACTIVE", "TrailState", "TrailStep", "start", "step", "trail_stop_price"]


class TrailState(NamedTuple):
    """``active`` once tracking began; then ``extreme`` and ``stop`` are set."""

    active: bool
    extreme: Decimal | None
    stop: Decimal | None


class TrailStep(NamedTuple):
    state: TrailState
    moved: bool
    triggered: bool


INACTIVE = TrailState(False, None, None)


def trail_stop_price(side: Side, extreme: Decimal, delta: int) -> Decimal:
    """``extreme * (1 - delta/10000)`` for SELL, ``* (1 + delta/10000)`` for BUY (exact)."""
    factor = BPS - delta if side is Side.SELL else BPS + delta
    return MONEY.divide(MONEY.multiply(extreme, factor), BPS)


def start(side: Side, price: Decimal, delta: int) -> TrailState:
    """Begin tracking with ``price`` as the first extreme."""
    return TrailState(True, price, trail_stop_price(side, price, delta))


def step(
    kind: StopKind,
    side: Side,
    stop_price: Decimal | None,
    delta: int,
    state: TrailState,
    price: Decimal,
) -> TrailStep:
    """Advance the machine by one trade at ``price``."""
    if not state.active:
        if stop_price is not None and stop_condition(kind, side, stop_price, price):
            return TrailStep(start(side, price, delta), True, False)
        return TrailStep(state, False, False)
    extreme = state.extreme
    stop = state.stop
    assert extreme is not None and stop is not None
    if side is Side.SELL:
        if price <= stop:
            return TrailStep(state, False, True)
        if price > extreme:
            return TrailStep(start(side, price, delta), True, False)
    else:
        if price >= stop:
            return TrailStep(state, False, True)
        if price < extreme:
            return TrailStep(start(side, price, delta), True, False)
    return TrailStep(state, False, False)
