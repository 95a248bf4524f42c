"""The paper account: netted positions, balance, fees and P&L, exactly.

Pure core: no threads, sockets, clocks or pykka. All money is
:class:`decimal.Decimal` computed in :data:`MONEY` (60 significant digits, so
no product of two exchange-sized numbers is ever rounded). The single rounding
in the whole ledger is the average entry price of a position that was
increased at different prices: it is kept to :data:`ENTRY_PRICE_PLACES`
decimal places (half-even). Realized P&L is computed from that stored entry
price, so ``balance == starting_balance + realized_pnl - fees`` holds to the
last digit, and a position's quantity is always the exact sum of its signed
fills (docs/trading.md, "Account").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from engine.money import MONEY, ZERO, Side, fill_fee

__all__ = [
    "ENTRY_PRICE_PLACES",
    "FillResult",
    "Ledger",
    "Position",
]

#: Decimal places kept for a blended average entry price.
ENTRY_PRICE_PLACES = 12
_ENTRY_QUANTUM = Decimal(1).scaleb(-ENTRY_PRICE_PLACES)


@dataclass(slots=True)
class Position:
    """A netted position: signed quantity (> 0 long, < 0 short) and entry price."""

    symbol: str
    quantity: Decimal = ZERO
    entry_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO

    def unrealized(self, mark: Decimal | None) -> Decimal:
        """Unrealized P&L at ``mark`` (zero when flat or when no mark is known)."""
        if mark is None or not self.quantity:
            return ZERO
        with localcontext(MONEY):
            return (mark - self.entry_price) * self.quantity


@dataclass(frozen=True, slots=True)
class FillResult:
    """What one fill did to the account."""

    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    realized_pnl: Decimal
    position_quantity: Decimal
    position_entry_price: Decimal


@dataclass(slots=True)
class Ledger:
    """One account's ledger. Not thread-safe: one owner (the PortfolioActor)."""

    name: str
    starting_balance: Decimal
    fee_bps: Decimal = Decimal(10)
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    positions: dict[str, Position] = field(default_factory=dict)

    @property
    def balance(self) -> Decimal:
        """``starting_balance + realized_pnl - fees`` (docs/trading.md)."""
        with localcontext(MONEY):
            return self.starting_balance + self.realized_pnl - self.fees

    def position(self, symbol: str) -> Position:
        """The position in ``symbol`` (a flat one when there is none)."""
        return self.positions.get(symbol) or Position(symbol)

    def open_positions(self) -> list[Position]:
        """Non-flat positions, ordered by symbol."""
        return [p for _, p in sorted(self.positions.items()) if p.quantity]

    def fee_for(self, quantity: Decimal, price: Decimal) -> Decimal:
        return fill_fee(quantity, price, self.fee_bps)

    def apply_fill(self, symbol: str, side: Side, quantity: Decimal, price: Decimal) -> FillResult:
        """Apply one fill; return what it changed.

        Raises :class:`ValueError` for a non-positive quantity or price (the
        ledger is left unchanged).
        """
        if quantity <= 0 or price <= 0:
            raise ValueError("fill quantity and price must be positive")
        with localcontext(MONEY):
            pos = self.positions.get(symbol)
            if pos is None:
                pos = Position(symbol)
                self.positions[symbol] = pos
            signed = quantity * side.sign
            old = pos.quantity
            realized = ZERO
            if old == 0 or (old > 0) == (signed > 0):
                # Opening or increasing: quantity-weighted entry price.
                new_qty = old + signed
                if old == 0:
                    entry = price
                else:
                    entry = (abs(old) * pos.entry_price + quantity * price) / abs(new_qty)
                    entry = entry.quantize(_ENTRY_QUANTUM, context=MONEY)
                pos.quantity = new_qty
                pos.entry_price = entry
            else:
                closed = min(abs(old), quantity)
                direction = 1 if old > 0 else -1
                realized = (price - pos.entry_price) * closed * direction
                new_qty = old + signed
                pos.quantity = new_qty
                if new_qty == 0:
                    pos.entry_price = ZERO
                elif (new_qty > 0) != (old > 0):
                    # Crossed zero: the rest opens on the other side at the fill price.
                    pos.entry_price = price
            fee = self.fee_for(quantity, price)
            pos.realized_pnl += realized
            self.realized_pnl += realized
            self.fees += fee
            return FillResult(
                symbol=symbol,
                side=side,
                quantity=quantity,
                price=price,
                fee=fee,
                realized_pnl=realized,
                position_quantity=pos.quantity,
                position_entry_price=pos.entry_price,
            )

    def unrealized_pnl(self, marks: Mapping[str, Decimal]) -> Decimal:
        with localcontext(MONEY):
            total = ZERO
            for pos in self.positions.values():
                total += pos.unrealized(marks.get(pos.symbol))
            return total

    def equity(self, marks: Mapping[str, Decimal]) -> Decimal:
        with localcontext(MONEY):
            return self.balance + self.unrealized_pnl(marks)

    def is_reducing(self, symbol: str, side: Side, quantity: Decimal) -> bool:
        """True if the order only reduces the position (never opens or flips it)."""
        old = self.position(symbol).quantity
        if old == 0:
            return False
        return (old > 0) != (side is Side.BUY) and quantity <= abs(old)

    def exceeds_buying_power(
        self,
        symbol: str,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        marks: Mapping[str, Decimal],
        max_leverage: Decimal,
    ) -> bool:
        """docs/trading.md buying power: would the fill at ``price`` push the sum of
        absolute notionals above ``equity * max_leverage``? Reduce-only orders
        never exceed it."""
        if self.is_reducing(symbol, side, quantity):
            return False
        with localcontext(MONEY):
            gross = ZERO
            for pos in self.positions.values():
                if pos.symbol == symbol:
                    continue
                mark = marks.get(pos.symbol, pos.entry_price)
                gross += abs(pos.quantity) * mark
            new_qty = self.position(symbol).quantity + quantity * side.sign
            gross += abs(new_qty) * price
            return gross > self.equity(marks) * max_leverage
