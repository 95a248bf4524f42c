"""Binance's WebSocket stream names, paths and live subscription requests.

Pure core (any thread; the I/O thread routes upgrades with it, a
BinanceSessionActor decodes requests with it). What Binance documents for
``wss://stream.binance.com``:

* ``/ws/<stream>`` a raw stream, ``/ws`` none yet (nor ``/ws/<digits>``, which
  ccxt opens before it subscribes), ``/ws/<listenKey>`` the user data stream;
  ``/stream?streams=a/b/c`` a combined stream (every event wrapped
  ``{"stream": name, "data": payload}``).
* Stream names are lower case: ``<symbol>@trade``, ``@aggTrade``,
  ``@ticker``, ``@miniTicker``, ``@bookTicker``, ``@depth`` (also ``@depth@100ms``),
  ``@kline_<interval>`` (the case of ``aggTrade`` and
  ``bookTicker`` is Binance's own).
* Live requests ``{"method": "SUBSCRIBE"|"UNSUBSCRIBE"|"LIST_SUBSCRIPTIONS",
  "params": [...], "id": n}`` are answered ``{"result": null, "id": n}`` (the
  list for LIST_SUBSCRIPTIONS); bad ones ``{"error": {"code": c, "msg": m},
  "id": n}`` with Binance's codes (:class:`StreamErrorCode`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

import orjson

from engine.errors import TickdeskError

__all__ = [
    "KLINE_INTERVALS",
    "MAX_STREAMS",
    "WS_API_PATH",
    "Method",
    "StreamError",
    "StreamErrorCode",
    "StreamKind",
    "StreamName",
    "StreamRequest",
    "StreamRoute",
    "decode_request",
    "is_stream_path",
    "parse_stream",
    "route",
]

#: Streams one connection may hold (Binance: 1024).
MAX_STREAMS = 1024
#: Kline intervals a ``@kline_<i>`` stream may name (the engine's bar sizes).
KLINE_INTERVALS = ("1m", "5m", "15m", "1h", "4h", "1d")
_RAW_PREFIX = "/ws"
#: Binance's WebSocket API (engine.binance.ws_api).
WS_API_PATH = "/ws-api/v3"
_COMBINED_PATH = "/stream"
_LISTEN_KEY = re.compile(r"^[A-Za-z0-9]{1,128}$")
_SYMBOL = re.compile(r"^[a-z0-9]{2,20}$")
_MAX_ID_CHARS = 36


class StreamKind(StrEnum):
    """A market stream's kind: the part after ``@`` (``kline`` for every interval)."""

    TRADE = "trade"
    AGG_TRADE = "aggTrade"
    TICKER = "ticker"
    MINI_TICKER = "miniTicker"
    DEPTH = "depth"
    BOOK_TICKER = "bookTicker"
    KLINE = "kline"


class StreamErrorCode(IntEnum):
    """Binance's error codes of a live request (``{"error": {"code": ...}}``)."""

    UNKNOWN_PROPERTY = 0
    INVALID_VALUE_TYPE = 1
    INVALID_REQUEST = 2
    INVALID_JSON = 3


class StreamError(TickdeskError):
    """A live request refused: Binance's code and message, the request's id."""

    def __init__(self, code: StreamErrorCode, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class StreamName:
    """One market stream: ``name`` as the client spelt it (the key it is sent
    under), the symbol upper-cased as the engine serves it."""

    name: str
    symbol: str
    kind: StreamKind
    interval: str | None = None


@dataclass(frozen=True, slots=True)
class StreamRoute:
    """What an upgrade path asks for: market streams, a user data stream
    (``listen_key``), and whether events are wrapped (``combined``)."""

    combined: bool
    streams: tuple[StreamName, ...] = ()
    listen_key: str | None = None
    #: Binance's WebSocket API (``/ws-api/v3``), not a stream path.
    ws_api: bool = False


def parse_stream(name: str) -> StreamName:
    """``btcusdt@trade`` → a :class:`StreamName`; ValueError names what is wrong."""
    symbol, sep, rest = name.partition("@")
    if not sep or not _SYMBOL.match(symbol):
        raise ValueError(f"invalid stream name {name!r}: expected <lower-case symbol>@<stream>")
    if rest in ("depth", "depth@100ms", "depth@1000ms"):
        return StreamName(name, symbol.upper(), StreamKind.DEPTH)
    if rest.startswith("kline_"):
        interval = rest[len("kline_"):]
        if interval not in KLINE_INTERVALS:
            raise ValueError(f"invalid kline interval in {name!r}: one of "
                             f"{', '.join(KLINE_INTERVALS)}")
        return StreamName(name, symbol.upper(), StreamKind.KLINE, interval)
    try:
        kind = StreamKind(rest)
    except ValueError:
        raise ValueError(f"unsupported stream {name!r}: <symbol>@trade, @aggTrade, "
                         "@ticker, @miniTicker, @bookTicker, @depth[@100ms] or @kline_<interval>"
                         ) from None
    if kind in (StreamKind.KLINE, StreamKind.DEPTH):
        raise ValueError(f"invalid stream name {name!r}")
    return StreamName(name, symbol.upper(), kind)


def is_stream_path(path: str) -> bool:
    """The upgrade paths Binance's stream server has, and its WebSocket API's
    (checked before the upgrade is routed; :func:`route` then says what it asks
    for, or why not)."""
    return (path in (_RAW_PREFIX, _COMBINED_PATH, WS_API_PATH)
            or (path.startswith(_RAW_PREFIX + "/") and "/" not in path[len(_RAW_PREFIX) + 1:]))


def _name_or_key(item: str, streams: list[StreamName], keys: list[str]) -> None:
    if "@" in item:
        streams.append(parse_stream(item))
    elif item.isdigit():
        return  # ccxt opens /ws/<n> (its n-th connection) and then SUBSCRIBEs: no stream
    elif _LISTEN_KEY.match(item):
        keys.append(item)
    else:
        raise ValueError(f"invalid stream name {item!r}")


def route(path: str, query: Mapping[str, Sequence[str]]) -> StreamRoute:
    """An upgrade path (:func:`is_stream_path`) → what it subscribes; ValueError
    (the handshake is refused 400 with its text) for a bad name, more than one
    listen key, or more than :data:`MAX_STREAMS` streams."""
    streams: list[StreamName] = []
    keys: list[str] = []
    if path == WS_API_PATH:
        return StreamRoute(False, ws_api=True)
    if path == _COMBINED_PATH:
        combined = True
        values = query.get("streams", [])
        if len(values) > 1:
            raise ValueError("streams given more than once")
        for item in (values[0].split("/") if values and values[0] else []):
            _name_or_key(item, streams, keys)
    elif path == _RAW_PREFIX:
        combined = False
    elif path.startswith(_RAW_PREFIX + "/"):
        combined = False
        _name_or_key(path[len(_RAW_PREFIX) + 1:], streams, keys)
    else:
        raise ValueError(f"not a stream path: {path}")
    if len(keys) > 1:
        raise ValueError("at most one listen key per connection")
    if len(streams) > MAX_STREAMS:
        raise ValueError(f"at most {MAX_STREAMS} streams per connection")
    unique = tuple({s.name: s for s in streams}.values())
    return StreamRoute(combined, unique, keys[0] if keys else None)


class Method(StrEnum):
    """A live request's ``method``."""

    SUBSCRIBE = "SUBSCRIBE"
    UNSUBSCRIBE = "UNSUBSCRIBE"
    LIST_SUBSCRIPTIONS = "LIST_SUBSCRIPTIONS"


@dataclass(frozen=True, slots=True)
class StreamRequest:
    method: Method
    streams: tuple[StreamName, ...]
    request_id: Any


def _request_id(raw: Any) -> Any:
    """Binance accepts a 64-bit integer, an alphanumeric string of at most 36
    characters, or null."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise StreamError(StreamErrorCode.INVALID_VALUE_TYPE,
                          "Invalid value type: expected a 64-bit integer, a string or null "
                          "for 'id'")
    if isinstance(raw, int) and -(2 ** 63) <= raw < 2 ** 63:
        return raw
    if isinstance(raw, str) and len(raw) <= _MAX_ID_CHARS and raw.isalnum():
        return raw
    raise StreamError(StreamErrorCode.INVALID_VALUE_TYPE,
                      "Invalid value type: 'id' must be a 64-bit integer, an alphanumeric "
                      "string of at most 36 characters, or null")


def decode_request(data: bytes | str) -> StreamRequest:
    """One text frame → a :class:`StreamRequest`, or :class:`StreamError`."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise StreamError(StreamErrorCode.INVALID_JSON, "Invalid JSON: expected a JSON object "
                          "with method, params and id") from None
    if not isinstance(body, dict):
        raise StreamError(StreamErrorCode.INVALID_JSON, "Invalid JSON: expected an object")
    rid = _request_id(body.get("id"))
    for key in body:
        if key not in ("method", "params", "id"):
            raise StreamError(StreamErrorCode.UNKNOWN_PROPERTY,
                              f"Unknown property '{key}'", rid)
    raw_method = body.get("method")
    try:
        method = Method(str(raw_method))
    except ValueError:
        raise StreamError(StreamErrorCode.INVALID_REQUEST,
                          f"Invalid request: unknown method {raw_method!r}", rid) from None
    params = body.get("params", [])
    if method is Method.LIST_SUBSCRIPTIONS:
        return StreamRequest(method, (), rid)
    if not isinstance(params, list) or not params or not all(
            isinstance(p, str) for p in params):
        raise StreamError(StreamErrorCode.INVALID_VALUE_TYPE,
                          "Invalid value type: 'params' must be a non-empty array of stream "
                          "names", rid)
    if len(params) > MAX_STREAMS:
        raise StreamError(StreamErrorCode.INVALID_REQUEST,
                          f"Invalid request: at most {MAX_STREAMS} streams", rid)
    try:
        streams = tuple(parse_stream(p) for p in params)
    except ValueError as exc:
        raise StreamError(StreamErrorCode.INVALID_REQUEST, f"Invalid request: {exc}",
                          rid) from None
    return StreamRequest(method, streams, rid)
