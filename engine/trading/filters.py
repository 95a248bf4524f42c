"""Binance's symbol filters, applied to an order at placement.

Pure core: no threads, sockets, clocks or pykka. :func:`check_order` takes an
order, its symbol's :class:`~engine.market.symbol_info.SymbolInfo` and the
market price the caller knows, and returns the first filter the order fails
as a :class:`FilterFailure` (its value is Binance's ``rejectReason`` text,
``Filter failure: LOT_SIZE``), or None. The rules are those of Binance's
"Filters" page (Spot API); a value of 0 disables its rule:

``PRICE_FILTER``     ``price`` and ``stopPrice``: >= ``minPrice``, <= ``maxPrice``,
                     a multiple of ``tickSize``.
``PERCENT_PRICE``    ``price`` within ``[avg × multiplierDown, avg × multiplierUp]``.
``PERCENT_PRICE_BY_SIDE``  the same with ``bid*`` multipliers for BUY orders and
                     ``ask*`` multipliers for SELL orders.
``LOT_SIZE``         ``quantity``: >= ``minQty``, <= ``maxQty``, a multiple of
                     ``stepSize`` (every order type).
``MARKET_LOT_SIZE``  the same for MARKET orders, in addition to LOT_SIZE
                     (Binance ships it with ``minQty``/``stepSize`` 0 and a
                     ``maxQty``).
``MIN_NOTIONAL``     ``price × quantity >= minNotional``; MARKET orders only
                     when ``applyToMarket``.
``NOTIONAL``         ``minNotional <= price × quantity <= maxNotional``; for
                     MARKET orders the minimum only when ``applyMinToMarket``,
                     the maximum only when ``applyMaxToMarket``.
``TRAILING_DELTA``   ``trailingDelta`` within the *above* bounds for STOP_LOSS(_LIMIT)
                     BUY and TAKE_PROFIT(_LIMIT) SELL (their trigger lies above
                     the market), within the *below* bounds for STOP_LOSS(_LIMIT)
                     SELL and TAKE_PROFIT(_LIMIT) BUY. TRAILING_STOP counts as STOP_LOSS.

Prices used where Binance uses an average (this engine keeps no rolling
average; ``avgPriceMins`` is reported but not used):

* the *average price* of PERCENT_PRICE(_BY_SIDE) is ``last_price``, the
  last trade (as Binance does with ``avgPriceMins`` 0); with no last price
  these two filters are skipped;
* the notional of a MARKET order is ``quantity × market_fill_price``, the
  price the caller says the order would fill at (the order monitor passes
  the taker price: the last trade moved by ``trading.slippage_bps``);
  STOP_LOSS / TAKE_PROFIT / TRAILING_STOP, which execute as MARKET orders
  when triggered, are valued at their ``stopPrice`` (the last price for a
  trailing stop without one) and follow the MARKET flags; every other
  order is valued at its ``price``. With no price to value it, the notional
  filters are skipped (the book then rejects a MARKET order
  ``NO_MARKET_PRICE`` anyway).

Filters are checked in the order above; the first failure is the answer.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from enum import StrEnum

from engine.market.symbol_info import LotSize, SymbolInfo
from engine.money import MONEY, Side
from engine.trading.order import Order, OrderType, StopKind

__all__ = ["FilterFailure", "check_order"]


class FilterFailure(StrEnum):
    """Why a filter rejected an order: the member is the code, its value the
    ``rejectReason`` text Binance answers with."""

    PRICE_FILTER = "Filter failure: PRICE_FILTER"
    PERCENT_PRICE = "Filter failure: PERCENT_PRICE"
    PERCENT_PRICE_BY_SIDE = "Filter failure: PERCENT_PRICE_BY_SIDE"
    LOT_SIZE = "Filter failure: LOT_SIZE"
    MARKET_LOT_SIZE = "Filter failure: MARKET_LOT_SIZE"
    MIN_NOTIONAL = "Filter failure: MIN_NOTIONAL"
    NOTIONAL = "Filter failure: NOTIONAL"
    TRAILING_DELTA = "Filter failure: TRAILING_DELTA"


_ZERO = Decimal(0)
_MARKET_LIKE = frozenset({OrderType.STOP_LOSS, OrderType.TAKE_PROFIT, OrderType.TRAILING_STOP})


def _multiple(value: Decimal, step: Decimal) -> bool:
    with localcontext(MONEY):
        return value % step == 0


def _price_ok(value: Decimal, lo: Decimal, hi: Decimal, tick: Decimal) -> bool:
    if lo and value < lo:
        return False
    if hi and value > hi:
        return False
    return not (tick and not _multiple(value, tick))


def _lot_ok(quantity: Decimal, lot: LotSize) -> bool:
    return _price_ok(quantity, lot.min_qty, lot.max_qty, lot.step_size)


def _within(price: Decimal, ref: Decimal, up: Decimal, down: Decimal) -> bool:
    with localcontext(MONEY):
        if up and price > ref * up:
            return False
        return not (down and price < ref * down)


def _trailing_above(order: Order) -> bool:
    """True when the order's trigger lies above the market (Binance's "above" delta)."""
    stop_loss = order.type.stop_kind is StopKind.STOP_LOSS
    return stop_loss == (order.side is Side.BUY)


def check_order(
    info: SymbolInfo,
    order: Order,
    *,
    last_price: Decimal | None,
    market_fill_price: Decimal | None = None,
) -> FilterFailure | None:
    """The first filter of ``info`` that ``order`` fails, or None.

    ``last_price`` is the last trade price (the average price of the
    percent-price filters; the reference of a trailing stop without
    ``stopPrice``); ``market_fill_price`` the price a MARKET order would fill
    at (default ``last_price``). See the module docstring for the rules."""
    market_price = last_price
    pf = info.price_filter
    if pf is not None:
        for value in (order.price, order.stop_price):
            if value is not None and not _price_ok(value, pf.min_price, pf.max_price,
                                                   pf.tick_size):
                return FilterFailure.PRICE_FILTER
    if order.price is not None and market_price is not None:
        pp = info.percent_price
        if pp is not None and not _within(order.price, market_price, pp.multiplier_up,
                                          pp.multiplier_down):
            return FilterFailure.PERCENT_PRICE
        ps = info.percent_price_by_side
        if ps is not None:
            up, down = ((ps.bid_multiplier_up, ps.bid_multiplier_down)
                        if order.side is Side.BUY
                        else (ps.ask_multiplier_up, ps.ask_multiplier_down))
            if not _within(order.price, market_price, up, down):
                return FilterFailure.PERCENT_PRICE_BY_SIDE
    if info.lot_size is not None and not _lot_ok(order.quantity, info.lot_size):
        return FilterFailure.LOT_SIZE
    is_market = order.type is OrderType.MARKET
    if is_market and info.market_lot_size is not None and not _lot_ok(
        order.quantity, info.market_lot_size
    ):
        return FilterFailure.MARKET_LOT_SIZE
    fill = market_fill_price if market_fill_price is not None else last_price
    failure = _notional(info, order, fill, last_price)
    if failure is not None:
        return failure
    td = info.trailing_delta
    if td is not None and order.trailing_delta is not None and order.type.is_stop:
        delta = order.trailing_delta
        if _trailing_above(order):
            lo, hi = td.min_trailing_above_delta, td.max_trailing_above_delta
        else:
            lo, hi = td.min_trailing_below_delta, td.max_trailing_below_delta
        if (lo and delta < lo) or (hi and delta > hi):
            return FilterFailure.TRAILING_DELTA
    return None


def _notional(
    info: SymbolInfo, order: Order, fill_price: Decimal | None, last_price: Decimal | None
) -> FilterFailure | None:
    market = order.type is OrderType.MARKET or order.type in _MARKET_LIKE
    if order.type is OrderType.MARKET:
        price = fill_price
    elif order.type in _MARKET_LIKE:
        price = order.stop_price if order.stop_price is not None else last_price
    else:
        price = order.price
    if price is None:
        return None
    with localcontext(MONEY):
        value = order.quantity * price
    mn = info.min_notional
    if mn is not None and (not market or mn.apply_to_market) and value < mn.min_notional:
        return FilterFailure.MIN_NOTIONAL
    n = info.notional
    if n is not None:
        if (not market or n.apply_min_to_market) and value < n.min_notional:
            return FilterFailure.NOTIONAL
        if n.max_notional and (not market or n.apply_max_to_market) and value > n.max_notional:
            return FilterFailure.NOTIONAL
    return None
