"""Binance's symbol filters (engine/trading/filters.py), rule by rule.

The expectations are written by hand from Binance's "Filters" page: each rule
at its boundary (exactly on the step, one step off, at min, at max, just
beyond) and with 0 meaning "no limit".
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.market.symbol_info import (
    LotSize,
    MinNotional,
    Notional,
    PercentPrice,
    PercentPriceBySide,
    PriceFilter,
    SymbolInfo,
    TrailingDelta,
)
from engine.money import Side
from engine.trading.filters import FilterFailure, check_order
from engine.trading.order import Order, OrderStatus, OrderType

D = Decimal

# Today's BTCUSDT-like rules, every filter present.
INFO = SymbolInfo(
    symbol="BTCUSDT", status="TRADING", base_asset="BTC", quote_asset="USDT",
    price_filter=PriceFilter(D("0.01"), D("1000000"), D("0.01")),
    percent_price_by_side=PercentPriceBySide(D("5"), D("0.2"), D("4"), D("0.5"), 5),
    lot_size=LotSize(D("0.00001"), D("9000"), D("0.00001")),
    market_lot_size=LotSize(D("0"), D("100"), D("0")),
    notional=Notional(D("5"), True, D("9000000"), False, 5),
    trailing_delta=TrailingDelta(10, 2000, 20, 1500),
)
LAST = D("50000")


def order(kind: str = "LIMIT", side: str = "BUY", quantity: str = "0.01", *,
          price: str | None = "50000", stop: str | None = None,
          delta: int | None = None) -> Order:
    return Order(
        order_id=1, client_order_id="c", account="a", symbol="BTCUSDT", side=Side(side),
        type=OrderType(kind), status=OrderStatus.NEW, quantity=D(quantity), create_time=0,
        update_time=0, price=None if price is None else D(price),
        stop_price=None if stop is None else D(stop), trailing_delta=delta,
    )


def check(o: Order, info: SymbolInfo = INFO, last: Decimal | None = LAST,
          fill: Decimal | None = None) -> FilterFailure | None:
    return check_order(info, o, last_price=last, market_fill_price=fill)


def test_reason_texts_are_binances() -> None:
    assert FilterFailure.LOT_SIZE == "Filter failure: LOT_SIZE"
    assert FilterFailure.PRICE_FILTER.value == "Filter failure: PRICE_FILTER"
    assert FilterFailure.NOTIONAL.value == "Filter failure: NOTIONAL"


def test_a_valid_order_passes_every_filter() -> None:
    assert check(order()) is None


def test_the_issue_order_one_tenth_of_a_micro_btc_with_18_decimals() -> None:
    assert check(order(quantity="0.000000100000000000")) is FilterFailure.LOT_SIZE


# ---------------------------------------------------------------- PRICE_FILTER


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        ("0.01", None),            # = minPrice (notional checked separately below)
        ("0.009", FilterFailure.PRICE_FILTER),
        ("1000000", None),         # = maxPrice
        ("1000000.01", FilterFailure.PRICE_FILTER),
        ("50000.01", None),        # on a tick
        ("50000.015", FilterFailure.PRICE_FILTER),  # between ticks
        ("50000.010000", None),    # trailing zeros are still on the tick
    ],
)
def test_price_filter_on_price(price: str, expected: FilterFailure | None) -> None:
    info = replace(INFO, percent_price_by_side=None, notional=None)
    assert check(order(price=price), info) is expected


def test_price_filter_applies_to_stop_price_too() -> None:
    info = replace(INFO, percent_price_by_side=None)
    assert check(order("STOP_LOSS", "SELL", price=None, stop="49000.00"), info) is None
    assert check(order("STOP_LOSS", "SELL", price=None, stop="49000.001"),
                 info) is FilterFailure.PRICE_FILTER
    assert check(order("STOP_LOSS_LIMIT", "SELL", price="48999.99", stop="0.001"),
                 info) is FilterFailure.PRICE_FILTER


@pytest.mark.parametrize("field", ["min_price", "max_price", "tick_size"])
def test_price_filter_zero_disables_that_rule(field: str) -> None:
    rules = PriceFilter(D("1"), D("1000000"), D("0.01"))
    info = replace(INFO, percent_price_by_side=None, notional=None, price_filter=rules)
    price = {"min_price": "0.5", "max_price": "2000000", "tick_size": "50000.005"}[field]
    assert check(order(price=price), info) is FilterFailure.PRICE_FILTER
    off = replace(info, price_filter=replace(rules, **{field: D(0)}))
    assert check(order(price=price), off) is None


# ------------------------------------------------------------------ LOT_SIZE


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("0.00001", None),                      # = minQty, on the step
        ("0.000009", FilterFailure.LOT_SIZE),   # below minQty
        ("9000", None),                         # = maxQty
        ("9000.00001", FilterFailure.LOT_SIZE), # one step above maxQty
        ("1.23456", None),                      # on the step
        ("1.234561", FilterFailure.LOT_SIZE),   # a tenth of a step off
        ("0.00002", None),
        ("0.000015", FilterFailure.LOT_SIZE),
    ],
)
def test_lot_size(quantity: str, expected: FilterFailure | None) -> None:
    info = replace(INFO, notional=None, percent_price_by_side=None)
    assert check(order(quantity=quantity, price="1.00"), info) is expected


def test_lot_size_applies_to_every_order_type() -> None:
    info = replace(INFO, notional=None)
    assert check(order("MARKET", quantity="0.000015", price=None), info) is FilterFailure.LOT_SIZE
    assert check(order("STOP_LOSS", "SELL", "0.000015", price=None, stop="40000"),
                 info) is FilterFailure.LOT_SIZE


def test_lot_size_zero_means_no_limit() -> None:
    info = replace(INFO, notional=None, percent_price_by_side=None,
                   lot_size=LotSize(D(0), D(0), D(0)))
    assert check(order(quantity="0.000000001", price="1.00"), info) is None
    assert check(order(quantity="123456789.123456789", price="1.00"), info) is None


def test_market_lot_size_applies_to_market_orders_only() -> None:
    info = replace(INFO, notional=None, percent_price_by_side=None)
    assert check(order("MARKET", quantity="100", price=None)) is None            # = maxQty
    assert check(order("MARKET", quantity="100.00001", price=None),
                 info) is FilterFailure.MARKET_LOT_SIZE
    assert check(order("LIMIT", quantity="100.00001", price="1.00"), info) is None
    # its zero minQty/stepSize add nothing; LOT_SIZE still holds
    assert check(order("MARKET", quantity="0.000015", price=None), info) is FilterFailure.LOT_SIZE
    stepped = replace(info, market_lot_size=LotSize(D("0.001"), D(0), D("0.001")))
    assert check(order("MARKET", quantity="0.00101", price=None),
                 stepped) is FilterFailure.MARKET_LOT_SIZE
    assert check(order("MARKET", quantity="1000", price=None), stepped) is None


# ---------------------------------------------------------------- notional


def test_notional_limit_order_at_its_price() -> None:
    # minNotional 5: 0.0001 × 50000 = 5 passes, 0.0001 × 49999.99 = 4.999999 fails
    assert check(order(quantity="0.0001", price="50000")) is None
    assert check(order(quantity="0.0001", price="49999.99")) is FilterFailure.NOTIONAL
    # maxNotional 9,000,000 applies to LIMIT orders
    assert check(order(quantity="180", price="50000")) is None
    assert check(order(quantity="180.00001", price="50000")) is FilterFailure.NOTIONAL


def test_notional_market_order_at_the_price_it_would_fill_at() -> None:
    tiny = order("MARKET", quantity="0.0001", price=None)
    assert check(tiny, fill=D("50000")) is None
    assert check(tiny, fill=D("49999.99")) is FilterFailure.NOTIONAL
    assert check(tiny, last=D("49999.99")) is FilterFailure.NOTIONAL  # fill defaults to last
    no_min = replace(INFO, notional=replace(INFO.notional, apply_min_to_market=False))  # type: ignore[type-var]
    assert check(tiny, no_min, fill=D("1")) is None
    # applyMaxToMarket false: a huge MARKET order passes NOTIONAL (MARKET_LOT_SIZE stops it)
    big = replace(INFO, market_lot_size=None)
    assert check(order("MARKET", quantity="1000", price=None), big) is None
    capped = replace(big, notional=replace(INFO.notional, apply_max_to_market=True))  # type: ignore[type-var]
    assert check(order("MARKET", quantity="1000", price=None), capped) is FilterFailure.NOTIONAL


def test_notional_of_a_stop_market_uses_its_stop_price() -> None:
    assert check(order("STOP_LOSS", "SELL", "0.0001", price=None, stop="50000")) is None
    assert check(order("STOP_LOSS", "SELL", "0.0001", price=None,
                       stop="49999.99")) is FilterFailure.NOTIONAL
    # a trailing stop without stopPrice is valued at the last price
    trailing = order("TRAILING_STOP", "SELL", "0.0001", price=None, delta=100)
    assert check(trailing, last=D("50000")) is None
    assert check(trailing, last=D("49999.99")) is FilterFailure.NOTIONAL


def test_notional_zero_max_means_no_maximum() -> None:
    info = replace(INFO, notional=Notional(D(5), True, D(0), True, 5), lot_size=None)
    assert check(order(quantity="100000", price="50000"), info) is None


def test_min_notional_of_older_symbols() -> None:
    info = replace(INFO, notional=None, min_notional=MinNotional(D(10), True, 5))
    assert check(order(quantity="0.0002", price="50000")) is None
    assert check(order(quantity="0.0002", price="49999.99"), info) is FilterFailure.MIN_NOTIONAL
    market = order("MARKET", quantity="0.0001", price=None)
    assert check(market, info) is FilterFailure.MIN_NOTIONAL
    off = replace(info, min_notional=MinNotional(D(10), False, 5))
    assert check(market, off) is None


def test_notional_is_skipped_without_a_price() -> None:
    assert check(order("MARKET", quantity="0.00001", price=None), last=None) is None


# ------------------------------------------------------------ percent price


@pytest.mark.parametrize(
    ("side", "price", "expected"),
    [
        ("BUY", "250000", None),        # = 5 × 50000 (bidMultiplierUp)
        ("BUY", "250000.01", FilterFailure.PERCENT_PRICE_BY_SIDE),
        ("BUY", "10000", None),         # = 0.2 × 50000 (bidMultiplierDown)
        ("BUY", "9999.99", FilterFailure.PERCENT_PRICE_BY_SIDE),
        ("SELL", "200000", None),       # = 4 × 50000 (askMultiplierUp)
        ("SELL", "200000.01", FilterFailure.PERCENT_PRICE_BY_SIDE),
        ("SELL", "25000", None),        # = 0.5 × 50000 (askMultiplierDown)
        ("SELL", "24999.99", FilterFailure.PERCENT_PRICE_BY_SIDE),
    ],
)
def test_percent_price_by_side(side: str, price: str, expected: FilterFailure | None) -> None:
    assert check(order(side=side, quantity="0.001", price=price)) is expected


def test_percent_price_needs_a_last_price_and_a_price() -> None:
    assert check(order(side="BUY", quantity="0.001", price="9999.99"), last=None) is None
    assert check(order("STOP_LOSS", "SELL", "0.01", price=None, stop="1000.00")) is None


def test_percent_price_of_older_symbols() -> None:
    info = replace(INFO, percent_price_by_side=None,
                   percent_price=PercentPrice(D("5"), D("0.2"), 5))
    assert check(order(quantity="0.001", price="250000"), info) is None
    assert check(order(quantity="0.001", price="250000.01"), info) is FilterFailure.PERCENT_PRICE
    assert check(order(side="SELL", quantity="0.001", price="9999.99"),
                 info) is FilterFailure.PERCENT_PRICE


def test_percent_price_zero_multiplier_means_no_limit() -> None:
    info = replace(INFO, percent_price_by_side=PercentPriceBySide(D(0), D(0), D(0), D(0), 5))
    assert check(order(quantity="0.001", price="999999")) is FilterFailure.PERCENT_PRICE_BY_SIDE
    assert check(order(quantity="0.001", price="999999"), info) is None


# ------------------------------------------------------------ trailing delta

# Above (min 10, max 2000): STOP_LOSS BUY, STOP_LOSS_LIMIT BUY, TAKE_PROFIT SELL,
# TAKE_PROFIT_LIMIT SELL. Below (min 20, max 1500): the other four.
ABOVE = [("STOP_LOSS", "BUY"), ("STOP_LOSS_LIMIT", "BUY"), ("TAKE_PROFIT", "SELL"),
         ("TAKE_PROFIT_LIMIT", "SELL"), ("TRAILING_STOP", "BUY")]
BELOW = [("STOP_LOSS", "SELL"), ("STOP_LOSS_LIMIT", "SELL"), ("TAKE_PROFIT", "BUY"),
         ("TAKE_PROFIT_LIMIT", "BUY"), ("TRAILING_STOP", "SELL")]


def trailing(kind: str, side: str, delta: int) -> Order:
    price = "50000" if kind.endswith("_LIMIT") else None
    return order(kind, side, "0.01", price=price, delta=delta)


@pytest.mark.parametrize(("kind", "side"), ABOVE)
def test_trailing_delta_above(kind: str, side: str) -> None:
    assert check(trailing(kind, side, 10)) is None
    assert check(trailing(kind, side, 2000)) is None
    assert check(trailing(kind, side, 9)) is FilterFailure.TRAILING_DELTA
    assert check(trailing(kind, side, 2001)) is FilterFailure.TRAILING_DELTA
    assert check(trailing(kind, side, 1600)) is None  # beyond the *below* max only


@pytest.mark.parametrize(("kind", "side"), BELOW)
def test_trailing_delta_below(kind: str, side: str) -> None:
    assert check(trailing(kind, side, 20)) is None
    assert check(trailing(kind, side, 1500)) is None
    assert check(trailing(kind, side, 19)) is FilterFailure.TRAILING_DELTA
    assert check(trailing(kind, side, 1501)) is FilterFailure.TRAILING_DELTA
    assert check(trailing(kind, side, 15)) is FilterFailure.TRAILING_DELTA  # ok above only


def test_trailing_delta_zero_bounds_mean_no_limit() -> None:
    info = replace(INFO, trailing_delta=TrailingDelta(0, 0, 0, 0))
    assert check(trailing("STOP_LOSS", "SELL", 1), info) is None
    assert check(trailing("STOP_LOSS", "SELL", 10000), info) is None


def test_no_filters_no_failures() -> None:
    bare = SymbolInfo(symbol="X", status="TRADING", base_asset="", quote_asset="")
    assert check(order(quantity="0.000000000000000001", price="0.000000000000000001"),
                 bare) is None


def test_first_failure_in_binances_order() -> None:
    # off-tick price and off-step quantity: PRICE_FILTER comes first
    both: dict[str, Any] = {"quantity": "0.000015", "price": "50000.001"}
    assert check(order(**both)) is FilterFailure.PRICE_FILTER


# ---------------------------------------------------------------- properties

_STEP = D("0.00001")


@given(st.integers(min_value=1, max_value=900_000_000))
def test_every_whole_number_of_steps_within_bounds_passes_lot_size(k: int) -> None:
    info = replace(INFO, notional=None, percent_price_by_side=None)
    assert check(order(quantity=str(k * _STEP), price="1.00"), info) is None


@given(st.integers(min_value=1, max_value=899_999_999), st.integers(min_value=1, max_value=9))
def test_any_fraction_of_a_step_fails_lot_size(k: int, tenths: int) -> None:
    info = replace(INFO, notional=None, percent_price_by_side=None)
    quantity = k * _STEP + _STEP * tenths / 10
    assert check(order(quantity=str(quantity), price="1.00"), info) is FilterFailure.LOT_SIZE
