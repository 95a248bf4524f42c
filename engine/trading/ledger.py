"""The paper account: a balance per asset, netted positions, reservations, exactly.

Pure core: no threads, sockets, clocks or pykka; one owner (the
PortfolioActor's thread) drives a ledger. docs/trading.md, "Account", is the
reference; in short:

* **Cash per asset.** ``balance[asset] = start[asset] + realized[asset] -
  fees[asset]``. A fill of a symbol moves its *quote* asset only (its
  realized P&L and its fee are in the quote asset, as on a margin account);
  the symbol's assets come from :func:`~engine.trading.assets.symbol_assets`.
* **Positions** stay netted per symbol: a signed quantity and its exact
  signed *cost* (``sum(sign * qty * price)`` of the open quantity). The
  average entry price is derived (``cost / quantity``) for display only. A
  partial close removes the closed share of the cost; a full close removes all
  that is left, so a round trip realizes exactly its cash flow.
* **Reservations.** An accepted order reserves what it can use: the part that
  reduces the position reserves that *position quantity* (so two reducing
  orders cannot together exceed the position); the part that increases the
  exposure reserves *buying power* in the quote asset at its lock price plus
  the fee. A fill consumes its share, a cancel or an expiry releases the rest.

Arithmetic: all sums run in :data:`LEDGER` (120 significant digits, so adding
exchange-sized numbers is never rounded). The one rounding is the cost share a
*partial* close removes, kept to :data:`COST_PLACES` decimal places; whatever
it is, ``cost`` after the close is the exact difference, and the close that
ends the position removes the exact rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Context, Decimal, localcontext

from engine.money import BPS, MONEY, ZERO, Side, fill_fee
from engine.trading.assets import SymbolAssets, symbol_assets

__all__ = [
    "COST_PLACES",
    "LEDGER",
    "AssetsFn",
    "FillResult",
    "Ledger",
    "Plan",
    "Position",
    "Reservation",
]

#: Context of every ledger sum.
LEDGER = Context(prec=120)
#: Decimal places kept for the cost share removed by a partial close.
COST_PLACES = 36
_COST_QUANTUM = Decimal(1).scaleb(-COST_PLACES)

#: ``symbol -> SymbolAssets`` (base and quote asset).
AssetsFn = Callable[[str], SymbolAssets]


@dataclass(slots=True)
class Position:
    """A netted position: signed quantity (> 0 long, < 0 short) and its exact signed cost."""

    symbol: str
    quantity: Decimal = ZERO
    cost: Decimal = ZERO
    realized_pnl: Decimal = ZERO

    @classmethod
    def at(cls, symbol: str, quantity: Decimal, entry_price: Decimal,
           realized_pnl: Decimal = ZERO) -> Position:
        """A position of ``quantity`` opened at ``entry_price``."""
        with localcontext(LEDGER):
            return cls(symbol, quantity, quantity * entry_price, realized_pnl)

    @property
    def entry_price(self) -> Decimal:
        """The average entry price, ``cost / quantity`` (display only; zero when flat)."""
        if not self.quantity:
            return ZERO
        with localcontext(MONEY):
            return self.cost / self.quantity

    def unrealized(self, mark: Decimal | None) -> Decimal:
        """Unrealized P&L at ``mark``, ``mark * quantity - cost`` (zero without a mark)."""
        if mark is None or not self.quantity:
            return ZERO
        with localcontext(LEDGER):
            return mark * self.quantity - self.cost

    def exposure(self, mark: Decimal | None) -> Decimal:
        """``|quantity| * mark``, or ``|cost|`` without a mark."""
        with localcontext(LEDGER):
            return abs(self.cost) if mark is None else abs(self.quantity) * mark


@dataclass(frozen=True, slots=True)
class FillResult:
    """What one fill did to the account."""

    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    realized_pnl: Decimal
    position_quantity: Decimal
    position_cost: Decimal

    @property
    def position_entry_price(self) -> Decimal:
        if not self.position_quantity:
            return ZERO
        with localcontext(MONEY):
            return self.position_cost / self.position_quantity


@dataclass(frozen=True, slots=True)
class Plan:
    """What an order of ``quantity`` would reserve: ``reduce`` of the position
    and ``increase`` at ``unit`` buying power each, in ``asset``."""

    symbol: str
    side: Side
    reduce: Decimal
    increase: Decimal
    asset: str
    unit: Decimal

    @property
    def needed(self) -> Decimal:
        """The buying power the increasing part needs."""
        with localcontext(LEDGER):
            return self.increase * self.unit


@dataclass(frozen=True, slots=True)
class Reservation:
    """What one open order (or the legs of one list, reserved once) holds."""

    key: int
    symbol: str
    side: Side
    order_ids: tuple[int, ...]
    open_ids: frozenset[int]
    reduce: Decimal
    increase: Decimal
    asset: str
    unit: Decimal

    @property
    def amount(self) -> Decimal:
        """The buying power still reserved, in ``asset``."""
        with localcontext(LEDGER):
            return self.increase * self.unit

    def to_record(self) -> dict[str, object]:
        return {"key": self.key, "symbol": self.symbol, "side": self.side.value,
                "order_ids": list(self.order_ids), "open_ids": sorted(self.open_ids),
                "reduce": str(self.reduce), "increase": str(self.increase),
                "asset": self.asset, "unit": str(self.unit)}

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> Reservation:
        def ints(name: str) -> list[int]:
            value = record[name]
            assert isinstance(value, list)
            return [int(v) for v in value]

        return cls(int(str(record["key"])), str(record["symbol"]), Side(str(record["side"])),
                   tuple(ints("order_ids")), frozenset(ints("open_ids")),
                   Decimal(str(record["reduce"])), Decimal(str(record["increase"])),
                   str(record["asset"]), Decimal(str(record["unit"])))


@dataclass(slots=True)
class Ledger:
    """One account's ledger (``starting``: ``{asset: amount}``). Not
    thread-safe: one owner (the PortfolioActor)."""

    name: str
    starting: dict[str, Decimal]
    fee_bps: Decimal = Decimal(10)
    home_asset: str = "USDT"
    realized: dict[str, Decimal] = field(default_factory=dict)
    fees: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    reservations: dict[int, Reservation] = field(default_factory=dict)
    assets_of: AssetsFn = symbol_assets

    def __post_init__(self) -> None:
        self.starting = dict(self.starting)

    def copy(self) -> Ledger:
        """An independent copy: changing it (fills, reservations) leaves this
        ledger as it is. Positions (mutable, one per traded symbol) are copied;
        reservations are frozen (a change replaces one), so their table is
        copied, not each of them. That is what ``deepcopy`` gives at a fraction
        of its cost: a settle copies the ledger of every account it touches,
        and an account's reservations grow with its open orders."""
        return Ledger(self.name, self.starting, self.fee_bps, self.home_asset,
                      dict(self.realized), dict(self.fees),
                      {k: Position(p.symbol, p.quantity, p.cost, p.realized_pnl)
                       for k, p in self.positions.items()},
                      dict(self.reservations), self.assets_of)

    @classmethod
    def single(cls, name: str, balance: Decimal, fee_bps: Decimal = Decimal(10), *,
               home_asset: str = "USDT", realized: Decimal = ZERO, fees: Decimal = ZERO,
               positions: Iterable[Position] = ()) -> Ledger:
        """A one-asset account (``home_asset``), e.g. for tests and benchmarks."""
        return cls(name, {home_asset: balance}, fee_bps, home_asset,
                   {home_asset: realized} if realized else {},
                   {home_asset: fees} if fees else {},
                   {p.symbol: p for p in positions})

    # ----------------------------------------------------------------- cash

    def assets(self) -> list[str]:
        """Every asset the account has a balance, P&L, fee or reservation in, sorted
        (the home asset always included)."""
        names = {self.home_asset, *self.starting, *self.realized, *self.fees}
        names.update(r.asset for r in self.reservations.values())
        names.update(self.assets_of(s).quote for s, p in self.positions.items() if p.quantity)
        return sorted(names)

    def balance_of(self, asset: str) -> Decimal:
        """``start + realized - fees`` of ``asset``, exact."""
        with localcontext(LEDGER):
            return (self.starting.get(asset, ZERO) + self.realized.get(asset, ZERO)
                    - self.fees.get(asset, ZERO))

    def locked(self, asset: str) -> Decimal:
        """Buying power in ``asset`` reserved by open orders."""
        with localcontext(LEDGER):
            return sum((r.amount for r in self.reservations.values() if r.asset == asset), ZERO)

    def free(self, asset: str) -> Decimal:
        with localcontext(LEDGER):
            return self.balance_of(asset) - self.locked(asset)

    @property
    def balance(self) -> Decimal:
        """The home asset's balance."""
        return self.balance_of(self.home_asset)

    @property
    def starting_balance(self) -> Decimal:
        return self.starting.get(self.home_asset, ZERO)

    @property
    def realized_pnl(self) -> Decimal:
        """Realized P&L in the home asset (other assets: :attr:`realized`)."""
        return self.realized.get(self.home_asset, ZERO)

    @property
    def home_fees(self) -> Decimal:
        return self.fees.get(self.home_asset, ZERO)

    # ------------------------------------------------------------ positions

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

        Raises :class:`ValueError` for a non-positive quantity or price and
        :class:`~engine.trading.assets.UnknownAssets` for a symbol whose assets
        are not known (the ledger is left unchanged either way).
        """
        if quantity <= 0 or price <= 0:
            raise ValueError("fill quantity and price must be positive")
        quote = self.assets_of(symbol).quote
        with localcontext(LEDGER):
            pos = self.positions.get(symbol)
            if pos is None:
                pos = self.positions[symbol] = Position(symbol)
            signed = quantity * side.sign
            old = pos.quantity
            realized = ZERO
            if old == 0 or (old > 0) == (signed > 0):
                pos.quantity = old + signed
                pos.cost += signed * price
            else:
                closed = min(abs(old), quantity)
                direction = 1 if old > 0 else -1
                if closed == abs(old):
                    removed = pos.cost
                else:
                    removed = (pos.cost * closed / abs(old)).quantize(_COST_QUANTUM)
                realized = direction * closed * price - removed
                pos.cost -= removed
                pos.quantity = old + signed
                if pos.quantity and (pos.quantity > 0) != (old > 0):
                    # Crossed zero: the rest opens on the other side at the fill price.
                    pos.cost = pos.quantity * price
            fee = self.fee_for(quantity, price)
            pos.realized_pnl += realized
            self.realized[quote] = self.realized.get(quote, ZERO) + realized
            self.fees[quote] = self.fees.get(quote, ZERO) + fee
            return FillResult(symbol, side, quantity, price, fee, quote, realized,
                              pos.quantity, pos.cost)

    # ------------------------------------------------------------ valuation

    def equity_in(self, asset: str, marks: Mapping[str, Decimal]) -> Decimal:
        """``balance[asset]`` plus the unrealized P&L of the positions quoted in it."""
        with localcontext(LEDGER):
            total = self.balance_of(asset)
            for pos in self.positions.values():
                if pos.quantity and self.assets_of(pos.symbol).quote == asset:
                    total += pos.unrealized(marks.get(pos.symbol))
            return total

    def unrealized_in(self, asset: str, marks: Mapping[str, Decimal]) -> Decimal:
        with localcontext(LEDGER):
            return self.equity_in(asset, marks) - self.balance_of(asset)

    def exposure_in(self, asset: str, marks: Mapping[str, Decimal]) -> Decimal:
        """Sum of ``|quantity| * mark`` (``|cost|`` without a mark) of the
        positions quoted in ``asset``."""
        with localcontext(LEDGER):
            return sum((p.exposure(marks.get(p.symbol)) for p in self.positions.values()
                        if p.quantity and self.assets_of(p.symbol).quote == asset), ZERO)

    def available(self, asset: str, marks: Mapping[str, Decimal],
                  max_leverage: Decimal) -> Decimal:
        """Buying power left in ``asset``: ``equity_in × max_leverage − exposure −
        locked`` (docs/trading.md, "Reservations")."""
        with localcontext(LEDGER):
            return (self.equity_in(asset, marks) * max_leverage - self.exposure_in(asset, marks)
                    - self.locked(asset))

    # --------------------------------------------------------- reservations

    def position_locked(self, symbol: str, side: Side) -> Decimal:
        """Position quantity reserved by open ``side`` orders of ``symbol``."""
        with localcontext(LEDGER):
            return sum((r.reduce for r in self.reservations.values()
                        if r.symbol == symbol and r.side is side), ZERO)

    def plan(self, symbol: str, side: Side, quantity: Decimal, lock_price: Decimal) -> Plan:
        """Split an order into the part that reduces the (not yet reserved)
        position and the part that increases the exposure, the latter valued
        at ``lock_price`` plus the fee."""
        with localcontext(LEDGER):
            held = self.position(symbol).quantity
            reducible = ZERO
            if held and (held > 0) != (side is Side.BUY):
                reducible = max(abs(held) - self.position_locked(symbol, side), ZERO)
            reduce = min(quantity, reducible)
            unit = lock_price * (1 + self.fee_bps / BPS)
            return Plan(symbol, side, reduce, quantity - reduce, self.assets_of(symbol).quote,
                        unit)

    def reserve(self, order_ids: tuple[int, ...], plan: Plan) -> Reservation:
        """Hold ``plan`` for the open orders ``order_ids`` (one list: reserved once)."""
        key = min(order_ids)
        held = Reservation(key, plan.symbol, plan.side, order_ids, frozenset(order_ids),
                           plan.reduce, plan.increase, plan.asset, plan.unit)
        self.reservations[key] = held
        return held

    def reservation_of(self, order_id: int) -> Reservation | None:
        for held in self.reservations.values():
            if order_id in held.order_ids:
                return held
        return None

    def consume(self, order_id: int, quantity: Decimal) -> None:
        """A fill of ``quantity`` of ``order_id``: it uses its reserved share
        (the reduced position first, then the buying power)."""
        held = self.reservation_of(order_id)
        if held is None:
            return
        with localcontext(LEDGER):
            from_reduce = min(quantity, held.reduce)
            self.reservations[held.key] = replace(
                held, reduce=held.reduce - from_reduce,
                increase=max(held.increase - (quantity - from_reduce), ZERO))

    def shrink_to(self, order_id: int, left: Decimal) -> None:
        """The order ``order_id`` (not of a list) has ``left`` still to fill
        (an amend lowered its quantity): release what it holds beyond that,
        the increasing part first (fills use the reducing part first, so the
        part an amend cuts off is the increasing one)."""
        held = self.reservation_of(order_id)
        if held is None or len(held.order_ids) != 1:
            return
        with localcontext(LEDGER):
            excess = held.reduce + held.increase - left
            if excess <= 0:
                return
            from_increase = min(excess, held.increase)
            self.reservations[held.key] = replace(
                held, increase=held.increase - from_increase,
                reduce=max(held.reduce - (excess - from_increase), ZERO))

    def close(self, order_id: int) -> None:
        """``order_id`` is no longer open: when no order of its reservation is,
        the reservation is released."""
        held = self.reservation_of(order_id)
        if held is None:
            return
        open_ids = held.open_ids - {order_id}
        if open_ids:
            self.reservations[held.key] = replace(held, open_ids=open_ids)
        else:
            del self.reservations[held.key]
