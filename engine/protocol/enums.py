"""The protocol's vocabulary: every action, message type, error code, close code
and execution type of protocol version 1, one enum each.

Pure core. These enums are the single owner of the names on the wire: the
decoder, the builders in :mod:`engine.protocol.server_messages`, the actors,
the client library and the documentation tests all use them (members are
``str``/``int`` subclasses, so they encode as their plain value).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

__all__ = ["Action", "CloseCode", "ErrorCode", "ExecutionType", "MessageType"]


class Action(StrEnum):
    """A client command's ``action``."""

    SUBSCRIBE_TICKER = "subscribe_ticker"
    UNSUBSCRIBE_TICKER = "unsubscribe_ticker"
    SUBSCRIBE_BOOK = "subscribe_book"
    UNSUBSCRIBE_BOOK = "unsubscribe_book"
    GET_POSITIONS = "get_positions"
    GET_PORTFOLIO = "get_portfolio"
    GET_ORDERS = "get_orders"
    PLACE_ORDER = "place_order"
    PLACE_OCO = "place_oco"
    PLACE_BRACKET = "place_bracket"
    CANCEL_ORDER = "cancel_order"
    GET_SYMBOL_INFO = "get_symbol_info"
    AMEND_ORDER = "amend_order"
    GET_FILLS = "get_fills"
    GET_EQUITY_HISTORY = "get_equity_history"
    GET_KLINES = "get_klines"
    AUTH = "auth"
    PING = "ping"
    # -- the dashboard's watch list (issue 17) --
    GET_SYMBOLS = "get_symbols"
    # -- resume (docs/scaling.md) --
    RESUME = "resume"


class MessageType(StrEnum):
    """A server message's ``type``."""

    CONNECTED = "CONNECTED"
    SUBSCRIBED = "SUBSCRIBED"
    UNSUBSCRIBED = "UNSUBSCRIBED"
    AUTHENTICATED = "AUTHENTICATED"
    MARKET_UPDATE = "MARKET_UPDATE"
    BOOK_UPDATE = "BOOK_UPDATE"
    POSITION_UPDATE = "POSITION_UPDATE"
    PORTFOLIO_UPDATE = "PORTFOLIO_UPDATE"
    ORDER_UPDATE = "ORDER_UPDATE"
    ORDER_LIST_UPDATE = "ORDER_LIST_UPDATE"
    ORDERS = "ORDERS"
    FILLS = "FILLS"
    EQUITY_HISTORY = "EQUITY_HISTORY"
    KLINES = "KLINES"
    FEED_STATUS = "FEED_STATUS"
    SYMBOL_INFO = "SYMBOL_INFO"
    PONG = "PONG"
    ERROR = "ERROR"
    # -- the dashboard's watch list (issue 17) --
    SYMBOLS = "SYMBOLS"
    # -- resume (docs/scaling.md) --
    RESUMED = "RESUMED"


class ErrorCode(StrEnum):
    """An ``ERROR`` message's ``code``."""

    BAD_REQUEST = "BAD_REQUEST"
    UNKNOWN_ACTION = "UNKNOWN_ACTION"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    UNAUTHORIZED = "UNAUTHORIZED"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    RATE_LIMITED = "RATE_LIMITED"
    #: The account already has server.account_queue_limit commands waiting for
    #: the engine (the command is not executed; retry once answers arrive).
    BUSY = "BUSY"
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    INTERNAL = "INTERNAL"


class CloseCode(IntEnum):
    """WebSocket close codes the server sends (RFC 6455 and 4000-4999, ours)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY = 1008
    TOO_BIG = 1009
    INTERNAL = 1011
    SLOW_CONSUMER = 4001
    WRITE_TIMEOUT = 4002


class ExecutionType(StrEnum):
    """An ``ORDER_UPDATE``'s ``executionType``: what just happened to the order."""

    NEW = "NEW"
    TRIGGERED = "TRIGGERED"
    AMENDED = "AMENDED"
    TRADE = "TRADE"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"
