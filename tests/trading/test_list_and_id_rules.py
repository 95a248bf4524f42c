"""Binance's list and id rules: the OCO price relation with the limit leg's
``price``, clientOrderId unique among *open* orders, cancelling a list by any
id of any member, and the evaluation order of orders hit by one trade."""

from __future__ import annotations

from typing import Any

import pytest

from engine.trading import ExecutionType, ListStatus, OrderBook, OrderStatus, UnknownOrder
from tests.trading.helpers import ACCOUNT, kinds, place, place_bracket, place_oco, run

NEW, TRIGGERED, AMENDED, TRADE = (ExecutionType.NEW, ExecutionType.TRIGGERED,
                                  ExecutionType.AMENDED, ExecutionType.TRADE)
CANCELED, EXPIRED, REJECTED = (ExecutionType.CANCELED, ExecutionType.EXPIRED,
                               ExecutionType.REJECTED)


def list_reason(out: Any) -> str | None:
    (event,) = out.list_events()
    return event.order_list.reject_reason  # type: ignore[no-any-return]


# ------------------------------------------------------------ OCO relation

STOP_BELOW = {"type": "STOP_LOSS", "stopPrice": 39000}
STOP_ABOVE = {"type": "STOP_LOSS", "stopPrice": 41000}


@pytest.mark.parametrize(
    ("above", "accepted"),
    [
        # the case: TAKE_PROFIT_LIMIT price below the last price
        ({"type": "TAKE_PROFIT_LIMIT", "price": 39900, "stopPrice": 40500}, False),
        ({"type": "TAKE_PROFIT_LIMIT", "price": 40000, "stopPrice": 40500}, False),  # strict
        ({"type": "TAKE_PROFIT_LIMIT", "price": 40600, "stopPrice": 40500}, True),
        # the stopPrice, when given, is on the same side of the market too
        ({"type": "TAKE_PROFIT_LIMIT", "price": 40600, "stopPrice": 39900}, False),
        # trailing-only: no stopPrice, its price is still checked
        ({"type": "TAKE_PROFIT_LIMIT", "price": 39900, "trailingDelta": 100}, False),
        ({"type": "TAKE_PROFIT_LIMIT", "price": 40100, "trailingDelta": 100}, True),
        ({"type": "LIMIT_MAKER", "price": 39900}, False),
        ({"type": "LIMIT_MAKER", "price": 40100}, True),
        ({"type": "TAKE_PROFIT", "stopPrice": 39900}, False),
        ({"type": "TAKE_PROFIT", "stopPrice": 40100}, True),
    ],
)
def test_sell_oco_limit_leg_price_above_last(above: dict[str, Any], accepted: bool) -> None:
    book = OrderBook()
    out = place_oco(book, 40000, side="SELL", above=above, below=STOP_BELOW)
    if accepted:
        assert kinds(out) == [(1, NEW), (2, NEW)]
    else:
        assert list_reason(out) == "OCO_BAD_PRICES"
        assert kinds(out) == [(1, REJECTED), (2, REJECTED)]
        assert book.order_count(ACCOUNT) == 0


@pytest.mark.parametrize(
    ("below", "accepted"),
    [
        ({"type": "TAKE_PROFIT_LIMIT", "price": 40100, "stopPrice": 39500}, False),
        ({"type": "TAKE_PROFIT_LIMIT", "price": 39400, "stopPrice": 39500}, True),
        ({"type": "TAKE_PROFIT_LIMIT", "price": 40100, "trailingDelta": 100}, False),
        ({"type": "TAKE_PROFIT_LIMIT", "price": 39900, "trailingDelta": 100}, True),
        ({"type": "LIMIT_MAKER", "price": 40100}, False),
        ({"type": "LIMIT_MAKER", "price": 39900}, True),
    ],
)
def test_buy_oco_is_the_mirror(below: dict[str, Any], accepted: bool) -> None:
    out = place_oco(OrderBook(), 40000, side="BUY", above=STOP_ABOVE, below=below)
    assert (list_reason(out) is None) is accepted


# ------------------------------------------------------- clientOrderId reuse


def test_client_order_id_is_reusable_once_closed() -> None:
    book = OrderBook()
    place(book, type="LIMIT", price=39000, clientOrderId="grid-1")
    assert kinds(place(book, type="LIMIT", price=38000, clientOrderId="grid-1")) == [
        (2, REJECTED)]
    book.cancel(ACCOUNT, client_order_id="grid-1", now_ms=1)
    # closed: the id is free again, and now names the new order
    assert kinds(place(book, type="LIMIT", price=38000, clientOrderId="grid-1")) == [(3, NEW)]
    out = book.cancel(ACCOUNT, client_order_id="grid-1", now_ms=2)
    assert kinds(out) == [(3, CANCELED)]
    # a filled one frees it too
    place(book, type="MARKET", clientOrderId="grid-1")
    assert kinds(place(book, type="MARKET", clientOrderId="grid-1"))[0] == (5, NEW)


def test_list_legs_cannot_take_an_open_client_order_id() -> None:
    book = OrderBook()
    place(book, type="LIMIT", price=39000, clientOrderId="x")
    above = {"type": "LIMIT_MAKER", "price": 41000, "clientOrderId": "x"}
    out = place_oco(book, 40000, side="SELL", above=above, below=STOP_BELOW)
    assert list_reason(out) == "DUPLICATE_CLIENT_ORDER_ID"
    book.cancel(ACCOUNT, client_order_id="x", now_ms=1)
    assert list_reason(place_oco(book, 40000, side="SELL", above=above, below=STOP_BELOW)) is None


def test_client_order_id_survives_restore() -> None:
    book = OrderBook()
    place(book, type="LIMIT", price=39000, clientOrderId="a")
    book.cancel(ACCOUNT, order_id=1, now_ms=1)
    place(book, type="LIMIT", price=39000, clientOrderId="a")
    restored = OrderBook.restore(book.all_orders(), book.next_order_id, book.next_list_id)
    assert kinds(place(restored, type="LIMIT", price=1, clientOrderId="a")) == [(3, REJECTED)]
    assert kinds(restored.cancel(ACCOUNT, client_order_id="a", now_ms=2)) == [(2, CANCELED)]


# --------------------------------------------------- cancel by any list id

BRACKET: dict[str, Any] = {
    "side": "BUY",
    "entry": {"type": "MARKET", "clientOrderId": "entry"},
    "takeProfit": {"price": 41000, "clientOrderId": "tp"},
    "stopLoss": {"stopPrice": 39000, "clientOrderId": "sl"},
}


@pytest.mark.parametrize(
    "by",
    [{"order_id": 1}, {"client_order_id": "entry"}, {"order_id": 2},
     {"client_order_id": "sl"}, {"list_id": 1}],
)
def test_cancel_by_any_id_of_a_bracket_after_its_entry_filled(by: dict[str, Any]) -> None:
    book = OrderBook()
    out = place_bracket(book, 40000, **BRACKET)
    assert book.get(1).status is OrderStatus.FILLED  # type: ignore[union-attr]
    cancel = book.cancel(ACCOUNT, now_ms=1, **by)
    assert kinds(cancel) == [(2, CANCELED), (3, CANCELED)]
    assert cancel.list_events()[0].order_list.status is ListStatus.ALL_DONE
    assert book.order_count(ACCOUNT) == 0
    assert not out.fills[1:]  # only the entry filled
    assert not run(book, [41500, 38000])[0]  # the exits no longer work
    with pytest.raises(UnknownOrder):  # nothing left to cancel: changes nothing
        book.cancel(ACCOUNT, now_ms=2, **by)


def test_cancel_by_a_member_of_another_accounts_list_is_unknown() -> None:
    book = OrderBook()
    place_bracket(book, 40000, **BRACKET)
    for by in ({"order_id": 1}, {"list_id": 1}, {"client_order_id": "entry"}):
        with pytest.raises(UnknownOrder):
            book.cancel("bob", now_ms=1, **by)
    assert book.order_count(ACCOUNT) == 2


def test_cancel_a_filled_plain_order_is_unknown() -> None:
    book = OrderBook()
    place(book, type="MARKET", clientOrderId="m")
    with pytest.raises(UnknownOrder):
        book.cancel(ACCOUNT, client_order_id="m", now_ms=1)


# --------------------------------------------------- evaluation order


def test_orders_hit_by_one_trade_run_in_order_id_order() -> None:
    """Placed in an order the price index does not sort by: a stop, then
    LIMITs at different prices; one trade through all of them fills them in
    orderId order, each completely before the next."""
    book = OrderBook()
    place(book, type="LIMIT", side="SELL", price=40300)                      # 1
    place(book, type="STOP_LOSS", side="BUY", stopPrice=40100)               # 2
    place(book, type="LIMIT", side="SELL", price=40100)                      # 3
    place(book, type="TAKE_PROFIT_LIMIT", side="SELL", stopPrice=40200,
          price=40150)                                                       # 4
    place(book, type="LIMIT", side="SELL", price=40050)                      # 5
    (out,) = run(book, [40400])
    assert kinds(out) == [(1, TRADE), (2, TRIGGERED), (2, TRADE), (3, TRADE),
                          (4, TRIGGERED), (4, TRADE), (5, TRADE)]
    assert [f.order_id for f in out.fills] == [1, 2, 3, 4, 5]


def test_evaluation_order_is_the_same_with_and_without_the_index() -> None:
    def book_events(full_scan: bool) -> list[Any]:
        book = OrderBook(full_scan=full_scan)
        for price in (40500, 40100, 40300, 40200):
            place(book, type="LIMIT", side="SELL", price=price)
        place(book, type="STOP_LOSS", side="SELL", trailingDelta=100)
        place_oco(book, 40000, side="SELL", above={"type": "LIMIT_MAKER", "price": 40250},
                  below=STOP_BELOW)
        return [kinds(o) for o in run(book, [40150, 40600, 39000])]

    indexed, scanned = book_events(False), book_events(True)
    assert indexed == scanned
    assert indexed[1][:4] == [(1, TRADE), (3, TRADE), (4, TRADE), (5, AMENDED)]


def test_a_bracket_exit_released_by_a_trade_waits_for_the_next() -> None:
    book = OrderBook()
    place_bracket(book, 40000, side="BUY", entry={"type": "LIMIT", "price": 39500},
                  takeProfit={"price": 41000}, stopLoss={"stopPrice": 39200})
    place(book, type="LIMIT", side="BUY", price=39600)  # 4, after the list
    (out,) = run(book, [39100])  # fills the entry, 4, and is below the stop
    assert kinds(out) == [(1, TRADE), (2, NEW), (3, NEW), (4, TRADE)]
    (nxt,) = run(book, [39100])
    assert kinds(nxt) == [(3, TRIGGERED), (3, TRADE), (2, EXPIRED)]
