"""The account checks an order must pass before it is accepted, and what it reserves.

Pure core, run by whoever owns the ledgers (the PortfolioActor's thread, which
answers the OrderBook's ``risk`` callback through a ``RiskQuery``).

An order (or the legs of one list, reserved once) is split by
:meth:`Ledger.plan <engine.trading.ledger.Ledger.plan>`: the part that reduces
the position not yet reserved by other open orders of the same side, and the
part that increases the exposure. The checks, in order (the first that fails
is the reason; the text after the code names the asset and the amounts):

``SHORT_NOT_ALLOWED``
    ``trading.allow_short`` is false and a SELL has a part that does not reduce
    the (unreserved) long position, e.g.
    ``SHORT_NOT_ALLOWED: BTCUSDT unreserved position 0 < 0.01``.
``INSUFFICIENT_BALANCE``
    the increasing part needs more buying power in the symbol's quote asset
    than is available (:meth:`Ledger.available`), e.g.
    ``INSUFFICIENT_BALANCE: USDT available 100 < needed 120.5``.

The increasing part is valued at the order's **lock price**: its limit
``price`` when it has one; else the reference price (the last fresh trade, or
the order's own prices before any trade) or its ``stopPrice`` if higher,
moved by ``slippage_bps``; for a list, the highest of its legs' lock prices.
The fee (``fee_bps``) is added on top.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, localcontext

from engine.config import TradingConfig
from engine.money import BPS, Side
from engine.trading.book import RejectReason
from engine.trading.ledger import LEDGER, Ledger, Plan
from engine.trading.order import Order

__all__ = ["amount_text", "lock_price", "risk_plan", "risk_reject"]


def amount_text(value: Decimal) -> str:
    """A Decimal as plain text without trailing zeros (``120.50`` -> ``120.5``)."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "0") else text


def lock_price(orders: Sequence[Order], reference: Decimal, slippage_bps: Decimal) -> Decimal:
    """The price the increasing part of ``orders`` is reserved at (module docstring)."""
    prices: list[Decimal] = []
    with localcontext(LEDGER):
        for order in orders:
            if order.price is not None:
                prices.append(order.price)
                continue
            base = reference if order.stop_price is None else max(reference, order.stop_price)
            prices.append(base * (1 + slippage_bps / BPS))
    return max(prices)


def risk_plan(
    ledger: Ledger,
    marks: Mapping[str, Decimal],
    trading: TradingConfig,
    orders: Sequence[Order],
    reference: Decimal,
) -> tuple[Plan, str | None]:
    """What ``orders`` (one order, or the legs of one list: same symbol, side and
    quantity) would reserve, and the reject reason (None if they pass).
    Changes nothing."""
    first = orders[0]
    plan = ledger.plan(first.symbol, first.side, first.quantity,
                       lock_price(orders, reference, trading.slippage_bps))
    if plan.increase > 0 and first.side is Side.SELL and not trading.allow_short:
        return plan, (f"{RejectReason.SHORT_NOT_ALLOWED}: {first.symbol} unreserved position "
                      f"{amount_text(plan.reduce)} < {amount_text(first.quantity)}")
    if plan.increase > 0:
        available = ledger.available(plan.asset, marks, trading.max_leverage)
        if available < plan.needed:
            return plan, (f"{RejectReason.INSUFFICIENT_BALANCE}: {plan.asset} available "
                          f"{amount_text(available)} < needed {amount_text(plan.needed)}")
    return plan, None


def risk_reject(
    ledger: Ledger,
    marks: Mapping[str, Decimal],
    trading: TradingConfig,
    orders: Sequence[Order],
    reference: Decimal,
) -> str | None:
    """The reject reason of :func:`risk_plan`, or None."""
    return risk_plan(ledger, marks, trading, orders, reference)[1]
