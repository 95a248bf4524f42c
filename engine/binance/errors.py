"""Binance's error answers: ``{"code": -2010, "msg": "..."}`` and the HTTP status.

Pure core. :class:`BinanceError` carries one; the codes and messages are
Binance's own (its "Error codes" reference), so client libraries map them to
their exceptions unchanged (ccxt: -2010 with the balance message is
``InsufficientFunds``, -2013 ``OrderNotFound``, -1022 ``AuthenticationError``).
"""

from __future__ import annotations

from engine.errors import TickdeskError

__all__ = [
    "BAD_API_KEY_FORMAT",
    "BAD_INTERVAL",
    "BAD_SYMBOL",
    "CANCEL_REJECTED",
    "DISCONNECTED",
    "DUPLICATE_PARAM",
    "FILTER_FAILURE",
    "ILLEGAL_CHARS",
    "INSUFFICIENT_BALANCE_MSG",
    "INVALID_LISTEN_KEY",
    "INVALID_PARAMETER",
    "INVALID_SIGNATURE",
    "INVALID_TIMESTAMP",
    "MANDATORY_PARAM",
    "NEW_ORDER_REJECTED",
    "NO_SUCH_ORDER",
    "PARAM_NOT_REQUIRED",
    "REJECTED_API_KEY",
    "SERVER_BUSY",
    "TOO_MANY_REQUESTS",
    "UNAUTHORIZED",
    "UNKNOWN",
    "BinanceError",
    "bad_param",
    "mandatory",
]

UNKNOWN = -1000
#: Binance's "Internal error; unable to process your request": a backend we
#: depend on (the engine, Redis) cannot be reached (HTTP 503 here).
DISCONNECTED = -1001
UNAUTHORIZED = -1002
TOO_MANY_REQUESTS = -1003
SERVER_BUSY = -1008
TIMEOUT = -1007
FILTER_FAILURE = -1013
INVALID_TIMESTAMP = -1021
INVALID_SIGNATURE = -1022
ILLEGAL_CHARS = -1100
DUPLICATE_PARAM = -1101
MANDATORY_PARAM = -1102
PARAM_NOT_REQUIRED = -1106
BAD_PRECISION = -1111
INVALID_ORDER_TYPE = -1116
INVALID_SIDE = -1117
BAD_INTERVAL = -1120
BAD_SYMBOL = -1121
INVALID_LISTEN_KEY = -1125
INVALID_PARAMETER = -1130
NEW_ORDER_REJECTED = -2010
CANCEL_REJECTED = -2011
NO_SUCH_ORDER = -2013
BAD_API_KEY_FORMAT = -2014
REJECTED_API_KEY = -2015

INSUFFICIENT_BALANCE_MSG = "Account has insufficient balance for requested action."

#: HTTP status of each code that is not 400 (Binance: 401 for key problems,
#: 429 for too much weight, 503 when busy, 500 for an unknown error).
_STATUS = {UNAUTHORIZED: 401, BAD_API_KEY_FORMAT: 401, REJECTED_API_KEY: 401,
           TOO_MANY_REQUESTS: 429, DISCONNECTED: 503, SERVER_BUSY: 503, TIMEOUT: 503,
           UNKNOWN: 500,
           INVALID_LISTEN_KEY: 400}


class BinanceError(TickdeskError):
    """One Binance error answer (see the module docstring)."""

    def __init__(self, code: int, msg: str, status: int | None = None,
                 data: dict[str, object] | None = None) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status if status is not None else _STATUS.get(code, 400)
        #: Extra detail some answers carry (cancelReplace's results).
        self.data = data

    def body(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "msg": self.msg}
        if self.data is not None:
            out["data"] = self.data
        return out


def mandatory(name: str) -> BinanceError:
    return BinanceError(MANDATORY_PARAM, f"Mandatory parameter '{name}' was not sent, was "
                                         "empty/null, or malformed.")


def bad_param(name: str) -> BinanceError:
    return BinanceError(INVALID_PARAMETER, f"Invalid data sent for a parameter '{name}'.")
