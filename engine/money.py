"""Money and sides: the arithmetic every price, quantity and balance uses.

Pure core, shared by :mod:`engine.market` and :mod:`engine.trading` (neither
imports the other for these). All money is :class:`decimal.Decimal`
computed in :data:`MONEY`: 60 significant digits, so no product of two
exchange-sized numbers is ever rounded.
"""

from __future__ import annotations

from decimal import Context, Decimal, localcontext
from enum import Enum

__all__ = ["BPS", "MONEY", "ZERO", "Side", "fill_fee"]

#: Arithmetic context for all money math.
MONEY = Context(prec=60)
ZERO = Decimal(0)
#: Basis points in one (1 bp = 0.01 %).
BPS = Decimal(10000)


def fill_fee(quantity: Decimal, price: Decimal, fee_bps: Decimal) -> Decimal:
    """The fee of one fill: ``fee_bps`` basis points of its notional, exact
    (the one fee formula: the order book and the ledgers both use it)."""
    with localcontext(MONEY):
        return quantity * price * fee_bps / BPS


class Side(str, Enum):  # noqa: UP042 - str() of a member is part of the existing API
    """Order side, as on the wire."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY
