"""The symbol filters through the order book: every order and every list leg is
checked at placement (OrderBook(order_check=...)), a failure is REJECTED with
Binance's reason text and changes nothing."""

from __future__ import annotations

from decimal import Decimal

from engine.market.symbol_info import load_snapshot
from engine.trading import ExecutionType, ListEvent, ListStatus, OrderBook, OrderStatus
from engine.trading.filters import check_order
from engine.trading.order import Order
from tests.trading.helpers import ACCOUNT, kinds, place, place_bracket, place_oco

SNAP = load_snapshot()
LAST = Decimal(40000)


def book() -> OrderBook:
    def order_check(order: Order) -> str | None:
        failure = check_order(SNAP[order.symbol], order, last_price=LAST)
        return None if failure is None else failure.value

    return OrderBook(order_check=order_check)


def only_rejection(outcome: object) -> tuple[str | None, ...]:
    from engine.trading import Outcome

    assert isinstance(outcome, Outcome)
    events = outcome.order_events()
    assert events and all(e.execution_type is ExecutionType.REJECTED for e in events)
    assert not outcome.fills
    return tuple(e.order.reject_reason for e in events)


def test_the_issue_order_is_rejected_lot_size_and_nothing_is_kept() -> None:
    b = book()
    out = place(b, LAST, type="MARKET", quantity="0.000000100000000000")
    assert only_rejection(out) == ("Filter failure: LOT_SIZE",)
    assert b.open_orders(ACCOUNT) == [] and b.all_orders(ACCOUNT) == []


def test_a_valid_market_order_fills() -> None:
    b = book()
    out = place(b, LAST, type="MARKET", quantity="0.001")  # 40 USDT >= MIN_NOTIONAL 10
    assert [k for _, k in kinds(out)] == [ExecutionType.NEW, ExecutionType.TRADE]
    assert len(out.fills) == 1


def test_limit_price_off_the_tick_is_rejected_price_filter() -> None:
    b = book()
    assert only_rejection(place(b, LAST, type="LIMIT", price="39000.001",
                                quantity="0.001")) == ("Filter failure: PRICE_FILTER",)
    out = place(b, LAST, type="LIMIT", price="39000.01", quantity="0.001")
    assert [k for _, k in kinds(out)] == [ExecutionType.NEW]


def test_notional_below_the_minimum_is_rejected() -> None:
    b = book()
    # 0.0002 × 39000 = 7.8 < MIN_NOTIONAL 10 (the 2021 snapshot's BTCUSDT)
    assert only_rejection(place(b, LAST, type="LIMIT", price="39000", quantity="0.0002")) == (
        "Filter failure: MIN_NOTIONAL",)


def test_every_oco_leg_is_checked_and_the_list_is_rejected_whole() -> None:
    b = book()
    # the stop leg's stopPrice is off the tick
    out = place_oco(b, LAST, side="SELL", quantity="0.01",
                    above={"type": "LIMIT_MAKER", "price": "41000"},
                    below={"type": "STOP_LOSS", "stopPrice": "39000.005"})
    reasons = only_rejection(out)
    assert reasons == ("Filter failure: PRICE_FILTER",) * 2
    (lst,) = [e for e in out.events if isinstance(e, ListEvent)]
    assert lst.order_list.status is ListStatus.REJECTED
    assert lst.order_list.reject_reason == "Filter failure: PRICE_FILTER"
    assert b.open_orders(ACCOUNT) == []
    ok = place_oco(b, LAST, side="SELL", quantity="0.01",
                   above={"type": "LIMIT_MAKER", "price": "41000"},
                   below={"type": "STOP_LOSS", "stopPrice": "39000.01"})
    assert [e.order.status for e in ok.order_events()] == [OrderStatus.NEW] * 2


def test_every_bracket_leg_is_checked() -> None:
    b = book()
    # the take-profit leg is more than 5× the last price: beyond PERCENT_PRICE
    out = place_bracket(b, LAST, side="BUY", quantity="0.01",
                        entry={"type": "LIMIT", "price": "39000"},
                        takeProfit={"price": "200000.01"},
                        stopLoss={"stopPrice": "38000"})
    assert only_rejection(out) == ("Filter failure: PERCENT_PRICE",) * 3
    ok = place_bracket(b, LAST, side="BUY", quantity="0.01",
                       entry={"type": "LIMIT", "price": "39000"},
                       takeProfit={"price": "200000"},
                       stopLoss={"stopPrice": "38000"})
    assert len(ok.order_events()) == 3
    assert all(e.execution_type is ExecutionType.NEW for e in ok.order_events())


def test_a_restored_book_keeps_checking() -> None:
    b = book()
    place(b, LAST, type="LIMIT", price="39000", quantity="0.001")

    def order_check(order: Order) -> str | None:
        failure = check_order(SNAP[order.symbol], order, last_price=LAST)
        return None if failure is None else failure.value

    restored = OrderBook.restore(b.all_orders(), b.next_order_id, b.next_list_id,
                                 order_check=order_check)
    assert only_rejection(place(restored, LAST, type="LIMIT", price="39000",
                                quantity="0.0010001")) == ("Filter failure: LOT_SIZE",)
