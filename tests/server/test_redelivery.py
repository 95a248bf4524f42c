"""The gateway's clientOrderIds and the answers of redelivered commands
(engine.server.redelivery), built from hand-written orders as ``get_orders``
shows them (the rules: docs/scaling.md, "Commands: executed at most once")."""

from __future__ import annotations

import re
from typing import Any

import orjson

from engine.protocol.commands import decode_command
from engine.protocol.enums import Action
from engine.server.redelivery import answer_from_orders, assign_client_ids, needs_orders

ID_RULE = re.compile(r"^[A-Za-z0-9_.:-]{1,36}$")  # docs/protocol.md, clientOrderId


def _order(order_id: int, cid: str, status: str = "NEW", list_id: int | None = None,
           quantity: float = 0.01) -> dict[str, Any]:
    return {"orderId": order_id, "clientOrderId": cid, "listId": list_id,
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "status": status,
            "quantity": quantity, "price": 80000}


def _answer(action: Action, body: dict[str, Any], orders: list[dict[str, Any]]
            ) -> list[dict[str, Any]]:
    return [orjson.loads(o.payload) for o in answer_from_orders(action, body, orders, "r1", 5)]


def test_every_order_placed_gets_a_valid_id_the_given_ones_are_kept() -> None:
    body = {"symbol": "BTCUSDT", "side": "SELL", "quantity": "0.01",
            "above": {"type": "LIMIT_MAKER", "price": "90000", "clientOrderId": "mine"},
            "below": {"type": "STOP_LOSS", "stopPrice": "70000"}}
    named = assign_client_ids(Action.PLACE_OCO, body)
    assert named["above"]["clientOrderId"] == "mine"
    below = named["below"]["clientOrderId"]
    assert ID_RULE.match(below) and below.startswith("gw") and below.endswith("-b")
    assert "clientOrderId" not in body["below"]  # the caller's body is not changed
    # what the engine decodes again from the stream is valid and keeps the ids
    again = decode_command(orjson.dumps({"action": "place_oco", **named}))
    assert again.body["below"]["clientOrderId"] == below

    one = assign_client_ids(Action.PLACE_ORDER, {"symbol": "BTCUSDT"})
    other = assign_client_ids(Action.PLACE_ORDER, {"symbol": "BTCUSDT"})
    assert ID_RULE.match(one["clientOrderId"]) and one["clientOrderId"] != other["clientOrderId"]
    bracket = assign_client_ids(Action.PLACE_BRACKET, {"entry": {}, "takeProfit": {},
                                                        "stopLoss": {}})
    ids = [bracket[k]["clientOrderId"] for k in ("entry", "takeProfit", "stopLoss")]
    assert len(set(ids)) == 3 and all(ID_RULE.match(i) for i in ids)
    assert assign_client_ids(Action.CANCEL_ORDER, {"orderId": 3}) == {"orderId": 3}


def test_a_placed_order_is_answered_by_its_current_state_else_executed() -> None:
    orders = [_order(1, "dip", "CANCELED"), _order(4, "dip", "PARTIALLY_FILLED")]
    got = _answer(Action.PLACE_ORDER, {"clientOrderId": "dip"}, orders)
    assert len(got) == 1
    assert got[0]["type"] == "ORDER_UPDATE" and got[0]["executionType"] == "NEW"
    assert got[0]["order"]["orderId"] == 4 and got[0]["id"] == "r1"  # the newest holder
    assert got[0]["redelivered"] is True
    assert _answer(Action.PLACE_ORDER, {"clientOrderId": "new"}, orders) == []
    assert not needs_orders(Action.PLACE_ORDER, {"symbol": "BTCUSDT"})  # no id: run it


def test_a_placed_list_is_answered_as_the_list_and_its_legs() -> None:
    orders = [_order(7, "x-a", "FILLED", 3), _order(8, "x-b", "EXPIRED", 3), _order(9, "z")]
    got = _answer(Action.PLACE_OCO, {"above": {"clientOrderId": "x-a"},
                                     "below": {"clientOrderId": "x-b"}}, orders)
    assert [m["type"] for m in got] == ["ORDER_LIST_UPDATE", "ORDER_UPDATE", "ORDER_UPDATE"]
    assert got[0]["list"] == {"listId": 3, "listType": "OCO", "status": "ALL_DONE",
                              "orderIds": [7, 8], "rejectReason": None}
    assert [m["order"]["orderId"] for m in got[1:]] == [7, 8]
    assert {m["orderType"] for m in got[1:]} == {"OCO"} and {m["id"] for m in got} == {"r1"}
    # the first leg's id held by a single order: not this list, executed
    assert _answer(Action.PLACE_OCO, {"above": {"clientOrderId": "z"}}, orders) == []


def test_cancel_and_amend_already_done_are_answered_by_the_state_else_executed() -> None:
    orders = [_order(2, "a", "CANCELED"), _order(3, "b", "NEW", quantity=0.005)]
    got = _answer(Action.CANCEL_ORDER, {"orderId": 2}, orders)
    assert [(m["executionType"], m["order"]["orderId"]) for m in got] == [("CANCELED", 2)]
    assert _answer(Action.CANCEL_ORDER, {"clientOrderId": "b"}, orders) == []  # still open
    got = _answer(Action.AMEND_ORDER, {"orderId": 3, "newQty": "0.005"}, orders)
    assert [m["executionType"] for m in got] == ["AMENDED"]
    assert _answer(Action.AMEND_ORDER, {"orderId": 3, "newQty": "0.001"}, orders) == []
    assert _answer(Action.CANCEL_ORDER, {"orderId": 99}, orders) == []
    assert not needs_orders(Action.CANCEL_ORDER, {"listId": 3})
