"""Client commands: decoding one text frame into a typed, validated :class:`Command`.

Pure core. :func:`decode_command` never raises anything but a
:class:`~engine.errors.ProtocolError` subclass, whatever bytes it is given;
the connection answers that error with an ``ERROR`` frame and stays open.

It checks the envelope (one JSON object, ``action``, ``id``) and hands the body
to the one parser of its action (:data:`PARSERS`): the session commands'
parsers are here, the trading commands' are :mod:`engine.trading.requests`.
A parser returns the command's typed arguments (:attr:`Command.args`) or
raises :class:`~engine.trading.errors.RequestError` naming the field, which
becomes ``BAD_REQUEST``; a ``symbol`` that is a string but not a symbol is
``UNKNOWN_SYMBOL`` (:mod:`engine.protocol.symbols`). So a command that decodes
is well-formed; what depends on the server's state (authentication, whether
the feed serves the symbol, whether the order exists) is decided later.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from engine.errors import BadRequest, ProtocolError, UnknownAction
from engine.market.klines import DEFAULT_LIMIT, MAX_LIMIT, KlineQuery
from engine.protocol.enums import Action
from engine.trading.errors import RequestError
from engine.trading.history import (
    EquityQuery,
    FillsQuery,
    parse_equity_query,
    parse_fills_query,
)
from engine.trading.requests import (
    AmendRequest,
    BracketRequest,
    CancelRequest,
    OcoRequest,
    OrderRequest,
    parse_amend,
    parse_bracket,
    parse_cancel,
    parse_oco,
    parse_order,
)
from engine.trading.validation import int_field, symbol_field

__all__ = [
    "ACCOUNT_ACTIONS",
    "PARSERS",
    "Args",
    "AuthArgs",
    "Command",
    "NoArgs",
    "OrdersQuery",
    "RequestId",
    "ResumeArgs",
    "SymbolArgs",
    "decode_command",
    "peek_command",
]

RequestId = str | int | None

#: Actions that act on an account and so need authentication.
ACCOUNT_ACTIONS = frozenset(
    {Action.GET_POSITIONS, Action.GET_PORTFOLIO, Action.GET_ORDERS, Action.PLACE_ORDER,
     Action.PLACE_OCO, Action.PLACE_BRACKET, Action.CANCEL_ORDER, Action.AMEND_ORDER,
     Action.GET_FILLS, Action.GET_EQUITY_HISTORY}
)
_ACTIONS: dict[str, Action] = {a.value: a for a in Action}  # faster than Action(name)
_MAX_ID_LEN = 64
_MAX_INT_ID = 2**53 - 1


@dataclass(frozen=True, slots=True)
class NoArgs:
    """The arguments of a command that has none (``ping``, ``get_positions``, ...)."""


@dataclass(frozen=True, slots=True)
class SymbolArgs:
    """``subscribe_ticker`` / ``unsubscribe_ticker`` / ``subscribe_book`` /
    ``unsubscribe_book`` / ``get_symbol_info``: the upper-cased symbol."""

    symbol: str


@dataclass(frozen=True, slots=True)
class OrdersQuery:
    """``get_orders``: ``status`` ``"open"`` (the default) or ``"all"``."""

    include_closed: bool = False


@dataclass(frozen=True, slots=True)
class AuthArgs:
    """``auth``: a non-empty token."""

    token: str


@dataclass(frozen=True, slots=True)
class ResumeArgs:
    """``resume``: the ``epoch`` of the client's last CONNECTED and the ``seq``
    of the last account event it received (0: none); optionally the
    ``session`` of that CONNECTED (32 hex digits, lower-cased), whose market
    subscriptions are to be restored."""

    epoch: str
    seq: int
    session: str | None = None


Args = (NoArgs | SymbolArgs | OrdersQuery | AuthArgs | OrderRequest | OcoRequest
        | BracketRequest | CancelRequest | AmendRequest | FillsQuery | EquityQuery | KlineQuery
        | ResumeArgs)


@dataclass(frozen=True, slots=True)
class Command:
    """A decoded command: its action, its request id, its body (the JSON object)
    and its validated arguments."""

    action: Action
    request_id: RequestId
    body: dict[str, Any]
    args: Args


def _no_args(_body: Mapping[str, Any]) -> NoArgs:
    return NoArgs()


def _symbol_args(body: Mapping[str, Any]) -> SymbolArgs:
    return SymbolArgs(symbol_field("symbol", body.get("symbol")))


def _orders_query(body: Mapping[str, Any]) -> OrdersQuery:
    status = body.get("status", "open")
    if status not in ("open", "all"):
        raise RequestError("status", 'must be "open" or "all"')
    return OrdersQuery(include_closed=status == "all")


def _auth_args(body: Mapping[str, Any]) -> AuthArgs:
    token = body.get("token")
    if not isinstance(token, str) or not token:
        raise RequestError("token", "must be a non-empty string")
    return AuthArgs(token)


_MAX_MS = 2**53 - 1
_SESSION = re.compile(r"[0-9a-fA-F]{32}")


def _json_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(name, "must be a JSON integer")
    if not low <= value <= high:
        raise RequestError(name, f"must be between {low} and {high}")
    return value


def _klines_query(body: Mapping[str, Any]) -> KlineQuery:
    """``get_klines {symbol, interval, limit?, startTime?, endTime?}`` (Binance's
    names; times epoch ms). An unknown interval, a limit out of 1..1000 or a
    startTime after the endTime is BAD_REQUEST (engine.market.klines)."""
    symbol = symbol_field("symbol", body.get("symbol"))
    interval = body.get("interval")
    if interval is None:
        raise RequestError("interval", "is required")
    if not isinstance(interval, str):
        raise RequestError("interval", "must be a string such as \"1m\"")
    limit, start, end = body.get("limit"), body.get("startTime"), body.get("endTime")
    return KlineQuery.checked(
        symbol, interval,
        start_ms=None if start is None else _json_int("startTime", start, 0, _MAX_MS),
        end_ms=None if end is None else _json_int("endTime", end, 0, _MAX_MS),
        limit=DEFAULT_LIMIT if limit is None else _json_int("limit", limit, 1, MAX_LIMIT))


def _resume_args(body: Mapping[str, Any]) -> ResumeArgs:
    epoch = body.get("epoch")
    if not isinstance(epoch, str) or not epoch or len(epoch) > 64:
        raise RequestError("epoch", "must be a non-empty string of at most 64 characters")
    seq = int_field("seq", body.get("seq"))
    if seq < 0:
        raise RequestError("seq", "must be >= 0")
    session = body.get("session")
    if session is not None:
        if not isinstance(session, str) or not _SESSION.fullmatch(session):
            raise RequestError("session", "must be the 32 hex digits of a CONNECTED's session")
        session = session.lower()
    return ResumeArgs(epoch, seq, session)


#: The one parser of each action's body.
PARSERS: dict[Action, Callable[[Mapping[str, Any]], Args]] = {
    Action.SUBSCRIBE_TICKER: _symbol_args,
    Action.UNSUBSCRIBE_TICKER: _symbol_args,
    Action.SUBSCRIBE_BOOK: _symbol_args,
    Action.UNSUBSCRIBE_BOOK: _symbol_args,
    Action.GET_POSITIONS: _no_args,
    Action.GET_PORTFOLIO: _no_args,
    Action.GET_ORDERS: _orders_query,
    Action.PLACE_ORDER: parse_order,
    Action.PLACE_OCO: parse_oco,
    Action.PLACE_BRACKET: parse_bracket,
    Action.CANCEL_ORDER: parse_cancel,
    Action.GET_SYMBOL_INFO: _symbol_args,
    Action.AMEND_ORDER: parse_amend,
    Action.GET_FILLS: parse_fills_query,
    Action.GET_EQUITY_HISTORY: parse_equity_query,
    Action.GET_KLINES: _klines_query,
    Action.AUTH: _auth_args,
    Action.PING: _no_args,
    Action.GET_SYMBOLS: _no_args,
    Action.RESUME: _resume_args,
}


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


def peek_command(frame: str | bytes, *, binary: bool = False) -> tuple[Action | None, RequestId]:
    """The ``action`` and ``id`` of a frame without validating anything else:
    what :func:`decode_command` would read first (one ``orjson.loads``).

    ``(None, None)`` for a binary frame, a frame that is not JSON or not an
    object; ``None`` for an ``action`` that is not a known one, or an ``id``
    that :func:`decode_command` would refuse. The edge's frame gate
    (:mod:`engine.frame_gate`) uses it to answer refusals in the I/O thread
    with the command's ``id`` and to tell account commands from the others.
    """
    if binary:
        return None, None
    try:
        obj = orjson.loads(frame)
    except (orjson.JSONDecodeError, RecursionError):
        return None, None
    if not isinstance(obj, dict):
        return None, None
    try:
        rid = _request_id(obj)
    except BadRequest:
        rid = None
    name = obj.get("action")
    return (_ACTIONS.get(name) if isinstance(name, str) else None), rid


def decode_command(frame: str | bytes, *, binary: bool = False) -> Command:
    """Decode and validate one WebSocket message into a :class:`Command`.

    ``binary`` is true for a binary frame, which the protocol forbids: it is a
    ``BAD_REQUEST`` whatever it holds (invalid UTF-8 can only arrive this way;
    in a text frame it is a WebSocket protocol error the transport handles).
    Every error raised after the ``id`` was read carries it.
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
    name = obj.get("action")
    if name is None:
        raise BadRequest("field 'action' is required", rid)
    if not isinstance(name, str):
        raise BadRequest("field 'action' must be a string", rid)
    action = _ACTIONS.get(name)
    if action is None:
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise UnknownAction(f"unknown action {shown!r}", rid)
    try:
        args = PARSERS[action](obj)
    except RequestError as exc:
        raise BadRequest(str(exc), rid) from None
    except ProtocolError as exc:  # UNKNOWN_SYMBOL from the symbol rule
        exc.request_id = rid
        raise
    return Command(action, rid, obj, args)
