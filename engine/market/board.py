"""The market board: the latest state of every symbol, merged from trades, 24 h
tickers and the book.

Pure core; owned by one thread (the FeedActor's). Each new state of a symbol
gets the next ``seq`` (starting at 1), which MARKET_UPDATE carries; each new
state of its book gets the next book ``seq`` (its own count), which
BOOK_UPDATE carries.

Merge rules: a trade sets the last price, widens high/low, adds its quantity
to the rolling volume, and recomputes the change against the 24 h open
(``open = ticker.last - ticker.change``); a ticker replaces the 24 h
statistics (its bid/ask are not used). Until the first ticker arrives the
24 h fields are ``None`` (null on the wire), never invented. A book input
(:class:`~engine.messages.BookTicker` or
:class:`~engine.messages.DepthSnapshot`) updates the symbol's
:class:`~engine.market.quote_book.QuoteBook`; ``bid``, ``bidQty``, ``ask`` and
``askQty`` of the state are its best levels, and a change of any of them is
a new state (once the symbol has a price).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from engine.market.quote_book import BookView, QuoteBook
from engine.messages import BookTicker, DepthSnapshot, MarketSnapshot, Ticker24h, Trade
from engine.money import MONEY

__all__ = ["BookChange", "MarketBoard"]

_HUNDRED = Decimal(100)


@dataclass(slots=True)
class _SymbolState:
    price: Decimal | None = None
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    volume: Decimal | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None
    bid_qty: Decimal | None = None
    ask_qty: Decimal | None = None
    event_time: int = 0
    seq: int = 0
    snapshot: MarketSnapshot | None = None
    quotes: QuoteBook = field(default_factory=QuoteBook)
    book: BookView | None = None


@dataclass(frozen=True, slots=True)
class BookChange:
    """What one book input changed: the new book, and the new market state when
    its best bid/ask moved (``None`` if they did not, or before the first price)."""

    book: BookView
    market: MarketSnapshot | None


class MarketBoard:
    """Latest state per symbol; see the module docstring for the merge rules."""

    __slots__ = ("_states",)

    def __init__(self) -> None:
        self._states: dict[str, _SymbolState] = {}

    def snapshot(self, symbol: str) -> MarketSnapshot | None:
        """The current state of ``symbol``, or None before its first trade."""
        st = self._states.get(symbol)
        return None if st is None else st.snapshot

    def last_price(self, symbol: str) -> Decimal | None:
        st = self._states.get(symbol)
        return None if st is None else st.price

    def prices(self) -> dict[str, Decimal]:
        return {s: st.price for s, st in self._states.items() if st.price is not None}

    def apply_trade(self, trade: Trade) -> MarketSnapshot:
        st = self._states.get(trade.symbol)
        if st is None:
            st = self._states[trade.symbol] = _SymbolState()
        p = trade.price
        st.price = p
        if st.high is not None and p > st.high:
            st.high = p
        if st.low is not None and p < st.low:
            st.low = p
        if st.volume is not None:
            with localcontext(MONEY):
                st.volume += trade.quantity
        st.event_time = trade.event_time
        return self._publish(trade.symbol, st)

    def apply_ticker(self, ticker: Ticker24h) -> MarketSnapshot | None:
        """Merge 24 h statistics; returns the new state, or None before any trade."""
        st = self._states.get(ticker.symbol)
        if st is None:
            st = self._states[ticker.symbol] = _SymbolState()
        with localcontext(MONEY):
            last = ticker.last_price if ticker.last_price is not None else st.price
            st.open = None if last is None else last - ticker.price_change
        st.high = ticker.high
        st.low = ticker.low
        st.volume = ticker.volume
        if st.price is None:
            if ticker.last_price is None:
                return None
            st.price = ticker.last_price
        st.event_time = max(st.event_time, ticker.event_time)
        return self._publish(ticker.symbol, st)

    def book(self, symbol: str) -> BookView | None:
        """The current book of ``symbol``, or None before its first book input."""
        st = self._states.get(symbol)
        return None if st is None else st.book

    def apply_book(self, item: BookTicker | DepthSnapshot) -> BookChange | None:
        """Merge a book input; None if the book shown did not change."""
        st = self._states.get(item.symbol)
        if st is None:
            st = self._states[item.symbol] = _SymbolState()
        quotes = st.quotes
        if not quotes.apply(item):
            return None
        seq = 1 if st.book is None else st.book.seq + 1
        st.book = BookView(item.symbol, quotes.bids, quotes.asks, seq, item.event_time)
        best_bid = quotes.bids[0] if quotes.bids else (None, None)
        best_ask = quotes.asks[0] if quotes.asks else (None, None)
        if (st.bid, st.bid_qty, st.ask, st.ask_qty) == (*best_bid, *best_ask):
            return BookChange(st.book, None)
        st.bid, st.bid_qty = best_bid
        st.ask, st.ask_qty = best_ask
        if st.price is None:
            return BookChange(st.book, None)
        st.event_time = max(st.event_time, item.event_time)
        return BookChange(st.book, self._publish(item.symbol, st))

    def _publish(self, symbol: str, st: _SymbolState) -> MarketSnapshot:
        st.seq += 1
        change: Decimal | None = None
        percent: Decimal | None = None
        assert st.price is not None
        if st.open is not None:
            with localcontext(MONEY):
                change = st.price - st.open
                percent = (change / st.open * _HUNDRED) if st.open else None
        snap = MarketSnapshot(
            symbol=symbol,
            price=st.price,
            price_change=change,
            price_change_percent=percent,
            high=st.high,
            low=st.low,
            volume=st.volume,
            bid=st.bid,
            ask=st.ask,
            event_time=st.event_time,
            seq=st.seq,
            bid_qty=st.bid_qty,
            ask_qty=st.ask_qty,
        )
        st.snapshot = snap
        return snap
