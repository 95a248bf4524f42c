"""Messages between actors: frozen, slotted dataclasses.

A ``channel`` field is a handle to one client's outbound path (thread-safe);
it lets an actor answer the client that asked without a round trip through
the ConnectionActor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.market.klines import KlineQuery
from engine.market.recent_trades import TradesQuery
from engine.messages import BookTicker, DepthSnapshot, Ticker24h, Trade
from engine.protocol.server_messages import Outgoing
from engine.server.bus import AccountRequest as AccountRequest
from engine.server.channel import Channel

RequestId = str | int | None


@dataclass(frozen=True, slots=True)
class ClientFrame:
    """A complete WebSocket message from the client (I/O thread → ConnectionActor)."""

    data: str | bytes
    binary: bool


@dataclass(frozen=True, slots=True)
class GateRefusal:
    """The frame gate's ``ERROR RATE_LIMITED`` for a frame that arrived while
    earlier ones still waited in the ConnectionActor's mailbox (I/O thread →
    ConnectionActor, which just delivers it: the answer keeps its place
    behind the earlier ones' replies)."""

    answer: Outgoing


@dataclass(frozen=True, slots=True)
class ClientGone:
    """The client's transport closed (I/O thread → ConnectionActor)."""


@dataclass(frozen=True, slots=True)
class Pulse:
    """A timer tick for whoever owns a periodic job."""

    name: str


@dataclass(frozen=True, slots=True)
class TradeTick:
    """A trade as received by the feed, with the local receive time (ms)."""

    trade: Trade
    received_ms: int


@dataclass(frozen=True, slots=True)
class BookTick:
    """A change of one symbol's book (best bid/ask, or its top levels), as the
    feed routes it to the OrderMonitorActor (fills at the book) and the
    PortfolioActor, with the local receive time (ms)."""

    book: BookTicker | DepthSnapshot
    received_ms: int


@dataclass(frozen=True, slots=True)
class SendSnapshot:
    """Send the current MARKET_UPDATE of ``symbol`` to one new subscriber (feed thread,
    so it can never overtake or follow out of order the live updates)."""

    channel: Channel
    symbol: str


@dataclass(frozen=True, slots=True)
class SendBookSnapshot:
    """Send the current BOOK_UPDATE of ``symbol`` to one new book subscriber (feed
    thread, for the same reason as :class:`SendSnapshot`)."""

    channel: Channel
    symbol: str


@dataclass(frozen=True, slots=True)
class RecentTradesRequest:
    """``GET /api/v3/trades``, ``/aggTrades``, ``/historicalTrades`` (an ask to the
    FeedActor from an API worker: replies a list of
    :class:`~engine.market.recent_trades.RecentTrade`, oldest first)."""

    query: TradesQuery


@dataclass(frozen=True, slots=True)
class KlineRequest:
    """``get_klines`` (ConnectionActor → PortfolioActor, which answers KLINES on
    ``channel``), or, with no channel, ``Engine.klines`` (an ask: replies the
    bars)."""

    query: KlineQuery
    channel: Channel | None = None
    request_id: RequestId = None


@dataclass(frozen=True, slots=True)
class ChildFailed:
    """A supervised child died (sent from the child's own thread)."""

    name: str
    generation: int
    reason: str


@dataclass(frozen=True, slots=True)
class RestartChild:
    name: str
    generation: int


@dataclass(frozen=True, slots=True)
class OpenOrdersChanged:
    account: str
    count: int


@dataclass(frozen=True, slots=True)
class FeedBatch:
    """Decoded market events from a feed source thread, in feed order.

    ``items`` holds :class:`~engine.messages.Trade`,
    :class:`~engine.messages.Ticker24h`, :class:`~engine.messages.BookTicker`
    and :class:`~engine.messages.DepthSnapshot` values; ``received_ms`` is the local
    time the source read them. ``source`` is the id of the source object that
    sent it (the FeedActor ignores batches of a source it no longer owns).
    ``done`` (if set) is called by the FeedActor once the batch is routed: the
    source uses it to bound the number of batches in flight.
    """

    source: int
    items: tuple[Trade | Ticker24h | BookTicker | DepthSnapshot, ...]
    received_ms: int
    done: Callable[[], None] | None = None
    #: Clock.monotonic() when the engine received the batch (the tick latency's start).
    received_mono: float | None = None


@dataclass(frozen=True, slots=True)
class SourceUp:
    """A feed source's upstream connection is open (source thread → FeedActor)."""

    source: int


@dataclass(frozen=True, slots=True)
class SourceFailed:
    """A feed source lost its upstream (source thread → FeedActor, which then fails)."""

    source: int
    reason: str


@dataclass(frozen=True, slots=True)
class ChildUp:
    """A supervised child reports that it is really serving (feed: upstream open)."""

    name: str
    generation: int


@dataclass(frozen=True, slots=True)
class RotateSource:
    """A feed source's connection is due for replacement (before Binance's 24 h limit)."""

    source: int


@dataclass(frozen=True, slots=True)
class AddSymbol:
    """A client subscribes to a symbol the feed does not serve yet (ConnectionActor →
    FeedActor, ``feed.dynamic_symbols``); the FeedActor answers the client."""

    channel: Channel
    symbol: str
    request_id: RequestId
    #: The account of the asking connection: it owns the symbol if it is added.
    account: str = ""


@dataclass(frozen=True, slots=True)
class SymbolInterest:
    """A symbol gained its first subscriber (``watched``) or lost its last one (the
    hub, in the subscribing client's thread → FeedActor): live symbols nobody
    watches are withdrawn after ``feed.binance.unsubscribe_grace_s``."""

    symbol: str
    watched: bool


@dataclass(frozen=True, slots=True)
class SymbolInfoLoaded:
    """A live-added symbol's exchange info was looked up (loader thread → FeedActor);
    ``found`` is False when its filters could not be loaded."""

    symbol: str
    found: bool


@dataclass(frozen=True, slots=True)
class ControlAnswer:
    """Binance's reply to a live control request (source thread → FeedActor)."""

    source: int
    reply: Any
