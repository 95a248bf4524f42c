"""Placement checks and reservations (engine.trading.risk, .ledger, .settlement),
through a real OrderBook without threads (tests/trading/desk.py).

Every expected number is worked out by hand from docs/trading.md: an order's
part that reduces the unreserved position reserves that quantity; the part
that increases the exposure needs ``quantity x lock price x (1 + fee)`` of the
quote asset's available buying power, ``(balance + unrealized) x max_leverage
- exposure - locked``; a fill consumes its share, a cancel or an expiry
releases the rest.
"""

from __future__ import annotations

from decimal import Decimal

from engine.money import Side
from engine.trading.order import OrderStatus
from engine.trading.risk import amount_text
from tests.trading.desk import Desk, reason

D = Decimal
BTC = "BTCUSDT"


def test_amount_text_is_plain_and_short() -> None:
    assert [amount_text(D(x)) for x in ("120.50", "1E+3", "0.000", "-0")] == [
        "120.5", "1000", "0", "0"]


def test_the_buying_power_boundary_is_inclusive_and_the_reason_names_the_amounts() -> None:
    desk = Desk({"USDT": 10000})
    desk.trade(BTC, 40001)
    assert reason(desk.place(symbol=BTC, side="BUY", type="LIMIT", quantity="0.25",
                             price="40000")) is None
    desk = Desk({"USDT": 10000})
    desk.trade(BTC, 40001)
    assert reason(desk.place(symbol=BTC, side="BUY", type="LIMIT", quantity="0.25000001",
                             price="40000")) == (
        "INSUFFICIENT_BALANCE: USDT available 10000 < needed 10000.0004")


def test_the_fee_is_reserved_too() -> None:
    desk = Desk({"USDT": 1000}, fee_bps=10)
    desk.trade(BTC, 1100)
    assert reason(desk.place(symbol=BTC, side="BUY", type="LIMIT", quantity="1",
                             price="1000")) == (
        "INSUFFICIENT_BALANCE: USDT available 1000 < needed 1001")


def test_leverage_scales_buying_power() -> None:
    desk = Desk({"USDT": 10000}, max_leverage=D(2))
    desk.trade(BTC, 40001)
    assert reason(desk.place(symbol=BTC, side="BUY", type="LIMIT", quantity="0.5",
                             price="40000")) is None
    assert reason(desk.place(symbol=BTC, side="BUY", type="LIMIT", quantity="0.00000001",
                             price="40000")) == (
        "INSUFFICIENT_BALANCE: USDT available 0 < needed 0.0004")


def test_five_buy_limits_of_089_equity_only_the_first_is_accepted() -> None:
    # The case: each BUY LIMIT is worth 0.89 x equity (0.2225 x 40000 = 8900).
    desk = Desk({"USDT": 10000}, fee_bps=10)
    desk.trade(BTC, 40100)
    reasons = [reason(desk.place(symbol=BTC, side="BUY", type="LIMIT", quantity="0.2225",
                                 price="40000")) for _ in range(5)]
    # 8900 x 1.001 = 8908.9 reserved; 10000 - 8908.9 = 1091.1 left.
    assert reasons == [None] + ["INSUFFICIENT_BALANCE: USDT available 1091.1 < needed 8908.9"] * 4
    assert desk.ledger.locked("USDT") == D("8908.9")
    assert desk.ledger.free("USDT") == D("1091.1")
    desk.trade(BTC, 39990)  # one trade fills the one accepted order
    assert desk.ledger.position(BTC).quantity == D("0.2225")
    assert desk.ledger.locked("USDT") == 0 and desk.ledger.reservations == {}
    # leverage stays at most 1: exposure 0.2225 x 39990 <= equity
    equity = desk.ledger.equity_in("USDT", desk.marks)
    assert desk.ledger.exposure_in("USDT", desk.marks) <= equity


def test_two_reducing_orders_cannot_together_exceed_the_position() -> None:
    # The case: long 0.01, SELL LIMIT 0.01, SELL STOP_LOSS 0.01 with shorts off.
    desk = Desk({"USDT": 10000}, allow_short=False)
    desk.trade(BTC, 40000)
    assert reason(desk.place(symbol=BTC, side="BUY", type="MARKET", quantity="0.01")) is None
    limit = desk.place(symbol=BTC, side="SELL", type="LIMIT", quantity="0.01", price="41000")
    assert reason(limit) is None
    assert desk.ledger.position_locked(BTC, Side.SELL) == D("0.01")
    assert reason(desk.place(symbol=BTC, side="SELL", type="STOP_LOSS", quantity="0.01",
                             stopPrice="39000")) == (
        "SHORT_NOT_ALLOWED: BTCUSDT unreserved position 0 < 0.01")
    # Cancelling the limit releases the position: now the stop is accepted.
    desk.cancel(limit.order_events()[0].order.order_id)
    assert desk.ledger.position_locked(BTC, Side.SELL) == 0
    assert reason(desk.place(symbol=BTC, side="SELL", type="STOP_LOSS", quantity="0.01",
                             stopPrice="39000")) is None
    desk.trade(BTC, 38000)
    assert desk.ledger.position(BTC).quantity == 0 and desk.ledger.reservations == {}


def test_with_shorts_allowed_the_rest_of_a_sell_reserves_buying_power() -> None:
    desk = Desk({"USDT": 1000})
    desk.trade(BTC, 1000)
    desk.place(symbol=BTC, side="BUY", type="MARKET", quantity="0.5")
    # SELL 1: 0.5 reduces the long, 0.5 opens a short at 1100: 550 of buying power,
    # with 1000 - 500 (the long's exposure) = 500 available.
    assert reason(desk.place(symbol=BTC, side="SELL", type="LIMIT", quantity="1",
                             price="1100")) == (
        "INSUFFICIENT_BALANCE: USDT available 500 < needed 550")
    assert reason(desk.place(symbol=BTC, side="SELL", type="LIMIT", quantity="0.9",
                             price="1100")) is None
    held = next(iter(desk.ledger.reservations.values()))
    assert (held.reduce, held.increase, held.amount) == (D("0.5"), D("0.4"), D(440))


def test_a_stop_buy_reserves_at_its_stop_price_above_the_market() -> None:
    desk = Desk({"USDT": 10000})
    desk.trade(BTC, 40000)
    assert reason(desk.place(symbol=BTC, side="BUY", type="STOP_LOSS", quantity="0.1",
                             stopPrice="41000")) is None
    assert desk.ledger.locked("USDT") == D(4100)


def test_an_oco_reserves_once_and_its_expiry_releases() -> None:
    desk = Desk({"USDT": 10000}, allow_short=False)
    desk.trade(BTC, 40000)
    desk.place(symbol=BTC, side="BUY", type="MARKET", quantity="0.1")
    oco = desk.oco(symbol=BTC, side="SELL", quantity="0.1",
                   above={"type": "LIMIT_MAKER", "price": "42000"},
                   below={"type": "STOP_LOSS", "stopPrice": "38000"})
    assert reason(oco) is None
    assert next(iter(desk.ledger.reservations.values())).reduce == D("0.1")
    assert len(desk.ledger.reservations) == 1
    assert reason(desk.place(symbol=BTC, side="SELL", type="LIMIT", quantity="0.1",
                             price="45000")).startswith("SHORT_NOT_ALLOWED")
    out = desk.trade(BTC, 42000)
    statuses = sorted(e.order.status.value for e in out.order_events())
    assert statuses == ["EXPIRED", "FILLED"]
    assert desk.ledger.reservations == {} and desk.ledger.position(BTC).quantity == 0


def test_bracket_exits_reserve_the_position_the_entry_built() -> None:
    desk = Desk({"USDT": 100000}, allow_short=False)
    desk.trade(BTC, 40100)
    out = desk.bracket(symbol=BTC, side="BUY", quantity="1",
                       entry={"type": "LIMIT", "price": "40000"},
                       takeProfit={"price": "42000"}, stopLoss={"stopPrice": "39000"})
    assert reason(out) is None
    assert desk.ledger.locked("USDT") == D(40000)
    desk.trade(BTC, 40000)  # the entry fills; the exits go NEW
    assert desk.ledger.locked("USDT") == 0
    assert desk.ledger.position_locked(BTC, Side.SELL) == 1
    assert reason(desk.place(symbol=BTC, side="SELL", type="MARKET", quantity="1")) == (
        "SHORT_NOT_ALLOWED: BTCUSDT unreserved position 0 < 1")
    desk.trade(BTC, 42000)
    assert desk.ledger.position(BTC).quantity == 0 and desk.ledger.reservations == {}
    assert all(not o.is_open for o in desk.book.all_orders())


def test_a_symbol_is_funded_from_its_own_quote_asset() -> None:
    usdt_only = Desk({"USDT": 10000})
    usdt_only.trade("LRCBTC", "0.000005")
    assert reason(usdt_only.place(symbol="LRCBTC", side="BUY", type="MARKET",
                                  quantity="10000")) == (
        "INSUFFICIENT_BALANCE: BTC available 0 < needed 0.05")
    both = Desk({"USDT": 10000, "BTC": "0.5"}, fee_bps=10)
    both.trade("LRCBTC", "0.000005")
    assert reason(both.place(symbol="LRCBTC", side="BUY", type="MARKET",
                             quantity="10000")) is None
    # The fee is in BTC, from the BTC balance; USDT is untouched.
    assert both.ledger.balance_of("BTC") == D("0.49995")
    assert both.ledger.balance_of("USDT") == 10000
    assert both.book.all_orders()[0].status is OrderStatus.FILLED


def test_a_lower_quantity_releases_the_increasing_part_first() -> None:
    # What an amend that lowers the quantity does to the reservation.
    desk = Desk({"USDT": 1000})
    desk.trade(BTC, 1000)
    desk.place(symbol=BTC, side="BUY", type="MARKET", quantity="0.5")
    desk.place(symbol=BTC, side="SELL", type="LIMIT", quantity="0.8", price="1100")
    (held,) = desk.ledger.reservations.values()
    assert (held.reduce, held.increase) == (D("0.5"), D("0.3"))
    desk.ledger.shrink_to(held.key, D("0.6"))
    held = desk.ledger.reservations[held.key]  # frozen: a change replaces it
    assert (held.reduce, held.increase, held.amount) == (D("0.5"), D("0.1"), D(110))
    desk.ledger.shrink_to(held.key, D("0.2"))
    held = desk.ledger.reservations[held.key]
    assert (held.reduce, held.increase) == (D("0.2"), 0)
