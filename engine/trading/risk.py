"""The account risk checks an order must pass before it is accepted or filled.

Pure core, run by whoever owns the ledgers (the PortfolioActor's thread, which
answers the OrderBook's ``risk`` callback through a ``RiskQuery``). The checks,
in order (the first that fails is the reason):

``SHORT_NOT_ALLOWED``
    ``trading.allow_short`` is false and the fill would leave the account's
    position in the symbol below zero (selling down to exactly zero is allowed).
``INSUFFICIENT_BALANCE``
    the fill would push the sum of absolute notionals above
    ``equity * trading.max_leverage`` (see :meth:`Ledger.exceeds_buying_power`;
    reduce-only orders never fail it). The order's symbol is valued at the
    order's ``price``, every other open position at its mark (its entry price
    when it has none).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from engine.config import TradingConfig
from engine.money import Side
from engine.trading.book import RejectReason
from engine.trading.ledger import Ledger

__all__ = ["risk_reject"]


def risk_reject(
    ledger: Ledger,
    marks: Mapping[str, Decimal],
    trading: TradingConfig,
    symbol: str,
    side: Side,
    quantity: Decimal,
    price: Decimal,
) -> str | None:
    """The reject reason for ``side quantity symbol`` filled at ``price``, or None if it
    passes. Changes nothing (``marks`` is read, never written)."""
    if not trading.allow_short:
        after = ledger.position(symbol).quantity + quantity * side.sign
        if after < 0:
            return RejectReason.SHORT_NOT_ALLOWED
    valued = dict(marks)
    valued[symbol] = price
    if ledger.exceeds_buying_power(symbol, side, quantity, price, valued, trading.max_leverage):
        return RejectReason.INSUFFICIENT_BALANCE
    return None
