"""Price conditions: stop triggers, LIMIT fills, placement checks, slippage.

Pure core: no threads, sockets, clocks or pykka. Every comparison is inclusive,
as on Binance (docs/trading.md):

==================  ====  ==========================  ============
type                side  triggers when trade price   placement
==================  ====  ==========================  ============
STOP_LOSS(_LIMIT)   BUY   ``>= stopPrice``            above market
STOP_LOSS(_LIMIT)   SELL  ``<= stopPrice``            below market
TAKE_PROFIT(_LIMIT) BUY   ``<= stopPrice``            below market
TAKE_PROFIT(_LIMIT) SELL  ``>= stopPrice``            above market
==================  ====  ==========================  ============

A resting LIMIT fills when a trade reaches its price (BUY ``trade <= price``,
SELL ``trade >= price``) and fills *at* its price. An order that executes at
once as a taker (MARKET, a triggered STOP_LOSS/TAKE_PROFIT, a LIMIT marketable
at placement or at its trigger) fills at the trade price moved ``slippage_bps``
against it, and a taker LIMIT never fills worse than its limit.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from engine.money import BPS, MONEY, Side
from engine.trading.order import StopKind

__all__ = [
    "bracket_prices_ok",
    "limit_fills",
    "limit_maker_would_match",
    "oco_prices_ok",
    "slipped",
    "stop_condition",
    "taker_price",
]


def stop_condition(kind: StopKind, side: Side, stop_price: Decimal, price: Decimal) -> bool:
    """True when a trade at ``price`` meets the stop condition of the table."""
    rises = (kind is StopKind.STOP_LOSS) == (side is Side.BUY)
    return price >= stop_price if rises else price <= stop_price


def limit_fills(side: Side, limit: Decimal, price: Decimal) -> bool:
    """True when a trade at ``price`` fills a LIMIT at ``limit``."""
    return price <= limit if side is Side.BUY else price >= limit


def limit_maker_would_match(side: Side, limit: Decimal, last_price: Decimal | None) -> bool:
    """True when a LIMIT_MAKER at ``limit`` would fill at once (it is then REJECTED)."""
    return last_price is not None and limit_fills(side, limit, last_price)


def slipped(side: Side, price: Decimal, slippage_bps: Decimal) -> Decimal:
    """``price`` moved ``slippage_bps`` against the taker (BUY pays more, SELL gets less)."""
    if not slippage_bps:
        return price
    with localcontext(MONEY):
        factor = (BPS + slippage_bps) / BPS if side is Side.BUY else (BPS - slippage_bps) / BPS
        return price * factor


def taker_price(
    side: Side, trade_price: Decimal, slippage_bps: Decimal, limit: Decimal | None = None
) -> Decimal:
    """Fill price of an order executing at once: slipped, capped by ``limit`` if any."""
    price = slipped(side, trade_price, slippage_bps)
    if limit is None:
        return price
    return min(price, limit) if side is Side.BUY else max(price, limit)


def oco_prices_ok(
    side: Side, limit_leg: Decimal | None, last_price: Decimal, stop_leg: Decimal | None
) -> bool:
    """Binance's OCO relation: SELL ``limit_leg > last > stop_leg``, BUY the mirror.

    ``limit_leg`` is the LIMIT_MAKER price or the TAKE_PROFIT stop price;
    ``stop_leg`` the STOP_LOSS stop price. A side given by a trailing delta
    alone (None) has no price to check."""
    if side is Side.SELL:
        return (limit_leg is None or limit_leg > last_price) and (
            stop_leg is None or last_price > stop_leg
        )
    return (limit_leg is None or limit_leg < last_price) and (
        stop_leg is None or last_price < stop_leg
    )


def bracket_prices_ok(
    entry_side: Side, entry_price: Decimal, take_profit: Decimal, stop_price: Decimal
) -> bool:
    """Take-profit beyond the entry, stop on the losing side of it (strictly)."""
    if entry_side is Side.BUY:
        return take_profit > entry_price > stop_price
    return take_profit < entry_price < stop_price
