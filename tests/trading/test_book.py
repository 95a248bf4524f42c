"""OrderBook placement, execution, cancel, OCO and bracket semantics."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson
import pytest

from engine.protocol import server_messages as sm
from engine.trading import (
    ExecutionType,
    ListEvent,
    ListStatus,
    Order,
    OrderBook,
    OrderStatus,
    Side,
    UnknownOrder,
    parse_order,
)
from tests.trading.helpers import (
    ACCOUNT,
    D,
    full_book,
    kinds,
    place,
    place_bracket,
    place_oco,
    run,
    trade,
)

NEW, TRIGGERED, AMENDED, TRADE = (
    ExecutionType.NEW,
    ExecutionType.TRIGGERED,
    ExecutionType.AMENDED,
    ExecutionType.TRADE,
)
CANCELED, EXPIRED, REJECTED = (
    ExecutionType.CANCELED,
    ExecutionType.EXPIRED,
    ExecutionType.REJECTED,
)


def rejection(outcome: object) -> str | None:
    from engine.trading import Outcome

    assert isinstance(outcome, Outcome)
    (event,) = outcome.order_events()
    assert event.execution_type is REJECTED
    assert event.order.status is OrderStatus.REJECTED
    return event.order.reject_reason


# ------------------------------------------------------------------ placement


def test_new_limit_order_wire_shape() -> None:
    book = full_book()
    out = place(book, 40000, now=123, type="LIMIT", price="39000.5")
    assert kinds(out) == [(1, NEW)]
    wire = orjson.loads(sm.order_update(out.order_events()[0], 5).payload)
    assert wire["type"] == "ORDER_UPDATE" and wire["orderType"] == "LIMIT"
    assert wire["executionType"] == "NEW"
    assert wire["order"] == {
        "orderId": 1,
        "clientOrderId": "td-1",
        "listId": None,
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "status": "NEW",
        "quantity": D(1),
        "price": D("39000.5"),
        "stopPrice": None,
        "trailingDelta": None,
        "currentStopPrice": None,
        "trailingExtreme": None,
        "filledQuantity": D(0),
        "avgPrice": None,
        "fee": D(0),
        "timeInForce": "GTC",
        "icebergQty": None,
        "rejectReason": None,
        "createTime": 123,
        "updateTime": 123,
    }
    assert not out.fills
    assert book.order_count(ACCOUNT) == 1
    assert [o.order_id for o in book.open_orders(ACCOUNT)] == [1]


def test_market_fills_at_once_with_fee() -> None:
    book = full_book()
    out = place(book, 40000, type="MARKET", quantity="0.5")
    assert kinds(out) == [(1, NEW), (1, TRADE)]
    filled = out.order_events()[-1].order
    assert filled.status is OrderStatus.FILLED
    assert (filled.filled_quantity, filled.avg_price, filled.fee) == (D("0.5"), D(40000), D(20))
    (fill,) = out.fills
    assert (fill.side, fill.quantity, fill.price, fill.fee) == (Side.BUY, D("0.5"), D(40000), D(20))
    assert book.order_count(ACCOUNT) == 0
    assert [o.order_id for o in book.all_orders(ACCOUNT)] == [1]


@pytest.mark.parametrize(("side", "price"), [("BUY", "40040"), ("SELL", "39960")])
def test_market_slippage_against_taker(side: str, price: str) -> None:
    out = place(full_book(), 40000, slippage=10, type="MARKET", side=side)
    assert out.fills[0].price == D(price)


def test_market_without_price_is_rejected() -> None:
    book = full_book()
    assert rejection(place(book, None, type="MARKET")) == "NO_MARKET_PRICE"
    assert book.all_orders(ACCOUNT) == []


def test_trailing_without_stop_price_needs_a_price() -> None:
    out = place(full_book(), None, type="TRAILING_STOP", side="SELL", trailingDelta=100)
    assert rejection(out) == "NO_MARKET_PRICE"


@pytest.mark.parametrize(
    ("kind", "side", "stop"),
    [
        ("STOP_LOSS", "BUY", 40000),  # >= stop holds at equality
        ("STOP_LOSS", "BUY", 39000),
        ("STOP_LOSS", "SELL", 40000),
        ("STOP_LOSS", "SELL", 41000),
        ("TAKE_PROFIT", "BUY", 40000),
        ("TAKE_PROFIT", "BUY", 41000),
        ("TAKE_PROFIT", "SELL", 40000),
        ("TAKE_PROFIT", "SELL", 39000),
    ],
)
def test_stop_that_would_trigger_immediately(kind: str, side: str, stop: int) -> None:
    out = place(full_book(), 40000, type=kind, side=side, stopPrice=stop)
    assert rejection(out) == "STOP_PRICE_WOULD_TRIGGER_IMMEDIATELY"


@pytest.mark.parametrize(
    ("kind", "side", "stop"),
    [
        ("STOP_LOSS", "BUY", 40001),
        ("STOP_LOSS", "SELL", 39999),
        ("TAKE_PROFIT", "BUY", 39999),
        ("TAKE_PROFIT", "SELL", 40001),
    ],
)
def test_stop_on_the_right_side_is_accepted(kind: str, side: str, stop: int) -> None:
    out = place(full_book(), 40000, type=kind, side=side, stopPrice=stop)
    assert kinds(out) == [(1, NEW)]


def test_stop_without_last_price_is_accepted() -> None:
    out = place(full_book(), None, type="STOP_LOSS", side="SELL", stopPrice=39000)
    assert kinds(out) == [(1, NEW)]


@pytest.mark.parametrize(
    ("side", "price", "reject"),
    [("BUY", 40000, True), ("BUY", 40100, True), ("BUY", 39999, False),
     ("SELL", 40000, True), ("SELL", 39900, True), ("SELL", 40001, False)],
)
def test_limit_maker(side: str, price: int, reject: bool) -> None:
    out = place(full_book(), 40000, type="LIMIT_MAKER", side=side, price=price)
    if reject:
        assert rejection(out) == "ORDER_WOULD_MATCH_IMMEDIATELY"
    else:
        assert kinds(out) == [(1, NEW)]


def test_duplicate_client_order_id() -> None:
    book = full_book()
    place(book, type="MARKET", clientOrderId="abc")  # filled, still known
    assert rejection(place(book, type="MARKET", clientOrderId="abc")) == (
        "DUPLICATE_CLIENT_ORDER_ID"
    )
    # another account may use it
    assert kinds(place(book, account="bob", type="MARKET", clientOrderId="abc"))[0][1] is NEW
    # a rejected order does not reserve its id
    assert rejection(place(book, None, type="MARKET", clientOrderId="zzz")) == "NO_MARKET_PRICE"
    assert kinds(place(book, type="MARKET", clientOrderId="zzz"))[0][1] is NEW


def test_generated_client_id_avoids_user_ids() -> None:
    book = full_book()
    place(book, type="LIMIT", price=1, clientOrderId="td-2")
    out = place(book, type="LIMIT", price=1)
    assert out.order_events()[0].order.client_order_id == "td-2-1"


def test_risk_callback_rejects_with_its_reason() -> None:
    calls: list[tuple[list[tuple[str, str, Side, Decimal, Decimal | None]], Decimal]] = []

    def risk(orders: Sequence[Order], reference: Decimal) -> str | None:
        calls.append(([(o.account, o.symbol, o.side, o.quantity, o.price) for o in orders],
                      reference))
        return "INSUFFICIENT_BALANCE: USDT available 1 < needed 2"

    book = full_book()
    out = book.place(
        ACCOUNT,
        parse_order({"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "quantity": 2,
                     "price": 41000}),
        now_ms=0,
        last_price=D(40000),
        risk=risk,
    )
    assert rejection(out) == "INSUFFICIENT_BALANCE: USDT available 1 < needed 2"
    assert calls == [([(ACCOUNT, "BTCUSDT", Side.SELL, D(2), D(41000))], D(40000))]
    assert book.order_count(ACCOUNT) == 0


def test_too_many_open_orders() -> None:
    book = full_book(max_open_orders=2)
    place(book, type="LIMIT", price=1)
    place(book, type="LIMIT", price=1)
    assert rejection(place(book, type="LIMIT", price=1)) == "TOO_MANY_OPEN_ORDERS"


def test_ids_increase_even_over_rejections() -> None:
    book = full_book()
    place(book, None, type="MARKET")
    out = place(book, type="LIMIT", price=1)
    assert out.order_events()[0].order.order_id == 2
    assert book.next_order_id == 3


# ------------------------------------------------------------------ execution


def test_resting_limit_fills_at_its_price_without_slippage() -> None:
    book = full_book()
    place(book, 40000, type="LIMIT", side="BUY", price=39000)
    assert not run(book, ["39000.01"], slippage=50)[0]
    (out,) = run(book, [38500], slippage=50)
    assert kinds(out) == [(1, TRADE)]
    assert out.fills[0].price == D(39000)


def test_marketable_limit_fills_at_once_never_worse_than_limit() -> None:
    out = place(full_book(), 40000, slippage=10, type="LIMIT", side="BUY", price=41000)
    assert kinds(out) == [(1, NEW), (1, TRADE)]
    assert out.fills[0].price == D(40040)
    capped = place(full_book(), 40000, slippage=10, type="LIMIT", side="BUY", price=40010)
    assert capped.fills[0].price == D(40010)


def test_stop_loss_triggers_and_fills_slipped() -> None:
    book = full_book()
    place(book, 40000, type="STOP_LOSS", side="SELL", stopPrice=39000)
    assert not run(book, ["39000.01"])[0]
    (out,) = run(book, [39000], slippage=10)  # inclusive
    assert kinds(out) == [(1, TRIGGERED), (1, TRADE)]
    assert out.fills[0].price == D("38961")


def test_take_profit_buy_triggers_at_or_below() -> None:
    book = full_book()
    place(book, 40000, type="TAKE_PROFIT", side="BUY", stopPrice=39000)
    (out,) = run(book, [38000])
    assert kinds(out) == [(1, TRIGGERED), (1, TRADE)]
    assert out.fills[0].price == D(38000)


def test_stop_limit_becomes_a_resting_limit() -> None:
    book = full_book()
    place(book, 40000, type="STOP_LOSS_LIMIT", side="SELL", stopPrice=39000, price=39500)
    triggered, waiting, filled = run(book, [39000, 39499, 39600])
    assert kinds(triggered) == [(1, TRIGGERED)]
    order = triggered.order_events()[0].order
    assert order.status is OrderStatus.NEW and order.triggered and order.working_as_limit
    assert not waiting
    assert kinds(filled) == [(1, TRADE)]
    assert filled.fills[0].price == D(39500)  # resting: at its limit


def test_stop_limit_marketable_on_trigger_fills_at_once() -> None:
    book = full_book()
    place(book, 40000, type="STOP_LOSS_LIMIT", side="SELL", stopPrice=39000, price=38000)
    (out,) = run(book, [39000])
    assert kinds(out) == [(1, TRIGGERED), (1, TRADE)]
    assert out.fills[0].price == D(39000)


def test_stale_tick_changes_nothing() -> None:
    book = full_book()
    place(book, 40000, type="LIMIT", side="BUY", price=39000)
    place(book, 40000, type="TRAILING_STOP", side="SELL", trailingDelta=100)
    stale = book.on_trade(trade(30000, at=0), now_ms=5001, max_tick_age_ms=5000)
    assert not stale
    fresh = book.on_trade(trade(30000, at=1), now_ms=5001, max_tick_age_ms=5000)
    assert {e.execution_type for e in fresh.order_events()} == {TRIGGERED, TRADE}


def test_other_symbols_are_untouched() -> None:
    book = full_book()
    place(book, 40000, type="LIMIT", side="BUY", price=39000)
    assert not book.on_trade(trade(1, symbol="ETHUSDT"), now_ms=0)


# --------------------------------------------------------------------- cancel


def test_cancel_semantics() -> None:
    book = full_book()
    place(book, type="LIMIT", price=39000, clientOrderId="mine")
    place(book, type="MARKET")
    with pytest.raises(UnknownOrder):
        book.cancel(ACCOUNT, order_id=99, now_ms=1)
    with pytest.raises(UnknownOrder):
        book.cancel("bob", order_id=1, now_ms=1)  # not bob's
    with pytest.raises(UnknownOrder):
        book.cancel(ACCOUNT, order_id=2, now_ms=1)  # filled
    with pytest.raises(UnknownOrder):
        book.cancel(ACCOUNT, client_order_id="nope", now_ms=1)
    assert book.get(1) is not None and book.get(1).status is OrderStatus.NEW  # type: ignore[union-attr]
    out = book.cancel(ACCOUNT, client_order_id="mine", now_ms=7)
    assert kinds(out) == [(1, CANCELED)]
    assert out.order_events()[0].order.update_time == 7
    with pytest.raises(UnknownOrder):
        book.cancel(ACCOUNT, order_id=1, now_ms=8)  # already cancelled
    assert book.order_count(ACCOUNT) == 0
    assert not run(book, [1])[0]


# ------------------------------------------------------------------------ OCO

OCO_SELL: dict[str, Any] = {
    "side": "SELL",
    "above": {"type": "LIMIT_MAKER", "price": 41000},
    "below": {"type": "STOP_LOSS", "stopPrice": 39000},
}


def test_oco_accepted() -> None:
    out = place_oco(full_book(), 40000, **OCO_SELL)
    (list_event,) = out.list_events()
    assert orjson.loads(sm.order_list_update(list_event, 5).payload)["list"] == {
        "listId": 1, "listType": "OCO", "status": "EXECUTING", "orderIds": [1, 2],
        "rejectReason": None,
    }
    assert kinds(out) == [(1, NEW), (2, NEW)]
    assert isinstance(out.events[0], ListEvent)
    assert all(orjson.loads(sm.order_update(e, 5).payload)["orderType"] == "OCO"
               for e in out.order_events())


@pytest.mark.parametrize("last", [41000, 39000, 42000, 38000])
def test_oco_bad_prices(last: int) -> None:
    book = full_book()
    out = place_oco(book, last, **OCO_SELL)
    (list_event,) = out.list_events()
    assert list_event.order_list.status is ListStatus.REJECTED
    assert list_event.order_list.reject_reason == "OCO_BAD_PRICES"
    assert kinds(out) == [(1, REJECTED), (2, REJECTED)]
    assert all(e.order.reject_reason == "OCO_BAD_PRICES" for e in out.order_events())
    assert book.order_count(ACCOUNT) == 0


def test_oco_buy_mirror() -> None:
    legs: dict[str, Any] = {"side": "BUY", "above": {"type": "STOP_LOSS", "stopPrice": 41000},
            "below": {"type": "TAKE_PROFIT", "stopPrice": 39000}}
    assert kinds(place_oco(full_book(), 40000, **legs)) == [(1, NEW), (2, NEW)]
    rejected = place_oco(full_book(), 41500, **legs)
    assert rejected.list_events()[0].order_list.reject_reason == "OCO_BAD_PRICES"


def test_oco_without_price() -> None:
    out = place_oco(full_book(), None, **OCO_SELL)
    assert out.list_events()[0].order_list.reject_reason == "NO_MARKET_PRICE"


def test_oco_stop_leg_expires_the_other() -> None:
    book = full_book()
    place_oco(book, 40000, **OCO_SELL)
    (out,) = run(book, [38000])
    assert kinds(out) == [(2, TRIGGERED), (2, TRADE), (1, EXPIRED)]
    assert out.list_events()[0].order_list.status is ListStatus.ALL_DONE
    assert len(out.fills) == 1
    assert not run(book, [42000])[0]


def test_oco_limit_leg_fill_expires_the_stop() -> None:
    book = full_book()
    place_oco(book, 40000, **OCO_SELL)
    (out,) = run(book, [41000])
    assert kinds(out) == [(1, TRADE), (2, EXPIRED)]
    assert out.fills[0].price == D(41000)


def test_oco_stop_limit_leg_rests_after_trigger() -> None:
    book = full_book()
    legs = dict(OCO_SELL, below={"type": "STOP_LOSS_LIMIT", "stopPrice": 39000, "price": 39200})
    place_oco(book, 40000, **legs)
    triggered, filled = run(book, [39000, 39300])
    assert kinds(triggered) == [(2, TRIGGERED), (1, EXPIRED)]
    assert not triggered.list_events()  # the triggered leg still works
    assert kinds(filled) == [(2, TRADE)]
    assert filled.list_events()[0].order_list.status is ListStatus.ALL_DONE


def test_cancel_one_leg_cancels_the_list() -> None:
    book = full_book()
    place_oco(book, 40000, **OCO_SELL)
    out = book.cancel(ACCOUNT, order_id=2, now_ms=1)
    assert kinds(out) == [(1, CANCELED), (2, CANCELED)]
    assert out.list_events()[0].order_list.status is ListStatus.ALL_DONE
    with pytest.raises(UnknownOrder):
        book.cancel(ACCOUNT, list_id=1, now_ms=2)


def test_cancel_by_list_id() -> None:
    book = full_book()
    place_oco(book, 40000, **OCO_SELL)
    with pytest.raises(UnknownOrder):
        book.cancel("bob", list_id=1, now_ms=1)
    assert kinds(book.cancel(ACCOUNT, list_id=1, now_ms=1)) == [(1, CANCELED), (2, CANCELED)]


# -------------------------------------------------------------------- bracket

BRACKET_BUY: dict[str, Any] = {
    "side": "BUY",
    "entry": {"type": "LIMIT", "price": 39500},
    "takeProfit": {"price": 41000},
    "stopLoss": {"stopPrice": 39000},
}


def test_bracket_legs_pending_until_entry_fills() -> None:
    book = full_book()
    out = place_bracket(book, 40000, **BRACKET_BUY)
    assert out.list_events()[0].order_list.order_ids == (1, 2, 3)
    assert kinds(out) == [(1, NEW), (2, NEW), (3, NEW)]
    statuses = [e.order.status for e in out.order_events()]
    assert statuses == [OrderStatus.NEW, OrderStatus.PENDING_NEW, OrderStatus.PENDING_NEW]
    assert [e.order.side for e in out.order_events()] == [Side.BUY, Side.SELL, Side.SELL]
    assert not run(book, [41500])[0]  # the take-profit is still pending
    entry_fill, same_trade_later, stop = run(book, [38900, 38900, 38800])
    assert kinds(entry_fill) == [(1, TRADE), (2, NEW), (3, NEW)]
    assert [e.order.status for e in entry_fill.order_events()[1:]] == [OrderStatus.NEW] * 2
    assert kinds(same_trade_later) == [(3, TRIGGERED), (3, TRADE), (2, EXPIRED)]
    assert same_trade_later.list_events()[0].order_list.status is ListStatus.ALL_DONE
    assert not stop


def test_bracket_market_entry_releases_exits_at_once() -> None:
    book = full_book()
    out = place_bracket(book, 40000, slippage=10, **dict(BRACKET_BUY, entry={"type": "MARKET"}))
    assert kinds(out) == [(1, NEW), (2, NEW), (3, NEW), (1, TRADE), (2, NEW), (3, NEW)]
    assert out.fills[0].price == D(40040)
    (tp,) = run(book, [41000])
    assert kinds(tp) == [(2, TRADE), (3, EXPIRED)]
    assert tp.fills[0].side is Side.SELL and tp.fills[0].price == D(41000)


@pytest.mark.parametrize(
    ("side", "tp", "sl"),
    [("BUY", 39000, 38000), ("BUY", 41000, 40000), ("SELL", 41000, 42000),
     ("SELL", 39000, 39000)],
)
def test_bracket_bad_prices(side: str, tp: int, sl: int) -> None:
    book = full_book()
    out = place_bracket(book, 40000, side=side, entry={"type": "MARKET"},
                        takeProfit={"price": tp}, stopLoss={"stopPrice": sl})
    assert out.list_events()[0].order_list.reject_reason == "BRACKET_BAD_PRICES"
    assert kinds(out) == [(1, REJECTED), (2, REJECTED), (3, REJECTED)]
    assert not out.fills and book.order_count(ACCOUNT) == 0


def test_bracket_cancel_entry_cancels_all() -> None:
    book = full_book()
    place_bracket(book, 40000, **BRACKET_BUY)
    out = book.cancel(ACCOUNT, order_id=3, now_ms=1)
    assert kinds(out) == [(1, CANCELED), (2, CANCELED), (3, CANCELED)]
    assert out.list_events()[0].order_list.status is ListStatus.ALL_DONE


def test_bracket_client_ids_must_differ_from_generated_ones() -> None:
    out = place_bracket(full_book(), 40000, **dict(
        BRACKET_BUY, entry={"type": "LIMIT", "price": 39500, "clientOrderId": "td-3"}))
    assert out.list_events()[0].order_list.reject_reason == "DUPLICATE_CLIENT_ORDER_ID"


def test_bracket_with_trailing_stop_limit_exit() -> None:
    book = full_book()
    place_bracket(book, 40000, **dict(
        BRACKET_BUY, stopLoss={"stopPrice": 39400, "price": 39000, "trailingDelta": 100}))
    fill, activate, trigger = run(book, [39500, 39400, 39006])
    assert kinds(fill) == [(1, TRADE), (2, NEW), (3, NEW)]
    assert kinds(activate) == [(3, AMENDED)]
    assert activate.order_events()[0].order.current_stop_price == D(39006)
    assert kinds(trigger) == [(3, TRIGGERED), (3, TRADE), (2, EXPIRED)]


# -------------------------------------------------------------------- records


def test_records_round_trip_and_restore_keeps_working() -> None:
    book = full_book()
    place(book, 40000, type="TRAILING_STOP", side="SELL", trailingDelta=700)
    place_oco(book, 40000, **dict(OCO_SELL, above={"type": "LIMIT_MAKER", "price": 43000}))
    run(book, [42000])
    records = [o.to_record() for o in book.all_orders()]
    orders = [Order.from_record(r) for r in records]
    assert orders == book.all_orders()
    restored = OrderBook.restore(orders, book.next_order_id, book.next_list_id,
                                 fill_model=full_book().fill_model)
    assert restored.get(1).trailing_extreme == D(42000)  # type: ignore[union-attr]
    (out,) = run(restored, [38900])
    assert kinds(out) == [(1, TRIGGERED), (1, TRADE), (3, TRIGGERED), (3, TRADE), (2, EXPIRED)]
    assert restored.next_order_id == 4 and restored.next_list_id == 2
