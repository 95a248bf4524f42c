"""The slice of Binance's WebSocket API (``/ws-api/v3``) that user data needs.

Pure core (a BinanceSessionActor's thread). Current Binance clients
(python-binance's ``user_socket``) no longer open ``/ws/<listenKey>``: they
send ``userDataStream.subscribe.signature`` on the WebSocket API and receive
the account's events as ``{"subscriptionId": n, "event": {...}}``. This module
decodes those requests, checks a request's HMAC-SHA256 signature as Binance
does (over the other parameters, sorted by name and URL-encoded; the
``timestamp`` within ``recvWindow`` of the server's time) and shapes the
answers ``{"id", "status", "result"}`` / ``{"id", "status", "error": {"code",
"msg"}}`` with Binance's error codes (:class:`WsApiCode`).

Methods: ``userDataStream.subscribe.signature``, ``userDataStream.unsubscribe``,
``session.subscriptions``, ``ping``, ``time``; any other is refused -1020.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any
from urllib.parse import urlencode

import orjson

from engine.binance.signing import sign
from engine.errors import TickdeskError

__all__ = [
    "MAX_RECV_WINDOW_MS",
    "WsApiCode",
    "WsApiError",
    "WsApiMethod",
    "WsApiRequest",
    "answer",
    "check_signature",
    "decode",
    "failure",
]

DEFAULT_RECV_WINDOW_MS = 5000
#: Binance's largest ``recvWindow``.
MAX_RECV_WINDOW_MS = 60000
_MAX_ID_CHARS = 36


class WsApiMethod(StrEnum):
    SUBSCRIBE_SIGNATURE = "userDataStream.subscribe.signature"
    UNSUBSCRIBE = "userDataStream.unsubscribe"
    SUBSCRIPTIONS = "session.subscriptions"
    PING = "ping"
    TIME = "time"


class WsApiCode(IntEnum):
    """Binance's error codes this endpoint answers with."""

    UNSUPPORTED_OPERATION = -1020
    INVALID_TIMESTAMP = -1021
    INVALID_SIGNATURE = -1022
    BAD_PARAMETER = -1102
    INVALID_JSON = -1100
    REJECTED_API_KEY = -2015


class WsApiError(TickdeskError):
    """A refused request: HTTP-like ``status``, Binance's ``code`` and ``msg``."""

    def __init__(self, code: WsApiCode, message: str, request_id: Any = None,
                 status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id
        self.status = status


@dataclass(frozen=True, slots=True)
class WsApiRequest:
    request_id: Any
    method: WsApiMethod
    params: Mapping[str, Any]


def decode(data: bytes | str) -> WsApiRequest:
    """One text frame → a request, or :class:`WsApiError`."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise WsApiError(WsApiCode.INVALID_JSON, "Malformed request: not JSON.") from None
    if not isinstance(body, dict):
        raise WsApiError(WsApiCode.INVALID_JSON, "Malformed request: expected an object.")
    rid = body.get("id")
    if not (rid is None or (isinstance(rid, int) and not isinstance(rid, bool))
            or (isinstance(rid, str) and len(rid) <= _MAX_ID_CHARS)):
        raise WsApiError(WsApiCode.BAD_PARAMETER,
                         "'id' must be an integer, a string of at most 36 characters or null.")
    params = body.get("params", {})
    if not isinstance(params, dict):
        raise WsApiError(WsApiCode.BAD_PARAMETER, "'params' must be an object.", rid)
    try:
        method = WsApiMethod(str(body.get("method")))
    except ValueError:
        raise WsApiError(WsApiCode.UNSUPPORTED_OPERATION,
                         f"Method {body.get('method')!r} is not supported by this server.",
                         rid) from None
    return WsApiRequest(rid, method, params)


def check_signature(params: Mapping[str, Any], secret: str, now_ms: int,
                    request_id: Any = None) -> None:
    """Binance's signed-request rules; :class:`WsApiError` when broken."""
    ts = params.get("timestamp")
    if not isinstance(ts, int) or isinstance(ts, bool):
        raise WsApiError(WsApiCode.BAD_PARAMETER, "Mandatory parameter 'timestamp' was not "
                         "sent, was empty/null, or malformed.", request_id)
    window = params.get("recvWindow", DEFAULT_RECV_WINDOW_MS)
    if (not isinstance(window, int) or isinstance(window, bool)
            or not 0 < window <= MAX_RECV_WINDOW_MS):
        raise WsApiError(WsApiCode.BAD_PARAMETER, "recvWindow must be 1 to 60000.",
                         request_id)
    if ts >= now_ms + 1000 or now_ms - ts > window:
        raise WsApiError(WsApiCode.INVALID_TIMESTAMP, "Timestamp for this request is "
                         "outside of the recvWindow.", request_id)
    given = params.get("signature")
    if not isinstance(given, str):
        raise WsApiError(WsApiCode.BAD_PARAMETER, "Mandatory parameter 'signature' was "
                         "not sent.", request_id)
    signed = urlencode(sorted((k, v) for k, v in params.items() if k != "signature"))
    if not hmac.compare_digest(sign(secret, signed), given.lower()):
        raise WsApiError(WsApiCode.INVALID_SIGNATURE, "Signature for this request is not "
                         "valid.", request_id)


def answer(request_id: Any, result: Any) -> bytes:
    return orjson.dumps({"id": request_id, "status": 200, "result": result})


def failure(err: WsApiError) -> bytes:
    return orjson.dumps({"id": err.request_id, "status": err.status,
                         "error": {"code": int(err.code), "msg": err.message}})
