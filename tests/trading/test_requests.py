"""Parsing and validation of command bodies."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import UnknownSymbol
from engine.trading import (
    OrderType,
    RequestError,
    Side,
    parse_bracket,
    parse_cancel,
    parse_oco,
    parse_order,
)
from tests.trading.helpers import D


def body(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": 1}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def error_field(raw: dict[str, Any], parser: Any = parse_order) -> str:
    with pytest.raises(RequestError) as info:
        parser(raw)
    return info.value.field


def test_numbers_from_floats_and_strings_are_exact() -> None:
    req = parse_order(body(type="LIMIT", quantity=0.1, price="40000.10"))
    assert req.quantity == D("0.1") and str(req.quantity) == "0.1"
    assert req.price == D("40000.10")
    assert req.type is OrderType.LIMIT and req.side is Side.BUY


def test_lower_case_symbol_is_upper_cased() -> None:
    assert parse_order(body(symbol="btcusdt")).symbol == "BTCUSDT"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"symbol": None}, "symbol"),
        ({"symbol": 5}, "symbol"),
        ({"side": "buy"}, "side"),
        ({"side": None}, "side"),
        ({"type": "FOO"}, "type"),
        ({"type": None}, "type"),
        ({"quantity": None}, "quantity"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": -1}, "quantity"),
        ({"quantity": "NaN"}, "quantity"),
        ({"quantity": float("nan")}, "quantity"),
        ({"quantity": float("inf")}, "quantity"),
        ({"quantity": "Infinity"}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"quantity": "1 000"}, "quantity"),
        ({"quantity": "1e20"}, "quantity"),
        ({"quantity": "1e-30"}, "quantity"),
        ({"quantity": [1]}, "quantity"),
        ({"type": "LIMIT"}, "price"),
        ({"type": "MARKET", "price": 1}, "price"),
        ({"type": "MARKET", "stopPrice": 1}, "stopPrice"),
        ({"type": "LIMIT", "price": 1, "trailingDelta": 5}, "trailingDelta"),
        ({"type": "STOP_LOSS"}, "stopPrice"),
        ({"type": "STOP_LOSS", "stopPrice": 1, "price": 1}, "price"),
        ({"type": "STOP_LOSS_LIMIT", "stopPrice": 1}, "price"),
        ({"type": "TAKE_PROFIT_LIMIT", "price": 1}, "stopPrice"),
        ({"type": "TRAILING_STOP", "stopPrice": 1}, "trailingDelta"),
        ({"type": "TRAILING_STOP", "trailingDelta": 0}, "trailingDelta"),
        ({"type": "TRAILING_STOP", "trailingDelta": 10001}, "trailingDelta"),
        ({"type": "TRAILING_STOP", "trailingDelta": 1.5}, "trailingDelta"),
        ({"type": "TRAILING_STOP", "trailingDelta": True}, "trailingDelta"),
        ({"clientOrderId": ""}, "clientOrderId"),
        ({"clientOrderId": "x" * 37}, "clientOrderId"),
        ({"clientOrderId": "a b"}, "clientOrderId"),
        ({"clientOrderId": 7}, "clientOrderId"),
    ],
)
def test_bad_order_fields_are_named(fields: dict[str, Any], field: str) -> None:
    raw = body()
    for key, value in fields.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    assert error_field(raw) == field


@pytest.mark.parametrize("symbol", ["BTC-USDT", "B", "X" * 21, "btc usdt", "\u0131\u0131"])
def test_a_string_that_is_not_a_symbol_is_an_unknown_symbol(symbol: str) -> None:
    with pytest.raises(UnknownSymbol):
        parse_order(body(symbol=symbol))
    with pytest.raises(UnknownSymbol):
        parse_oco({"symbol": symbol, "side": "SELL", "quantity": 1})


def test_not_an_object() -> None:
    assert error_field([], parse_order) == "body"  # type: ignore[arg-type]


def test_trailing_delta_forms() -> None:
    for value in (1, "500", 10000, 700.0):
        req = parse_order(body(type="TRAILING_STOP", side="SELL", trailingDelta=value))
        assert isinstance(req.trailing_delta, int)
    req = parse_order(body(type="STOP_LOSS", stopPrice="39000", trailingDelta=100))
    assert req.stop_price == D(39000) and req.trailing_delta == 100


def oco(**fields: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "quantity": "1",
        "above": {"type": "LIMIT_MAKER", "price": 41000},
        "below": {"type": "STOP_LOSS_LIMIT", "stopPrice": 39000, "price": 38900},
    }
    raw.update(fields)
    return raw


def test_oco_parses() -> None:
    req = parse_oco(oco())
    assert req.above.type is OrderType.LIMIT_MAKER and req.below.price == D(38900)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"above": None}, "above"),
        ({"above": 5}, "above"),
        ({"above": {"type": "STOP_LOSS", "stopPrice": 1}}, "above.type"),
        ({"below": {"type": "LIMIT_MAKER", "price": 1}}, "below.type"),
        ({"below": {"type": "STOP_LOSS_LIMIT", "stopPrice": 1}}, "below.price"),
        ({"above": {"type": "TAKE_PROFIT"}}, "above.stopPrice"),
        ({"side": "BUY"}, "above.type"),
        (
            {
                "above": {"type": "LIMIT_MAKER", "price": 2, "clientOrderId": "x"},
                "below": {"type": "STOP_LOSS", "stopPrice": 1, "clientOrderId": "x"},
            },
            "below.clientOrderId",
        ),
    ],
)
def test_bad_oco_fields(fields: dict[str, Any], field: str) -> None:
    assert error_field(oco(**fields), parse_oco) == field


def bracket(**fields: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "quantity": "1",
        "entry": {"type": "LIMIT", "price": 40000},
        "takeProfit": {"price": 42000},
        "stopLoss": {"stopPrice": 39000},
    }
    raw.update(fields)
    return raw


def test_bracket_parses() -> None:
    req = parse_bracket(bracket(stopLoss={"stopPrice": 39000, "price": 38900, "trailingDelta": 50}))
    assert req.entry_type is OrderType.LIMIT and req.entry_price == D(40000)
    assert req.stop_limit_price == D(38900) and req.stop_trailing_delta == 50


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"entry": None}, "entry"),
        ({"entry": {"type": "STOP_LOSS"}}, "entry.type"),
        ({"entry": {"type": "STOP_LOSS", "stopPrice": 1}}, "entry.stopPrice"),
        ({"entry": {"type": "LIMIT"}}, "entry.price"),
        ({"entry": {"type": "MARKET", "price": 1}}, "entry.price"),
        ({"takeProfit": {}}, "takeProfit.price"),
        ({"takeProfit": None}, "takeProfit"),
        ({"stopLoss": {"price": 1}}, "stopLoss.stopPrice"),
        ({"stopLoss": {"stopPrice": 1, "trailingDelta": 0}}, "stopLoss.trailingDelta"),
    ],
)
def test_bad_bracket_fields(fields: dict[str, Any], field: str) -> None:
    assert error_field(bracket(**fields), parse_bracket) == field


def test_cancel_parsing() -> None:
    assert parse_cancel({"orderId": 5}).order_id == 5
    assert parse_cancel({"clientOrderId": "abc"}).client_order_id == "abc"
    assert parse_cancel({"listId": 2}).list_id == 2
    assert error_field({}, parse_cancel) == "orderId"
    assert error_field({"orderId": 1, "listId": 2}, parse_cancel) == "listId"
    assert error_field({"orderId": "x"}, parse_cancel) == "orderId"
    assert error_field({"orderId": "5"}, parse_cancel) == "orderId"  # ids are JSON integers
    assert error_field({"orderId": 5.0}, parse_cancel) == "orderId"
    assert error_field({"listId": True}, parse_cancel) == "listId"
    assert error_field({"orderId": 0}, parse_cancel) == "orderId"


# ---------------------------------------------------------------- unknown fields


@pytest.mark.parametrize(
    ("raw", "parser", "field"),
    [
        (body(type="MARKET", quantitty="1"), parse_order, "quantitty"),
        (body(type="LIMIT", price=1, stopPirce=2), parse_order, "stopPirce"),
        (body(type="MARKET", b="1", a="2"), parse_order, "a"),  # first in sorted order
        (oco(extra=1), parse_oco, "extra"),
        (oco(above={"type": "LIMIT_MAKER", "price": 41000, "timeInForce": "GTC"}), parse_oco,
         "above.timeInForce"),
        (oco(below={"type": "STOP_LOSS", "stopPrice": 39000, "stopprice": 1}), parse_oco,
         "below.stopprice"),
        (bracket(takeprofit={"price": 1}), parse_bracket, "takeprofit"),
        (bracket(entry={"type": "LIMIT", "price": 40000, "quantity": 2}), parse_bracket,
         "entry.quantity"),
        (bracket(takeProfit={"price": 42000, "stopPrice": 1}), parse_bracket,
         "takeProfit.stopPrice"),
        (bracket(stopLoss={"stopPrice": 39000, "trailing": 50}), parse_bracket,
         "stopLoss.trailing"),
    ],
)
def test_unknown_fields_are_refused_by_name(raw: dict[str, Any], parser: Any,
                                            field: str) -> None:
    with pytest.raises(RequestError) as info:
        parser(raw)
    assert info.value.field == field and info.value.message == f"{field}: unknown field"


def test_envelope_and_announced_fields_are_known() -> None:
    req = parse_order(body(type="LIMIT", price=1, action="place_order", id="x1",
                           timeInForce="GTC", icebergQty="0.1"))
    assert req.price == D(1)
    parse_oco(oco(action="place_oco", id=7))
    parse_bracket(bracket(action="place_bracket", id="b"))
