"""The market board: the latest state of every symbol, merged from trades and 24 h tickers.

Pure core; owned by one thread (the FeedActor's). Each new state of a symbol
gets the next ``seq`` (starting at 1), which MARKET_UPDATE carries.

Merge rules: a trade sets the last price, widens high/low, adds its quantity
to the rolling volume, and recomputes the change against the 24 h open
(``open = ticker.last - ticker.change``); a ticker replaces the 24 h
statistics and bid/ask. Until the first ticker arrives the 24 h fields are
``None`` (null on the wire), never invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

from engine.messages import MarketSnapshot, Ticker24h, Trade
from engine.money import MONEY

__all__ = ["MarketBoard"]

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
    event_time: int = 0
    seq: int = 0
    snapshot: MarketSnapshot | None = None


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
        if ticker.bid is not None:
            st.bid = ticker.bid
        if ticker.ask is not None:
            st.ask = ticker.ask
        if st.price is None:
            if ticker.last_price is None:
                return None
            st.price = ticker.last_price
        st.event_time = max(st.event_time, ticker.event_time)
        return self._publish(ticker.symbol, st)

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
        )
        st.snapshot = snap
        return snap
