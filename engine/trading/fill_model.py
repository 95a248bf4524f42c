"""The fill model: how much of an order fills, at what price, against the book
and the trade tape.

Pure core: no threads, sockets, clocks or pykka. Functions of values only; the
:class:`~engine.trading.book.OrderBook` (run by the OrderMonitorActor's thread)
calls them. The rules, documented for users in ``docs/trading.md``:

* **Taking liquidity** (MARKET, a LIMIT marketable at placement or at its
  trigger, a triggered STOP_LOSS / TAKE_PROFIT): a BUY walks the known asks, a
  SELL the known bids, best first, each level up to its quantity (:func:`take`).
  What is left beyond the known levels fills at the last known level's price
  moved ``slippage_bps`` against the taker. A LIMIT takes nothing beyond its
  limit: it stops at the first level (or that beyond-the-book price) worse
  than its limit.
* **Resting** (a LIMIT, LIMIT_MAKER or triggered ``*_LIMIT`` in the book): a
  trade at or through the limit fills at most the trade's quantity, at the
  limit price (:func:`resting_fill`). With :attr:`FillModel.QUEUE` the quantity
  shown at the order's price when it joined the queue trades first (a trade
  *through* the price has consumed the whole level, so it no longer counts).
* :attr:`FillModel.FULL` is the older contract: the whole order fills on the
  first qualifying trade, takers at the last trade price.

Each order is simulated against the market alone: orders of this engine never
consume each other's liquidity (accounts stay independent simulations).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from engine.messages import BookLevel, BookTicker, DepthSnapshot
from engine.money import ZERO, Side
from engine.trading.triggers import limit_fills, slipped

__all__ = [
    "FillModel",
    "Quote",
    "Slice",
    "level_quantity",
    "merge_quote",
    "resting_fill",
    "take",
    "worse_than",
]


class FillModel(StrEnum):
    """``trading.fill_model``."""

    #: The whole order fills on the first qualifying trade (the older contract).
    FULL = "full"
    #: Takers at the book; resting orders fill at most the trade's quantity.
    BOOK = "book"
    #: As BOOK, and the quantity resting ahead at the order's price trades first.
    QUEUE = "queue"


@dataclass(frozen=True, slots=True)
class Quote:
    """The known book of one symbol: ``bids`` best (highest) first, ``asks``
    best (lowest) first. ``update_id`` orders quotes (Binance's book update id);
    ``depth`` is the last depth snapshot the levels below the best come from."""

    symbol: str
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    update_id: int
    event_time: int
    depth: DepthSnapshot | None = None

    def opposite(self, side: Side) -> tuple[BookLevel, ...]:
        """The levels a taker of ``side`` consumes (BUY: asks)."""
        return self.asks if side is Side.BUY else self.bids

    def same(self, side: Side) -> tuple[BookLevel, ...]:
        """The levels a resting order of ``side`` joins (BUY: bids)."""
        return self.bids if side is Side.BUY else self.asks


@dataclass(frozen=True, slots=True)
class Slice:
    """One part of a fill: ``quantity`` at ``price``."""

    price: Decimal
    quantity: Decimal


def worse_than(side: Side, price: Decimal, limit: Decimal) -> bool:
    """True when ``price`` is worse than ``limit`` for a ``side`` taker
    (BUY: higher, SELL: lower)."""
    return price > limit if side is Side.BUY else price < limit


def merge_quote(current: Quote | None, book: BookTicker | DepthSnapshot) -> Quote:
    """The quote after one book message. A message older than ``current``
    (smaller update id) changes nothing. A depth snapshot replaces the known
    levels; a best bid/ask replaces the best levels and keeps the levels of
    the last depth snapshot that are worse than the new best (a former best
    bid/ask is not kept as a deeper level: nothing says it is still there)."""
    if isinstance(book, DepthSnapshot):
        if current is not None and book.last_update_id < current.update_id:
            return current
        return Quote(book.symbol, book.bids, book.asks, book.last_update_id, book.event_time,
                     book)
    if current is not None and book.update_id < current.update_id:
        return current
    depth = current.depth if current is not None else None
    deep_bids = depth.bids if depth is not None else ()
    deep_asks = depth.asks if depth is not None else ()
    bids = ((book.bid, book.bid_qty), *(lv for lv in deep_bids if lv[0] < book.bid))
    asks = ((book.ask, book.ask_qty), *(lv for lv in deep_asks if lv[0] > book.ask))
    return Quote(book.symbol, bids, asks, book.update_id, book.event_time, depth)


def take(
    side: Side,
    quantity: Decimal,
    levels: tuple[BookLevel, ...],
    slippage_bps: Decimal,
    limit: Decimal | None = None,
) -> tuple[Slice, ...]:
    """The slices a taker of ``side`` for ``quantity`` gets from ``levels``
    (the opposite side, best first). Levels beyond ``limit`` stop the walk
    (the rest does not take). Past the known levels the rest fills at the last
    level's price slipped ``slippage_bps`` against the taker, unless that is
    worse than ``limit``. Empty ``levels`` give no slices (the caller falls
    back to the last trade price)."""
    out: list[Slice] = []
    left = quantity
    for price, size in levels:
        if left <= 0:
            break
        if limit is not None and worse_than(side, price, limit):
            return tuple(out)
        if size <= 0:
            continue
        part = min(left, size)
        out.append(Slice(price, part))
        left -= part
    if left > 0 and levels:
        beyond = slipped(side, levels[-1][0], slippage_bps)
        if limit is None or not worse_than(side, beyond, limit):
            out.append(Slice(beyond, left))
    return tuple(out)


def level_quantity(side: Side, price: Decimal, quote: Quote | None) -> Decimal | None:
    """The quantity the book shows at ``price`` on ``side``'s own side: the
    level's size, ZERO when the price lies inside the known levels (or better
    than the best) but no level is there, None when it lies beyond them."""
    if quote is None:
        return None
    levels = quote.same(side)
    if not levels:
        return None
    for level_price, size in levels:
        if level_price == price:
            return size
    worst = levels[-1][0]
    # BUY bids descend: a price below the worst known bid is unknown.
    beyond = price < worst if side is Side.BUY else price > worst
    return None if beyond else ZERO


def resting_fill(
    model: FillModel,
    side: Side,
    limit: Decimal,
    trade_price: Decimal,
    trade_quantity: Decimal,
    open_quantity: Decimal,
    queue_ahead: Decimal | None,
) -> tuple[Decimal, Decimal | None]:
    """``(fill quantity, queue ahead after)`` for a resting order at ``limit``
    with ``open_quantity`` working (an iceberg's visible slice) on one trade.
    A queue not known yet (None) counts as empty once a trade reaches it."""
    if not limit_fills(side, limit, trade_price):
        return ZERO, queue_ahead
    if queue_ahead is None:
        queue_ahead = ZERO
    if model is FillModel.FULL:
        return open_quantity, ZERO
    available = trade_quantity
    if model is FillModel.QUEUE:
        if trade_price == limit:
            used = min(queue_ahead, available)
            queue_ahead -= used
            available -= used
        else:
            queue_ahead = ZERO
    return min(open_quantity, available), queue_ahead
