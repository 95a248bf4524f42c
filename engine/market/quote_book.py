"""The book of one symbol as the feed knows it: best bid/ask and the top levels.

Pure core; owned by one thread (the FeedActor's, through the
:class:`~engine.market.board.MarketBoard`).

Two inputs, each keeping only its latest value:

* the best bid and ask (:class:`~engine.messages.BookTicker`, Binance
  ``@bookTicker``: real time, one level a side);
* the top levels (:class:`~engine.messages.DepthSnapshot`, Binance
  ``@depth<N>@100ms``, or the simulated market's book).

The book shown (:meth:`QuoteBook.levels`) merges them by update id (both
count Binance's book updates): when the depth snapshot is at least as new as
the best bid/ask it is shown as it is; when the best bid/ask is newer, it is
the top of each side, followed by the snapshot's levels strictly behind it
(a level at or better than the new best price is gone from the book). So the
book never holds more than the snapshot's levels plus one a side, and
without depth it is exactly the best bid and ask. Staleness (an update older
than the last one of its kind) is the feed's business: it de-duplicates
before applying.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.messages import BookLevel, BookTicker, DepthSnapshot

__all__ = ["BookView", "QuoteBook"]

Levels = tuple[BookLevel, ...]


@dataclass(frozen=True, slots=True)
class BookView:
    """One published state of a symbol's book (what ``BOOK_UPDATE`` carries).

    ``bids`` best (highest) first, ``asks`` best (lowest) first; ``seq`` is +1
    per change of the book, per symbol, starting at 1; ``event_time`` is the
    event time of the input that made this state.
    """

    symbol: str
    bids: Levels
    asks: Levels
    seq: int
    event_time: int

    @property
    def best_bid(self) -> BookLevel | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> BookLevel | None:
        return self.asks[0] if self.asks else None


class QuoteBook:
    """The merged book of one symbol (see the module docstring)."""

    __slots__ = ("_depth", "_top", "asks", "bids")

    def __init__(self) -> None:
        self._top: BookTicker | None = None
        self._depth: DepthSnapshot | None = None
        self.bids: Levels = ()
        self.asks: Levels = ()

    def apply(self, item: BookTicker | DepthSnapshot) -> bool:
        """Take the latest best bid/ask or depth snapshot; True if the shown book changed."""
        if isinstance(item, BookTicker):
            self._top = item
        else:
            self._depth = item
        bids, asks = self._merge()
        if bids == self.bids and asks == self.asks:
            return False
        self.bids, self.asks = bids, asks
        return True

    def _merge(self) -> tuple[Levels, Levels]:
        top, depth = self._top, self._depth
        if depth is None and top is None:
            return (), ()
        if top is None or (depth is not None and depth.last_update_id >= top.update_id):
            assert depth is not None
            return depth.bids, depth.asks
        behind_bids: Levels = ()
        behind_asks: Levels = ()
        if depth is not None:
            behind_bids = tuple(lv for lv in depth.bids if lv[0] < top.bid)
            behind_asks = tuple(lv for lv in depth.asks if lv[0] > top.ask)
        return ((top.bid, top.bid_qty), *behind_bids), ((top.ask, top.ask_qty), *behind_asks)
