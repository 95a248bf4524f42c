"""The account risk checks (engine.trading.risk), without threads or actors.

Every expected outcome is worked out by hand from the documented rules:
shorts are refused only when ``allow_short`` is off and the fill would leave
the position below zero; buying power refuses a fill that would push the sum
of absolute notionals above ``equity * max_leverage``, where the order's symbol
is valued at the order's price, other positions at their mark (else entry),
and reduce-only orders always pass.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.config import TradingConfig
from engine.money import Side
from engine.trading.ledger import Ledger, Position
from engine.trading.risk import risk_reject

BTC, ETH = "BTCUSDT", "ETHUSDT"
D = Decimal


def ledger(*positions: tuple[str, str, str], balance: str = "10000") -> Ledger:
    """A fee-free account holding ``(symbol, signed quantity, entry price)`` positions."""
    return Ledger("alice", D(balance), D(0),
                  positions={s: Position(s, D(q), D(e)) for s, q, e in positions})


def cfg(*, allow_short: bool = True, max_leverage: str = "1") -> TradingConfig:
    return TradingConfig(allow_short=allow_short, max_leverage=D(max_leverage))


def check(led: Ledger, side: Side, qty: str, price: str, *, marks: dict[str, Decimal] | None = None,
          trading: TradingConfig | None = None, symbol: str = BTC) -> str | None:
    return risk_reject(led, marks or {}, trading or cfg(), symbol, side, D(qty), D(price))


def test_an_affordable_order_passes() -> None:
    assert check(ledger(), Side.BUY, "0.1", "40000") is None


def test_buying_power_boundary_is_inclusive() -> None:
    # 10000 of equity at leverage 1: 0.25 BTC at 40000 is exactly 10000 of notional.
    assert check(ledger(), Side.BUY, "0.25", "40000") is None
    assert check(ledger(), Side.BUY, "0.25000001", "40000") == "INSUFFICIENT_BALANCE"


def test_leverage_scales_buying_power() -> None:
    two = cfg(max_leverage="2")
    assert check(ledger(), Side.BUY, "0.5", "40000", trading=two) is None
    assert check(ledger(), Side.BUY, "0.50000001", "40000", trading=two) == "INSUFFICIENT_BALANCE"


def test_a_short_counts_against_buying_power_like_a_long() -> None:
    assert check(ledger(), Side.SELL, "0.25", "40000") is None
    assert check(ledger(), Side.SELL, "0.26", "40000") == "INSUFFICIENT_BALANCE"


def test_the_order_symbol_is_valued_at_the_order_price_not_its_mark() -> None:
    # Long 0.2 BTC from 40000, buying 0.05 more at 40000: gross 0.25 * 40000 = 10000,
    # equity 10000 + 0.2 * (40000 - 40000) = 10000: exactly at the limit. Had the
    # stale mark of 30000 been used for the equity (8000), it would be refused.
    led = ledger((BTC, "0.2", "40000"))
    stale = {BTC: D(30000)}
    assert check(led, Side.BUY, "0.05", "40000", marks=stale) is None
    # at 40001: gross 0.25 * 40001 = 10000.25 > equity 10000.2
    assert check(led, Side.BUY, "0.05", "40001", marks=stale) == "INSUFFICIENT_BALANCE"


def test_other_positions_are_valued_at_their_mark_else_their_entry() -> None:
    # Long 1 ETH from 2000, leverage 2. With ETH marked at 3000: equity 11000,
    # limit 22000, ETH notional 3000, so 19000 of BTC = 0.475 at 40000.
    led = ledger((ETH, "1", "2000"))
    two = cfg(max_leverage="2")
    assert check(led, Side.BUY, "0.475", "40000", marks={ETH: D(3000)}, trading=two) is None
    assert check(led, Side.BUY, "0.47500001", "40000", marks={ETH: D(3000)},
                 trading=two) == "INSUFFICIENT_BALANCE"
    # Without a mark: equity 10000, limit 20000, ETH at its entry 2000: room 18000 = 0.45.
    assert check(led, Side.BUY, "0.475", "40000", trading=two) == "INSUFFICIENT_BALANCE"
    assert check(led, Side.BUY, "0.45", "40000", trading=two) is None


def test_reduce_only_orders_pass_even_when_equity_is_negative() -> None:
    # Long 1 BTC from 40000, marked at 1000: equity 10000 - 39000 = -29000.
    led = ledger((BTC, "1", "40000"))
    crashed = {BTC: D(1000)}
    assert check(led, Side.SELL, "0.5", "1000", marks=crashed) is None
    assert check(led, Side.SELL, "1", "1000", marks=crashed) is None
    # Adding to it, or flipping through zero, is not reducing.
    assert check(led, Side.BUY, "0.001", "1000", marks=crashed) == "INSUFFICIENT_BALANCE"
    assert check(led, Side.SELL, "1.5", "1000", marks=crashed) == "INSUFFICIENT_BALANCE"


@pytest.mark.parametrize(("held", "qty", "expected"), [
    (None, "0.001", "SHORT_NOT_ALLOWED"),        # selling from flat
    ("0.1", "0.1", None),                        # selling down to exactly zero
    ("0.1", "0.10000001", "SHORT_NOT_ALLOWED"),  # one step past zero
    ("-0.1", "0.001", "SHORT_NOT_ALLOWED"),      # adding to an existing short
])
def test_shorts_refused_when_not_allowed(held: str | None, qty: str, expected: str | None) -> None:
    led = ledger((BTC, held, "40000")) if held is not None else ledger()
    assert check(led, Side.SELL, qty, "40000", trading=cfg(allow_short=False)) == expected


def test_buying_back_a_short_is_allowed_when_shorts_are_not() -> None:
    led = ledger((BTC, "-0.1", "40000"))
    assert check(led, Side.BUY, "0.1", "40000", trading=cfg(allow_short=False)) is None


def test_the_short_check_comes_first() -> None:
    # Fails both checks (0.3 * 40000 = 12000 > 10000): the short reason wins.
    no_short = cfg(allow_short=False)
    assert check(ledger(), Side.SELL, "0.3", "40000", trading=no_short) == "SHORT_NOT_ALLOWED"
    assert check(ledger(), Side.SELL, "0.3", "40000") == "INSUFFICIENT_BALANCE"


def test_the_check_changes_nothing() -> None:
    led = ledger((BTC, "0.2", "40000"))
    marks = {BTC: D(30000), ETH: D(2000)}
    check(led, Side.BUY, "1", "50000", marks=marks)
    assert marks == {BTC: D(30000), ETH: D(2000)}
    assert led.positions == {BTC: Position(BTC, D("0.2"), D(40000))}
    assert led.balance == D(10000)
