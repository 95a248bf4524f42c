"""The tickdesk exception tree: every error tickdesk raises on purpose.

Pure core. Every error a user can cause is typed, carries a wire ``code`` when
it is answered on the protocol, and never leaks internals. One root; the
classes live next to the code that raises them (the module is given on the
right when it is not this one), and ``tests/test_errors.py`` checks that this
drawing matches the classes::

    TickdeskError
    ├── ConfigError            bad configuration (the CLI exits with status 2)
    ├── ProtocolError          a client command that is answered with ERROR
    │   ├── BadRequest         BAD_REQUEST: malformed frame, missing/ill-typed field
    │   │   ├── RequestError   a bad field of an order command (engine.trading.errors)
    │   │   │   └── AmendRefused  an amend Binance refuses (engine.trading.errors)
    │   │   ├── UnknownInterval  an unknown kline interval (engine.market.klines)
    │   │   └── BadKlineQuery  a bad kline limit or time range (engine.market.klines)
    │   ├── UnknownAction      UNKNOWN_ACTION
    │   ├── UnknownSymbol      UNKNOWN_SYMBOL
    │   ├── Unauthorized       UNAUTHORIZED
    │   ├── UnknownOrder       UNKNOWN_ORDER: also what the order book raises on a bad cancel
    │   ├── RateLimited        RATE_LIMITED
    │   ├── Busy               BUSY: the account's commands waiting are at their bound
    │   │   └── QueriesBusy    BUSY: a gateway's engine queries in flight are at their bound
    │   ├── StoreUnavailable   STORE_UNAVAILABLE: the store could not write; nothing applied
    │   └── InternalError      INTERNAL (message is generic, never an exception text)
    │       └── EngineUnavailable  INTERNAL: the engine did not answer a query in time
    ├── SymbolInfoError        malformed exchange info of a symbol (engine.market.symbol_info)
    ├── StoreError             the database cannot be used (engine.store)
    │   ├── StoreInUse         another process holds the store's owner lock (engine.store_lock)
    │   └── StoreCorrupt       damaged pages or a record that does not decode (engine.store_check)
    ├── UnknownAssets          a symbol's base and quote asset are not known (engine.trading.assets)
    ├── Refusal                a handshake refused with an HTTP status (engine.server.http)
    ├── BinanceError           a Binance REST error answer {code, msg} (engine.binance.errors)
    ├── ListenKeyLimit         every listen-key slot is live (engine.binance.listen_keys)
    ├── BadQuery               an undecodable bus query (engine.market.market_query)
    ├── ListenKeysUnavailable  the listen keys' Redis is unreachable (engine.server.shared_keys)
    ├── StreamError            a refused Binance live request (engine.binance.stream_names)
    ├── WsApiError             a refused WebSocket API request (engine.binance.ws_api)
    ├── ExpectedFailure        an actor fails on purpose to be restarted (actors.base)
    │   └── FeedSourceError    the feed's upstream was lost (actors.feed)
    ├── FrameTooLarge          an upstream frame over the limit (engine.feeds.ws_transport)
    ├── SessionClosed          an in-process session is closed (tickdesk.app)
    ├── ClientError            what the client library raises (tickdesk.client.errors)
    │   ├── ConnectError       the first connection could not be made
    │   ├── CommandError       the server answered a command with ERROR (code, message)
    │   ├── ConnectionLost     the connection dropped before the reply came
    │   ├── ClientClosed       the client is closed
    │   └── RequestTimeout     no reply (or no connection) within the timeout
    └── BenchError             a benchmark server or client failed (tickdesk.bench.runner)

Business rejections (insufficient balance, bad OCO prices, ...) are not
exceptions: they are ``REJECTED`` events in an
:class:`~engine.trading.events.Outcome`. Modules may also keep private
exceptions for their own control flow (never raised out of the module); those
derive from :class:`TickdeskError` too and are not drawn.
"""

from __future__ import annotations

from engine.protocol.enums import ErrorCode

__all__ = [
    "BadRequest",
    "Busy",
    "ConfigError",
    "EngineUnavailable",
    "InternalError",
    "ProtocolError",
    "QueriesBusy",
    "RateLimited",
    "StoreUnavailable",
    "TickdeskError",
    "Unauthorized",
    "UnknownAction",
    "UnknownOrder",
    "UnknownSymbol",
]


class TickdeskError(Exception):
    """Base of every error tickdesk raises on purpose."""


class ConfigError(TickdeskError):
    """The configuration is invalid; ``key`` names the offending key and
    ``origin``, when known, where its value came from (a file, an environment
    variable, a command-line flag)."""

    def __init__(self, key: str, message: str, origin: str = "") -> None:
        where = f" (from {origin})" if origin else ""
        super().__init__(f"{key}{where}: {message}")
        self.key = key
        self.message = message
        self.origin = origin


class ProtocolError(TickdeskError):
    """A command that is answered with an ``ERROR`` frame; the connection stays open."""

    code = ErrorCode.BAD_REQUEST

    def __init__(self, message: str, request_id: str | int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id


class BadRequest(ProtocolError):
    code = ErrorCode.BAD_REQUEST


class UnknownAction(ProtocolError):
    code = ErrorCode.UNKNOWN_ACTION


class UnknownSymbol(ProtocolError):
    code = ErrorCode.UNKNOWN_SYMBOL


class Unauthorized(ProtocolError):
    code = ErrorCode.UNAUTHORIZED


class UnknownOrder(ProtocolError):
    code = ErrorCode.UNKNOWN_ORDER


class RateLimited(ProtocolError):
    code = ErrorCode.RATE_LIMITED


class Busy(ProtocolError):
    """The account's commands waiting for the engine are at their bound
    (``server.account_queue_limit``): this one is not executed."""

    code = ErrorCode.BUSY


class QueriesBusy(Busy):
    """A gateway already has its bound of engine queries in flight
    (:mod:`engine.server.bus`, ``klines`` / ``recent_trades``): this one is
    not sent; retry once some are answered."""

    def __init__(self, limit: int, request_id: str | int | None = None) -> None:
        super().__init__(f"{limit} queries to the engine are already in flight on this "
                         "gateway; retry once they are answered", request_id)


class StoreUnavailable(ProtocolError):
    """The durable store refused a write (disk full, I/O error): the command
    changed nothing and may be retried once the store writes again."""

    code = ErrorCode.STORE_UNAVAILABLE

    def __init__(self, request_id: str | int | None = None) -> None:
        super().__init__("the store cannot write (disk full or I/O error); the command was "
                         "not applied, retry later", request_id)


class InternalError(ProtocolError):
    code = ErrorCode.INTERNAL

    def __init__(self, request_id: str | int | None = None) -> None:
        super().__init__("internal error; the command was not applied", request_id)


class EngineUnavailable(InternalError):
    """A read-only query to the engine got no answer in time (the engine is
    down or restarting, or Redis is unreachable): nothing was changed; retry."""

    def __init__(self, message: str = "the engine did not answer in time; nothing was "
                                      "changed, retry", request_id: str | int | None = None
                 ) -> None:
        ProtocolError.__init__(self, message, request_id)
