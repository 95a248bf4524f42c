"""ConnectionActor: one per client; owns that client's session.

Runs in its own pykka thread. It receives complete frames from the
I/O thread (:mod:`engine.server.edge`), decodes them (:mod:`engine.protocol.commands`,
pure), answers session commands itself (subscribe, auth, ping) and forwards
account commands through the bus (:mod:`engine.server.bus`: in one
process straight to the PortfolioActor or OrderMonitorActor, else over
Redis to the engine), which answer the client directly through its
channel; ``get_klines``, which needs no auth, goes to the PortfolioActor
directly (on a gateway: to the engine across the bus, waiting at most its
timeout in this actor, ``SessionServices.klines``). Every bad frame is
answered with a typed ``ERROR`` and changes nothing; the connection stays
open.

A socket client's frames reach this actor only once the I/O thread's frame
gate (:mod:`engine.frame_gate`) has let them through: the gate takes the
frame's token of the connection's rate limit (``server.rate_limit_per_s`` /
``rate_limit_burst``) and, for an account command, of the account's budget
(``server.account_rate_limit_per_s``, shared by all its connections), and
answers the refusals itself, so a refused frame never wakes this actor. The
actor keeps the gate's :attr:`~engine.frame_gate.FrameGate.account` up to
date, and ignores the frames still waiting once the gate has closed the
connection for a flood (1008). In-process sessions (``Engine.connect``) have
no gate and are not limited.

Account commands go to the engine actor's :class:`~actors.command_desk.CommandDesk`: at most
``server.account_queue_limit`` of an account wait (one more is answered
``ERROR BUSY``), served round-robin over the accounts. A failed ``auth``
leaves the connection anonymous.

Market data never passes through this actor: the FeedActor writes it to the
client's channel directly (see docs/design.md, "The hot path").

Each connection has a session (``CONNECTED.session``, :mod:`engine.server.sessions`):
its market subscriptions and its account are recorded when they change, and a
later connection of the same account (or an anonymous one, for an anonymous
session) that sends ``resume {session}`` is subscribed to the same symbols and
books, each with its SUBSCRIBED and snapshot, before its ``RESUMED``.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pykka

from actors.base import ActorSlot, TickdeskActor
from actors.command_desk import CommandDesk
from actors.messages import (
    AccountRequest,
    AddSymbol,
    ClientFrame,
    ClientGone,
    GateRefusal,
    KlineRequest,
    SendBookSnapshot,
    SendSnapshot,
)
from engine.errors import (
    BadRequest,
    Busy,
    InternalError,
    ProtocolError,
    Unauthorized,
    UnknownSymbol,
)
from engine.frame_gate import FrameGate
from engine.market.klines import KlineQuery
from engine.market.symbol_info import SymbolCatalog
from engine.protocol import server_messages as sm
from engine.protocol.commands import (
    ACCOUNT_ACTIONS,
    AuthArgs,
    Command,
    ResumeArgs,
    SymbolArgs,
    decode_command,
)
from engine.protocol.enums import Action
from engine.protocol.frames import text_frame
from engine.server.bus import Bus
from engine.server.channel import Channel
from engine.server.hub import Hub
from engine.server.sessions import SessionKeeper
from engine.session_registry import Subscriptions
from engine.version import __version__

__all__ = ["PORTFOLIO_ACTIONS", "ConnectionActor", "InboundGate", "SessionServices", "announce",
           "command_route"]

log = logging.getLogger("tickdesk.connection")

#: How long a restore waits for the FeedActor to have sent the restored
#: subscriptions' snapshots (then RESUMED goes out anyway; live updates follow).
RESTORE_SNAPSHOT_WAIT_S = 2.0

#: Account commands the PortfolioActor answers (the others go to the OrderMonitorActor).
PORTFOLIO_ACTIONS = frozenset({Action.GET_POSITIONS, Action.GET_PORTFOLIO, Action.GET_FILLS,
                               Action.GET_EQUITY_HISTORY})


def command_route(portfolio: CommandDesk,
                  order_monitor: CommandDesk) -> Callable[[AccountRequest], bool]:
    """The engine side of the command seam: an account command to the desk of
    the actor that runs it (the PortfolioActor for :data:`PORTFOLIO_ACTIONS`,
    else the OrderMonitorActor; each desk queues per account,
    :mod:`actors.command_desk`). A full account queue raises
    :class:`~engine.errors.Busy` (answered ``ERROR BUSY``, not executed). The
    bus calls it in the caller's thread: a ConnectionActor, or the Redis
    bus's command reader."""

    def route(req: AccountRequest) -> bool:
        target = portfolio if req.action in PORTFOLIO_ACTIONS else order_monitor
        if not target.submit(req):
            raise Busy(f"account {req.account} already has {target.per_account} "
                       "commands waiting; retry once they are answered", req.request_id)
        return True

    return route


@dataclass(frozen=True, slots=True)
class SessionServices:
    """What every session needs, shared by all ConnectionActors."""

    hub: Hub
    #: Account commands go to the engine through the bus (:mod:`engine.server.bus`).
    bus: Bus
    feed: ActorSlot
    now_ms: Callable[[], int]
    known_symbol: Callable[[str], bool]
    feed_status: Callable[[], Mapping[str, Any]]
    #: token -> account name; empty in open mode.
    tokens: Mapping[str, str]
    #: The account of a connection that has not authenticated (``default`` in
    #: open mode, ``None`` when tokens are configured).
    default_account: str | None

    #: Monotonic seconds, for the rate limiter.
    monotonic: Callable[[], float]
    #: Commands per second and bucket size of each socket client's frame gate.
    rate_limit_per_s: float
    rate_limit_burst: int
    #: ``subscribe_ticker`` of an unknown symbol asks the feed to add it live
    #: (the FeedActor then answers SUBSCRIBED or ERROR itself).
    dynamic_symbols: bool = False
    #: ``account_budget(account, now_s)``: takes one token of the account's
    #: command budget (shared by its connections); False when it has none.
    #: The socket clients' frame gates charge it (:mod:`engine.frame_gate`).
    account_budget: Callable[[str, float], bool] | None = None
    #: Every served symbol's exchange info (``get_symbol_info``); None: none known.
    symbols: SymbolCatalog | None = None
    #: The symbols the feed serves now, in order (``get_symbols``).
    served_symbols: Callable[[], list[str]] = list
    #: ``get_klines``: tells the PortfolioActor a KlineRequest (False: it is down);
    #: on a gateway asks the engine across the bus and delivers KLINES itself
    #: (raises EngineUnavailable / QueriesBusy, answered ERROR INTERNAL / BUSY);
    #: None: not served.
    klines: Callable[[KlineRequest], bool] | None = None
    #: ``snapshot(channel, symbol, book)``: sends a new subscriber the symbol's
    #: current MARKET_UPDATE (or BOOK_UPDATE) itself (a gateway: from Redis);
    #: None: the FeedActor does (SendSnapshot, SendBookSnapshot).
    snapshot: Callable[[Channel, str, bool], None] | None = None
    #: Where each session's market subscriptions are remembered for
    #: ``resume {session}`` (:mod:`engine.server.sessions`); None: not at all
    #: (CONNECTED then has no ``session``).
    sessions: SessionKeeper | None = None


class InboundGate:
    """Bounds the frames of one client waiting in its ConnectionActor's mailbox.

    pykka mailboxes are unbounded, so the sender holds back without
    blocking: the I/O thread calls :meth:`enter` before telling a frame;
    when that makes ``limit`` frames unprocessed it returns False and the I/O
    thread stops reading the socket (TCP flow control then pushes back on the
    client; overflow policy: the client waits, nothing is dropped).
    :meth:`leave` runs in the actor after each frame; once the backlog is
    down to half the limit it calls ``on_room`` (which resumes reading).
    """

    def __init__(self, limit: int = 64, on_room: Callable[[], None] | None = None) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.on_room = on_room
        self._lock = threading.Lock()
        self._waiting = 0
        self._paused = False

    @property
    def waiting(self) -> int:
        return self._waiting

    def enter(self) -> bool:
        """Count one frame; False when the reader must pause (the frame still goes)."""
        with self._lock:
            self._waiting += 1
            if self._waiting >= self.limit:
                self._paused = True
                return False
            return True

    def leave(self) -> None:
        with self._lock:
            if self._waiting <= 0:  # pragma: no cover - more leaves than enters is a bug
                log.error("inbound gate released too often")
                return
            self._waiting -= 1
            resume = self._paused and self._waiting <= self.limit // 2
            if resume:
                self._paused = False
        if resume and self.on_room is not None:
            self.on_room()


def announce(channel: Channel, services: SessionServices, account: str | None) -> None:
    """Send CONNECTED, then join the hub (with the account, if any).

    CONNECTED must be the first message, so it goes out before the channel
    joins the hub (and can receive broadcasts); a FEED_STATUS change that
    happened in between is sent right after it. Runs where the session
    starts: the I/O thread for a socket (so the client is in the hub before
    it can have read CONNECTED), the actor's own thread for an in-process
    session."""
    if account is None:
        account = services.default_account
    status = dict(services.feed_status())
    sessions = services.sessions
    session = sessions.open(channel.conn_id, account) if sessions is not None else None
    channel.deliver(sm.connected(__version__, account, status, services.now_ms(),
                                 services.bus.epoch, session))
    hub = services.hub
    hub.add(channel)
    if account is not None:
        hub.set_account(channel, account)
    latest = dict(services.feed_status())
    if latest != status:
        channel.deliver(sm.feed_status(latest, services.now_ms()))


class ConnectionActor(TickdeskActor):
    def __init__(self, channel: Channel, services: SessionServices,
                 account: str | None, gate: InboundGate | None = None, *,
                 frame_gate: FrameGate | None = None, announced: bool = False) -> None:
        """``announced``: :func:`announce` already ran (the I/O thread does it
        for a socket, before the client can read CONNECTED and act on it).
        ``frame_gate``: the socket client's gate in the I/O thread, which has
        limited every frame this actor gets (None: an unlimited in-process session)."""
        super().__init__(f"connection-{channel.conn_id}")
        self._announced = announced
        self._gate = gate
        self._ch = channel
        self._svc = services
        self._account = account if account is not None else services.default_account
        self._frame_gate = frame_gate
        if frame_gate is not None:
            frame_gate.account = self._account
        self.handlers = {ClientFrame: self._on_frame, GateRefusal: self._on_refusal,
                         ClientGone: self._on_gone}

    def started(self) -> None:
        if not self._announced:
            announce(self._ch, self._svc, self._account)

    def cleanup(self) -> None:
        self._svc.hub.remove(self._ch)
        if self._svc.sessions is not None:
            self._svc.sessions.closed(self._ch.conn_id)

    def _on_gone(self, _msg: ClientGone) -> None:
        self.stop()

    def _on_frame(self, msg: ClientFrame) -> None:
        try:
            self._admit(msg)
        finally:
            if self._gate is not None:
                self._gate.leave()

    def _on_refusal(self, msg: GateRefusal) -> None:
        try:
            self._ch.deliver(msg.answer)
        finally:
            if self._gate is not None:
                self._gate.leave()

    def _admit(self, msg: ClientFrame) -> None:
        if self._frame_gate is not None and self._frame_gate.closed:
            return  # closed 1008 for a flood: what it sent before is ignored
        self._handle_frame(msg)

    def _handle_frame(self, msg: ClientFrame) -> None:
        rid: Any = None
        try:
            cmd = decode_command(msg.data, binary=msg.binary)
            rid = cmd.request_id
            self._dispatch(cmd)
        except ProtocolError as exc:
            self._ch.deliver(sm.error(exc.code, exc.message, self._svc.now_ms(),
                                      exc.request_id if exc.request_id is not None else rid))
        except Exception:
            log.exception("connection %s: command failed", self._ch.conn_id)
            err = InternalError(rid)
            self._ch.deliver(sm.error(err.code, err.message, self._svc.now_ms(), rid))

    def _dispatch(self, cmd: Command) -> None:
        action, args = cmd.action, cmd.args
        now = self._svc.now_ms
        rid = cmd.request_id
        if action is Action.PING:
            self._ch.deliver(sm.pong(now(), rid))
        elif action is Action.SUBSCRIBE_TICKER and isinstance(args, SymbolArgs):
            symbol = args.symbol
            if not self._svc.known_symbol(symbol) and self._svc.dynamic_symbols:
                if self._account is None:  # open mode (loopback only) has "default"
                    raise Unauthorized(f"symbol {symbol} is not served; authenticate to add "
                                       "symbols (auth or ?token=)", rid)
                if not self._svc.feed.tell(AddSymbol(self._ch, symbol, rid, self._account)):
                    raise UnknownSymbol(f"symbol {symbol} cannot be checked while the feed "
                                        "is reconnecting; try again", rid)
                # remembered as asked: a restore skips it if the feed does not serve it
                self._remember(symbol, False, True)
                return
            self._check_known(symbol, rid)
            self._svc.hub.subscribe(self._ch, symbol)
            self._remember(symbol, False, True)
            self._ch.deliver(sm.subscribed(symbol, now(), rid))
            if self._svc.snapshot is not None:
                self._svc.snapshot(self._ch, symbol, False)
            else:
                self._svc.feed.tell(SendSnapshot(self._ch, symbol))
        elif action is Action.UNSUBSCRIBE_TICKER and isinstance(args, SymbolArgs):
            self._svc.hub.unsubscribe(self._ch, args.symbol)
            self._remember(args.symbol, False, False)
            self._ch.deliver(sm.unsubscribed(args.symbol, now(), rid))
        elif action in (Action.SUBSCRIBE_BOOK, Action.UNSUBSCRIBE_BOOK) and isinstance(
                args, SymbolArgs):
            self._book_subscription(action, args.symbol, rid)
        elif action is Action.AUTH and isinstance(args, AuthArgs):
            self._auth(args.token, rid)
        elif action is Action.RESUME and isinstance(args, ResumeArgs):
            self._resume(args, rid)
        elif action is Action.GET_SYMBOL_INFO and isinstance(args, SymbolArgs):
            # market data, not an account command: anonymous clients may ask
            self._check_known(args.symbol, rid)
            info = self._svc.symbols.get(args.symbol) if self._svc.symbols is not None else None
            if info is None:
                raise UnknownSymbol(f"symbol {args.symbol}: its exchange filters could not be "
                                    "loaded", rid)
            self._ch.deliver(sm.symbol_info(info, now(), rid))
        elif action is Action.GET_KLINES and isinstance(args, KlineQuery):
            # market data, not an account command: anonymous clients may ask
            self._check_known(args.symbol, rid)
            if self._svc.klines is None:
                raise BadRequest("get_klines is not served by this process", rid)
            if not self._svc.klines(KlineRequest(args, self._ch, rid)):
                raise InternalError(rid)
        elif action is Action.GET_SYMBOLS:
            # market data too: the watch list a client starts from
            self._ch.deliver(sm.symbols(self._svc.served_symbols(), now(), rid))
        elif action in ACCOUNT_ACTIONS:
            if self._account is None:
                raise Unauthorized("authenticate first (auth or ?token=)", rid)
            req = AccountRequest(self._account, self._ch, rid, action, cmd.body, args)
            if not self._svc.bus.submit(req):  # a full desk raises Busy (command_route)
                raise InternalError(rid)
        else:  # pragma: no cover - decode_command only returns known actions
            raise InternalError(rid)

    def _book_subscription(self, action: Action, symbol: str, rid: Any) -> None:
        """``subscribe_book``: SUBSCRIBED, then the feed sends the current BOOK_UPDATE
        (a served symbol only; no live addition). ``unsubscribe_book``: UNSUBSCRIBED."""
        now = self._svc.now_ms()
        if action is Action.SUBSCRIBE_BOOK:
            self._check_known(symbol, rid)
            self._svc.hub.subscribe_book(self._ch, symbol)
            self._remember(symbol, True, True)
            self._ch.deliver(sm.subscribed(symbol, now, rid, stream="book"))
            if self._svc.snapshot is not None:
                self._svc.snapshot(self._ch, symbol, True)
            else:
                self._svc.feed.tell(SendBookSnapshot(self._ch, symbol))
        else:
            self._svc.hub.unsubscribe_book(self._ch, symbol)
            self._remember(symbol, True, False)
            self._ch.deliver(sm.unsubscribed(symbol, now, rid, stream="book"))

    def _remember(self, symbol: str, book: bool, subscribed: bool) -> None:
        """Record a subscription change in the connection's session."""
        sessions = self._svc.sessions
        if sessions is None:
            return
        if subscribed:
            sessions.subscribed(self._ch.conn_id, symbol, book)
        else:
            sessions.unsubscribed(self._ch.conn_id, symbol, book)

    def _check_known(self, symbol: str, rid: Any) -> None:
        if not self._svc.known_symbol(symbol):
            raise UnknownSymbol(f"symbol {symbol} is not served by this feed", rid)

    def _resume(self, args: ResumeArgs, rid: Any) -> None:
        """``resume {epoch, seq, session?}``: first the market subscriptions of
        ``session`` (each with its SUBSCRIBED and snapshot), then the account's
        events after ``seq``, in order, then ``RESUMED {recovered, restored,
        subscriptions}`` (docs/protocol.md). Live events may arrive meanwhile: a
        client drops any ``seq`` it already has. Without an account only a
        ``session`` may be resumed (its market subscriptions: there are no
        account events to recover)."""
        if self._account is None and args.session is None:
            raise Unauthorized("authenticate first (auth or ?token=), or resume a session",
                               rid)
        restored = self._restore(args.session) if args.session is not None else None
        recovered = False
        if self._account is not None:
            got = self._svc.bus.resume(self._account, args.epoch, args.seq)
            for payload in got.events:
                self._ch.deliver(sm.Outgoing(payload, text_frame(payload)))
            recovered = got.recovered
        now = self._svc.now_ms()
        if restored is None and args.session is None:
            self._ch.deliver(sm.resumed(recovered, now, rid))
        elif restored is None:
            self._ch.deliver(sm.resumed(recovered, now, rid, restored=False))
        else:
            self._ch.deliver(sm.resumed(recovered, now, rid, restored=True,
                                        symbols=restored.symbols, books=restored.books))

    def _restore(self, session: str) -> Subscriptions | None:
        """Subscribe this connection to what ``session`` was subscribed to (the
        symbols the feed still serves), each with SUBSCRIBED (no ``id``) and its
        snapshot; None when the session is unknown, expired or not of this
        connection's account."""
        sessions = self._svc.sessions
        old = sessions.restore(session, self._account) if sessions is not None else None
        if old is None:
            return None
        hub, ch, now = self._svc.hub, self._ch, self._svc.now_ms
        symbols = tuple(s for s in old.symbols if self._svc.known_symbol(s))
        books = tuple(s for s in old.books if self._svc.known_symbol(s))
        asks: list[SendSnapshot | SendBookSnapshot] = []
        for symbol in symbols:
            hub.subscribe(ch, symbol)
            self._remember(symbol, False, True)
            ch.deliver(sm.subscribed(symbol, now()))
            if self._svc.snapshot is not None:
                self._svc.snapshot(ch, symbol, False)
            else:
                asks.append(SendSnapshot(ch, symbol))
        for symbol in books:
            hub.subscribe_book(ch, symbol)
            self._remember(symbol, True, True)
            ch.deliver(sm.subscribed(symbol, now(), stream="book"))
            if self._svc.snapshot is not None:
                self._svc.snapshot(ch, symbol, True)
            else:
                asks.append(SendBookSnapshot(ch, symbol))
        if asks:  # the FeedActor sends them; waiting for the last one waits for all
            for msg in asks[:-1]:
                self._svc.feed.tell(msg)
            try:
                self._svc.feed.ask(asks[-1], timeout=RESTORE_SNAPSHOT_WAIT_S)
            except (pykka.ActorDeadError, pykka.Timeout):
                log.info("connection %s: restored snapshots not confirmed; live updates "
                         "follow", ch.conn_id)
        return Subscriptions(symbols, books)

    def _auth(self, token: str, rid: Any) -> None:
        given = token.encode()
        account = None
        for known, name in self._svc.tokens.items():  # constant time, like the handshake
            if hmac.compare_digest(known.encode(), given):
                account = name
        if account is None:
            # A failed auth leaves the connection anonymous, whatever it was before.
            self._set_account(self._svc.default_account)
            if self._account is None:
                self._svc.hub.clear_account(self._ch)
            else:
                self._svc.hub.set_account(self._ch, self._account)
            if self._svc.sessions is not None:
                self._svc.sessions.set_account(self._ch.conn_id, self._account)
            raise Unauthorized("invalid token", rid)
        self._set_account(account)
        self._svc.hub.set_account(self._ch, account)
        if self._svc.sessions is not None:
            self._svc.sessions.set_account(self._ch.conn_id, account)
        self._ch.deliver(sm.authenticated(account, self._svc.now_ms(), rid))

    def _set_account(self, account: str | None) -> None:
        """The session's account, also for the frame gate's account budget."""
        self._account = account
        if self._frame_gate is not None:
            self._frame_gate.account = account
