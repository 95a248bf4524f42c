"""The Redis Streams bus: one engine, many gateways.

Edge module. The same contract as :class:`~engine.server.bus.InProcessBus`
(see :mod:`engine.server.bus`), across Redis (redis-py's synchronous client,
which is thread-safe: every thread takes its own connection from the pool).

The engine side (``publish``, ``to_account``, ``to_account_now``,
``broadcast``) is called from the engine's actor threads and writes each
message **once**, whatever the number of gateways and clients:

=====================  ==================================================
``P:market``           every MARKET_UPDATE and BOOK_UPDATE, encoded by the engine
``P:latest``           hash: the latest MARKET_UPDATE of each symbol (snapshots)
``P:latestbook``       hash: the latest BOOK_UPDATE of each symbol
``P:acct:ACCOUNT``     the account's events, stream id ``SEQ-0`` (resume reads it)
``P:events``           every account event, for the gateways' live fan-out
``P:periodic``         POSITION_UPDATE / PORTFOLIO_UPDATE (no seq)
``P:bcast``            FEED_STATUS
``P:cmd``              commands, read by the engine's consumer group ``engine``
``P:reply:GATEWAY``    the direct replies to one gateway's connections
``P:epoch``            the name of the history (new when Redis lost it)
``P:streams``          Binance market stream events (``@trade``, ``@kline_1m``...):
                       the stream name, the payload encoded once, its conflation key
``P:user``             Binance user data events (executionReport...) with the account
``P:interest:GATEWAY`` string: the Binance streams, user data accounts and book
                       symbols the gateway has subscribers for (refreshed every
                       :data:`INTEREST_PERIOD_S`, expires after :data:`INTEREST_TTL_S`)
``P:gateways``         set: the gateways that announce interest
``P:query``            market queries (klines, recent trades) from gateways
``P:qreply:GATEWAY``   the engine's answers to one gateway's queries
=====================  ==================================================

The engine writes a Binance stream event, and a BOOK_UPDATE into ``P:market``,
only when some gateway announced a subscriber for it (:meth:`RedisBus.has_stream`,
:meth:`RedisBus.book_subscriber_count`: a set lookup in memory, the set
re-read from ``P:interest:*`` by a background thread every
:data:`INTEREST_REFRESH_S`). A gateway announces a change within
:data:`INTEREST_POLL_S` and refreshes its key every :data:`INTEREST_PERIOD_S`,
so a killed gateway's interest expires within :data:`INTEREST_TTL_S` (and a
refresh later the engine stops writing what only it wanted); a new subscriber
may wait up to about ``INTEREST_POLL_S + INTEREST_REFRESH_S`` for its first event.

Each gateway runs one reader thread (:meth:`RedisBus.start_gateway`) that
reads every stream it needs with one blocking ``XREAD`` (bounded: at most
:data:`READ_COUNT` entries, :data:`BLOCK_MS` of wait) and writes what it
reads to its local hub's channels, unchanged. The engine runs one command
thread (:meth:`RedisBus.start_engine`): ``XREADGROUP`` on ``P:cmd``, each
command re-decoded (:func:`~engine.protocol.commands.decode_command`) and
handed to ``route`` with a :class:`RemoteChannel` as its channel; the entry
is acknowledged (``XACK``) with its first answer, in one ``MULTI``
transaction, after the settle that executes it. A gateway gives every order a command places a
``clientOrderId`` when the client gave none (:mod:`engine.server.redelivery`)
before it enters the stream, so entries delivered to an engine that died
before answering them (still pending at start) are answered from the
account's orders (the store's, loaded by the restarted engine): an order
already placed is answered by its current state, not placed again; one that
was not placed is executed. So a command is executed at most once across
engine restarts. Commands sent while no engine runs wait in the stream and
are run when it starts.

Market queries (``klines``, ``recent_trades``: read-only, no account, nothing
to acknowledge) take a lighter path than commands: a gateway adds the query
to ``P:query`` with its gateway id and a query id and waits (bounded by the
caller's timeout) for the answer on its ``P:qreply:GATEWAY``, which its one
reader thread reads with the other streams. The engine's query thread reads
``P:query`` with a plain ``XREAD`` (from the stream's end when it starts: a
query sent while no engine ran has timed out already) and answers each in
turn, skipping one whose asker has already given up (its entry id, Redis's
clock, plus its timeout is past: a backlog behind a slow actor drains
instead of growing), from :class:`~engine.server.bus.MarketAnswers` (the actors, asked with
at most :data:`QUERY_ANSWER_S`). A gateway has at most ``max_queries``
(:data:`MAX_QUERIES`) in flight; one more raises
:class:`~engine.errors.QueriesBusy` at once (nothing sent). No answer within
the timeout raises :class:`~engine.errors.EngineUnavailable`; a late answer
is dropped.

Bounds and overflow policies: every stream is capped (``MAXLEN ~``):
market :data:`MARKET_CAP`, account streams ``history`` entries (a resume
reaching back further gets ``recovered: false``), replies, events, Binance
stream and user data events :data:`STREAM_CAP`, commands :data:`COMMAND_CAP`. A gateway has at most
about ``max_pending`` commands unanswered (counted down on each answer;
``submit`` returns False beyond it, the client gets ``ERROR``), so the
command cap is never reached by live commands. A Redis error on the
engine side is logged and counted, never raised into the feed; the reader
threads retry with a bounded back-off.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from engine.account_log import Resume, resume_from
from engine.errors import EngineUnavailable, InternalError, ProtocolError, QueriesBusy
from engine.market.klines import Kline, KlineQuery
from engine.market.market_query import (
    KLINES,
    BadQuery,
    MarketQuery,
    decode_klines,
    decode_query,
    decode_trades,
    encode_answer,
    encode_query,
)
from engine.market.recent_trades import RecentTrade, TradesQuery
from engine.protocol import server_messages as sm
from engine.protocol.commands import Command, decode_command
from engine.protocol.frames import text_frame
from engine.protocol.server_messages import Outgoing
from engine.server import binance_streams
from engine.server.bus import AccountRequest, MarketAnswers, with_seq
from engine.server.channel import Channel
from engine.server.hub import Hub
from engine.server.redelivery import answer_from_orders, assign_client_ids, needs_orders
from engine.stats import counter, gauge

__all__ = ["COMMAND_CAP", "MARKET_CAP", "MAX_QUERIES", "QUERY_ANSWER_S", "RedisBus",
           "RedisBusStatistics", "RemoteChannel"]

log = logging.getLogger("tickdesk.redis_bus")

MARKET_CAP = 10_000
STREAM_CAP = 10_000
COMMAND_CAP = 100_000
READ_COUNT = 512
BLOCK_MS = 100
#: How often a gateway checks that Redis still has its history (the epoch).
EPOCH_CHECK_S = 0.5
_GROUP = "engine"
_CONSUMER = "engine"
_RETRY_S = (0.05, 0.1, 0.2, 0.5, 1.0)
#: How long the restarted engine waits for the orders of a redelivered command.
REDELIVERY_WAIT_S = 5.0
#: A gateway looks at its hub's Binance subscriptions this often and announces a change.
INTEREST_POLL_S = 0.1
#: A gateway rewrites its interest key this often even when nothing changed...
INTEREST_PERIOD_S = 1.0
#: ...and the key expires this long after its last write (a killed gateway's interest).
INTEREST_TTL_S = 3
#: The engine re-reads every gateway's interest this often.
INTEREST_REFRESH_S = 0.5
#: A book nobody watches is still written to ``P:latestbook`` (for ``/api/v3/depth``
#: on a gateway) at most this often per symbol, and never into ``P:market``.
LATEST_BOOK_EVERY_S = 0.25
#: A gateway's market queries in flight at most (one more: QueriesBusy, not sent).
MAX_QUERIES = 64
#: The query stream's cap (gateways x MAX_QUERIES live entries stay far below it).
QUERY_CAP = 10_000
#: The longest the engine waits for an actor to answer one query.
QUERY_ANSWER_S = 2.0


@dataclass(frozen=True, slots=True)
class RedisBusStatistics:
    """What the bus counted (approximate: read without a lock; ``/metrics``:
    ``tickdesk_bus_*``)."""

    written: int = counter("Pipelined writes to Redis that succeeded.")
    write_errors: int = counter("Writes to Redis that failed (logged; nothing raised).")
    read: int = counter("Entries a gateway read from Redis.")
    commands: int = counter("Commands the engine took from the command stream.")
    stream_events: Mapping[str, int] = counter(
        "Binance market stream events the engine wrote, by stream kind (trade, aggTrade, "
        "kline, bookTicker, depth, ticker, miniTicker): only for streams some gateway watches.",
        label="kind")
    user_events: int = counter("Binance user data events the engine wrote "
                               "(only for accounts some gateway has a user data stream of).")
    streams_wanted: int = gauge("Binance stream names the gateways announce subscribers for "
                                "(as the engine last read them).")
    user_streams_wanted: int = gauge("Accounts with a user data stream on some gateway "
                                     "(as the engine last read them).")
    books_wanted: int = gauge("Symbols whose book (BOOK_UPDATE) some gateway announces "
                              "subscribers for (as the engine last read them).")
    gateways_interested: int = gauge("Gateways whose interest announcement is live.")


def _kind(stream: str) -> str:
    """``btcusdt@kline_1m`` -> ``kline``, ``btcusdt@depth@100ms`` -> ``depth``."""
    return stream.partition("@")[2].partition("@")[0].partition("_")[0]


def _outgoing(payload: bytes, key: bytes | None = None) -> Outgoing:
    """A message read from Redis: the engine's bytes, framed once per gateway."""
    return Outgoing(payload, text_frame(payload), key.decode() if key else None)


class RemoteChannel:
    """The engine side's handle on one gateway connection: what an actor
    ``deliver``s to it goes to that gateway's reply stream. The first answer
    acknowledges the command (``entry_id``): its ``XACK`` is in the same
    ``MULTI`` transaction as the answer, so an engine killed around it leaves
    the command either answered and acknowledged or neither."""

    def __init__(self, bus: RedisBus, gateway: str, conn_id: int,
                 entry_id: bytes | None = None) -> None:
        self.conn_id = conn_id
        self.gateway = gateway
        self._bus = bus
        self._entry = entry_id

    @property
    def address(self) -> str:
        return f"{self.gateway}/{self.conn_id}"

    def ack_in(self, p: Any) -> None:
        """Add the command's ``XACK`` to the pipeline ``p`` (the first answer only)."""
        entry, self._entry = self._entry, None
        if entry is not None:
            p.xack(self._bus.key("cmd"), _GROUP, entry)

    def deliver(self, out: Outgoing) -> None:
        def build(p: Any) -> None:
            p.xadd(self._bus.key("reply", self.gateway), {"c": self.conn_id, "p": out.payload},
                   maxlen=STREAM_CAP)
            self.ack_in(p)
        self._bus._write(build, atomic=True)

    def close(self, code: int, reason: str) -> None:
        """The engine does not close gateway connections."""

    @property
    def closed(self) -> bool:
        return False


class _Probe:
    """A channel that keeps the one answer of an internal query (the engine's
    command thread waits for it; the actor that answers delivers it)."""

    def __init__(self, conn_id: int) -> None:
        self.conn_id = conn_id
        self._got: dict[str, Any] | None = None
        self._done = threading.Event()

    def deliver(self, out: Outgoing) -> None:
        if not self._done.is_set():
            self._got = orjson.loads(out.payload)
            self._done.set()

    def wait(self, timeout_s: float) -> dict[str, Any] | None:
        return self._got if self._done.wait(timeout_s) else None

    def close(self, code: int, reason: str) -> None:
        """Nothing to close."""

    @property
    def closed(self) -> bool:
        return False


class _Pending:
    """One market query of this gateway, waiting for the engine's answer."""

    __slots__ = ("body", "done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.body: bytes | None = None
        self.error: str | None = None


class RedisBus:
    """The bus over Redis Streams (see the module docstring).

    One object serves one process: the engine (``start_engine``) or a gateway
    (``start_gateway``). ``accounts`` are the configured accounts (the
    engine sends their periodic updates; gateways deliver them to whoever
    is connected)."""

    def __init__(self, url: str, *, accounts: Sequence[str] = ("default",),
                 prefix: str = "td:", history: int = 1000, max_pending: int = 10_000,
                 gateway: str | None = None, timeout_s: float = 5.0,
                 now_ms: Callable[[], int] = lambda: 0,
                 max_queries: int = MAX_QUERIES) -> None:
        """``now_ms``: the clock of the errors this bus answers itself."""
        self._now_ms = now_ms
        self._r = redis.Redis.from_url(url, socket_timeout=timeout_s,
                                       socket_connect_timeout=timeout_s)
        self._prefix = prefix
        self._accounts = list(accounts)
        self.history = history
        self.gateway = gateway or uuid.uuid4().hex[:12]
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._seq: dict[str, int] = {}
        self._epoch = ""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._hub: Hub | None = None
        #: gateway side: conn_id -> the local channel of an unanswered command's sender
        self._waiting: dict[int, int] = {}
        self._written = self._write_errors = self._read = self._commands = 0
        self._stream_events: dict[str, int] = {}
        self._user_events = 0
        #: engine side: what the gateways watch (replaced whole by the interest thread)
        self._wanted_streams: frozenset[str] = frozenset()
        self._wanted_users: frozenset[str] = frozenset()
        self._wanted_books: frozenset[str] = frozenset()
        #: engine side: when each unwatched book was last written to ``P:latestbook``
        self._book_written: dict[str, float] = {}
        self._gateways_live = 0
        #: gateway side: query id -> the market query waiting for its answer
        self._queries: dict[str, _Pending] = {}
        self._max_queries = max_queries
        #: engine side: queries skipped because their asker had given up waiting
        self._stale_queries = 0
        self._query_ids = itertools.count(1)
        #: called (reader thread) when the epoch changed: the history is gone
        self.on_epoch_change: Callable[[str], None] | None = None

    @property
    def client(self) -> redis.Redis:
        """The bus's redis-py client (thread-safe; its pool is the bus's): for
        what shares the bus's Redis, e.g. the gateways' listen keys."""
        return self._r

    @property
    def prefix(self) -> str:
        return self._prefix

    # -- names ------------------------------------------------------------------

    def key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    @property
    def epoch(self) -> str:
        if not self._epoch:
            self._epoch = self._ensure_epoch()
        return self._epoch

    def _ensure_epoch(self) -> str:
        fresh = uuid.uuid4().hex[:16]
        self._r.set(self.key("epoch"), fresh, nx=True)
        got: Any = self._r.get(self.key("epoch"))
        return got.decode() if got else fresh

    # -- engine side -------------------------------------------------------------

    def _write(self, build: Callable[[Any], object], atomic: bool = False) -> bool:
        """One pipelined write (``atomic``: in one ``MULTI``/``EXEC``); False
        (logged, counted) when Redis refuses."""
        try:
            pipe: Any = self._r.pipeline(transaction=atomic)
            build(pipe)
            pipe.execute()
            self._written += 1
            return True
        except redis.RedisError as exc:
            self._write_errors += 1
            if self._write_errors in (1, 10, 100) or self._write_errors % 1000 == 0:
                log.warning("redis bus: write failed (%d so far): %s", self._write_errors, exc)
            return False

    def publish(self, symbol: str, out: Outgoing) -> int:
        def build(p: Any) -> None:
            p.xadd(self.key("market"), {"s": symbol, "k": out.conflate_key or "",
                                        "p": out.payload}, maxlen=MARKET_CAP)
            p.hset(self.key("latest"), symbol, out.payload)
        self._write(build)
        return 0  # the subscribers are the gateways', counted there

    def publish_book(self, symbol: str, out: Outgoing) -> int:
        watched = symbol in self._wanted_books

        def build(p: Any) -> None:
            if watched:
                p.xadd(self.key("market"), {"s": symbol, "k": out.conflate_key or "",
                                            "p": out.payload, "b": 1}, maxlen=MARKET_CAP)
            p.hset(self.key("latestbook"), symbol, out.payload)
        self._book_written[symbol] = time.monotonic()
        self._write(build)
        return 0

    def book_subscriber_count(self, symbol: str) -> int:
        """1 when the engine should encode this book change: some gateway announced
        a book subscriber for ``symbol`` (it then goes into ``P:market`` too), or
        ``P:latestbook`` (what ``/api/v3/depth`` and a new subscriber's snapshot
        read on a gateway) was last written :data:`LATEST_BOOK_EVERY_S` ago or more;
        else 0. So a book nobody watches costs at most a few writes a second."""
        if symbol in self._wanted_books:
            return 1
        last = self._book_written.get(symbol)
        return 1 if last is None or time.monotonic() - last >= LATEST_BOOK_EVERY_S else 0

    def watches_book(self, symbol: str) -> bool:
        return symbol in self._wanted_books

    def latest(self, symbol: str, book: bool = False) -> Outgoing | None:
        """The latest MARKET_UPDATE (or BOOK_UPDATE) of ``symbol``, for a snapshot."""
        got: Any = self._r.hget(self.key("latestbook" if book else "latest"), symbol)
        return None if got is None else _outgoing(got, symbol.encode() if not book else None)

    def latest_many(self, symbols: Sequence[str]) -> dict[str, bytes]:
        """The latest MARKET_UPDATE payload of each of ``symbols`` that has one
        (one ``HMGET``; the REST tickers of a gateway)."""
        if not symbols:
            return {}
        got: Any = self._r.hmget(self.key("latest"), list(symbols))
        return {s: p for s, p in zip(symbols, got, strict=True) if p is not None}

    def _next_seq(self, account: str) -> int:
        """The account's next seq (under the lock). After an engine restart the
        count goes on from the account stream's last id."""
        seq = self._seq.get(account)
        if seq is None:
            seq = self._last_seq(account)
        seq += 1
        self._seq[account] = seq
        return seq

    def _last_seq(self, account: str) -> int:
        last: Any = self._r.xrevrange(self.key("acct", account), count=1)
        return int(last[0][0].split(b"-")[0]) if last else 0

    def to_account(self, account: str, out: Outgoing, origin: Channel | None = None,
                   origin_out: Outgoing | None = None) -> int:
        with self._lock:
            try:
                seq = self._next_seq(account)
            except redis.RedisError as exc:
                self._write_errors += 1
                log.warning("redis bus: account %s event not announced: %s", account, exc)
                return 0
            stamped = with_seq(out, seq)
            fields: dict[str, Any] = {"a": account, "p": stamped.payload, "n": seq}
            if isinstance(origin, RemoteChannel):
                fields["o"] = origin.address
                fields["q"] = (stamped if origin_out is None
                               else with_seq(origin_out, seq)).payload

            def build(p: Any) -> None:
                p.xadd(self.key("acct", account), {"p": stamped.payload}, id=f"{seq}-0",
                       maxlen=self.history)
                p.xadd(self.key("events"), fields, maxlen=STREAM_CAP)
                if isinstance(origin, RemoteChannel):
                    origin.ack_in(p)  # answered and acknowledged at once
            self._write(build, atomic=isinstance(origin, RemoteChannel))
        return seq

    def to_account_now(self, account: str, out: Outgoing) -> None:
        self._write(lambda p: p.xadd(self.key("periodic"), {"a": account, "p": out.payload},
                                     maxlen=STREAM_CAP))

    def broadcast(self, out: Outgoing) -> None:
        def build(p: Any) -> None:
            p.xadd(self.key("bcast"), {"p": out.payload}, maxlen=1000)
            p.set(self.key("feedstatus"), out.payload)  # for a gateway's CONNECTED
        self._write(build)

    def feed_status(self) -> dict[str, Any] | None:
        """The feed object of the engine's last FEED_STATUS (None: none yet)."""
        got: Any = self._r.get(self.key("feedstatus"))
        if got is None:
            return None
        msg = orjson.loads(got)
        return {k: v for k, v in msg.items() if k not in ("type", "timestamp")}

    def accounts(self) -> list[str]:
        return list(self._accounts)

    # Binance streams (engine side): written once, only when some gateway watches.

    def has_stream(self, name: str) -> bool:
        return name in self._wanted_streams

    def publish_stream(self, name: str, payload: bytes, conflate_key: str | None = None) -> int:
        if self._write(lambda p: p.xadd(self.key("streams"), {
                "n": name, "k": conflate_key or "", "p": payload}, maxlen=STREAM_CAP)):
            kind = _kind(name)
            self._stream_events[kind] = self._stream_events.get(kind, 0) + 1
        return 0  # the subscribers are the gateways', counted there

    def has_user_stream(self, account: str) -> bool:
        return account in self._wanted_users

    def to_user(self, account: str, payloads: Sequence[bytes]) -> None:
        def build(p: Any) -> None:  # one pipeline: the events stay in order
            for payload in payloads:
                p.xadd(self.key("user"), {"a": account, "p": payload}, maxlen=STREAM_CAP)
        if self._write(build):
            self._user_events += len(payloads)

    def refresh_interest(self) -> None:
        """Re-read what every live gateway watches (the interest thread calls it
        every :data:`INTEREST_REFRESH_S`; tests may call it directly). A gateway
        whose key expired is dropped from ``P:gateways``."""
        names: Any = self._r.smembers(self.key("gateways"))
        gateways = sorted(n.decode() for n in names)
        got: Any = (self._r.mget([self.key("interest", g) for g in gateways])
                    if gateways else [])
        streams: set[str] = set()
        users: set[str] = set()
        books: set[str] = set()
        gone: list[str] = []
        for gw, raw in zip(gateways, got, strict=True):
            if raw is None:
                gone.append(gw)
                continue
            try:
                announced = orjson.loads(raw)
                streams.update(str(n) for n in announced.get("s", ()))
                users.update(str(a) for a in announced.get("u", ()))
                books.update(str(b) for b in announced.get("b", ()))
            except (orjson.JSONDecodeError, AttributeError, TypeError):
                log.warning("redis bus: gateway %s announced malformed interest", gw)
        if gone:
            self._r.srem(self.key("gateways"), *gone)
        self._wanted_streams = frozenset(streams)
        self._wanted_users = frozenset(users)
        self._wanted_books = frozenset(books)
        self._gateways_live = len(gateways) - len(gone)

    def _interest_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.refresh_interest()  # on failure the last known interest stays
                failures = 0
            except redis.RedisError as exc:
                failures = self._pause(failures, exc)
                continue
            self._stop.wait(INTEREST_REFRESH_S)

    def start_engine(self, route: Callable[[AccountRequest], bool],
                     answers: MarketAnswers | None = None) -> None:
        """Start the command thread: ``route`` runs each command (its one answer
        goes to the command's :class:`RemoteChannel`); and, given ``answers``,
        the query thread that answers the gateways' market queries."""
        self._ensure_group()
        self._redeliver(route)
        self._spawn("redis-bus-commands", lambda: self._command_loop(route))
        self._spawn("redis-bus-interest", self._interest_loop)
        if answers is not None:
            start = self._tail(self.key("query"))
            self._spawn("redis-bus-queries", lambda: self._query_loop(answers, start))

    def _query_loop(self, answers: MarketAnswers, last: str) -> None:
        key = self.key("query")
        failures = 0
        while not self._stop.is_set():
            try:
                got: Any = self._r.xread({key: last}, count=READ_COUNT, block=BLOCK_MS)
                failures = 0
            except redis.RedisError as exc:
                failures = self._pause(failures, exc)
                continue
            if not got:
                continue
            try:  # Redis's clock: the entry ids are its, whatever the hosts' clocks
                secs, micros = self._r.time()
                offset_ms = secs * 1000 + micros // 1000 - time.time() * 1000
            except redis.RedisError as exc:
                failures = self._pause(failures, exc)
                continue
            for _key, entries in got:
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    sent_ms = int(entry_id.split(b"-")[0])
                    waits_ms = int(fields.get(b"t", b"0") or 0)
                    if time.time() * 1000 + offset_ms > sent_ms + waits_ms:
                        self._stale_queries += 1  # its asker has given up: not answered
                        continue
                    self._answer_query(answers, fields)

    def _answer_query(self, answers: MarketAnswers, f: dict[bytes, bytes]) -> None:
        """Answer one query to its gateway: the rows, or ``e`` (why not)."""
        try:
            gateway, qid = f[b"g"].decode(), f[b"q"].decode()
        except (KeyError, UnicodeDecodeError):
            log.warning("redis bus: a query without its gateway or id, skipped")
            return
        answer: dict[str, Any] = {"q": qid}
        try:
            wait = min(QUERY_ANSWER_S, max(0.05, int(f.get(b"t", b"2000")) / 1000))
            query = decode_query(f[b"k"].decode(), f[b"b"])
            rows = (answers.klines(query, wait) if isinstance(query, KlineQuery)
                    else answers.recent_trades(query, wait))
            answer["b"] = encode_answer(rows)
        except EngineUnavailable as exc:
            answer["e"] = exc.message
        except (BadQuery, KeyError, ValueError) as exc:
            log.warning("redis bus: a query that does not decode: %s", exc)
            answer["e"] = "the query could not be read by the engine"
        except Exception:  # a bug: the query is answered, the thread goes on
            log.exception("redis bus: query %s failed", qid)
            answer["e"] = "the engine failed to answer"
        self._write(lambda p: p.xadd(self.key("qreply", gateway), answer, maxlen=STREAM_CAP))

    def _ensure_group(self) -> None:
        try:
            self._r.xgroup_create(self.key("cmd"), _GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _redeliver(self, route: Callable[[AccountRequest], bool]) -> None:
        """Commands a previous engine took and never answered, in order, before
        any new one: answered from the account's orders when they already ran
        (see :mod:`engine.server.redelivery`), else executed."""
        while True:
            got: Any = self._r.xreadgroup(_GROUP, _CONSUMER, {self.key("cmd"): "0"},
                                          count=READ_COUNT)
            entries = got[0][1] if got else []
            if not entries:
                return
            for entry_id, fields in entries:
                self._run_command(entry_id, fields, route, redelivered=True)

    def _from_orders(self, cmd: Command, req: AccountRequest,
                     route: Callable[[AccountRequest], bool]) -> bool:
        """Answer a redelivered ``cmd`` from the account's orders (one
        ``get_orders all`` through ``route``, awaited at most
        :data:`REDELIVERY_WAIT_S`). False: it must be executed."""
        probe = _Probe(req.channel.conn_id)
        query = decode_command(orjson.dumps({"action": "get_orders", "status": "all"}))
        if not route(AccountRequest(req.account, probe, None, query.action, query.body,
                                    query.args)):
            raise InternalError(cmd.request_id)
        got = probe.wait(REDELIVERY_WAIT_S)
        if got is None or got.get("type") != "ORDERS":
            raise InternalError(cmd.request_id)
        answer = answer_from_orders(cmd.action, cmd.body, got.get("orders", []),
                                    cmd.request_id, self._now_ms())
        for out in answer:  # the first acknowledges the command
            req.channel.deliver(out)
        return bool(answer)

    @staticmethod
    def _request_id(fields: dict[bytes, bytes]) -> Any:
        with contextlib.suppress(Exception):
            body = orjson.loads(fields[b"b"])
            if isinstance(body, dict):
                return body.get("id")
        return None

    def _command_loop(self, route: Callable[[AccountRequest], bool]) -> None:
        key = self.key("cmd")
        failures = 0
        while not self._stop.is_set():
            try:
                got: Any = self._r.xreadgroup(_GROUP, _CONSUMER, {key: ">"}, count=READ_COUNT,
                                              block=BLOCK_MS)
                failures = 0
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):  # Redis lost the stream (restarted)
                    with contextlib.suppress(redis.RedisError):
                        self._ensure_group()
                    continue
                failures = self._pause(failures, exc)
                continue
            except redis.RedisError as exc:
                failures = self._pause(failures, exc)
                continue
            for _key, entries in got or ():
                for entry_id, fields in entries:
                    self._run_command(entry_id, fields, route)

    def _run_command(self, entry_id: bytes, fields: dict[bytes, bytes],
                     route: Callable[[AccountRequest], bool], redelivered: bool = False) -> None:
        self._commands += 1
        channel = RemoteChannel(self, fields[b"g"].decode(), int(fields[b"c"]), entry_id)
        rid = self._request_id(fields)
        try:
            cmd = decode_command(fields[b"b"])
            req = AccountRequest(fields[b"a"].decode(), channel, cmd.request_id, cmd.action,
                                 cmd.body, cmd.args)
            if redelivered and needs_orders(cmd.action, cmd.body) and self._from_orders(
                    cmd, req, route):
                return
            if not route(req):
                raise InternalError(cmd.request_id)
        except ProtocolError as exc:
            channel.deliver(sm.error(exc.code, exc.message, self._now_ms(), rid))
        except Exception:  # a bug: the command is answered, the reader goes on
            log.exception("redis bus: command %s failed", entry_id.decode())
            err = InternalError(rid)
            channel.deliver(sm.error(err.code, err.message, self._now_ms(), rid))

    # -- gateway side ------------------------------------------------------------

    def submit(self, request: AccountRequest) -> bool:
        """Send a command to the engine (the answer comes back on this
        gateway's reply stream, or on the events stream for an order)."""
        with self._lock:
            if len(self._waiting) >= self._max_pending:
                return False
        body = assign_client_ids(request.action, request.body)
        body.setdefault("action", request.action.value)
        ok = self._write(lambda p: p.xadd(self.key("cmd"), {
            "a": request.account, "g": self.gateway, "c": request.channel.conn_id,
            "b": orjson.dumps(body)}, maxlen=COMMAND_CAP))
        if ok:
            with self._lock:
                self._waiting[request.channel.conn_id] = (
                    self._waiting.get(request.channel.conn_id, 0) + 1)
        return ok

    def klines(self, query: KlineQuery, timeout_s: float) -> list[Kline]:
        """The engine's bars for ``query`` (see the module docstring)."""
        body = self._query(query, timeout_s)
        try:
            return decode_klines(body)
        except BadQuery as exc:
            log.warning("redis bus: an answer that does not decode: %s", exc)
            raise EngineUnavailable("the engine's answer could not be read; retry") from None

    def recent_trades(self, query: TradesQuery, timeout_s: float) -> list[RecentTrade]:
        """The engine's recent trades for ``query`` (see the module docstring)."""
        body = self._query(query, timeout_s)
        try:
            return decode_trades(body)
        except BadQuery as exc:
            log.warning("redis bus: an answer that does not decode: %s", exc)
            raise EngineUnavailable("the engine's answer could not be read; retry") from None

    def _query(self, query: MarketQuery, timeout_s: float) -> bytes:
        kind, body = encode_query(query)
        pending = _Pending()
        with self._lock:
            if len(self._queries) >= self._max_queries:
                raise QueriesBusy(self._max_queries)
            qid = f"{next(self._query_ids)}"
            self._queries[qid] = pending
        try:
            ok = self._write(lambda p: p.xadd(self.key("query"), {
                "g": self.gateway, "q": qid, "k": kind, "b": body,
                "t": int(timeout_s * 1000)}, maxlen=QUERY_CAP))
            if not ok:
                raise EngineUnavailable("Redis is unreachable; nothing was changed, retry")
            if not pending.done.wait(timeout_s):
                what = "klines" if kind == KLINES else "recent trades"
                raise EngineUnavailable(f"the engine did not answer the {what} query within "
                                        f"{timeout_s:g} s; nothing was changed, retry")
        finally:
            with self._lock:
                self._queries.pop(qid, None)
        if pending.error is not None or pending.body is None:
            raise EngineUnavailable(f"the engine could not answer: {pending.error}; retry")
        return pending.body

    def _query_answered(self, f: dict[bytes, bytes]) -> None:
        with self._lock:
            pending = self._queries.get(f[b"q"].decode())
        if pending is None:
            return  # timed out meanwhile: dropped
        if b"b" in f:
            pending.body = f[b"b"]
        else:
            pending.error = f.get(b"e", b"no reason").decode()
        pending.done.set()

    def resume(self, account: str, epoch: str, seq: int) -> Resume:
        """What the account's connection missed after ``seq`` (one XRANGE)."""
        current = self._ensure_epoch()
        last = self._last_seq(account)
        if epoch != current or seq < 0 or last - seq > self.history:
            return Resume(False)
        got: Any = (self._r.xrange(self.key("acct", account), min=f"{seq + 1}-0",
                                   count=self.history + 1) if last > seq else [])
        history = [(int(i.split(b"-")[0]), f[b"p"]) for i, f in got]
        return resume_from(current, epoch, seq, last, history)

    def start_gateway(self, hub: Hub) -> None:
        """Start the reader thread: what the engine writes goes to ``hub``'s channels."""
        self._hub = hub
        self._epoch = self._ensure_epoch()
        names = [self.key(n) for n in ("market", "events", "periodic", "bcast", "streams",
                                       "user")]
        names.append(self.key("reply", self.gateway))
        names.append(self.key("qreply", self.gateway))
        last = {name: self._tail(name) for name in names}
        self._spawn("redis-bus-reader", lambda: self._reader_loop(last))
        self._spawn("redis-bus-announce", lambda: self._announce_loop(hub))

    def announce_interest(self, hub: Hub) -> None:
        """Write what ``hub``'s Binance clients watch to this gateway's interest
        key (expiring after :data:`INTEREST_TTL_S`) and register the gateway."""
        body = orjson.dumps({"s": hub.stream_names(), "u": hub.user_accounts(),
                             "b": hub.book_symbols()})
        p: Any = self._r.pipeline(transaction=False)
        p.set(self.key("interest", self.gateway), body, ex=INTEREST_TTL_S)
        p.sadd(self.key("gateways"), self.gateway)
        p.execute()

    def _announce_loop(self, hub: Hub) -> None:
        """Announce at once when the hub's Binance subscriptions change (looked
        at every :data:`INTEREST_POLL_S`), and every :data:`INTEREST_PERIOD_S`
        in any case (the key's expiry is the gateway's liveness)."""
        failures = 0
        last: tuple[list[str], list[str], list[str]] | None = None
        written_at = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            current = (hub.stream_names(), hub.user_accounts(), hub.book_symbols())
            if current != last or now - written_at >= INTEREST_PERIOD_S:
                try:
                    self.announce_interest(hub)
                    last, written_at, failures = current, now, 0
                except redis.RedisError as exc:
                    failures = self._pause(failures, exc)
                    continue
            self._stop.wait(INTEREST_POLL_S)

    def _tail(self, name: str) -> str:
        got: Any = self._r.xrevrange(name, count=1)
        return got[0][0].decode() if got else "0-0"

    def _reader_loop(self, last: dict[str, str]) -> None:
        failures = 0
        checked_at = time.monotonic()
        while not self._stop.is_set():
            try:
                streams: dict[Any, Any] = dict(last)
                got: Any = self._r.xread(streams, count=READ_COUNT, block=BLOCK_MS)
                failures = 0
            except redis.RedisError as exc:
                failures = self._pause(failures, exc)
                continue
            for name, entries in got or ():
                name_s = name.decode()
                for entry_id, fields in entries:
                    self._read += 1
                    try:
                        self._dispatch(name_s, fields)
                    except Exception:  # a malformed entry: skipped, the reader goes on
                        log.exception("redis bus: cannot deliver %s %s", name_s,
                                      entry_id.decode())
                    last[name_s] = entry_id.decode()
            now = time.monotonic()
            if now - checked_at >= EPOCH_CHECK_S:  # not per read: it would delay the next
                checked_at = now
                self._check_epoch(last)

    def _check_epoch(self, last: dict[str, str]) -> None:
        try:
            current = self._ensure_epoch()
        except redis.RedisError:
            return
        if current != self._epoch:
            self._epoch = current
            for name in last:  # Redis lost the streams: read them from the start
                last[name] = "0-0"
            cb = self.on_epoch_change
            if cb is not None:
                cb(current)

    def _dispatch(self, name: str, f: dict[bytes, bytes]) -> None:
        hub = self._hub
        if hub is None:  # pragma: no cover - start_gateway sets it first
            return
        if name == self.key("market"):
            symbol = f[b"s"].decode()
            out = _outgoing(f[b"p"], f.get(b"k"))
            if b"b" in f:
                hub.publish_book(symbol, out)
            else:
                hub.publish(symbol, out)
        elif name == self.key("events"):
            account = f[b"a"].decode()
            origin = f.get(b"o", b"").decode()
            own = self.gateway + "/"
            if origin.startswith(own):
                conn = int(origin[len(own):])
                ch = hub.channel(conn)
                self._answered(conn)
                if ch is not None:
                    hub.to_account(account, _outgoing(f[b"p"]), skip=ch)
                    ch.deliver(_outgoing(f[b"q"]))
                    return
            hub.to_account(account, _outgoing(f[b"p"]))
        elif name == self.key("periodic"):
            hub.to_account(f[b"a"].decode(), _outgoing(f[b"p"]))
        elif name == self.key("bcast"):
            hub.broadcast(_outgoing(f[b"p"]))
        elif name == self.key("streams"):
            key = f.get(b"k")
            binance_streams.publish_stream(hub, f[b"n"].decode(), f[b"p"],
                                           key.decode() if key else None)
        elif name == self.key("user"):
            binance_streams.to_user(hub, f[b"a"].decode(), (f[b"p"],))
        elif name == self.key("qreply", self.gateway):
            self._query_answered(f)
        else:  # this gateway's replies
            conn = int(f[b"c"])
            self._answered(conn)
            ch = hub.channel(conn)
            if ch is not None:
                ch.deliver(_outgoing(f[b"p"]))

    def _answered(self, conn: int) -> None:
        with self._lock:
            n = self._waiting.get(conn, 0)
            if n <= 1:
                self._waiting.pop(conn, None)
            else:
                self._waiting[conn] = n - 1

    # -- both --------------------------------------------------------------------

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(t)
        t.start()

    def _pause(self, failures: int, exc: Exception) -> int:
        """Wait before the next try (bounded back-off); the stop event ends it."""
        delay = _RETRY_S[min(failures, len(_RETRY_S) - 1)]
        if failures in (0, 10) or failures % 100 == 0:
            log.warning("redis bus: %s; retrying", exc)
        self._stop.wait(delay)
        return failures + 1

    def statistics(self) -> RedisBusStatistics:
        return RedisBusStatistics(
            written=self._written, write_errors=self._write_errors, read=self._read,
            commands=self._commands, stream_events=dict(self._stream_events),
            user_events=self._user_events, streams_wanted=len(self._wanted_streams),
            user_streams_wanted=len(self._wanted_users),
            books_wanted=len(self._wanted_books), gateways_interested=self._gateways_live)

    def close(self, timeout: float = 2.0) -> None:
        """Stop the threads (each within ``timeout``) and close the pool. A
        gateway withdraws its interest first (the engine stops writing its
        streams at its next refresh instead of after the key's expiry)."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        if self._hub is not None:
            with contextlib.suppress(redis.RedisError):
                self._r.delete(self.key("interest", self.gateway))
        self._r.close()
