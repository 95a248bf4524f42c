"""The trigger table, inclusive comparisons, limit fills and slippage."""

from __future__ import annotations

import pytest

from engine.trading import Side, StopKind
from engine.trading.triggers import (
    bracket_prices_ok,
    limit_fills,
    limit_maker_would_match,
    oco_prices_ok,
    slipped,
    stop_condition,
    taker_price,
)
from tests.trading.helpers import D

SL, TP = StopKind.STOP_LOSS, StopKind.TAKE_PROFIT
BUY, SELL = Side.BUY, Side.SELL


@pytest.mark.parametrize(
    ("kind", "side", "below", "at", "above"),
    [
        (SL, BUY, False, True, True),  # >= stop
        (SL, SELL, True, True, False),  # <= stop
        (TP, BUY, True, True, False),  # <= stop
        (TP, SELL, False, True, True),  # >= stop
    ],
)
def test_stop_table_inclusive(
    kind: StopKind, side: Side, below: bool, at: bool, above: bool
) -> None:
    stop = D(100)
    assert stop_condition(kind, side, stop, D("99.99")) is below
    assert stop_condition(kind, side, stop, D(100)) is at
    assert stop_condition(kind, side, stop, D("100.01")) is above


def test_limit_fills_inclusive() -> None:
    assert limit_fills(BUY, D(100), D(100)) and limit_fills(BUY, D(100), D(99))
    assert not limit_fills(BUY, D(100), D("100.5"))
    assert limit_fills(SELL, D(100), D(100)) and limit_fills(SELL, D(100), D(101))
    assert not limit_fills(SELL, D(100), D("99.5"))


def test_limit_maker_would_match() -> None:
    assert limit_maker_would_match(BUY, D(100), D(100))
    assert not limit_maker_would_match(BUY, D(99), D(100))
    assert limit_maker_would_match(SELL, D(100), D(100))
    assert not limit_maker_would_match(SELL, D(101), D(100))
    assert not limit_maker_would_match(BUY, D(100), None)


def test_slippage_is_against_the_taker() -> None:
    assert slipped(BUY, D(100), D(10)) == D("100.1")
    assert slipped(SELL, D(100), D(10)) == D("99.9")
    assert slipped(BUY, D(100), D(0)) == D(100)
    assert taker_price(BUY, D(100), D(50), D("100.2")) == D("100.2")  # capped by limit
    assert taker_price(SELL, D(100), D(50), D("99.8")) == D("99.8")


def test_oco_relation() -> None:
    assert oco_prices_ok(SELL, D(110), D(100), D(90))
    assert not oco_prices_ok(SELL, D(100), D(100), D(90))
    assert not oco_prices_ok(SELL, D(110), D(100), D(100))
    assert oco_prices_ok(BUY, D(90), D(100), D(110))
    assert not oco_prices_ok(BUY, D(110), D(100), D(90))
    assert oco_prices_ok(SELL, D(110), D(100), None)


def test_bracket_relation() -> None:
    assert bracket_prices_ok(BUY, D(100), D(110), D(90))
    assert not bracket_prices_ok(BUY, D(100), D(90), D(110))
    assert bracket_prices_ok(SELL, D(100), D(90), D(110))
    assert not bracket_prices_ok(SELL, D(100), D(110), D(90))
