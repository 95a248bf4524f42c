"""Client commands: decoding one text frame into a typed :class:`Command`.

Pure core. :func:`decode_command` never raises anything but a
:class:`~engine.errors.ProtocolError` subclass, whatever bytes it is given;
the connection answers that error with an ``ERROR`` frame and stays open.
Field-level validation of order bodies belongs to :mod:`engine.trading`;
this module checks the envelope (``action``, ``id``) and the fields of the
non-trading commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from engine.config import SYMBOL_RE
from engine.errors import BadRequest, UnknownAction

__all__ = [
    "ACCOUNT_ACTIONS",
    "ACTIONS",
    "Command",
    "RequestId",
    "decode_command",
    "normalize_symbol",
]

RequestId = str | int | None

#: Every action of protocol version 1.
ACTIONS = frozenset(
    {
        "subscribe_ticker",
        "unsubscribe_ticker",
        "subscribe_book",
        "unsubscribe_book",
        "get_positions",
        "get_portfolio",
        "get_orders",
        "place_order",
        "place_oco",
        "place_bracket",
        "cancel_order",
        "auth",
        "ping",
    }
)
#: Actions that act on an account and so need authentication.
ACCOUNT_ACTIONS = frozenset(
    {"get_positions", "get_portfolio", "get_orders", "place_order", "place_oco",
     "place_bracket", "cancel_order"}
)
_MAX_ID_LEN = 64
_MAX_INT_ID = 2**53 - 1


@dataclass(frozen=True, slots=True)
class Command:
    """A decoded command: its action, its request id and its body (the JSON object)."""

    action: str
    request_id: RequestId
    body: dict[str, Any]

    def symbol(self) -> str:
        """The command's ``symbol`` field, validated and upper-cased."""
        return normalize_symbol(self.body.get("symbol"), self.request_id)

    def optional_str(self, name: str) -> str | None:
        value = self.body.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise BadRequest(f"field '{name}' must be a string", self.request_id)
        return value


def normalize_symbol(value: Any, request_id: RequestId = None, field: str = "symbol") -> str:
    """Upper-case a symbol and check it matches ``[A-Z0-9]{2,20}``."""
    if value is None:
        raise BadRequest(f"field '{field}' is required", request_id)
    if not isinstance(value, str):
        raise BadRequest(f"field '{field}' must be a string", request_id)
    sym = value.upper()
    if not SYMBOL_RE.match(sym):
        raise BadRequest(f"field '{field}' must match [A-Z0-9]{{2,20}}", request_id)
    return sym


def _request_id(obj: dict[str, Any]) -> RequestId:
    rid = obj.get("id")
    if rid is None:
        return None
    if isinstance(rid, bool):
        raise BadRequest("field 'id' must be a string (at most 64 characters) or an integer")
    if isinstance(rid, int):
        if abs(rid) > _MAX_INT_ID:
            raise BadRequest("field 'id' must be an integer of at most 53 bits")
        return rid
    if isinstance(rid, str) and len(rid) <= _MAX_ID_LEN:
        return rid
    raise BadRequest("field 'id' must be a string (at most 64 characters) or an integer")


def decode_command(frame: str | bytes, *, binary: bool = False) -> Command:
    """Decode one WebSocket message into a :class:`Command`.

    ``binary`` is true for a binary frame, which the protocol forbids: it is a
    ``BAD_REQUEST`` whatever it holds (invalid UTF-8 can only arrive this way;
    in a text frame it is a WebSocket protocol error the transport handles).
    """
    if binary:
        raise BadRequest("binary frames are not accepted; send JSON in a text frame")
    try:
        obj = orjson.loads(frame)
    except (orjson.JSONDecodeError, RecursionError):
        raise BadRequest("frame is not valid JSON (NaN and Infinity are not JSON)") from None
    if not isinstance(obj, dict):
        raise BadRequest("frame must hold one JSON object")
    rid = _request_id(obj)
    action = obj.get("action")
    if action is None:
        raise BadRequest("field 'action' is required", rid)
    if not isinstance(action, str):
        raise BadRequest("field 'action' must be a string", rid)
    if action not in ACTIONS:
        shown = action if len(action) <= 40 else action[:40] + "..."
        raise UnknownAction(f"unknown action {shown!r}", rid)
    cmd = Command(action, rid, obj)
    if action in ("subscribe_ticker", "unsubscribe_ticker", "subscribe_book",
                  "unsubscribe_book"):
        cmd.symbol()
    elif action == "get_orders":
        status = obj.get("status", "open")
        if status not in ("open", "all"):
            raise BadRequest("field 'status' must be \"open\" or \"all\"", rid)
    elif action == "auth":
        token = obj.get("token")
        if not isinstance(token, str) or not token:
            raise BadRequest("field 'token' must be a non-empty string", rid)
    elif action == "cancel_order":
        ids = [obj.get(k) for k in ("orderId", "clientOrderId", "listId")]
        if all(v is None for v in ids):
            raise BadRequest("field 'orderId', 'clientOrderId' or 'listId' is required", rid)
        for name in ("orderId", "listId"):
            value = obj.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value <= 0
            ):
                raise BadRequest(f"field '{name}' must be a positive integer", rid)
        client_id = obj.get("clientOrderId")
        if client_id is not None and (not isinstance(client_id, str) or not client_id):
            raise BadRequest("field 'clientOrderId' must be a non-empty string", rid)
    return cmd
