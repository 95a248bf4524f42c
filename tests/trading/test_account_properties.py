"""Property tests of the account (docs/trading.md, "Account" and "Reservations").

1. Random fills on many symbols and quote assets (partial closes, full closes
   and zero crossings included), against a reference built independently with
   exact rationals (:class:`fractions.Fraction`, average-cost accounting): the
   positions, realized P&L and fees agree; a position that returns to zero has
   realized exactly the cash flow of its fills; and once everything is closed
   every asset's balance is, to the last digit, start + Σ cash flows − Σ fees.
2. Random orders, trades and cancels through a real OrderBook with the
   reservations (tests/trading/desk.py), shorts off: after every step no
   position is short, no side reserves more than the position, the
   reservations are exactly those of the open orders, ``balance == start +
   realized − fees`` for every asset, and no quote asset's exposure goes
   beyond its buying power.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.money import MONEY, Side
from engine.trading.assets import symbol_assets
from engine.trading.errors import RequestError
from engine.trading.ledger import COST_PLACES, Ledger
from tests.trading.desk import Desk

FILL_EXAMPLES = 400
DESK_EXAMPLES = 250

#: symbol -> (base price, quantity step)
SYMBOLS = {
    "BTCUSDT": (Decimal(40000), Decimal("0.001")),
    "NKNUSDT": (Decimal("0.1"), Decimal(10)),
    "ETHBTC": (Decimal("0.05"), Decimal("0.01")),
    "LRCBTC": (Decimal("0.000005"), Decimal(100)),
    "SOLETH": (Decimal("0.04"), Decimal("0.1")),
    "BTCFDUSD": (Decimal(40010), Decimal("0.0001")),
}
NAMES = sorted(SYMBOLS)
START = {"USDT": Decimal(10000), "BTC": Decimal("0.5"), "ETH": Decimal(3),
         "FDUSD": Decimal(500)}

# ------------------------------------------------------------------ 1. fills

#: (symbol index, side, quantity kind, quantity units, price ticks):
#: kind 0 = new quantity, 1 = a fraction (units/7) of the position, 2 = all of it.
fill_ops = st.lists(
    st.tuples(st.integers(0, len(NAMES) - 1), st.sampled_from([Side.BUY, Side.SELL]),
              st.integers(0, 2), st.integers(1, 6), st.integers(1, 400)),
    min_size=10, max_size=80,
)


class Reference:
    """Average-cost accounting in exact rationals, written from the documented
    rules without the ledger's code."""

    def __init__(self, fee_bps: int) -> None:
        self.fee = Fraction(fee_bps, 10000)
        self.qty: dict[str, Fraction] = defaultdict(Fraction)
        self.cost: dict[str, Fraction] = defaultdict(Fraction)   # signed
        self.realized: dict[str, Fraction] = defaultdict(Fraction)  # per quote asset
        self.fees: dict[str, Fraction] = defaultdict(Fraction)
        self.flow: dict[str, Fraction] = defaultdict(Fraction)  # cash flow per quote asset
        self.flow_since_flat: dict[str, Fraction] = defaultdict(Fraction)

    def fill(self, symbol: str, side: Side, q: Fraction, p: Fraction) -> None:
        quote = symbol_assets(symbol).quote
        sign = 1 if side is Side.BUY else -1
        old = self.qty[symbol]
        if old == 0 or (old > 0) == (sign > 0):
            self.cost[symbol] += sign * q * p
        else:
            closed = min(abs(old), q)
            share = self.cost[symbol] * closed / abs(old)
            self.realized[quote] += (1 if old > 0 else -1) * closed * p - share
            self.cost[symbol] -= share
            rest = q - closed
            if rest:
                self.cost[symbol] = sign * rest * p
        self.qty[symbol] = old + sign * q
        self.fees[quote] += q * p * self.fee
        self.flow[quote] -= sign * q * p
        self.flow_since_flat[symbol] -= sign * q * p


def _fill_args(ledger: Ledger, op: tuple[int, Side, int, int, int]) -> tuple[str, Side,
                                                                          Decimal, Decimal]:
    index, side, kind, units, ticks = op
    symbol = NAMES[index]
    base, step = SYMBOLS[symbol]
    held = abs(ledger.position(symbol).quantity)
    qty = step * units
    if held and kind == 1:
        qty = (held * units / 7).quantize(Decimal("1e-8")) or held
    elif held and kind == 2:
        qty = held
        side = Side.SELL if ledger.position(symbol).quantity > 0 else Side.BUY
    return symbol, side, qty, base * ticks / 100


@settings(max_examples=FILL_EXAMPLES, deadline=None)
@given(fill_ops, st.sampled_from([0, 10, 7]))
def test_random_fills_match_an_exact_rational_reference(
        ops: list[tuple[int, Side, int, int, int]], fee_bps: int) -> None:
    ledger = Ledger("p", START, Decimal(fee_bps))
    ref = Reference(fee_bps)
    realized_since_flat: dict[str, Fraction] = defaultdict(Fraction)  # exact sums
    partials = 0
    for op in ops:
        symbol, side, qty, price = _fill_args(ledger, op)
        old = ledger.position(symbol).quantity
        partials += bool(old) and (old > 0) != (side is Side.BUY) and qty < abs(old)
        result = ledger.apply_fill(symbol, side, qty, price)
        ref.fill(symbol, side, Fraction(qty), Fraction(price))
        realized_since_flat[symbol] += Fraction(result.realized_pnl)
        pos = ledger.position(symbol)
        assert Fraction(pos.quantity) == ref.qty[symbol]
        if pos.quantity == 0:
            # a round trip: realized exactly its cash flow, to the last digit
            assert pos.cost == 0
            assert realized_since_flat[symbol] == ref.flow_since_flat[symbol]
            realized_since_flat[symbol] = Fraction(0)
            ref.flow_since_flat[symbol] = Fraction(0)
        for asset in ledger.assets():
            # fees exact; realized within the documented cost rounding of partial closes
            assert Fraction(ledger.fees.get(asset, 0)) == ref.fees[asset]
            gap = abs(Fraction(ledger.realized.get(asset, 0)) - ref.realized[asset])
            assert gap <= partials * Fraction(1, 10 ** COST_PLACES)
            assert Fraction(ledger.balance_of(asset)) == (
                Fraction(START.get(asset, 0)) + Fraction(ledger.realized.get(asset, 0))
                - Fraction(ledger.fees.get(asset, 0)))
    # Close everything: each asset is exactly start + cash flow - fees.
    for symbol in NAMES:
        held = ledger.position(symbol).quantity
        if held:
            price = SYMBOLS[symbol][0]
            side = Side.SELL if held > 0 else Side.BUY
            ledger.apply_fill(symbol, side, abs(held), price)
            ref.fill(symbol, side, Fraction(abs(held)), Fraction(price))
    for asset in {*START, *ref.flow}:
        expected = Fraction(START.get(asset, 0)) + ref.flow[asset] - ref.fees[asset]
        assert Fraction(ledger.balance_of(asset)) == expected
        assert Fraction(ledger.realized.get(asset, 0)) == ref.flow[asset]


def test_the_issues_round_trip_realizes_exactly_one() -> None:
    ledger = Ledger.single("p", Decimal(0), Decimal(0))
    ledger.apply_fill("XUSDT", Side.BUY, Decimal(1), Decimal(1))
    ledger.apply_fill("XUSDT", Side.BUY, Decimal(2), Decimal(2))
    pos = ledger.position("XUSDT")
    assert (pos.cost, pos.entry_price) == (Decimal(5), MONEY.divide(Decimal(5), Decimal(3)))
    result = ledger.apply_fill("XUSDT", Side.SELL, Decimal(3), Decimal(2))
    assert result.realized_pnl == Decimal(1) and ledger.balance == Decimal(1)


def test_a_third_closed_then_the_rest_still_round_trips_exactly() -> None:
    ledger = Ledger.single("p", Decimal(0), Decimal(0))
    ledger.apply_fill("XUSDT", Side.BUY, Decimal(1), Decimal(1))
    ledger.apply_fill("XUSDT", Side.BUY, Decimal(2), Decimal(2))  # cost 5 for 3
    first = ledger.apply_fill("XUSDT", Side.SELL, Decimal(1), Decimal(3))  # 3 - 5/3
    rest = ledger.apply_fill("XUSDT", Side.SELL, Decimal(2), Decimal(3))
    assert first.realized_pnl + rest.realized_pnl == Decimal(4)  # 9 - 5, exactly


# ------------------------------------------------------------------- 2. desk

DESK_SYMBOLS = ["BTCUSDT", "NKNUSDT", "ETHBTC", "LRCBTC"]

desk_ops = st.lists(
    st.one_of(
        st.tuples(st.just("trade"), st.integers(0, 3), st.integers(90, 110)),
        st.tuples(st.just("limit"), st.integers(0, 3), st.sampled_from(["BUY", "SELL"]),
                  st.integers(1, 40), st.integers(90, 110)),
        st.tuples(st.just("market"), st.integers(0, 3), st.sampled_from(["BUY", "SELL"]),
                  st.integers(1, 40)),
        st.tuples(st.just("stop"), st.integers(0, 3), st.integers(1, 40),
                  st.integers(90, 110)),
        st.tuples(st.just("oco"), st.integers(0, 3), st.integers(1, 40),
                  st.integers(101, 115), st.integers(85, 99)),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
    ),
    min_size=20, max_size=80,
)


def _price(symbol: str, ticks: int) -> str:
    return str(SYMBOLS[symbol][0] * ticks / 100)


def _qty(symbol: str, units: int) -> str:
    return str(SYMBOLS[symbol][1] * units)


def _step(desk: Desk, op: tuple[object, ...]) -> None:
    kind = op[0]
    symbol = DESK_SYMBOLS[int(str(op[1]))] if kind != "cancel" else ""
    try:
        if kind == "trade":
            desk.trade(symbol, _price(symbol, int(str(op[2]))))
        elif kind == "limit":
            desk.place(symbol=symbol, side=op[2], type="LIMIT", quantity=_qty(symbol, int(str(
                op[3]))), price=_price(symbol, int(str(op[4]))))
        elif kind == "market":
            desk.place(symbol=symbol, side=op[2], type="MARKET",
                       quantity=_qty(symbol, int(str(op[3]))))
        elif kind == "stop":
            desk.place(symbol=symbol, side="SELL", type="STOP_LOSS",
                       quantity=_qty(symbol, int(str(op[2]))),
                       stopPrice=_price(symbol, int(str(op[3]))))
        elif kind == "oco":
            desk.oco(symbol=symbol, side="SELL", quantity=_qty(symbol, int(str(op[2]))),
                     above={"type": "LIMIT_MAKER", "price": _price(symbol, int(str(op[3])))},
                     below={"type": "STOP_LOSS", "stopPrice": _price(symbol, int(str(op[4])))})
        else:
            open_orders = desk.book.open_orders("alice")
            if open_orders:
                desk.cancel(open_orders[int(str(op[1])) % len(open_orders)].order_id)
    except RequestError:
        pass  # a request the parser refuses changes nothing


def _check(desk: Desk) -> None:
    ledger = desk.ledger
    open_ids = {o.order_id for o in desk.book.open_orders("alice")}
    reserved = {i for r in ledger.reservations.values() for i in r.open_ids}
    assert reserved == open_ids, "reservations are exactly the open orders'"
    for held in ledger.reservations.values():
        # what is held is what the open order has left to fill (a list: once)
        order = desk.book.get(min(held.open_ids))
        assert order is not None
        assert held.reduce + held.increase == order.quantity - order.filled_quantity
    for asset in {*ledger.assets(), *START}:
        quoted = [o for o in desk.book.open_orders("alice")
                  if symbol_assets(o.symbol).quote == asset]
        if not quoted:
            assert ledger.locked(asset) == 0, "a lock outlived its orders"
    for symbol in DESK_SYMBOLS:
        held = ledger.position(symbol).quantity
        assert held >= 0, "no short with allow_short = false"
        assert ledger.position_locked(symbol, Side.SELL) <= held
    realized: dict[str, Fraction] = defaultdict(Fraction)
    fees: dict[str, Fraction] = defaultdict(Fraction)
    for r in desk.results:
        realized[r.fee_asset] += Fraction(r.realized_pnl)
        fees[r.fee_asset] += Fraction(r.fee)
    for asset in {*ledger.assets(), *START}:
        assert Fraction(ledger.balance_of(asset)) == (
            Fraction(ledger.starting.get(asset, 0)) + realized[asset] - fees[asset])
        assert ledger.locked(asset) >= 0
        # exposure never beyond the buying power (max_leverage 1)
        assert ledger.available(asset, desk.marks, desk.trading.max_leverage) >= 0


@settings(max_examples=DESK_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(desk_ops, st.sampled_from([0, 10]))
def test_random_orders_keep_the_account_consistent(ops: list[tuple[object, ...]],
                                                   fee_bps: int) -> None:
    desk = Desk({"USDT": 10000, "BTC": "0.5"}, fee_bps=fee_bps, allow_short=False)
    for symbol in DESK_SYMBOLS:
        desk.trade(symbol, _price(symbol, 100))
    for op in ops:
        _step(desk, op)
        _check(desk)
