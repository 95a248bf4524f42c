"""The bus: the one seam between what the engine announces and the connections
that receive it, and between the connections' commands and the engine.

Edge module, called from many threads (the FeedActor, the OrderMonitorActor,
the PortfolioActor, the Supervisor's status callback on the engine side;
ConnectionActors on the gateway side). Two implementations keep one contract
(``tests/server/test_bus_contract.py`` runs the same tests on both):

* :class:`InProcessBus` (the default, one process): today's direct paths —
  market frames and account events go straight to the :class:`Hub`'s
  channels, commands straight to the engine's actors.
* :class:`~engine.server.redis_bus.RedisBus` (``cluster.redis_url``): the
  same calls cross Redis Streams, so one engine serves many gateways.

The contract:

* ``publish(symbol, out)`` / ``publish_book``: a market frame, encoded once by
  the caller, reaches every subscriber of the symbol with the same bytes.
* ``to_account(account, out, origin, origin_out)``: one account event (ORDER_UPDATE,
  ORDER_LIST_UPDATE) gets the account's next ``seq`` (stamped into the message,
  :func:`~engine.account_log.stamp`) and reaches every connection of the
  account, in order; the connection that sent the command (``origin``) gets
  ``origin_out`` (the same event echoing the command's ``id``) instead.
* ``to_account_now(account, out)``: a periodic account message
  (POSITION_UPDATE, PORTFOLIO_UPDATE): no ``seq``, not kept for resume; in
  one process it waits for a running MARKET_UPDATE fan-out to end
  (:meth:`~engine.server.hub.Hub.to_account_paced`, bounded) rather than
  interleave with it.
* ``broadcast(out)``: to every connection (FEED_STATUS).
* ``book_subscriber_count(symbol)``: whether the engine must encode and
  publish the symbol's BOOK_UPDATEs (the hub's count in one process; across
  Redis always 1: the gateways' subscribers and ``/api/v3/depth`` read them).
* ``submit(request)``: an account command to the engine; True when it is on
  its way (its one answer then reaches ``request.channel``), False when the
  bus cannot take it (the caller answers ``ERROR``).
* ``resume(account, epoch, seq)``: the events an account's connection missed
  after ``seq`` (:class:`~engine.account_log.Resume`); ``epoch`` names the
  history (it changes when the history is lost: a new process, a Redis restart).
* ``klines(query, timeout_s)`` / ``recent_trades(query, timeout_s)``: a
  read-only question to the engine about state a gateway does not hold (the
  PortfolioActor's KlineBook, the FeedActor's recent trades); blocks the
  caller at most ``timeout_s``. No answer in time (the engine down, Redis
  unreachable): :class:`~engine.errors.EngineUnavailable` (ERROR INTERNAL;
  Binance -1007, HTTP 503). Too many questions of this process in flight:
  :class:`~engine.errors.QueriesBusy` at once, nothing sent (ERROR BUSY;
  Binance -1008, HTTP 503). The answers are the engine's own values.

Binance's streams (docs/binance-compat.md, "Streams"), engine side:

* ``has_stream(name)``: someone (on any gateway) subscribes Binance stream
  ``name``; the engine builds an event only then. Cheap (a set lookup): the
  Redis bus answers from the gateways' announced interest, refreshed in the
  background every :data:`~engine.server.redis_bus.INTEREST_REFRESH_S`, so a
  new subscriber's first event may come that much later.
* ``publish_stream(name, payload, conflate_key)``: one event of stream
  ``name``, its payload encoded once by the engine, reaches every subscriber
  of ``name`` (raw or wrapped for a combined stream, the same bytes on every
  connection); ``conflate_key`` as for MARKET_UPDATE (None: never conflated).
* ``has_user_stream(account)`` / ``to_user(account, payloads)``: Binance user
  data events (executionReport, listStatus, outboundAccountPosition) of one
  account reach each of its user data streams, in order, once each.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from engine.account_log import AccountLog, Resume, resume_from, stamp
from engine.errors import EngineUnavailable
from engine.market.klines import Kline, KlineQuery
from engine.market.recent_trades import RecentTrade, TradesQuery
from engine.protocol.commands import Args, NoArgs
from engine.protocol.enums import Action
from engine.protocol.frames import text_frame
from engine.protocol.server_messages import Outgoing
from engine.server import binance_streams
from engine.server.channel import Channel
from engine.server.hub import Hub

__all__ = ["AccountRequest", "Bus", "InProcessBus", "MarketAnswers", "with_seq"]

RequestId = str | int | None


@dataclass(frozen=True, slots=True)
class AccountRequest:
    """An account command on its way to the engine, already validated:
    ``args`` is what :func:`~engine.protocol.commands.decode_command` parsed
    from ``body`` (an ``OrderRequest``, ``CancelRequest``, ``OrdersQuery``, ...).
    ``channel`` is where its one answer goes."""

    account: str
    channel: Channel
    request_id: RequestId
    action: Action
    body: dict[str, Any]
    args: Args = NoArgs()


def with_seq(out: Outgoing, seq: int) -> Outgoing:
    """``out`` with ``"seq": seq`` added (payload and frame)."""
    payload = stamp(out.payload, seq)
    return Outgoing(payload, text_frame(payload), out.conflate_key)


class MarketAnswers(Protocol):
    """Where the engine answers the bus's market queries (its actors, asked:
    ``tickdesk.engine_answers``); each call waits at most ``timeout_s`` and
    raises :class:`~engine.errors.EngineUnavailable` when the actor does not
    answer."""

    def klines(self, query: KlineQuery, timeout_s: float) -> list[Kline]: ...

    def recent_trades(self, query: TradesQuery, timeout_s: float) -> list[RecentTrade]: ...


class Bus(Protocol):
    """See the module docstring for the contract of each call."""

    @property
    def epoch(self) -> str: ...

    def publish(self, symbol: str, out: Outgoing) -> int: ...

    def publish_book(self, symbol: str, out: Outgoing) -> int: ...

    def to_account(self, account: str, out: Outgoing, origin: Channel | None = None,
                   origin_out: Outgoing | None = None) -> int:
        """Returns the event's ``seq``."""
        ...

    def to_account_now(self, account: str, out: Outgoing) -> None: ...

    def broadcast(self, out: Outgoing) -> None: ...

    def book_subscriber_count(self, symbol: str) -> int: ...

    def accounts(self) -> list[str]:
        """Accounts that may have connections now (the periodic updates go to these)."""
        ...

    def submit(self, request: AccountRequest) -> bool: ...

    def resume(self, account: str, epoch: str, seq: int) -> Resume: ...

    def has_stream(self, name: str) -> bool: ...

    def publish_stream(self, name: str, payload: bytes, conflate_key: str | None = None) -> int:
        """Returns how many local subscribers got it (0 across Redis: the
        gateways count theirs)."""
        ...

    def has_user_stream(self, account: str) -> bool: ...

    def to_user(self, account: str, payloads: Sequence[bytes]) -> None: ...

    def klines(self, query: KlineQuery, timeout_s: float) -> list[Kline]: ...

    def recent_trades(self, query: TradesQuery, timeout_s: float) -> list[RecentTrade]: ...


class InProcessBus:
    """The one-process bus: the hub's channels and the engine's actors, directly.

    ``route`` hands a command to the actor that runs it (built by the
    Engine from its actor slots); it returns False when that actor cannot
    take it. Account events are numbered under one lock (so ``seq`` order
    is delivery order) and the last ``history`` events of each account are
    kept in memory for ``resume``; the epoch is new for every bus (a
    restarted process has a new history). ``answers`` answers the market
    queries directly (None: every query is :class:`EngineUnavailable`)."""

    def __init__(self, hub: Hub, route: Callable[[AccountRequest], bool], *,
                 history: int = 1000, answers: MarketAnswers | None = None) -> None:
        self._hub = hub
        self._route = route
        self.answers = answers
        self._log = AccountLog(history)
        self._lock = threading.Lock()
        self._epoch = uuid.uuid4().hex[:16]
        # the hot path stays one call: the hub's own methods
        self.publish = hub.publish
        self.publish_book = hub.publish_book
        self.broadcast = hub.broadcast
        self.accounts = hub.accounts
        self.has_stream = hub.has_stream
        self.book_subscriber_count = hub.book_subscriber_count

    @property
    def epoch(self) -> str:
        return self._epoch

    def to_account(self, account: str, out: Outgoing, origin: Channel | None = None,
                   origin_out: Outgoing | None = None) -> int:
        with self._lock:
            seq = self._log.next(account)
            stamped = with_seq(out, seq)
            self._log.keep(account, seq, stamped.payload)
            if origin is None:
                self._hub.to_account(account, stamped)
            else:
                self._hub.to_account(account, stamped, skip=origin)
                origin.deliver(stamped if origin_out is None else with_seq(origin_out, seq))
        return seq

    def to_account_now(self, account: str, out: Outgoing) -> None:
        self._hub.to_account_paced(account, out)

    def submit(self, request: AccountRequest) -> bool:
        return self._route(request)

    def publish_stream(self, name: str, payload: bytes, conflate_key: str | None = None) -> int:
        return binance_streams.publish_stream(self._hub, name, payload, conflate_key)

    def has_user_stream(self, account: str) -> bool:
        return bool(self._hub.user_streams(account))

    def to_user(self, account: str, payloads: Sequence[bytes]) -> None:
        binance_streams.to_user(self._hub, account, payloads)

    def resume(self, account: str, epoch: str, seq: int) -> Resume:
        with self._lock:
            return resume_from(self._epoch, epoch, seq, self._log.last(account),
                               self._log.history(account))

    def _answers(self) -> MarketAnswers:
        if self.answers is None:
            raise EngineUnavailable("this process has no engine to answer market queries")
        return self.answers

    def klines(self, query: KlineQuery, timeout_s: float) -> list[Kline]:
        return self._answers().klines(query, timeout_s)

    def recent_trades(self, query: TradesQuery, timeout_s: float) -> list[RecentTrade]:
        return self._answers().recent_trades(query, timeout_s)
