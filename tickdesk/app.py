"""The Engine facade: builds the actor tree and the I/O loop, and tears them down.

Edge module. ``Engine`` is what ``tickdesk run`` runs and what an
application embeds::

    from tickdesk import Engine

    with Engine(listen=False) as engine:          # no network listener
        session = engine.connect()                # an in-process client
        session.send({"action": "subscribe_ticker", "symbol": "BTCUSDT"})
        print(session.get(timeout=2))             # {'type': 'CONNECTED', ...}

A session receives exactly the messages a WebSocket client would, as dicts,
by callback (called from engine threads: keep it quick) or from a bounded
queue (:meth:`LocalSession.get`), with the same overflow policy as a socket:
MARKET_UPDATE conflated per symbol, other messages in order, and a session
whose backlog passes ``server.max_queued_bytes`` closed as a slow consumer.
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
import pykka
import redis
from redis import RedisError

from actors.base import ActorSlot, FailureHook, GetStatistics
from actors.binance_session import BinanceSessionActor, check_streams
from actors.binance_session import join as join_binance
from actors.command_desk import CommandDesk
from actors.connection import (
    ConnectionActor,
    InboundGate,
    SessionServices,
    announce,
    command_route,
)
from actors.feed import FeedActor
from actors.messages import (
    ClientFrame,
    ClientGone,
    GateRefusal,
    KlineRequest,
    Pulse,
    SymbolInterest,
)
from actors.order_monitor import OrderMonitorActor
from actors.portfolio import KLINE_PULSE_S, PortfolioActor
from actors.supervisor import (
    AwaitStarted,
    ChildBoard,
    ChildSpec,
    FeedStatusReport,
    Supervisor,
    SupervisorLink,
)
from actors.timer import TimerActor
from actors.trade_relay import TradeRelay
from engine.backoff import BackoffPolicy
from engine.binance.signing import ApiKey
from engine.binance.stream_names import StreamKind, StreamRoute, is_stream_path
from engine.binance.stream_names import route as stream_route
from engine.clock import Clock, SystemClock
from engine.config import Config, account_start
from engine.dashboard import dashboard_routes
from engine.data_dir import MEMORY_PATHS, default_store_path
from engine.errors import (
    EngineUnavailable,
    QueriesBusy,
    RateLimited,
    TickdeskError,
    UnknownSymbol,
)
from engine.feeds.base import FeedShared
from engine.feeds.exchange_info import fetch_exchange_info
from engine.feeds.registry import source_kind
from engine.frame_gate import Admit, FrameGate, GateCounts
from engine.health import assess
from engine.market.klines import DEFAULT_LIMIT, Kline, KlineQuery
from engine.market.symbol_info import SymbolCatalog, SymbolInfo, build_catalog, load_snapshot
from engine.outbox import Outbox
from engine.protocol import server_messages as sm
from engine.protocol.enums import CloseCode
from engine.protocol.frames import close_frame
from engine.protocol.server_messages import Outgoing
from engine.rate_limit import RateLimiter
from engine.server.binance_api import (
    API_PREFIX,
    ApiContext,
    BinanceApi,
    busy_response,
    openapi_route,
)
from engine.server.bus import Bus, InProcessBus
from engine.server.channel import Channel, SocketChannel
from engine.server.edge import Accepted, EdgeLimits, EdgeLoop, Site
from engine.server.http import (
    ApiSite,
    HostPolicy,
    HttpResponse,
    Refusal,
    Route,
    UpgradeRequest,
)
from engine.server.hub import Hub
from engine.server.limits import AuthFailures, ConnectionLimits, SharedBudgets, peer_ip
from engine.server.ops import (
    EngineMetrics,
    OpsSnapshot,
    StatisticsSource,
    TransportStats,
    healthz_route,
    metrics_route,
)
from engine.server.redis_bus import RedisBus
from engine.server.redis_listen_keys import RedisListenKeys
from engine.server.redis_sessions import RedisSessions
from engine.server.sessions import LocalSessions, SessionKeeper
from engine.server.shared_keys import ListenKeyStore, ListenKeysUnavailable, SharedListenKeys
from engine.store import Store, StoreError
from engine.store_check import verify
from engine.store_health import StoreHealth
from engine.store_lock import StoreLock
from engine.trading.assets import assets_from
from engine.trading.history import MEMORY_FILLS_PER_ACCOUNT
from engine.trading.ledger import AssetsFn
from tickdesk.binance_gateway import BusMarket, EngineGateway, FeedMarket, binance_query_error
from tickdesk.engine_answers import ActorAnswers

__all__ = ["WS_PATH", "Engine", "LocalSession", "SessionClosed"]

log = logging.getLogger("tickdesk.engine")

WS_PATH = "/api/ws/realtime"
#: The Binance market streams this engine builds (docs/binance-compat.md).
BINANCE_STREAM_KINDS = frozenset({StreamKind.TRADE, StreamKind.AGG_TRADE,
                                  StreamKind.TICKER, StreamKind.MINI_TICKER,
                                  StreamKind.BOOK_TICKER,
                                  StreamKind.DEPTH, StreamKind.KLINE})
_MEMORY_DBS = itertools.count(1)
#: How long a market query (klines, recent trades) waits for the engine
#: (a gateway: across the bus; docs/scaling.md).
QUERY_TIMEOUT_S = 2.0
#: At most one log line about failed token handshakes per this many seconds.
_AUTH_LOG_INTERVAL_S = 10.0
_GOING_AWAY_REASON = "server shutting down"


def asyncapi_route() -> Route:
    """``GET /asyncapi.json``: the AsyncAPI document, built once (tickdesk.asyncapi)."""
    # imported here: ``python -m tickdesk.asyncapi`` must not find itself
    # imported already by the package (tickdesk/__init__ imports this module)
    from tickdesk.asyncapi import encoded

    body = encoded()

    def route(_headers: Any, _query: Any) -> HttpResponse:
        return HttpResponse(200, "application/json", body)
    return route


class SessionClosed(TickdeskError):
    """The in-process session is closed (``code`` says why)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"session closed ({code})")
        self.code = code


class _FeedStatus:
    """The current FEED_STATUS, shared by all threads."""

    def __init__(self, feed: str) -> None:
        self._lock = threading.Lock()
        # Not serving yet, and not given up on either: RECONNECTING (attempt 0)
        # until the Supervisor reports (DOWN is kept for an escalated feed).
        self._value: dict[str, Any] = {"feed": feed, "status": "RECONNECTING", "attempt": 0,
                                       "retryInMs": 0, "reason": "starting"}

    def get(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._value)

    def set(self, report: FeedStatusReport) -> dict[str, Any] | None:
        """Store a report; returns the new value if it changed anything."""
        with self._lock:
            new = dict(self._value, status=report.status, attempt=report.attempt,
                       retryInMs=report.retry_in_ms, reason=report.reason)
            if new == self._value:
                return None
            self._value = new
            return dict(new)


class LocalSession:
    """An in-process client of the engine (see the module docstring). Thread-safe."""

    def __init__(self, conn_id: int, max_queued_bytes: int,
                 callback: Callable[[dict[str, Any]], None] | None) -> None:
        self.conn_id = conn_id
        self._callback = callback
        self._cond = threading.Condition()
        self._outbox = Outbox(max_queued_bytes)
        self._closed_code: int | None = None
        self._actor: pykka.ActorRef[Any] | None = None
        self._on_close: Callable[[LocalSession], None] | None = None

    # Channel protocol ------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed_code is not None

    def deliver(self, out: Outgoing) -> None:
        if self._closed_code is not None:
            return
        if self._callback is not None:
            try:
                self._callback(orjson.loads(out.payload))
            except Exception:
                log.exception("session %s: callback failed", self.conn_id)
            return
        with self._cond:
            ok = self._outbox.push(out.payload, out.conflate_key)
            self._cond.notify_all()
        if not ok:
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer: session queue limit reached")

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        with self._cond:
            if self._closed_code is not None:
                return
            self._closed_code = code
            self._cond.notify_all()
        actor = self._actor
        if actor is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                actor.tell(ClientGone())

    # user API ----------------------------------------------------------------

    def send(self, command: Mapping[str, Any]) -> None:
        """Send one command, exactly as a client would (answers arrive as messages)."""
        if self._closed_code is not None or self._actor is None:
            raise SessionClosed(self._closed_code or CloseCode.NORMAL)
        try:
            self._actor.tell(ClientFrame(orjson.dumps(command).decode(), False))
        except pykka.ActorDeadError:
            raise SessionClosed(self._closed_code or CloseCode.GOING_AWAY) from None

    def get(self, timeout: float | None = None) -> dict[str, Any]:
        """The next message; raises ``TimeoutError``, or :class:`SessionClosed` once
        closed and drained."""
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._outbox) or self.closed, timeout):
                raise TimeoutError("no message within the timeout")
            if self._outbox:
                data = self._outbox.pop_batch(1)
                return dict(orjson.loads(data))
            raise SessionClosed(self._closed_code or CloseCode.NORMAL)

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool],
                 timeout: float = 5.0) -> dict[str, Any]:
        """Skip messages until one matches ``predicate`` (bounded by ``timeout``)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching message within the timeout")
            msg = self.get(timeout=left)
            if predicate(msg):
                return msg

    def __enter__(self) -> LocalSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_store_directory(path: str) -> None:
    """Create the directory of the default store (the user's data directory on a
    first run), private to the user as XDG asks. Only the default's: a store
    configured in a directory that does not exist is an error naming it."""
    directory = os.path.dirname(path)
    if directory:
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the directory of the store {path!r}: "
                             f"{exc.strerror}") from None


def _gated_frames(target: ActorSlot, gate: InboundGate) -> Callable[[bytes | str, bool], bool]:
    """A session's frames from the I/O thread to its actor, counted by ``gate``:
    the callback answers False (pause reading this socket) once the actor has
    ``gate.limit`` of them waiting."""

    def on_message(data: bytes | str, binary: bool) -> bool:
        more = gate.enter()
        if not target.tell(ClientFrame(data, binary)):
            gate.leave()
            return True
        return more

    return on_message


def _admitted_frames(target: ActorSlot, gate: InboundGate, frame_gate: FrameGate,
                     channel: SocketChannel, services: SessionServices,
                     counts: GateCounts) -> Callable[[bytes | str, bool], bool]:
    """:func:`_gated_frames` behind the connection's frame gate
    (:mod:`engine.frame_gate`), all in the I/O thread: a refused frame is
    answered ``ERROR RATE_LIMITED`` here (with its ``id`` when readable) and a
    flood closed 1008 here, so the actor is not woken for them. The session's
    own answers stay in command order: while earlier frames still wait in the
    actor's mailbox, the refusal goes behind them (:class:`GateRefusal`, which
    the actor only delivers) instead of overtaking their replies."""
    forward = _gated_frames(target, gate)

    def on_message(data: bytes | str, binary: bool) -> bool:
        verdict = frame_gate.check(data, binary, services.monotonic())
        admit = verdict.admit
        if admit is Admit.PASS:
            return forward(data, binary)
        if admit is Admit.REFUSE:
            err = RateLimited(verdict.message, verdict.request_id)
            answer = sm.error(err.code, err.message, services.now_ms(), verdict.request_id)
            if gate.waiting:  # behind the replies to the frames the actor still has
                more = gate.enter()
                if target.tell(GateRefusal(answer)):
                    counts.queued += 1
                    return more
                gate.leave()
            channel.deliver(answer)
        elif admit is Admit.CLOSE:
            log.warning("connection %s: closed for exceeding the rate limit", channel.conn_id)
            channel.close(CloseCode.POLICY, "rate limit exceeded")
        return True

    return on_message


class Engine:
    """The whole engine in one object; start/stop it, or use it as a context manager."""

    def __init__(self, config: Config | None = None, *, listen: bool = True,
                 clock: Clock | None = None) -> None:
        self.config = config or Config()
        self.clock: Clock = clock or SystemClock()
        self._listen = listen
        cfg = self.config
        self.hub = Hub()
        #: The I/O thread: owns every client socket (engine.server.edge).
        self.edge = EdgeLoop(self.clock.monotonic)
        self.portfolio = ActorSlot("portfolio")
        self.order_monitor = ActorSlot("order_monitor")
        self.feed = ActorSlot("feed")
        self._timers = {name: ActorSlot(f"timer-{name}")
                        for name in ("positions", "portfolio", "equity", "klines")}
        self._feed_status = _FeedStatus(cfg.feed.source)
        self._feed_kind = source_kind(cfg.feed.source)
        #: Feed counters and state shared by every generation of the FeedActor.
        self.feed_shared = FeedShared(cfg.feed.symbols)
        if self._feed_kind.live_symbols and cfg.feed.dynamic_symbols:
            # The FeedActor withdraws live symbols nobody watches (after a grace).
            # A report lost while the feed restarts is made up for: a new FeedActor
            # looks at the hub's watched symbols when it starts.
            feed_slot = self.feed

            def interest(symbol: str, watched: bool) -> None:
                feed_slot.tell(SymbolInterest(symbol, watched))

            self.hub.on_interest = interest
        #: Every served symbol's exchange info and filters: from the shipped
        #: snapshot (simulated, replay) or from Binance at start().
        self.symbols = self._symbol_catalog()
        #: A symbol's base and quote asset, for the ledgers and the order checks: from
        #: its exchange info (the suffix rule only for a symbol that has none).
        self.assets_of: AssetsFn = assets_from(self.symbols.get)
        self._ids = itertools.count(1)
        self._accounts = tuple(a.name for a in cfg.accounts) or ("default",)
        self._tokens = {a.token: a.name for a in cfg.accounts}
        self._supervisor: pykka.ActorRef[Any] | None = None
        self._port: int | None = None
        self.hosts = HostPolicy.for_server(cfg.server.host, cfg.server.allowed_hosts,
                                           cfg.server.allowed_origins, cfg.server.port)
        self._sessions: dict[int, LocalSession] = {}
        self._connections: dict[int, pykka.ActorRef[Any]] = {}
        self._lock = threading.Lock()
        self._transports: dict[int, SocketChannel] = {}
        self._transports_cv = threading.Condition()
        self.auth_failures = AuthFailures(cfg.server.auth_failure_rate_per_s,
                                          cfg.server.auth_failure_burst)
        self._auth_log_at = -_AUTH_LOG_INTERVAL_S
        self._auth_log_missed = 0
        account_rate = cfg.server.account_rate_limit_per_s
        self.account_budgets = SharedBudgets(account_rate, max(1, math.ceil(2 * account_rate)))
        #: What the socket clients' frame gates let through and refused (/metrics).
        self.gate_counts = GateCounts()
        self.limits = ConnectionLimits(cfg.server.max_connections,
                                       cfg.server.max_connections_per_ip)
        self.transport_stats = TransportStats()
        #: Counted as it happens: ORDER_UPDATEs by execution type, tick fan-out latency.
        self.metrics = EngineMetrics()
        self._started_at = 0.0
        self._started = False
        self._stopped = False
        self._store_path, self._store_anchor = self._store_location(cfg.store.path)
        self._store_in_memory = self._store_anchor is not None
        #: Held from start() to stop() for a database file (None in memory).
        self._store_lock = (StoreLock(self._store_path) if self._store_anchor is None
                            else None)
        #: Whether the store writes, and its errors by kind (the PortfolioActor's reports).
        self.store_health = StoreHealth()
        #: Every child's starts, failures and restarts (the Supervisor's records).
        self.children = ChildBoard()
        #: Account commands wait here, per account, for their engine actor.
        queue_limit = cfg.server.account_queue_limit
        #: A trade reaches the order monitor and the portfolio after its fan-out
        #: but before any command queued in a desk (actors.trade_relay).
        self.trade_relay = TradeRelay()
        self.desks = {
            "portfolio": CommandDesk(self.portfolio, queue_limit, self.clock.now_ms,
                                     self.trade_relay),
            "order_monitor": CommandDesk(self.order_monitor, queue_limit, self.clock.now_ms,
                                         self.trade_relay),
        }
        #: The seam between the engine's announcements and the connections, and
        #: between the connections' commands and the engine (engine.server.bus):
        #: commands reach the desks above.
        self._route = command_route(self.desks["portfolio"], self.desks["order_monitor"])
        #: ``cluster.role``: all (one process), engine or gateway (docs/scaling.md).
        self.role = cfg.cluster.role
        #: The Redis Streams bus of an engine or a gateway (None in one process).
        self.redis_bus: RedisBus | None = None
        self.bus: Bus
        #: The engine's answers to market queries (klines, recent trades): its actors.
        self.answers = ActorAnswers(self.portfolio, self.feed, self.trade_relay.flush)
        if self.role == "all":
            self.bus = InProcessBus(self.hub, self._route, answers=self.answers)
        else:
            self.redis_bus = RedisBus(cfg.cluster.redis_url, accounts=self._accounts,
                                      now_ms=self.clock.now_ms)
            self.bus = self.redis_bus
        gateway = self.role == "gateway"
        #: Each session's market subscriptions, for ``resume {session}``: in
        #: memory in one process, in Redis on a gateway (any gateway restores).
        self.redis_sessions: RedisSessions | None = None
        self.sessions: SessionKeeper | None = None
        keep_s = cfg.server.session_keep_s
        if self.role == "all":
            self.sessions = LocalSessions(keep_s, self.clock.monotonic)
        elif gateway and self.redis_bus is not None:
            self.redis_sessions = RedisSessions(
                redis.Redis.from_url(cfg.cluster.redis_url, socket_timeout=5.0,
                                     socket_connect_timeout=5.0), self.redis_bus.key, keep_s)
            self.sessions = self.redis_sessions
        self.services = SessionServices(
            hub=self.hub,
            bus=self.bus,
            feed=self.feed,
            now_ms=self.clock.now_ms,
            known_symbol=self.feed_shared.serves,
            served_symbols=self.feed_shared.served,
            dynamic_symbols=(self._feed_kind.live_symbols and cfg.feed.dynamic_symbols
                             and not gateway),
            feed_status=self._gateway_feed_status if gateway else self._feed_status.get,
            tokens=self._tokens,
            default_account="default" if cfg.open_mode else None,
            monotonic=self.clock.monotonic,
            rate_limit_per_s=cfg.server.rate_limit_per_s,
            rate_limit_burst=cfg.server.rate_limit_burst,
            account_budget=self.account_budgets.try_take,
            symbols=self.symbols,
            snapshot=self._gateway_snapshot if gateway else None,
            klines=self._gateway_klines if gateway else self._tell_klines,
            sessions=self.sessions,
        )
        # -- Binance-compatible REST API (docs/binance-compat.md) --
        #: The user data stream's listen keys (thread-safe; the REST API makes them).
        #: In memory in one process; in Redis on a gateway, so that a key made on one
        #: gateway is valid on every other (docs/scaling.md).
        self.listen_keys: ListenKeyStore = (
            RedisListenKeys(self.redis_bus.client, prefix=self.redis_bus.prefix)
            if gateway and self.redis_bus is not None else SharedListenKeys())
        self.binance_gateway = EngineGateway(self._start_rest_session, self._ids)
        self.binance_api = BinanceApi(ApiContext(
            keys={a.api_key: ApiKey(a.name, a.api_secret) for a in cfg.accounts if a.api_key},
            open_mode=cfg.open_mode, gateway=self.binance_gateway,
            market=(BusMarket(self.redis_bus, self.bus, QUERY_TIMEOUT_S)
                    if gateway and self.redis_bus is not None else FeedMarket(self.feed)),
            catalog=self.symbols, served=self._served_symbols, listen_keys=self.listen_keys,
            now_ms=self.clock.now_ms, fee_bps=cfg.trading.fee_bps,
            weight_per_minute=cfg.server.api_weight_per_minute,
            origin_allowed=self.hosts.origin_allowed, klines=self._binance_klines))

    def _gateway_klines(self, req: KlineRequest) -> bool:
        """A gateway's ``get_klines``: the engine's bars across the bus, answered
        KLINES as the PortfolioActor answers it (runs in the client's
        ConnectionActor, which waits at most :data:`QUERY_TIMEOUT_S`; raises
        EngineUnavailable / QueriesBusy, answered ERROR INTERNAL / BUSY)."""
        assert req.channel is not None
        q = req.query
        bars = self.bus.klines(q, QUERY_TIMEOUT_S)
        req.channel.deliver(sm.klines(q.symbol, q.interval, bars, self.clock.now_ms(),
                                      req.request_id))
        return True

    def _gateway_feed_status(self) -> dict[str, Any]:
        """A gateway's feed status: the engine's last FEED_STATUS (in Redis)."""
        assert self.redis_bus is not None
        try:
            status = self.redis_bus.feed_status()
        except RedisError:
            status = None
        return status if status is not None else self._feed_status.get()

    def _gateway_snapshot(self, channel: Channel, symbol: str, book: bool) -> None:
        """A gateway's snapshot for a new subscriber: the latest frame in Redis."""
        assert self.redis_bus is not None
        try:
            out = self.redis_bus.latest(symbol, book)
        except RedisError:
            return  # the next live update follows
        if out is not None:
            channel.deliver(out)

    def _on_epoch_change(self, _epoch: str) -> None:
        """Redis lost the history (a restart without persistence): every client
        reconnects and resumes (``recovered: false``, so it re-fetches)."""
        for ch in self.hub.channels():
            ch.close(CloseCode.GOING_AWAY, "the event history was lost; reconnect")

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> Engine:
        if self._started:
            raise RuntimeError("engine already started")
        # The store is this engine's alone (StoreInUse otherwise). Check it
        # (pages, schema version, every record: StoreCorrupt) and open (and
        # migrate) it once here, in the caller's thread, so a bad path or a
        # bad database fails start() instead of crash-looping the
        # PortfolioActor. This connection is closed before any actor runs.
        # A pulse-driven (simulated) market resumes from the last stored
        # prices (the closes of the newest stored klines), not from its seed.
        if self.role != "gateway":  # a gateway has no store: the engine owns it
            try:
                if self._store_lock is not None:
                    if self.config.store.path is None:  # the default: the data directory
                        make_store_directory(self._store_path)
                    self._store_lock.acquire()
                    verify(self._store_path)
                with Store(self._store_path) as store:
                    if self._feed_kind.pulsed is not None:
                        self.feed_shared.keep_prices(store.last_prices())
            except BaseException:
                self._release_store()
                raise
        self._started = True
        self._started_at = self.clock.monotonic()
        if self._feed_kind.exchange_filters:
            self._load_exchange_info(self.config.feed.symbols)
        sup = self.config.supervisor
        policy = BackoffPolicy(
            min_s=sup.backoff_min_s, max_s=sup.backoff_max_s, factor=sup.backoff_factor,
            jitter=sup.backoff_jitter, reset_after_s=sup.reset_after_s,
            max_restarts=sup.max_restarts, restart_window_s=sup.restart_window_s,
        )
        self._supervisor = Supervisor.start(self._children(), policy, self.clock,
                                            on_feed_status=self._feed_status_changed,
                                            board=self.children)
        # Return with every child's slot set, so a session opened right away
        # can reach them (their start-up, e.g. loading the store, runs before
        # their first message).
        try:
            self._supervisor.ask(AwaitStarted(), timeout=30.0)
            if self.redis_bus is not None and self.role == "engine":
                self.redis_bus.start_engine(self._route, self.answers)
            elif self.redis_bus is not None:
                self.redis_bus.on_epoch_change = self._on_epoch_change
                self.redis_bus.start_gateway(self.hub)
                if self.redis_sessions is not None:
                    self.redis_sessions.start()
        except Exception:
            self.stop()
            raise
        if self._listen:
            srv = self.config.server
            paths = (WS_PATH,) + ((srv.echo_path,) if srv.echo_path else ())
            routes = {"/healthz": healthz_route(self.ops_snapshot),
                      "/metrics": metrics_route(self.ops_snapshot, self.metrics,
                                                self.statistics),
                      "/openapi.json": openapi_route(),
                      "/asyncapi.json": asyncapi_route(),
                      **dashboard_routes(self.config.trading.fee_bps)}
            if self.role == "engine":  # clients connect to the gateways
                paths = ()
                routes = {k: v for k, v in routes.items() if k in ("/healthz", "/metrics")}
            limits = EdgeLimits(
                handshake_timeout_s=srv.handshake_timeout_s,
                max_header_bytes=srv.max_header_bytes,
                max_pending=srv.max_pending_connections,
                max_pending_per_ip=srv.max_pending_per_ip,
                max_message_bytes=srv.max_message_bytes,
                ping_interval_s=srv.ping_interval_s,
                control_rate_per_s=srv.rate_limit_per_s,
                control_burst=srv.rate_limit_burst,
            )
            api = ApiSite(API_PREFIX, self.binance_api.handle, busy_response())
            site = Site(paths, self._on_upgrade, routes, self.hosts, limits, api=api,
                        ws_path_match=is_stream_path)
            try:
                self._port = self.edge.listen(srv.host, srv.port, site)
            except BaseException:
                self.stop()
                raise
        self.edge.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close every client with 1001, stop every actor and thread. Idempotent."""
        if self._stopped or not self._started:
            self._stopped = True
            self._release_store()
            return
        self._stopped = True
        self.edge.stop_accepting()
        self.binance_gateway.close()
        # Every transport, not only the hub's channels: a client whose actor
        # has sent CONNECTED but not yet joined the hub must get its 1001 too.
        with self._transports_cv:
            transports = list(self._transports.values())
        closing: dict[int, Any] = {id(ch): ch for ch in (*self.hub.channels(), *transports)}
        self._close_all(closing.values())
        self._await_transports(min(1.0, timeout / 4))
        with self._lock:
            conns = list(self._connections.values())
            self._connections.clear()
        for ref in conns:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.stop(block=False)
        if self._supervisor is not None:
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                self._supervisor.stop(block=True, timeout=timeout)
        for ref in conns:
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                ref.stop(block=True, timeout=1.0)
        self.edge.stop()
        if self.redis_sessions is not None:
            self.redis_sessions.close()
        if self.redis_bus is not None:
            self.redis_bus.close()
        self._release_store()

    def _release_store(self) -> None:
        """Close the in-memory anchor, or release the file's owner lock (after
        every actor has stopped, so the PortfolioActor has closed the store)."""
        anchor = self._store_anchor
        self._store_anchor = None
        if anchor is not None:
            anchor.close()
        if self._store_lock is not None:
            self._store_lock.release()

    @property
    def store_path(self) -> str:
        """Where the PortfolioActor keeps the ledger (a path, or a ``file:`` URI)."""
        return self._store_path

    @staticmethod
    def _store_location(path: str | None) -> tuple[str, sqlite3.Connection | None]:
        """``store.path`` → (what the PortfolioActor opens, an anchor connection).

        ``None`` (not configured) is the user's data directory
        (:func:`engine.data_dir.default_store_path`, from this process's
        environment).

        ``""`` (or ``":memory:"``) means no persistence: a private shared-cache
        in-memory database that lives as long as this Engine. The Engine holds
        one idle connection to it (the anchor, never used for statements, so
        ``check_same_thread=False`` is safe) so that the data survives a
        Supervisor restart of the PortfolioActor or the OrderMonitorActor, and
        nothing is written to disk."""
        if path is None:
            return default_store_path(os.environ), None
        if path not in MEMORY_PATHS:
            return path, None
        uri = f"file:tickdesk-mem-{next(_MEMORY_DBS)}?mode=memory&cache=shared"
        return uri, sqlite3.connect(uri, uri=True, check_same_thread=False)

    def _close_all(self, channels: Iterable[Channel]) -> None:
        """Send every client its 1001 from one loop: one frame built once, one
        non-blocking send each, with the I/O thread held meanwhile so that the
        clients' answers do not compete with the loop (10,000 connections: the
        last 1001 must leave within seconds even on a loaded machine)."""
        frame = close_frame(CloseCode.GOING_AWAY, _GOING_AWAY_REASON)
        started = time.monotonic()
        count = 0
        with self.edge.held():
            for ch in channels:
                if isinstance(ch, SocketChannel):
                    ch.close(CloseCode.GOING_AWAY, _GOING_AWAY_REASON, frame=frame)
                else:
                    ch.close(CloseCode.GOING_AWAY, _GOING_AWAY_REASON)
                count += 1
        log.info("shutdown: close 1001 sent to %d clients in %.3f s", count,
                 time.monotonic() - started)

    def _await_transports(self, grace_s: float) -> None:
        """Give clients ``grace_s`` to answer our close frame, then cut the rest."""
        with self._transports_cv:
            self._transports_cv.wait_for(lambda: not self._transports, grace_s)
            remaining = list(self._transports.values())
        for ch in remaining:
            ch.shutdown_socket()
        with self._transports_cv:
            self._transports_cv.wait_for(lambda: not self._transports, 1.0)

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the engine is not listening")
        return self._port

    @property
    def url(self) -> str:
        """The WebSocket URL clients connect to."""
        host = self.config.server.host
        shown = f"[{host}]" if ":" in host else host
        return f"ws://{shown}:{self.port}{WS_PATH}"

    def feed_status(self) -> dict[str, Any]:
        """The feed's status (a gateway: the engine's, as announced in Redis)."""
        return dict(self.services.feed_status())

    def ops_snapshot(self) -> OpsSnapshot:
        """What ``/healthz`` and ``/metrics`` show (see :mod:`engine.server.ops`)."""
        live, sent, conflated, evictions, _ = self.transport_stats.totals()
        now = self.clock.monotonic()
        sup = self.config.supervisor
        actors = {r.name: assess(r, now, sup.restart_window_s, sup.reset_after_s)
                  for r in self.children.records()}
        return OpsSnapshot(feed=self.feed_status(), connections=live,
                           sessions=len(self.hub), messages_sent=sent, conflated=conflated,
                           evictions=evictions, refused=self.limits.refused,
                           uptime_s=max(0.0, now - self._started_at),
                           actors=actors, store=self.store_health.snapshot(),
                           restart_window_s=sup.restart_window_s)

    def statistics(self) -> list[StatisticsSource]:
        """Every ``statistics()`` that ``/metrics`` exports, read now (see
        :mod:`engine.stats`): a new source is one line here. Actors are asked
        (bounded wait each); one that is down or busy is left out of this read."""
        sources: list[StatisticsSource] = [
            ("feed", {}, self.feed_shared.statistics()),
            ("hub", {}, self.hub.statistics()),
            ("edge", {}, self.edge.statistics()),
            ("auth", {}, self.auth_failures.statistics()),
            ("gate", {}, self.gate_counts.statistics()),
            ("actor", {}, self.children.statistics()),
            ("store", {}, self.store_health.statistics()),
        ]
        if self.redis_bus is not None:
            sources.append(("bus", {}, self.redis_bus.statistics()))
        slots = (self.portfolio, self.order_monitor, self.feed, *self._timers.values())
        sources += [("actor", {"actor": slot.name}, slot.statistics()) for slot in slots]
        sources += [("desk", {"actor": name}, desk.statistics())
                    for name, desk in self.desks.items()]
        feed = self.feed.actor_statistics()
        if feed is not None:
            sources.append(("feed", {}, feed))
        for name, slot in self._timers.items():
            timer = slot.actor_statistics()
            if timer is not None:
                sources.append(("timer", {"timer": name}, timer))
        supervisor = self._supervisor
        if supervisor is not None:
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                sources.append(("supervisor", {}, supervisor.ask(GetStatistics(), timeout=0.5)))
        return sources

    # -- in-process clients -------------------------------------------------------

    def klines(self, symbol: str, interval: str, start_ms: int | None = None,
               end_ms: int | None = None, limit: int = DEFAULT_LIMIT,
               timeout: float = 2.0) -> list[Kline]:
        """The bars of ``symbol`` and ``interval``, oldest first, with Binance's
        ``startTime`` / ``endTime`` / ``limit`` semantics (docs/klines.md).

        Thread-safe: asks the PortfolioActor, which owns the bars (a gateway:
        the engine's, across the bus), and waits at most ``timeout`` seconds
        (:class:`~engine.errors.EngineUnavailable`, an InternalError, if it
        does not answer, e.g. while it restarts; a gateway with too many
        queries in flight: :class:`~engine.errors.QueriesBusy`). A bad interval or limit raises
        :class:`~engine.market.klines.UnknownInterval` /
        :class:`~engine.market.klines.BadKlineQuery`, a symbol the feed does not
        serve :class:`~engine.errors.UnknownSymbol`, before anything is asked."""
        query = KlineQuery.checked(symbol, interval, start_ms, end_ms, limit)
        if not self.feed_shared.serves(symbol):
            raise UnknownSymbol(f"symbol {symbol} is not served by this feed")
        # a gateway asks the engine across the bus; the engine asks its actors
        source = self.bus if self.role == "gateway" else self.answers
        return source.klines(query, timeout)

    def connect(self, callback: Callable[[dict[str, Any]], None] | None = None,
                token: str | None = None) -> LocalSession:
        """Open an in-process session (see the module docstring). Not on the
        engine of a cluster: sessions belong to its gateways."""
        if not self._started or self._stopped:
            raise RuntimeError("the engine is not running")
        if self.role == "engine":
            raise RuntimeError("cluster.role = 'engine' has no sessions: connect to a gateway")
        account = self._account_for(token)
        session = LocalSession(next(self._ids), self.config.server.max_queued_bytes, callback)
        ref = ConnectionActor.start(session, self.services, account)
        session._actor = ref
        with self._lock:
            self._connections[session.conn_id] = ref
        return session

    # -- internals ----------------------------------------------------------

    def _tell_klines(self, req: KlineRequest) -> bool:
        """A connection's get_klines to the PortfolioActor, after a trade in its
        fan-out (actors.trade_relay): the bars a client asks for in reaction to a
        price include it."""
        self.trade_relay.flush()
        return self.portfolio.tell(req)

    def _binance_klines(self, symbol: str, interval: str, start_ms: int | None,
                        end_ms: int | None, limit: int) -> list[list[Any]]:
        """``GET /api/v3/klines``: :meth:`klines` in Binance's rows (API workers)."""
        from engine.binance.errors import BinanceError
        from engine.binance.translate import kline_row

        try:
            bars = self.klines(symbol, interval, start_ms, end_ms, limit,
                               timeout=QUERY_TIMEOUT_S)
        except (EngineUnavailable, QueriesBusy) as exc:
            raise binance_query_error(exc) from None
        except TickdeskError as exc:  # a query the KlineBook refuses (startTime > endTime)
            raise BinanceError(-1130, f"Invalid data sent for a parameter: {exc}") from None
        return [kline_row(k) for k in bars]

    def _served_symbols(self) -> list[str]:
        """The symbols the feed serves now (configured ones first)."""
        serves = self.feed_shared.serves
        listed = dict.fromkeys((*self.config.feed.symbols, *self.symbols.symbols()))
        return [s for s in listed if serves(s)]

    def _start_rest_session(self, channel: Any, account: str | None) -> pykka.ActorRef[Any]:
        """A ConnectionActor for an in-process REST client (any thread)."""
        if self._stopped:
            from engine.binance.errors import BinanceError

            raise BinanceError(-1008, "Server is shutting down.")
        ref = ConnectionActor.start(channel, self.services, account)
        with self._lock:
            self._connections[channel.conn_id] = ref
        return ref

    def _account_for(self, token: str | None) -> str | None:
        if token is None or self.config.open_mode:
            return None
        for known, name in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return name
        raise Refusal(401, "invalid token")

    def _handshake_account(self, ip: str, token: str | None) -> str | None:
        """``?token=`` of a handshake from ``ip``: 429 while that address has
        failed too often, 401 (counted, logged at most once per interval) when wrong."""
        if token is None or self.config.open_mode:
            return None
        now = self.clock.monotonic()
        self.auth_failures.check(ip, now)
        try:
            return self._account_for(token)
        except Refusal:
            self.auth_failures.failed(ip, now)
            if now - self._auth_log_at >= _AUTH_LOG_INTERVAL_S:
                log.warning("failed token handshake from %s (%d more since the last report)",
                            ip, self._auth_log_missed)
                self._auth_log_at = now
                self._auth_log_missed = 0
            else:
                self._auth_log_missed += 1
            raise

    def _symbol_catalog(self) -> SymbolCatalog:
        cfg = self.config
        if self._feed_kind.exchange_filters:
            return SymbolCatalog(overrides=cfg.symbols)  # filled by start()
        catalog, missing = build_catalog(cfg.feed.symbols, load_snapshot(), cfg.symbols)
        if missing:
            log.warning("no Binance filters known for %s: their orders are checked for shape "
                        "only (add [[symbols]] to config.toml to set filters)",
                        ", ".join(missing))
        return catalog

    def load_symbol_info(self, symbol: str) -> SymbolInfo | None:
        """Binance only: load one symbol's exchange info (its filters) into the
        catalog; None when it cannot be loaded. Blocks (bounded retries and
        timeouts); the FeedActor calls it from a loader thread."""
        return self._load_exchange_info([symbol]).get(symbol)

    def _load_exchange_info(self, symbols: Iterable[str]) -> dict[str, SymbolInfo]:
        b = self.config.feed.binance
        wanted = list(symbols)
        found = fetch_exchange_info(b.rest_url, wanted, timeout_s=b.rest_timeout_s)
        stored = {s: self.symbols.add(info) for s, info in found.items()}
        missing = [s for s in wanted if s not in stored]
        if missing:
            log.warning("exchangeInfo: no filters for %s from %s: their orders are refused "
                        "UNKNOWN_SYMBOL", ", ".join(missing), b.rest_url)
        return stored

    def _children(self) -> list[ChildSpec]:
        cfg = self.config
        clock = self.clock

        def portfolio(hook: FailureHook, gen: int) -> pykka.ActorRef[Any]:
            return PortfolioActor.start(self.bus, cfg.trading, self._accounts, clock.now_ms,
                                        store_path=self._store_path,
                                        store_synchronous=cfg.store.synchronous,
                                        store_health=self.store_health,
                                        fill_bound=(MEMORY_FILLS_PER_ACCOUNT
                                                    if self._store_in_memory
                                                    else None),
                                        on_failure=hook, generation=gen,
                                        starts={a.name: account_start(cfg.trading, a)
                                                for a in cfg.accounts},
                                        assets_of=self.assets_of,
                                        kline_bars=cfg.market.kline_bars)

        def order_monitor(hook: FailureHook, gen: int) -> pykka.ActorRef[Any]:
            return OrderMonitorActor.start(self.bus, self.portfolio, cfg.trading, clock.now_ms,
                                           self.feed_shared.serves, on_failure=hook,
                                           generation=gen,
                                           on_order_event=self.metrics.order_event,
                                           store_health=self.store_health,
                                           assets_of=self.assets_of,
                                           symbols=self.symbols)

        def feed(link: SupervisorLink, gen: int) -> pykka.ActorRef[Any]:
            return FeedActor.start(cfg.feed, self.hub, self.order_monitor, self.portfolio,
                                   clock, on_failure=link, generation=gen,
                                   shared=self.feed_shared,
                                   on_up=lambda: link.up("feed", gen),
                                   on_tick_latency=self.metrics.tick_latency,
                                   symbols=self.symbols,
                                   load_symbol_info=(self.load_symbol_info
                                                     if self._feed_kind.exchange_filters
                                                     else None),
                                   bus=self.bus, relay=self.trade_relay)

        def timer(name: str, period: float) -> Callable[[FailureHook, int], Any]:
            def start(hook: FailureHook, gen: int) -> pykka.ActorRef[Any]:
                return TimerActor.start(f"timer-{name}", self.portfolio, Pulse(name), period,
                                        clock, on_failure=hook, generation=gen)
            return start

        if self.role == "gateway":
            return []  # the feed, orders, ledgers and timers run in the engine
        return [
            ChildSpec("portfolio", self.portfolio, portfolio),
            ChildSpec("order_monitor", self.order_monitor, order_monitor),
            # A feed not up at start (Binance) is UP only once its upstream connection is open.
            ChildSpec("feed", self.feed, feed, up_on_start=self._feed_kind.up_at_start),
            ChildSpec("timer-positions", self._timers["positions"],
                      timer("positions", cfg.intervals.positions_s)),
            ChildSpec("timer-portfolio", self._timers["portfolio"],
                      timer("portfolio", cfg.intervals.portfolio_s)),
            ChildSpec("timer-equity", self._timers["equity"],
                      timer("equity", cfg.intervals.equity_s)),
            ChildSpec("timer-klines", self._timers["klines"], timer("klines", KLINE_PULSE_S)),
        ]

    def _feed_status_changed(self, report: FeedStatusReport) -> None:
        changed = self._feed_status.set(report)
        if changed is not None:
            self.bus.broadcast(sm.feed_status(changed, self.clock.now_ms()))

    def _check_origin(self, req: UpgradeRequest) -> None:
        origin = req.headers.get("origin")
        if origin is None:
            return  # not a browser
        if not self.hosts.origin_allowed(origin):
            raise Refusal(403, "origin not allowed")

    def _on_upgrade(self, sock: Any, req: UpgradeRequest) -> Accepted:
        """I/O thread: check the handshake, build the client's channel and
        session; the edge then answers 101 and calls ``start``."""
        if self._stopped:
            raise Refusal(503, "server shutting down")
        self._check_origin(req)
        tokens = req.query.get("token")
        if tokens is not None and len(tokens) > 1:
            raise Refusal(400, "token given more than once")
        ip = peer_ip(req.peer)
        binance, user = self._binance_route(req)
        account = (None if binance is not None
                   else self._handshake_account(ip, tokens[0] if tokens else None))
        self.limits.admit(ip)  # Refusal(503) when full; released with the transport
        srv = self.config.server
        conn_id = next(self._ids)
        channel = SocketChannel(conn_id, sock, self.edge,
                                max_queued_bytes=srv.max_queued_bytes,
                                write_timeout_s=srv.write_timeout_s,
                                monotonic=self.clock.monotonic, peer=req.peer)
        with self._transports_cv:
            self._transports[conn_id] = channel
        self.transport_stats.opened(channel)

        def released() -> None:
            self.hub.remove(channel)  # also when the actor never started
            self.limits.release(ip)
            self.transport_stats.closed(channel)
            with self._transports_cv:
                self._transports.pop(conn_id, None)
                self._transports_cv.notify_all()

        channel.on_transport_closed(released)
        if binance is not None:
            return self._binance_session(channel, binance, user)
        if req.path != WS_PATH:
            return Accepted(channel, self._echo(channel), lambda: None)
        target = ActorSlot(f"connection-{conn_id}")
        gate = InboundGate(on_room=lambda: self.edge.resume(channel))
        frame_gate = FrameGate(RateLimiter(srv.rate_limit_per_s, srv.rate_limit_burst),
                               self.services.account_budget,
                               account if account is not None else self.services.default_account,
                               self.gate_counts)
        on_message = _admitted_frames(target, gate, frame_gate, channel, self.services,
                                      self.gate_counts)

        def start() -> None:
            # CONNECTED and the hub before the actor: once the client has read
            # CONNECTED it is in the hub (account broadcasts reach it).
            announce(channel, self.services, account)
            ref = ConnectionActor.start(channel, self.services, account, gate,
                                        frame_gate=frame_gate, announced=True)
            target.set(ref)
            with self._lock:
                self._connections[conn_id] = ref

            def gone() -> None:
                target.tell(ClientGone())
                with self._lock:
                    self._connections.pop(conn_id, None)

            channel.on_transport_closed(gone)

        return Accepted(channel, on_message, start)

    # -- Binance's stream paths (docs/binance-compat.md, "Streams") -------------

    def _binance_route(self, req: UpgradeRequest) -> tuple[StreamRoute | None, str | None]:
        """I/O thread: a Binance stream path → what it asks for and the listen key's
        account (``(None, None)`` for our own paths); Refusal(400) for a bad or
        unserved stream, Refusal(401) for a listen key that is unknown or expired."""
        if req.path == WS_PATH or req.path == self.config.server.echo_path:
            return None, None
        try:
            route = stream_route(req.path, req.query)
        except ValueError as exc:
            raise Refusal(400, str(exc)) from None
        why = check_streams(route.streams, self.feed_shared.serves, BINANCE_STREAM_KINDS)
        if why is not None:
            raise Refusal(400, why)
        account = None
        if route.listen_key is not None:
            try:
                account = self.listen_key_account(route.listen_key)
            except ListenKeysUnavailable:
                raise Refusal(503, "the listen-key store is unreachable; retry") from None
            if account is None:
                raise Refusal(401, "invalid or expired listen key")
        return route, account

    def listen_key_account(self, key: str) -> str | None:
        """The account of an active listen key, or None (any thread; on a gateway
        one Redis call: :class:`ListenKeysUnavailable` when Redis is unreachable)."""
        return self.listen_keys.account(key, self.clock.now_ms())

    def binance_api_key(self, api_key: str) -> tuple[str, str] | None:
        """``(account, api_secret)`` of a configured Binance API key, or None
        (any thread; compared in constant time)."""
        found = None
        given = api_key.encode()
        for acct in self.config.accounts:
            if (acct.api_key and acct.api_secret
                    and hmac.compare_digest(acct.api_key.encode(), given)):
                found = (acct.name, acct.api_secret)
        return found

    def _binance_session(self, channel: SocketChannel, route: StreamRoute,
                         account: str | None) -> Accepted:
        """I/O thread: the session of one Binance stream client (one
        BinanceSessionActor, bounded like a ConnectionActor: docs/design.md)."""
        target = ActorSlot(f"binance-{channel.conn_id}")
        gate = InboundGate(on_room=lambda: self.edge.resume(channel))

        on_message = _gated_frames(target, gate)

        def start() -> None:
            join_binance(channel, self.services, route, account)
            ref = BinanceSessionActor.start(channel, self.services, route, gate,
                                            BINANCE_STREAM_KINDS, self.binance_api_key)
            target.set(ref)
            with self._lock:
                self._connections[channel.conn_id] = ref

            def gone() -> None:
                target.tell(ClientGone())
                with self._lock:
                    self._connections.pop(channel.conn_id, None)

            channel.on_transport_closed(gone)

        return Accepted(channel, on_message, start)

    @staticmethod
    def _echo(channel: SocketChannel) -> Callable[[bytes | str, bool], bool]:
        """The conformance echo endpoint (``server.echo_path``): same transport,
        every message sent back as it came."""
        from engine.protocol.frames import frame_header

        def echo(data: bytes | str, binary: bool) -> bool:
            raw = data if isinstance(data, bytes) else data.encode()
            channel.send_frame(frame_header(0x2 if binary else 0x1, len(raw)) + raw)
            return True

        return echo
