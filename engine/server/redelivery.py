"""Idempotent commands across an engine restart: the gateway names every order
before it enters the command stream, and a command redelivered to a restarted
engine is answered from what the store already holds.

Edge module (used by :mod:`engine.server.redis_bus`). ``assign_client_ids``
runs on a gateway's ConnectionActor threads (in ``RedisBus.submit``);
``answer_from_orders`` runs on the engine's command thread, with the
``ORDERS`` that the engine's actor answered for the account (``get_orders``
``all``: the book loaded from the store at start).

* ``place_order`` / ``place_oco`` / ``place_bracket`` without a
  ``clientOrderId`` (for a list: on a leg) get one, ``gw<22 hex>`` (a list's
  legs ``gw<22 hex>-a``, ``-b`` / ``-e``, ``-t``, ``-s``), so a redelivery
  carries the same id. A redelivered placement whose (first leg's) id is held
  by an order of the account is answered by that order's current state (the
  newest order holding it), as the placement answers (``ORDER_UPDATE``
  ``NEW``; a list: ``ORDER_LIST_UPDATE`` then one ``ORDER_UPDATE`` per leg)
  with ``"redelivered": true`` and no ``seq``; else it is executed.
* ``cancel_order`` by ``orderId`` / ``clientOrderId`` whose order is already
  ``CANCELED``, and ``amend_order`` whose order already has ``newQty``, are
  answered by the order's current state (``CANCELED`` / ``AMENDED``); any other
  redelivered command is executed (the read-only ones answer the current
  state anyway).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.protocol.enums import Action, ExecutionType, MessageType
from engine.protocol.server_messages import Outgoing, _encode, _with_id

__all__ = ["LEGS", "answer_from_orders", "assign_client_ids", "needs_orders"]

RequestId = str | int | None

#: The legs of each order-placing command that carry a ``clientOrderId``, with
#: the suffix of the id a gateway gives them ("" = the body itself).
LEGS: dict[Action, tuple[tuple[str, str], ...]] = {
    Action.PLACE_ORDER: (("", ""),),
    Action.PLACE_OCO: (("above", "-a"), ("below", "-b")),
    Action.PLACE_BRACKET: (("entry", "-e"), ("takeProfit", "-t"), ("stopLoss", "-s")),
}
_LIST_TYPE = {Action.PLACE_OCO: "OCO", Action.PLACE_BRACKET: "BRACKET"}
_OPEN = frozenset({"PENDING_NEW", "NEW", "PARTIALLY_FILLED"})


def _new_base() -> str:
    return "gw" + uuid.uuid4().hex[:22]


def assign_client_ids(action: Action, body: Mapping[str, Any],
                      new_base: Callable[[], str] = _new_base) -> dict[str, Any]:
    """``body`` (a validated command) with a ``clientOrderId`` on every order it
    places that has none; other commands unchanged (a copy)."""
    out = dict(body)
    legs = LEGS.get(action)
    if legs is None:
        return out
    base = new_base()
    for name, suffix in legs:
        if not name:
            out.setdefault("clientOrderId", base)
            continue
        leg = out.get(name)
        if isinstance(leg, Mapping) and leg.get("clientOrderId") is None:
            out[name] = {**leg, "clientOrderId": base + suffix}
    return out


def _first_id(action: Action, body: Mapping[str, Any]) -> str | None:
    name = LEGS[action][0][0]
    holder = body.get(name) if name else body
    cid = holder.get("clientOrderId") if isinstance(holder, Mapping) else None
    return cid if isinstance(cid, str) else None


def needs_orders(action: Action, body: Mapping[str, Any]) -> bool:
    """Whether a redelivery of this command is answered from the account's
    orders (else it is simply executed)."""
    if action in LEGS:
        return _first_id(action, body) is not None
    if action is Action.CANCEL_ORDER:
        return "orderId" in body or "clientOrderId" in body
    return action is Action.AMEND_ORDER


def _newest(orders: Sequence[Mapping[str, Any]], body: Mapping[str, Any],
            cid: str | None = None) -> Mapping[str, Any] | None:
    if cid is None and isinstance(body.get("orderId"), int):
        found = [o for o in orders if o.get("orderId") == body["orderId"]]
    else:
        want = cid if cid is not None else body.get("clientOrderId")
        found = [o for o in orders if o.get("clientOrderId") == want]
    return max(found, key=lambda o: int(o["orderId"])) if found else None


def _same_qty(order: Mapping[str, Any], new_qty: Any) -> bool:
    try:
        return Decimal(str(order["quantity"])) == Decimal(str(new_qty))
    except (InvalidOperation, KeyError, ValueError):
        return False


def _update(order: Mapping[str, Any], order_type: str, kind: ExecutionType,
            request_id: RequestId, ts: int) -> Outgoing:
    msg: dict[str, Any] = {"type": MessageType.ORDER_UPDATE, "orderType": order_type,
                           "executionType": kind, "order": dict(order),
                           "redelivered": True, "timestamp": ts}
    return _encode(_with_id(msg, request_id))


def _list_answer(action: Action, first: Mapping[str, Any],
                 orders: Sequence[Mapping[str, Any]], request_id: RequestId,
                 ts: int) -> list[Outgoing]:
    """ORDER_LIST_UPDATE then one ORDER_UPDATE per leg, as a placement answers."""
    list_type = _LIST_TYPE[action]
    legs = sorted((o for o in orders if o.get("listId") == first.get("listId")),
                  key=lambda o: int(o["orderId"]))
    status = "EXECUTING" if any(o.get("status") in _OPEN for o in legs) else "ALL_DONE"
    head: dict[str, Any] = {"type": MessageType.ORDER_LIST_UPDATE, "list": {
        "listId": first.get("listId"), "listType": list_type, "status": status,
        "orderIds": [o["orderId"] for o in legs], "rejectReason": None},
        "redelivered": True, "timestamp": ts}
    return [_encode(_with_id(head, request_id)),
            *(_update(o, list_type, ExecutionType.NEW, request_id, ts) for o in legs)]


def answer_from_orders(action: Action, body: Mapping[str, Any],
                       orders: Sequence[Mapping[str, Any]], request_id: RequestId,
                       ts: int) -> list[Outgoing]:
    """The answer of a redelivered command from the account's orders (the
    ``orders`` of an ``ORDERS`` reply): the messages to send, in order, or
    none when the command must be executed."""
    if action in LEGS:
        order = _newest(orders, body, _first_id(action, body))
        if order is None:
            return []
        if action in _LIST_TYPE:
            if order.get("listId") is None:
                return []  # the id is held by a single order: not this command's
            return _list_answer(action, order, orders, request_id, ts)
        if order.get("listId") is not None:
            return []
        return [_update(order, str(order.get("type")), ExecutionType.NEW, request_id, ts)]
    order = _newest(orders, body)
    if order is None or order.get("listId") is not None:
        return []  # a leg's list type is not in the order: executed again
    if action is Action.CANCEL_ORDER and order.get("status") == "CANCELED":
        kind = ExecutionType.CANCELED
    elif (action is Action.AMEND_ORDER and order.get("status") in _OPEN
          and _same_qty(order, body.get("newQty"))):
        kind = ExecutionType.AMENDED
    else:
        return []
    return [_update(order, str(order.get("type")), kind, request_id, ts)]
