"""Immutable market-data messages shared by the feed, the core and the actors.

Pure core: no threads, sockets, clocks or pykka. Every message is a frozen,
slotted dataclass so it can cross actor boundaries without copying or locking.
Prices and quantities are :class:`decimal.Decimal`; times are integer epoch
milliseconds taken from the feed (``event_time``) or the injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["BookLevel", "BookTicker", "DepthSnapshot", "MarketSnapshot", "Ticker24h", "Trade"]


@dataclass(frozen=True, slots=True)
class Trade:
    """One (aggregate) trade: the event that drives prices and order triggers.

    ``trade_id`` is the feed's aggregate-trade id when it has one (Binance
    ``a``), else a per-symbol counter; ``event_time`` is the feed's own event
    time in ms; ``trade_time`` the trade time in ms (Binance ``T``).
    ``buyer_is_maker`` mirrors Binance ``m`` (True: the seller was the taker).
    """

    symbol: str
    price: Decimal
    quantity: Decimal
    event_time: int
    trade_time: int
    trade_id: int | None = None
    buyer_is_maker: bool | None = None

    def is_stale(self, now_ms: int, max_age_ms: int) -> bool:
        """The one freshness rule (docs/trading.md): a trade whose event time is
        more than ``max_age_ms`` before ``now_ms`` sets no price (no fill, no
        trigger, no mark, no placement reference)."""
        return now_ms - self.event_time > max_age_ms


@dataclass(frozen=True, slots=True)
class Ticker24h:
    """Rolling 24 h statistics for one symbol (Binance ``@ticker``)."""

    symbol: str
    event_time: int
    price_change: Decimal
    price_change_percent: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal
    last_price: Decimal | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None


@dataclass(frozen=True, slots=True)
class BookTicker:
    """The best bid and ask with their quantities (Binance ``@bookTicker``).

    ``update_id`` is the book's update id (Binance ``u``): a newer book has a
    larger one. ``event_time`` is the feed's event time in ms when it gives
    one, else the time the engine received the frame.
    """

    symbol: str
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    update_id: int
    event_time: int


#: One price level of a book: ``(price, quantity)``.
BookLevel = tuple[Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    """The top levels of one symbol's book (Binance ``@depth<N>@100ms``).

    ``bids`` are best (highest) first, ``asks`` best (lowest) first; each is
    at most the subscribed number of levels. ``last_update_id`` orders
    snapshots like :attr:`BookTicker.update_id`.
    """

    symbol: str
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    last_update_id: int
    event_time: int


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """The state of one symbol as sent in ``MARKET_UPDATE`` (one ``seq``)."""

    symbol: str
    price: Decimal
    price_change: Decimal | None
    price_change_percent: Decimal | None
    high: Decimal | None
    low: Decimal | None
    volume: Decimal | None
    bid: Decimal | None
    ask: Decimal | None
    event_time: int
    seq: int
