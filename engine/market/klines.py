"""Klines (candlesticks) built from the trades the engine sees.

Pure core: no threads, sockets, clocks or pykka; every time is passed in
(epoch milliseconds, the trade's own time). The one owner of a
:class:`KlineBook` is the PortfolioActor (its thread calls every method; the
book is not thread-safe), see ``docs/klines.md``.

Rules (Binance's, ``GET /api/v3/klines``):

* The intervals are :data:`INTERVALS` (Binance's names). A bar of interval
  ``L`` ms opens at a UTC multiple of ``L`` (``open_time = ts - ts % L``) and
  ``close_time = open_time + L - 1``.
* A bar's ``open`` is its first trade's price, ``close`` its last one's,
  ``high``/``low`` the extremes, ``volume`` the sum of quantities,
  ``quote_volume`` the sum of ``price * quantity`` (exact, :data:`MONEY`),
  ``trades`` the number of trades the engine saw (an aggregate trade counts
  once; Binance counts its underlying trades).
* An interval with no trade has **no bar** (Binance shows a zero-volume bar
  there; a reader who wants one carries the previous close forward).
* A trade older than the current (newest) bar of an interval updates nothing
  for that interval: closed bars are final. A trade inside the current bar
  but older than its last trade still counts, and then also sets ``close``
  (the book keeps arrival order, not trade-time order, within a bar).
* Bound: at most ``max_bars`` bars per symbol and interval (the current one
  included); beyond, the oldest is dropped. The bars waiting to be persisted
  (:meth:`KlineBook.take_unsaved`) are a subset of the bars held, so they are
  bounded too.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from engine.errors import BadRequest
from engine.money import MONEY

__all__ = [
    "DEFAULT_LIMIT",
    "INTERVALS",
    "MAX_LIMIT",
    "BadKlineQuery",
    "Kline",
    "KlineBook",
    "KlineQuery",
    "UnknownInterval",
    "check_query",
    "interval_ms",
]

#: Binance's kline interval names and their lengths in milliseconds.
INTERVALS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}
#: ``limit`` of a query: Binance's default and maximum.
DEFAULT_LIMIT = 500
MAX_LIMIT = 1000


class UnknownInterval(BadRequest):
    """An interval that is not one of :data:`INTERVALS` (BAD_REQUEST)."""

    def __init__(self, interval: object) -> None:
        shown = repr(interval) if len(repr(interval)) <= 20 else repr(interval)[:20] + "..."
        super().__init__(f"unknown interval {shown}; one of {', '.join(INTERVALS)}")


class BadKlineQuery(BadRequest):
    """A ``limit`` out of 1..1000, or a ``startTime`` after the ``endTime`` (BAD_REQUEST)."""


def interval_ms(interval: str) -> int:
    """The length of ``interval`` in ms; :class:`UnknownInterval` if it is not one."""
    length = INTERVALS.get(interval) if isinstance(interval, str) else None
    if length is None:
        raise UnknownInterval(interval)
    return length


def check_query(interval: str, start_ms: int | None, end_ms: int | None, limit: int) -> None:
    """Raise :class:`UnknownInterval` or :class:`BadKlineQuery` for a query Binance refuses."""
    interval_ms(interval)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise BadKlineQuery(f"limit must be an integer from 1 to {MAX_LIMIT}")
    if start_ms is not None and end_ms is not None and start_ms > end_ms:
        raise BadKlineQuery("startTime must not be after endTime")


@dataclass(frozen=True, slots=True)
class KlineQuery:
    """A checked query (``get_klines``, ``Engine.klines``): build it with
    :meth:`checked`, which raises what :func:`check_query` raises."""

    symbol: str
    interval: str
    start_ms: int | None = None
    end_ms: int | None = None
    limit: int = DEFAULT_LIMIT

    @classmethod
    def checked(cls, symbol: str, interval: str, start_ms: int | None = None,
                end_ms: int | None = None, limit: int = DEFAULT_LIMIT) -> KlineQuery:
        check_query(interval, start_ms, end_ms, limit)
        return cls(symbol, interval, start_ms, end_ms, limit)


@dataclass(frozen=True, slots=True)
class Kline:
    """One bar, as Binance's REST ``klines`` row (times in epoch ms)."""

    symbol: str
    interval: str
    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int

    @property
    def key(self) -> tuple[str, str, int]:
        """What identifies the bar (the store's primary key)."""
        return (self.symbol, self.interval, self.open_time)


def _opened(symbol: str, interval: str, open_time: int, length: int, price: Decimal,
            qty: Decimal) -> Kline:
    return Kline(symbol, interval, open_time, open_time + length - 1, price, price, price,
                 price, qty, _MUL(price, qty), 1)


def _merged(bar: Kline, price: Decimal, qty: Decimal) -> Kline:
    return Kline(bar.symbol, bar.interval, bar.open_time, bar.close_time, bar.open,
                 price if price > bar.high else bar.high,
                 price if price < bar.low else bar.low, price, _ADD(bar.volume, qty),
                 _ADD(bar.quote_volume, _MUL(price, qty)), bar.trades + 1)


#: Exact sums and products in :data:`MONEY` (bound methods: no context switch per trade).
_ADD = MONEY.add
_MUL = MONEY.multiply


class KlineBook:
    """Every symbol's bars of every interval (see the module docstring)."""

    def __init__(self, *, max_bars: int) -> None:
        if isinstance(max_bars, bool) or not isinstance(max_bars, int) or max_bars < 1:
            raise ValueError("max_bars must be an integer >= 1")
        self.max_bars = max_bars
        self._series: dict[tuple[str, str], deque[Kline]] = {}
        #: Bars changed since the last :meth:`take_unsaved`, by key.
        self._unsaved: dict[tuple[str, str, int], Kline] = {}

    # -- writes -----------------------------------------------------------------

    def on_trade(self, symbol: str, price: Decimal, qty: Decimal, ts_ms: int) -> list[Kline]:
        """Count one trade (``ts_ms``: its trade time); return the bar of each
        interval it updated or opened, in :data:`INTERVALS` order (none for an
        interval whose current bar is newer than the trade)."""
        updated: list[Kline] = []
        for interval, length in INTERVALS.items():
            open_time = ts_ms - ts_ms % length
            series = self._series.get((symbol, interval))
            if series is None:
                series = self._series[(symbol, interval)] = deque(maxlen=self.max_bars)
            current = series[-1] if series else None
            if current is not None and open_time < current.open_time:
                continue  # closed bars are final
            if current is not None and open_time == current.open_time:
                bar = _merged(current, price, qty)
                series[-1] = bar
            else:
                bar = _opened(symbol, interval, open_time, length, price, qty)
                self._append(series, bar)
            self._unsaved[bar.key] = bar
            updated.append(bar)
        return updated

    def _append(self, series: deque[Kline], bar: Kline) -> None:
        if len(series) == series.maxlen:
            self._unsaved.pop(series[0].key, None)  # dropped: never to be saved
        series.append(bar)

    def restore(self, bars: Iterable[Kline]) -> None:
        """Load persisted bars (any order) into an empty book, as saved: a bar of
        an unknown interval is ignored, each series keeps its newest
        ``max_bars``. Restored bars are not unsaved."""
        grouped: dict[tuple[str, str], list[Kline]] = {}
        for bar in bars:
            if bar.interval in INTERVALS:
                grouped.setdefault((bar.symbol, bar.interval), []).append(bar)
        for key, found in grouped.items():
            found.sort(key=lambda b: b.open_time)
            self._series[key] = deque(found[-self.max_bars:], maxlen=self.max_bars)

    # -- persistence --------------------------------------------------------------

    def take_unsaved(self, *, include_open: bool) -> list[Kline]:
        """The bars changed since they were last taken, oldest first, and forget
        them: the closed ones always, the current (open) ones only with
        ``include_open``. A bar given back by :meth:`unsaved_again` (its write
        failed) is taken again next time."""
        taken: list[Kline] = []
        for key, bar in list(self._unsaved.items()):
            if include_open or not self._is_current(bar):
                taken.append(bar)
                del self._unsaved[key]
        taken.sort(key=lambda b: (b.open_time, b.symbol, INTERVALS[b.interval]))
        return taken

    def has_closed_unsaved(self) -> bool:
        """Whether a closed bar waits to be saved (cheap enough for every pulse)."""
        return any(not self._is_current(bar) for bar in self._unsaved.values())

    def unsaved_again(self, bars: Iterable[Kline]) -> None:
        """Bars whose write failed: taken again by the next :meth:`take_unsaved`
        (unless changed since, or dropped by the bound)."""
        for bar in bars:
            series = self._series.get((bar.symbol, bar.interval))
            if not series or bar.open_time < series[0].open_time:
                continue
            self._unsaved.setdefault(bar.key, self._find(series, bar.open_time) or bar)

    def _is_current(self, bar: Kline) -> bool:
        series = self._series.get((bar.symbol, bar.interval))
        return series is not None and len(series) > 0 and series[-1].open_time == bar.open_time

    @staticmethod
    def _find(series: deque[Kline], open_time: int) -> Kline | None:
        bars = list(series)
        i = bisect_left(bars, open_time, key=lambda b: b.open_time)
        return bars[i] if i < len(bars) and bars[i].open_time == open_time else None

    # -- reads --------------------------------------------------------------------

    def klines(self, symbol: str, interval: str, *, start_ms: int | None = None,
               end_ms: int | None = None, limit: int = DEFAULT_LIMIT) -> list[Kline]:
        """Bars oldest first, Binance's semantics: bars whose ``open_time`` is in
        ``[start_ms, end_ms]``; with ``start_ms`` the first ``limit`` of them,
        else the last ``limit``. The current bar is included. Raises
        :class:`UnknownInterval` / :class:`BadKlineQuery` (see :func:`check_query`)."""
        check_query(interval, start_ms, end_ms, limit)
        series = self._series.get((symbol, interval))
        if not series:
            return []
        bars = list(series)
        lo = 0 if start_ms is None else bisect_left(bars, start_ms, key=lambda b: b.open_time)
        hi = (len(bars) if end_ms is None
              else bisect_right(bars, end_ms, key=lambda b: b.open_time))
        if start_ms is not None:
            return bars[lo:min(hi, lo + limit)]
        return bars[max(lo, hi - limit):hi]

    def answer(self, query: KlineQuery) -> list[Kline]:
        """:meth:`klines` of a :class:`KlineQuery`."""
        return self.klines(query.symbol, query.interval, start_ms=query.start_ms,
                           end_ms=query.end_ms, limit=query.limit)

    def current(self, symbol: str, interval: str) -> Kline | None:
        """The newest bar of ``symbol`` and ``interval`` (open until a trade of a
        later bar arrives), or None before its first trade."""
        interval_ms(interval)
        series = self._series.get((symbol, interval))
        return series[-1] if series else None

    def symbols(self) -> set[str]:
        """The symbols that have bars."""
        return {symbol for symbol, _ in self._series}
