"""The fill model (docs/trading.md "Fill model"): the pure functions, and the
order book working orders with models ``book`` and ``queue``.

Expected prices and quantities are worked out by hand from the documented
rules in each test.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from engine.messages import BookTicker, DepthSnapshot, Trade
from engine.trading import ExecutionType, Order, OrderBook, OrderStatus, Outcome, Side
from engine.trading.errors import AmendRefused, RequestError, UnknownOrder
from engine.trading.fill_model import (
    FillModel,
    Slice,
    level_quantity,
    merge_quote,
    resting_fill,
    take,
)
from engine.trading.ledger import Ledger
from engine.trading.requests import parse_amend, parse_order
from tests.trading.helpers import ACCOUNT, SYMBOL, D, order_body, place

NEW = ExecutionType.NEW
TRADE = ExecutionType.TRADE
EXPIRED = ExecutionType.EXPIRED
REJECTED = ExecutionType.REJECTED
BOOK = FillModel.BOOK
QUEUE = FillModel.QUEUE


def ticker(bid: object, bid_qty: object, ask: object, ask_qty: object, *, uid: int = 1,
           at: int = 0) -> BookTicker:
    return BookTicker(SYMBOL, D(bid), D(bid_qty), D(ask), D(ask_qty), uid, at)


def depth(bids: list[tuple[object, object]], asks: list[tuple[object, object]], *,
          uid: int = 1, at: int = 0) -> DepthSnapshot:
    return DepthSnapshot(SYMBOL, tuple((D(p), D(q)) for p, q in bids),
                         tuple((D(p), D(q)) for p, q in asks), uid, at)


def tape(price: object, qty: object, *, at: int = 0) -> Trade:
    return Trade(SYMBOL, D(price), D(qty), event_time=at, trade_time=at)


def fills(out: Outcome) -> list[tuple[Decimal, Decimal]]:
    return [(f.quantity, f.price) for f in out.fills]


def trades(out: Outcome) -> list[Order]:
    return [e.order for e in out.order_events() if e.execution_type is TRADE]


def kinds(out: Outcome) -> list[ExecutionType]:
    return [e.execution_type for e in out.order_events()]


def book_with(model: FillModel = BOOK, *books: BookTicker | DepthSnapshot) -> OrderBook:
    book = OrderBook(fill_model=model)
    for b in books:
        book.on_book(b, now_ms=0)
    return book


# ------------------------------------------------------------ pure functions


def test_take_walks_levels_then_slips_past_the_known_book() -> None:
    asks = ((D(100), D(1)), (D(101), D(2)))
    assert take(Side.BUY, D("2.5"), asks, D(0)) == (Slice(D(100), D(1)), Slice(D(101), D("1.5")))
    # 5 = 1 + 2 + 2 beyond the book at 101 x (1 + 10 bps) = 101.101
    assert take(Side.BUY, D(5), asks, D(10)) == (
        Slice(D(100), D(1)), Slice(D(101), D(2)), Slice(D("101.101"), D(2)))
    bids = ((D(99), D("0.5")), (D(98), D(1)))
    assert take(Side.SELL, D(2), bids, D(10)) == (
        Slice(D(99), D("0.5")), Slice(D(98), D(1)), Slice(D("97.902"), D("0.5")))


def test_take_with_a_limit_takes_nothing_worse_than_it() -> None:
    asks = ((D(100), D(1)), (D(101), D(2)))
    assert take(Side.BUY, D(5), asks, D(0), D("100.5")) == (Slice(D(100), D(1)),)
    assert take(Side.BUY, D(5), asks, D(0), D("99.99")) == ()
    # past the book: 101.101 is worse than 101.05, so the rest does not take
    assert take(Side.BUY, D(5), asks, D(10), D("101.05")) == (
        Slice(D(100), D(1)), Slice(D(101), D(2)))
    assert take(Side.BUY, D(5), asks, D(0), D(101))[-1] == Slice(D(101), D(2))


def test_merge_quote_keeps_depth_below_a_newer_best_and_ignores_older_books() -> None:
    q = merge_quote(None, depth([(99, 1), (98, 2), (97, 3)], [(101, 1), (102, 2)], uid=10))
    q = merge_quote(q, ticker("98.5", 4, 101, "0.5", uid=11))
    assert q.bids == ((D("98.5"), D(4)), (D(98), D(2)), (D(97), D(3)))
    assert q.asks == ((D(101), D("0.5")), (D(102), D(2)))
    assert merge_quote(q, ticker(1, 1, 2, 2, uid=9)) is q
    # without depth, a former best is not kept as a deeper level
    t = merge_quote(merge_quote(None, ticker(99, 1, 101, 1, uid=1)), ticker(99, 1, 100, 1, uid=2))
    assert t.asks == ((D(100), D(1)),)


def test_level_quantity() -> None:
    q = merge_quote(None, depth([(99, 1), (97, 3)], [(101, 1)]))
    assert level_quantity(Side.BUY, D(99), q) == D(1)
    assert level_quantity(Side.BUY, D(98), q) == D(0)  # inside the known levels
    assert level_quantity(Side.BUY, D(100), q) == D(0)  # better than the best bid
    assert level_quantity(Side.BUY, D(96), q) is None  # beyond the known levels
    assert level_quantity(Side.SELL, D(102), q) is None
    assert level_quantity(Side.SELL, D(101), None) is None


def test_resting_fill_rules() -> None:
    args = (Side.BUY, D(100))
    assert resting_fill(BOOK, *args, D(101), D(5), D(2), D(0)) == (D(0), D(0))
    assert resting_fill(BOOK, *args, D(100), D("0.3"), D(2), D(0)) == (D("0.3"), D(0))
    assert resting_fill(FillModel.FULL, *args, D(100), D("0.3"), D(2), D(0)) == (D(2), D(0))
    # queue: 1.5 ahead at 100, a 1.0 trade at 100 only moves the queue
    assert resting_fill(QUEUE, *args, D(100), D(1), D(2), D("1.5")) == (D(0), D("0.5"))
    assert resting_fill(QUEUE, *args, D(100), D(1), D(2), D("0.5")) == (D("0.5"), D(0))
    # a trade through the price has consumed the whole level ahead
    assert resting_fill(QUEUE, *args, D("99.9"), D(1), D(2), D(7)) == (D(1), D(0))


# ------------------------------------------------------------- takers


def test_market_buy_fills_at_the_ask_not_the_last_trade() -> None:
    # the example: bid 86352.24 / ask 86352.26, last trade 86434.73
    book = book_with(BOOK, ticker("86352.24", 3, "86352.26", 2))
    out = place(book, "86434.73", type="MARKET", side="BUY", quantity="0.5")
    assert fills(out) == [(D("0.5"), D("86352.26"))]
    sell = place(book, "86434.73", type="MARKET", side="SELL", quantity="0.5")
    assert fills(sell) == [(D("0.5"), D("86352.24"))]


def test_a_large_market_order_walks_the_depth_with_one_trade_event_per_level() -> None:
    book = book_with(BOOK, depth([(99, 5)], [(100, 1), (101, 2)]))
    out = place(book, 100, slippage=10, type="MARKET", side="BUY", quantity=5)
    assert fills(out) == [(D(1), D(100)), (D(2), D(101)), (D(2), D("101.101"))]
    statuses = [(o.status, o.filled_quantity) for o in trades(out)]
    assert statuses == [(OrderStatus.PARTIALLY_FILLED, D(1)), (OrderStatus.PARTIALLY_FILLED, D(3)),
                        (OrderStatus.FILLED, D(5))]
    last = out.order_events()[-1]
    assert last.last_qty == D(2) and last.last_price == D("101.101")
    assert last.order.filled_quantity == D(5)
    # (100 + 202 + 202.202) / 5
    assert last.order.avg_price == D("100.8404")
    assert last.order.fee == sum(f.fee for f in out.fills)


def test_without_a_book_takers_fill_at_the_last_trade_as_before() -> None:
    out = place(OrderBook(fill_model=BOOK), 40000, slippage=10, type="MARKET", side="BUY")
    assert fills(out) == [(D(1), D(40040))]


def test_market_with_a_book_but_no_trade_yet_is_accepted() -> None:
    out = place(book_with(BOOK, ticker(99, 1, 100, 1)), None, type="MARKET", side="BUY")
    assert fills(out) == [(D(1), D(100))]


def test_marketable_limit_takes_what_its_limit_allows_and_rests_the_rest() -> None:
    book = book_with(BOOK, depth([(99, 5)], [(100, 1), (101, 2)]))
    out = place(book, 100, type="LIMIT", side="BUY", price="100.5", quantity=3)
    assert fills(out) == [(D(1), D(100))]
    order = book.get(1)
    assert order is not None and order.status is OrderStatus.PARTIALLY_FILLED
    assert order.remaining == D(2)
    # it now rests at 100.5 and fills from trades, at most their quantity
    out = book.on_trade(tape("100.4", "0.5"), now_ms=1)
    assert fills(out) == [(D("0.5"), D("100.5"))]


def test_triggered_stop_executes_at_the_book() -> None:
    book = book_with(BOOK, ticker("39990", "0.4", "40010", 1))
    place(book, 40000, type="STOP_LOSS", side="SELL", stopPrice=39995, quantity=1)
    out = book.on_trade(tape(39995, 3), now_ms=1)
    # 0.4 at the bid, the rest beyond the known book at the bid (slippage 0)
    assert fills(out) == [(D("0.4"), D(39990)), (D("0.6"), D(39990))]


# ------------------------------------------------------------ resting


def test_resting_limit_fills_by_trade_volume_and_settles_each_fill() -> None:
    book = book_with(BOOK, ticker(99, 1, 101, 1))
    ledger = Ledger.single(ACCOUNT, D(10000), D(10))
    place(book, 100, type="LIMIT", side="BUY", price=100, quantity=2)
    seen = []
    for i, (price, qty) in enumerate([("100.5", 9), (100, "0.3"), ("99.5", "1.2"), (99, 5)]):
        out = book.on_trade(tape(price, qty, at=i), now_ms=i)
        for f in out.fills:
            ledger.apply_fill(f.symbol, f.side, f.quantity, f.price)
        seen += [(i, o.status, o.filled_quantity) for o in trades(out)]
    assert seen == [(1, OrderStatus.PARTIALLY_FILLED, D("0.3")),
                    (2, OrderStatus.PARTIALLY_FILLED, D("1.5")),
                    (3, OrderStatus.FILLED, D(2))]
    assert ledger.position(SYMBOL).quantity == D(2)
    assert ledger.home_fees == D(2) * D(100) * D(10) / D(10000)


def test_limit_maker_is_judged_against_the_book() -> None:
    book = book_with(BOOK, ticker(100, 1, "100.02", 1))
    # a BUY at the best bid makes liquidity, even though the last trade is lower
    ok = place(book, "99.9", type="LIMIT_MAKER", side="BUY", price=100)
    assert kinds(ok) == [NEW]
    bad = place(book, "99.9", type="LIMIT_MAKER", side="BUY", price="100.02")
    assert kinds(bad) == [REJECTED]
    sell_bad = place(book, "101", type="LIMIT_MAKER", side="SELL", price=100)
    assert kinds(sell_bad) == [REJECTED]
    sell_ok = place(book, "101", type="LIMIT_MAKER", side="SELL", price="100.01")
    assert kinds(sell_ok) == [NEW]
    # without a book: the last-trade rule
    assert kinds(place(OrderBook(), "99.9", type="LIMIT_MAKER", side="BUY", price=100)) == [
        REJECTED]


def test_queue_model_lets_the_quantity_ahead_trade_first() -> None:
    book = book_with(QUEUE, ticker(100, "1.5", 101, 1))
    place(book, 100, type="LIMIT", side="BUY", price=100, quantity=2)
    assert book.get(1).queue_ahead == D("1.5")  # type: ignore[union-attr]
    assert not book.on_trade(tape(100, 1), now_ms=1).fills
    # the book now shows 0.2 left at 100: the queue ahead shrinks to it
    book.on_book(ticker(100, "0.2", 101, 1, uid=2), now_ms=2)
    assert fills(book.on_trade(tape(100, 1), now_ms=3)) == [(D("0.8"), D(100))]
    # a trade through the price: everything ahead traded
    assert fills(book.on_trade(tape("99.9", 5), now_ms=4)) == [(D("1.2"), D(100))]


def test_queue_model_learns_the_queue_when_the_book_first_shows_the_price() -> None:
    book = book_with(QUEUE, ticker(100, 3, 101, 1))
    place(book, 100, type="LIMIT", side="BUY", price=99, quantity=1)
    assert book.get(1).queue_ahead is None  # type: ignore[union-attr]
    book.on_book(ticker(99, "0.7", 101, 1, uid=2), now_ms=1)
    assert book.get(1).queue_ahead == D("0.7")  # type: ignore[union-attr]
    assert fills(book.on_trade(tape(99, 1), now_ms=2)) == [(D("0.3"), D(99))]


def test_queue_model_a_level_gone_from_inside_the_book_leaves_nothing_ahead() -> None:
    book = book_with(QUEUE, ticker(100, 3, 101, 1))
    place(book, 100, type="LIMIT", side="BUY", price=100, quantity=1)
    book.on_book(ticker("99.5", 2, 101, 1, uid=2), now_ms=1)
    assert fills(book.on_trade(tape(100, "0.4"), now_ms=2)) == [(D("0.4"), D(100))]


# ------------------------------------------------------------ time in force


def test_ioc_fills_what_it_can_and_expires_the_rest() -> None:
    book = book_with(BOOK, depth([(99, 5)], [(100, 1), (102, 2)]))
    out = place(book, 100, type="LIMIT", side="BUY", price=101, quantity=3, timeInForce="IOC")
    assert kinds(out) == [NEW, TRADE, EXPIRED]
    assert fills(out) == [(D(1), D(100))]
    final = out.order_events()[-1].order
    assert final.status is OrderStatus.EXPIRED and final.filled_quantity == D(1)
    assert book.open_orders(ACCOUNT) == []


def test_ioc_that_cannot_fill_expires_at_once() -> None:
    book = book_with(BOOK, ticker(99, 1, 100, 1))
    out = place(book, 100, type="LIMIT", side="BUY", price=99, timeInForce="IOC")
    assert kinds(out) == [NEW, EXPIRED] and not out.fills


def test_fok_fills_all_or_nothing() -> None:
    book = book_with(BOOK, depth([(99, 5)], [(100, 1), (102, 2)]))
    out = place(book, 100, type="LIMIT", side="BUY", price=101, quantity=3, timeInForce="FOK")
    assert kinds(out) == [NEW, EXPIRED] and not out.fills
    out = place(book, 100, type="LIMIT", side="BUY", price=102, quantity=3, timeInForce="FOK")
    assert fills(out) == [(D(1), D(100)), (D(2), D(102))]
    assert out.order_events()[-1].order.status is OrderStatus.FILLED


def test_gtc_full_model_ioc_without_book_uses_the_last_trade() -> None:
    full = OrderBook(fill_model=FillModel.FULL)
    out = place(full, 100, type="LIMIT", side="BUY", price=100, quantity=3, timeInForce="IOC")
    assert kinds(out) == [NEW, TRADE] and fills(out) == [(D(3), D(100))]
    out = place(full, 100, type="LIMIT", side="BUY", price=99, quantity=3, timeInForce="FOK")
    assert kinds(out) == [NEW, EXPIRED]


def test_triggered_stop_limit_ioc_expires_what_does_not_fill() -> None:
    book = book_with(BOOK, ticker(100, 1, "100.1", "0.5"))
    place(book, 99, type="STOP_LOSS_LIMIT", side="BUY", stopPrice=100, price="100.2",
          quantity=2, timeInForce="IOC", slippage=0)
    out = book.on_trade(tape(100, 1), now_ms=1, slippage_bps=D(50))
    # 0.5 at the ask; beyond the book 100.1 x 1.005 = 100.6005 > 100.2: expires
    assert kinds(out) == [ExecutionType.TRIGGERED, TRADE, EXPIRED]
    assert fills(out) == [(D("0.5"), D("100.1"))]


# ------------------------------------------------------------ iceberg


@pytest.mark.parametrize("model", [BOOK, QUEUE])
def test_iceberg_fills_one_visible_slice_per_trade(model: FillModel) -> None:
    book = book_with(model, ticker(99, 7, 101, 1))
    place(book, 100, type="LIMIT", side="SELL", price="100.5", quantity=3, icebergQty=1)
    got = []
    for i, (price, qty) in enumerate([("100.6", 5), ("100.7", "0.4"), ("100.8", 9), (101, 9)]):
        got += fills(book.on_trade(tape(price, qty), now_ms=i))
    assert got == [(D(1), D("100.5")), (D("0.4"), D("100.5")), (D("0.6"), D("100.5")),
                   (D(1), D("100.5"))]


def test_iceberg_refill_is_a_new_queue_position() -> None:
    book = book_with(QUEUE, ticker(99, 1, 100, 2))
    place(book, 99, type="LIMIT", side="SELL", price=100, quantity=2, icebergQty=1)
    assert book.get(1).queue_ahead == D(2)  # type: ignore[union-attr]
    assert fills(book.on_trade(tape(100, 3), now_ms=1)) == [(D(1), D(100))]
    # the refilled slice joins behind what the book shows at 100 now: 2
    assert book.get(1).queue_ahead == D(2)  # type: ignore[union-attr]
    assert not book.on_trade(tape(100, 2), now_ms=2).fills
    assert fills(book.on_trade(tape(100, 2), now_ms=3)) == [(D(1), D(100))]


def test_iceberg_with_full_model_fills_whole() -> None:
    full = OrderBook(fill_model=FillModel.FULL)
    place(full, 99, type="LIMIT", side="SELL", price=100, quantity=3, icebergQty=1)
    assert fills(full.on_trade(tape(100, "0.1"), now_ms=1)) == [(D(3), D(100))]


# ------------------------------------------------------------ amend


def amend(book: OrderBook, **body: Any) -> Outcome:
    return book.amend(ACCOUNT, parse_amend(body), now_ms=5)


def test_amend_reduces_quantity_and_keeps_the_queue() -> None:
    book = book_with(QUEUE, ticker(100, "1.5", 101, 1))
    place(book, 100, type="LIMIT", side="BUY", price=100, quantity=3, clientOrderId="mine")
    book.on_trade(tape(100, 2), now_ms=1)  # 1.5 ahead traded, 0.5 filled
    out = amend(book, clientOrderId="mine", newQty=2)
    (event,) = out.order_events()
    assert event.execution_type is ExecutionType.AMENDED
    assert event.order.quantity == D(2) and event.order.filled_quantity == D("0.5")
    assert event.order.status is OrderStatus.PARTIALLY_FILLED
    assert book.get(1).queue_ahead == D(0)  # type: ignore[union-attr]
    assert fills(book.on_trade(tape(100, 5), now_ms=2)) == [(D("1.5"), D(100))]


def test_amend_refusals_change_nothing() -> None:
    book = book_with(BOOK, ticker(99, 1, 101, 1))
    place(book, 100, type="LIMIT", side="BUY", price=100, quantity=3)
    book.on_trade(tape(100, 1), now_ms=1)
    before = book.get(1)
    for qty in (3, 4, 1, "0.5"):
        with pytest.raises(AmendRefused):
            amend(book, orderId=1, newQty=qty)
    with pytest.raises(UnknownOrder):
        amend(book, orderId=99, newQty=1)
    with pytest.raises(UnknownOrder):
        book.amend("bob", parse_amend({"orderId": 1, "newQty": 2}), now_ms=5)
    assert book.get(1) == before


def test_amend_an_iceberg_shrinks_its_visible_slice() -> None:
    book = book_with(BOOK, ticker(99, 1, 101, 1))
    place(book, 100, type="LIMIT", side="BUY", price=100, quantity=5, icebergQty=2)
    amend(book, orderId=1, newQty="1.5")
    assert fills(book.on_trade(tape(100, 9), now_ms=1)) == [(D("1.5"), D(100))]


def test_amend_refuses_list_orders() -> None:
    book = book_with(BOOK)
    from tests.trading.helpers import place_oco
    place_oco(book, 40000, side="SELL", above={"type": "LIMIT_MAKER", "price": 41000},
              below={"type": "STOP_LOSS", "stopPrice": 39000})
    with pytest.raises(AmendRefused):
        amend(book, orderId=1, newQty="0.5")


# ------------------------------------------------------------ requests


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"type": "MARKET", "timeInForce": "GTC"}, "timeInForce"),
        ({"type": "LIMIT_MAKER", "price": 1, "timeInForce": "GTC"}, "timeInForce"),
        ({"type": "LIMIT", "price": 1, "timeInForce": "DAY"}, "timeInForce"),
        ({"type": "LIMIT", "price": 1, "icebergQty": 1}, "icebergQty"),
        ({"type": "LIMIT", "price": 1, "quantity": 2, "icebergQty": 1, "timeInForce": "IOC"},
         "timeInForce"),
        ({"type": "MARKET", "icebergQty": "0.1"}, "icebergQty"),
    ],
)
def test_bad_time_in_force_and_iceberg_fields(fields: dict[str, Any], bad: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_order(order_body(**fields))
    assert info.value.field == bad


def test_time_in_force_defaults_to_gtc_and_is_on_the_wire() -> None:
    req = parse_order(order_body(type="STOP_LOSS_LIMIT", price=1, stopPrice=2))
    assert req.time_in_force is not None and req.time_in_force.value == "GTC"
    assert parse_order(order_body(type="MARKET")).time_in_force is None


@pytest.mark.parametrize(
    ("body", "bad"),
    [({"newQty": 1}, "orderId"), ({"orderId": 1}, "newQty"), ({"orderId": 1, "newQty": 0},
     "newQty"), ({"orderId": 1, "clientOrderId": "a", "newQty": 1}, "clientOrderId"),
     ({"orderId": "1", "newQty": 1}, "orderId"), ({"orderId": True, "newQty": 1}, "orderId")],
)
def test_bad_amend_bodies(body: dict[str, Any], bad: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_amend(body)
    assert info.value.field == bad


def test_resting_state_survives_a_record_round_trip() -> None:
    book = book_with(QUEUE, ticker(100, "1.5", 101, 1))
    place(book, 100, type="LIMIT", side="BUY", price=100, quantity=3, icebergQty=1)
    book.on_trade(tape(100, 2), now_ms=1)
    order = book.get(1)
    assert order is not None and order.slice_left == D("0.5")
    assert Order.from_record(order.to_record()) == order


def test_a_book_rebuilt_from_records_keeps_the_known_quotes() -> None:
    book = book_with(BOOK, ticker(99, 1, 100, 1))
    rebuilt = OrderBook.restore([], book.next_order_id, book.next_list_id, fill_model=BOOK)
    assert rebuilt.quote(SYMBOL) is None
    rebuilt.keep_quotes(book)
    assert fills(place(rebuilt, 105, type="MARKET", side="BUY")) == [(D(1), D(100))]
