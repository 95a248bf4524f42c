"""The REST API's way into the engine: in-process clients, one per account.

Edge module (public package: it starts ConnectionActors). The Binance REST
handlers (:mod:`engine.server.binance_api`) run on the edge's API workers and
call :meth:`EngineGateway.call`, which sends the commands as one more client
of the account, exactly as a WebSocket client's frames, through a
ConnectionActor (not rate-limited: REST has its request-weight budget), and
waits for the answers carrying the commands' ids. So REST orders are the
same orders the dashboard and the WebSocket clients see, decided by the same
OrderMonitorActor.

Bounds: at most :data:`MAX_WAITING` calls wait at once (beyond: -1008, HTTP
503, nothing sent); each waits at most its ``timeout`` (-1007, HTTP 503:
"execution status unknown", as Binance says); a call keeps at most
:data:`MAX_MESSAGES` answers. Messages without a waited-for id (the
account's broadcasts) are dropped on arrival.

:class:`FeedMarket` is the market side: the FeedActor's latest snapshots of
the asked symbols, on demand (the REST ticker and depth endpoints read it).
:class:`BusMarket` is a gateway's: the latest frames the engine keeps in
Redis (no engine round trip), and the recent trades asked of the engine
across the bus.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson
import pykka
from redis import RedisError

from actors.base import ActorSlot, GetStatistics
from actors.messages import (
    ClientFrame,
    ClientGone,
    RecentTradesRequest,
    SendBookSnapshot,
    SendSnapshot,
)
from engine.binance.errors import DISCONNECTED, SERVER_BUSY, TIMEOUT, BinanceError
from engine.errors import EngineUnavailable, QueriesBusy
from engine.market.recent_trades import RecentTrade, TradesQuery
from engine.protocol.server_messages import Outgoing
from engine.server.bus import Bus
from engine.server.channel import Channel
from engine.server.redis_bus import RedisBus

__all__ = ["MAX_MESSAGES", "MAX_WAITING", "BusMarket", "EngineGateway", "FeedMarket",
           "binance_query_error"]

log = logging.getLogger("tickdesk.binance")

MAX_WAITING = 256
MAX_MESSAGES = 10_000

#: ``start(channel, account) -> actor``: a ConnectionActor for the channel.
StartSession = Callable[[Channel, str | None], "pykka.ActorRef[Any]"]


class _Channel:
    """Where one in-process client's messages go (the Channel protocol)."""

    def __init__(self, conn_id: int, on_message: Callable[[dict[str, Any]], None],
                 on_close: Callable[[_Channel], None], *, answers_only: bool = False) -> None:
        self.conn_id = conn_id
        self._answers_only = answers_only
        self._on_message = on_message
        self._on_close = on_close
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def deliver(self, out: Outgoing) -> None:
        if self._closed or (self._answers_only and b'"id"' not in out.payload):
            return  # a broadcast (no id): nobody waits for it; never parsed
        try:
            msg = json.loads(out.payload, parse_float=Decimal)
        except ValueError:  # pragma: no cover - the engine writes JSON
            return
        if isinstance(msg, dict):
            self._on_message(msg)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        self._on_close(self)


class _Waiter:
    __slots__ = ("done", "last", "messages")

    def __init__(self, last: str) -> None:
        self.last = last
        self.messages: list[dict[str, Any]] = []
        self.done = False


class _Session:
    __slots__ = ("channel", "ref")

    def __init__(self, channel: _Channel, ref: pykka.ActorRef[Any]) -> None:
        self.channel = channel
        self.ref = ref


class EngineGateway:
    """See the module docstring. Thread-safe."""

    def __init__(self, start: StartSession, conn_ids: Iterable[int]) -> None:
        self._start = start
        self._ids = iter(conn_ids)
        self._cond = threading.Condition()
        self._sessions: dict[str, _Session] = {}
        self._waiters: dict[str, _Waiter] = {}
        self._calls = 0
        self._closed = False
        self._seq = itertools.count(1)

    def call(self, account: str, commands: Sequence[Mapping[str, Any]],
             timeout: float) -> list[dict[str, Any]]:
        ids = [str(c["id"]) for c in commands]
        waiter = _Waiter(ids[-1])
        with self._cond:
            if self._closed:
                raise BinanceError(-1008, "Server is shutting down.")
            if self._calls >= MAX_WAITING:
                raise BinanceError(-1008, "Server is currently overloaded with other "
                                          "requests. Please try again in a few minutes.")
            if any(i in self._waiters for i in ids):  # pragma: no cover - ids are unique
                raise BinanceError(-1000, "request id in use")
            self._calls += 1
            for i in ids:
                self._waiters[i] = waiter
        try:
            session = self._session(account)
            for cmd in commands:
                try:
                    session.ref.tell(ClientFrame(orjson.dumps(dict(cmd)).decode(), False))
                except pykka.ActorDeadError:
                    self._drop(session.channel)
                    raise BinanceError(-1008, "The engine is restarting; try again.") from None
            with self._cond:
                if not self._cond.wait_for(lambda: waiter.done or self._closed, timeout):
                    raise BinanceError(-1007, "Timeout waiting for response from backend "
                                              "server. Send status unknown; execution "
                                              "status unknown.", status=503)
                if not waiter.done:
                    raise BinanceError(-1008, "Server is shutting down.")
                return list(waiter.messages)
        finally:
            with self._cond:
                self._calls -= 1
                for i in ids:
                    self._waiters.pop(i, None)

    def close(self) -> None:
        """Wake every waiting call (it answers -1008) and end the sessions."""
        with self._cond:
            self._closed = True
            sessions = list(self._sessions.values())
            self._sessions.clear()
            self._cond.notify_all()
        for s in sessions:
            s.channel.close()
            try:
                s.ref.tell(ClientGone())
            except pykka.ActorDeadError:
                pass

    def _session(self, account: str) -> _Session:
        with self._cond:
            found = self._sessions.get(account)
            if found is not None and not found.channel.closed:
                return found
            channel = _Channel(next(self._ids), self._on_message, self._drop,
                               answers_only=True)
            ref = self._start(channel, account)
            session = _Session(channel, ref)
            self._sessions[account] = session
            return session

    def _drop(self, channel: _Channel) -> None:
        with self._cond:
            for account, s in list(self._sessions.items()):
                if s.channel is channel:
                    del self._sessions[account]

    def _on_message(self, msg: dict[str, Any]) -> None:
        rid = msg.get("id")
        if rid is None:
            return
        with self._cond:
            waiter = self._waiters.get(str(rid))
            if waiter is None or waiter.done:
                return
            if len(waiter.messages) < MAX_MESSAGES:
                waiter.messages.append(msg)
            if str(rid) == waiter.last:
                waiter.done = True
                self._cond.notify_all()


class FeedMarket:
    """The REST market endpoints' view: the FeedActor's latest MARKET_UPDATE and
    BOOK_UPDATE of the asked symbols, sent to a one-off channel (the same
    snapshots a new subscriber gets), then a question to the FeedActor as a
    fence: its mailbox is in order, so once it answered, every snapshot it has
    is delivered. Nothing joins the hub; each call waits at most ``timeout``
    (-1007 beyond; -1008 while the feed restarts)."""

    def __init__(self, feed: ActorSlot, timeout: float = 2.0) -> None:
        self._feed = feed
        self._timeout = timeout
        self._ids = itertools.count(1)

    def _snapshots(self, symbols: Iterable[str], book: bool
                   ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        tickers: dict[str, dict[str, Any]] = {}
        books: dict[str, dict[str, Any]] = {}
        lock = threading.Lock()

        def got(msg: dict[str, Any]) -> None:
            with lock:
                if msg.get("type") == "MARKET_UPDATE":
                    tickers[str(msg["symbol"])] = msg
                elif msg.get("type") == "BOOK_UPDATE":
                    books[str(msg["symbol"])] = msg

        ch = _Channel(-next(self._ids), got, lambda _c: None)
        for s in symbols:
            self._feed.tell(SendBookSnapshot(ch, s) if book else SendSnapshot(ch, s))
        try:
            self._ask(GetStatistics())
        finally:
            ch.close()
        with lock:
            return dict(tickers), dict(books)

    def _ask(self, message: object) -> Any:
        try:
            return self._feed.ask(message, timeout=self._timeout)
        except pykka.ActorDeadError:
            raise BinanceError(-1008, "The market feed is restarting; try again.") from None
        except pykka.Timeout:
            raise BinanceError(-1007, "Timeout waiting for response from backend server.",
                               status=503) from None

    def trades(self, query: TradesQuery) -> list[RecentTrade]:
        """The FeedActor's recent trades ``query`` selects (oldest first)."""
        return list(self._ask(RecentTradesRequest(query)))

    def tickers(self, symbols: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self._snapshots(symbols, book=False)[0]

    def book(self, symbol: str) -> Mapping[str, Any] | None:
        return self._snapshots([symbol], book=True)[1].get(symbol)


def binance_query_error(exc: EngineUnavailable | QueriesBusy) -> BinanceError:
    """A failed engine query as Binance answers an unavailable backend: no
    answer in time -1007 (HTTP 503), too many in flight -1008 (HTTP 503)."""
    if isinstance(exc, QueriesBusy):
        return BinanceError(SERVER_BUSY, "Server is currently overloaded with other requests. "
                                         "Please try again in a few minutes.")
    return BinanceError(TIMEOUT, "Timeout waiting for response from backend server. "
                                 "Send status unknown; execution status unknown.", status=503)


def _decoded(payload: bytes) -> dict[str, Any] | None:
    msg = json.loads(payload, parse_float=Decimal)
    return msg if isinstance(msg, dict) else None


class BusMarket:
    """A gateway's market view (see the module docstring): tickers and the book
    from the engine's latest frames in Redis (``td:latest``, ``td:latestbook``:
    the same MARKET_UPDATE / BOOK_UPDATE a snapshot gives), recent trades from
    the engine over ``bus`` (each waits at most ``timeout``: -1007 beyond,
    -1008 when too many are in flight). Redis unreachable: -1001 (HTTP 503)."""

    def __init__(self, redis_bus: RedisBus, bus: Bus, timeout: float = 2.0) -> None:
        self._redis = redis_bus
        self._bus = bus
        self._timeout = timeout

    @staticmethod
    def _unreachable() -> BinanceError:
        return BinanceError(DISCONNECTED, "Internal error; unable to process your request. "
                                          "Please try again.")

    def tickers(self, symbols: Sequence[str]) -> dict[str, dict[str, Any]]:
        try:
            got = self._redis.latest_many(symbols)
        except RedisError:
            raise self._unreachable() from None
        out = {}
        for s, payload in got.items():
            msg = _decoded(payload)
            if msg is not None:
                out[s] = msg
        return out

    def book(self, symbol: str) -> Mapping[str, Any] | None:
        try:
            got = self._redis.latest(symbol, book=True)
        except RedisError:
            raise self._unreachable() from None
        return None if got is None else _decoded(got.payload)

    def trades(self, query: TradesQuery) -> list[RecentTrade]:
        try:
            return self._bus.recent_trades(query, self._timeout)
        except (EngineUnavailable, QueriesBusy) as exc:
            raise binance_query_error(exc) from None
