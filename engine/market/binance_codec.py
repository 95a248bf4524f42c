"""Binance Spot WebSocket stream codec: text frames in, typed results out.

Pure core: no threads, sockets, clocks or pykka. Whatever thread calls
:func:`decode_frame` runs it; it keeps no state. :class:`CodecStats` is a plain
counter object owned by one thread (the feed's), not shared.

Decoding never raises. Every input becomes exactly one of the :data:`Decoded`
results:

``Trade``            an ``aggTrade`` or ``trade`` event (raw or combined)
``Ticker24h``        a ``24hrTicker`` event
``ControlReply``     ``{"result": ..., "id": ...}`` (SUBSCRIBE & co.)
``ControlError``     ``{"error": {"code", "msg"}, "id"}`` (or the older flat
                     ``{"code", "msg", "id"}`` form)
``ServerShutdown``   ``{"e": "serverShutdown"}``: the feed should reconnect
``Ignored``          a well-formed frame of a stream we do not use
``Dropped``          anything else, with a :class:`DropReason`

Validation rules (documented once, here):

* prices and quantities must be JSON *strings* of plain decimals
  (``[0-9]+(.[0-9]*)?``, at most 64 characters), and strictly positive
  (``price``/``quantity`` of trades; ``high``, ``low``, ``last`` of tickers).
  Ticker ``price_change``/``percent`` may carry a sign; ``volume`` may be zero;
  a ticker ``bid``/``ask`` of zero means an empty book side and becomes ``None``.
* times and ids must be JSON integers (not booleans), ``>= 0``.
* the symbol must be 1-32 ASCII letters/digits; it is upper-cased.
* unknown fields are ignored.

The module also holds pure builders for stream names, the combined-stream URL
and the live control requests (``SUBSCRIBE``, ``UNSUBSCRIBE``,
``LIST_SUBSCRIPTIONS``), which return the JSON text to send.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final, TypeAlias

import orjson

from engine.errors import TickdeskError
from engine.messages import Ticker24h, Trade

__all__ = [
    "MAX_STREAMS_PER_CONNECTION",
    "CodecStats",
    "ControlError",
    "ControlReply",
    "Decoded",
    "DropReason",
    "Dropped",
    "Ignored",
    "RequestId",
    "ServerShutdown",
    "combined_url",
    "decode_frame",
    "kind_of",
    "list_subscriptions_request",
    "stream_names",
    "subscribe_request",
    "unsubscribe_request",
]

#: Binance allows at most this many streams on one connection.
MAX_STREAMS_PER_CONNECTION: Final = 1024

#: A control request id as Binance accepts it (an integer, a string or null).
RequestId: TypeAlias = int | str | None


class DropReason(StrEnum):
    """Why a frame was dropped (the value is the stats key)."""

    NOT_JSON = "not_json"
    """Not UTF-8 or not valid JSON."""
    NOT_OBJECT = "not_object"
    """Valid JSON but not an object (and not a combined frame's array data)."""
    BAD_ENVELOPE = "bad_envelope"
    """A combined frame whose ``stream`` is not a string."""
    MISSING_FIELD = "missing_field"
    """A required field is absent."""
    BAD_TYPE = "bad_type"
    """A field has the wrong JSON type."""
    BAD_NUMBER = "bad_number"
    """A price/quantity string is not a plain decimal (NaN, Infinity, 1e5, ...)."""
    NON_POSITIVE = "non_positive"
    """A price or quantity is zero or negative."""
    BAD_VALUE = "bad_value"
    """A malformed symbol, a negative time or id."""
    UNRECOGNIZED = "unrecognized"
    """A JSON object that is neither an event, a reply nor a known stream payload."""


@dataclass(frozen=True, slots=True)
class ControlReply:
    """The success reply to a control request; ``result`` is ``None`` or a list."""

    id: RequestId
    result: object


@dataclass(frozen=True, slots=True)
class ControlError:
    """The error reply to a control request."""

    id: RequestId
    code: int
    msg: str


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """Binance announced maintenance: reconnect (``event_time`` in ms if given)."""

    event_time: int | None


@dataclass(frozen=True, slots=True)
class Ignored:
    """A well-formed frame of a stream we do not use (``kind``: event or stream type)."""

    kind: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """A frame that could not be used, and why."""

    reason: DropReason
    detail: str = ""


Decoded: TypeAlias = (
    Trade | Ticker24h | ControlReply | ControlError | ServerShutdown | Ignored | Dropped
)

_DECIMAL_RE: Final = re.compile(r"[0-9]+(?:\.[0-9]*)?")
_SIGNED_DECIMAL_RE: Final = re.compile(r"[-+]?[0-9]+(?:\.[0-9]*)?")
_SYMBOL_RE: Final = re.compile(r"[A-Za-z0-9]{1,32}")
_STREAM_RE: Final = re.compile(r"[!A-Za-z0-9_@.\-]{1,200}")
_MAX_NUMBER_LEN: Final = 64
_ZERO: Final = Decimal(0)


class _Reject(TickdeskError):
    """Internal: a validation failure carrying the drop reason."""

    def __init__(self, reason: DropReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------- field access


def _field(obj: Mapping[str, object], key: str) -> object:
    if key not in obj:
        raise _Reject(DropReason.MISSING_FIELD, key)
    return obj[key]


def _int(obj: Mapping[str, object], key: str) -> int:
    value = _field(obj, key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Reject(DropReason.BAD_TYPE, key)
    if value < 0:
        raise _Reject(DropReason.BAD_VALUE, key)
    return value


def _opt_bool(obj: Mapping[str, object], key: str) -> bool | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _Reject(DropReason.BAD_TYPE, key)
    return value


def _symbol(obj: Mapping[str, object]) -> str:
    value = _field(obj, "s")
    if not isinstance(value, str):
        raise _Reject(DropReason.BAD_TYPE, "s")
    if _SYMBOL_RE.fullmatch(value) is None:
        raise _Reject(DropReason.BAD_VALUE, "s")
    return value.upper()


def _decimal(obj: Mapping[str, object], key: str, *, signed: bool = False) -> Decimal:
    value = _field(obj, key)
    if not isinstance(value, str):
        raise _Reject(DropReason.BAD_TYPE, key)
    pattern = _SIGNED_DECIMAL_RE if signed else _DECIMAL_RE
    if len(value) > _MAX_NUMBER_LEN or pattern.fullmatch(value) is None:
        raise _Reject(DropReason.BAD_NUMBER, key)
    return Decimal(value)


def _positive(obj: Mapping[str, object], key: str) -> Decimal:
    value = _decimal(obj, key)
    if value <= _ZERO:
        raise _Reject(DropReason.NON_POSITIVE, key)
    return value


def _opt_positive(obj: Mapping[str, object], key: str) -> Decimal | None:
    if key not in obj:
        return None
    return _positive(obj, key)


def _opt_book_side(obj: Mapping[str, object], key: str) -> Decimal | None:
    if key not in obj:
        return None
    value = _decimal(obj, key)
    return value if value > _ZERO else None


def _request_id(value: object) -> RequestId:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _Reject(DropReason.BAD_TYPE, "id")


# ---------------------------------------------------------------- events


def _any_trade(data: Mapping[str, object], id_field: str) -> Trade:
    return Trade(
        symbol=_symbol(data),
        price=_positive(data, "p"),
        quantity=_positive(data, "q"),
        event_time=_int(data, "E"),
        trade_time=_int(data, "T"),
        trade_id=_int(data, id_field),
        buyer_is_maker=_opt_bool(data, "m"),
    )


def _agg_trade(data: Mapping[str, object]) -> Trade:
    return _any_trade(data, "a")


def _trade(data: Mapping[str, object]) -> Trade:
    # In a raw @trade event "a" is the seller's order id (until 2024), not an
    # aggregate id: the trade id is "t".
    return _any_trade(data, "t")


def _ticker(data: Mapping[str, object]) -> Ticker24h:
    symbol = _symbol(data)
    event_time = _int(data, "E")
    price_change = _decimal(data, "p", signed=True)
    percent = _decimal(data, "P", signed=True)
    high = _positive(data, "h")
    low = _positive(data, "l")
    volume = _decimal(data, "v")
    return Ticker24h(
        symbol=symbol,
        event_time=event_time,
        price_change=price_change,
        price_change_percent=percent,
        high=high,
        low=low,
        volume=volume,
        last_price=_opt_positive(data, "c"),
        bid=_opt_book_side(data, "b"),
        ask=_opt_book_side(data, "a"),
    )


def _shutdown(data: Mapping[str, object]) -> ServerShutdown:
    value = data.get("E")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return ServerShutdown(value)
    return ServerShutdown(None)


def _event(data: Mapping[str, object]) -> Decoded:
    kind = data["e"]
    if not isinstance(kind, str):
        raise _Reject(DropReason.BAD_TYPE, "e")
    if kind == "aggTrade":
        return _agg_trade(data)
    if kind == "trade":
        return _trade(data)
    if kind == "24hrTicker":
        return _ticker(data)
    if kind == "serverShutdown":
        return _shutdown(data)
    return Ignored(kind)


def _error(obj: Mapping[str, object], err: Mapping[str, object]) -> ControlError:
    code = _field(err, "code")
    msg = _field(err, "msg")
    if not isinstance(code, int) or isinstance(code, bool) or not isinstance(msg, str):
        raise _Reject(DropReason.BAD_TYPE, "error")
    return ControlError(_request_id(obj.get("id")), code, msg)


def _stream_kind(stream: str) -> str:
    """``"btcusdt@depth@100ms"`` -> ``"depth"``; ``"!ticker@arr"`` -> ``"ticker"``."""
    parts = stream.split("@")
    if len(parts) >= 2 and not stream.startswith("!"):
        return parts[1] or stream
    return parts[0].lstrip("!") or stream


def _payload(obj: Mapping[str, object]) -> Decoded:
    if "e" in obj:
        return _event(obj)
    if "result" in obj and "id" in obj:
        return ControlReply(_request_id(obj["id"]), obj["result"])
    if "error" in obj:
        err = obj["error"]
        if not isinstance(err, dict):
            raise _Reject(DropReason.BAD_TYPE, "error")
        return _error(obj, err)
    if "code" in obj and "msg" in obj:
        return _error(obj, obj)
    if "lastUpdateId" in obj:
        return Ignored("depth")  # partial book depth (raw stream)
    if all(k in obj for k in ("u", "s", "b", "a")):
        return Ignored("bookTicker")  # raw bookTicker has no "e"
    raise _Reject(DropReason.UNRECOGNIZED, ",".join(sorted(obj)[:8]))


def _decode(text: str | bytes) -> Decoded:
    try:
        obj = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return Dropped(DropReason.NOT_JSON)
    if isinstance(obj, list):
        return Ignored("array")  # e.g. a raw !ticker@arr frame
    if not isinstance(obj, dict):
        return Dropped(DropReason.NOT_OBJECT)
    if "stream" in obj and "data" in obj:
        stream = obj["stream"]
        if not isinstance(stream, str):
            return Dropped(DropReason.BAD_ENVELOPE, "stream")
        data = obj["data"]
        if isinstance(data, dict):
            if "e" in data:
                return _event(data)
            return Ignored(_stream_kind(stream))
        if isinstance(data, list):
            return Ignored(_stream_kind(stream))
        return Dropped(DropReason.NOT_OBJECT, "data")
    return _payload(obj)


def decode_frame(text: str | bytes) -> Decoded:
    """Decode one WebSocket text frame (raw or combined). Never raises."""
    try:
        return _decode(text)
    except _Reject as rej:
        return Dropped(rej.reason, rej.detail)
    except Exception as exc:  # pragma: no cover - defence in depth
        return Dropped(DropReason.UNRECOGNIZED, type(exc).__name__)


def kind_of(decoded: Decoded) -> str:
    """The stats key of a result: ``trade``, ``ticker``, ``control_reply``, ..."""
    if isinstance(decoded, Trade):
        return "trade"
    if isinstance(decoded, Ticker24h):
        return "ticker"
    if isinstance(decoded, ControlReply):
        return "control_reply"
    if isinstance(decoded, ControlError):
        return "control_error"
    if isinstance(decoded, ServerShutdown):
        return "server_shutdown"
    if isinstance(decoded, Ignored):
        return "ignored"
    return "dropped"


class CodecStats:
    """Counts of decode results: by kind, ignored by stream kind, dropped by reason.

    Not thread-safe: owned by the one thread that decodes (the feed's).
    """

    __slots__ = ("decoded", "dropped", "ignored")

    def __init__(self) -> None:
        self.decoded: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()

    def record(self, decoded: Decoded) -> Decoded:
        """Count ``decoded`` and return it (so ``stats.record(decode_frame(t))`` chains)."""
        kind = kind_of(decoded)
        self.decoded[kind] += 1
        if isinstance(decoded, Ignored):
            self.ignored[decoded.kind] += 1
        elif isinstance(decoded, Dropped):
            self.dropped[decoded.reason.value] += 1
        return decoded

    @property
    def total(self) -> int:
        """Number of frames recorded."""
        return sum(self.decoded.values())

    def snapshot(self) -> dict[str, dict[str, int]]:
        """A plain-dict copy, for status reports and logs."""
        return {
            "decoded": dict(self.decoded),
            "ignored": dict(self.ignored),
            "dropped": dict(self.dropped),
        }


# ---------------------------------------------------------------- builders


def _check_stream(stream: str) -> str:
    if not isinstance(stream, str) or _STREAM_RE.fullmatch(stream) is None:
        raise ValueError(f"invalid stream name: {stream!r}")
    return stream


def _check_streams(streams: Iterable[str]) -> list[str]:
    if isinstance(streams, str):
        raise ValueError("streams must be an iterable of names, not one string")
    names = [_check_stream(s) for s in streams]
    if not names:
        raise ValueError("streams must not be empty")
    if len(names) > MAX_STREAMS_PER_CONNECTION:
        raise ValueError(f"streams: {len(names)} > {MAX_STREAMS_PER_CONNECTION} per connection")
    return names


def _check_id(request_id: RequestId) -> RequestId:
    if request_id is None or isinstance(request_id, str):
        return request_id
    if isinstance(request_id, int) and not isinstance(request_id, bool):
        return request_id
    raise ValueError(f"invalid request id: {request_id!r}")


def stream_names(symbol: str) -> list[str]:
    """The streams the feed uses for ``symbol``: ``["<sym>@aggTrade", "<sym>@ticker"]``."""
    if not isinstance(symbol, str) or _SYMBOL_RE.fullmatch(symbol) is None:
        raise ValueError(f"invalid symbol: {symbol!r}")
    sym = symbol.lower()
    return [f"{sym}@aggTrade", f"{sym}@ticker"]


def combined_url(base_url: str, streams: Iterable[str]) -> str:
    """``<base>/stream?streams=a/b/c``; ``base_url`` is scheme, host and port."""
    names = _check_streams(streams)
    base = base_url.rstrip("/")
    if not base:
        raise ValueError("base_url must not be empty")
    return f"{base}/stream?streams={'/'.join(names)}"


def _request(method: str, request_id: RequestId, params: list[str] | None) -> str:
    body: dict[str, object] = {"method": method}
    if params is not None:
        body["params"] = params
    body["id"] = _check_id(request_id)
    return orjson.dumps(body).decode()


def subscribe_request(request_id: RequestId, streams: Iterable[str]) -> str:
    """JSON text of ``{"method":"SUBSCRIBE","params":[...],"id":id}``."""
    return _request("SUBSCRIBE", request_id, _check_streams(streams))


def unsubscribe_request(request_id: RequestId, streams: Iterable[str]) -> str:
    """JSON text of ``{"method":"UNSUBSCRIBE","params":[...],"id":id}``."""
    return _request("UNSUBSCRIBE", request_id, _check_streams(streams))


def list_subscriptions_request(request_id: RequestId) -> str:
    """JSON text of ``{"method":"LIST_SUBSCRIPTIONS","id":id}``."""
    return _request("LIST_SUBSCRIPTIONS", request_id, None)
