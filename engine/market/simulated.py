"""The simulated market: a seeded, deterministic random walk per symbol, with a book.

Pure core: the caller supplies the time of each step (epoch ms). For a given
``seed`` and symbol list the sequence of books, prices and quantities is
always the same, whatever the timing, so tests and demos are reproducible.

Model of one :meth:`SimulatedMarket.step`:

1. A mid price moves by a Gaussian log-return with a per-step volatility of
   ``volatility_bps`` basis points (rounded to the symbol's tick, never below
   two ticks).
2. The book is quoted around it: a spread of 1 to :data:`MAX_SPREAD_TICKS`
   ticks (the best bid at most one tick below the mid, never below one
   tick), then :data:`BOOK_LEVELS` levels a side, each 1 or 2 ticks behind
   the previous one (bids stop above zero), each holding 1 to 16 units of
   about 20,000 USDT (whole lots; integers drawn, so a step stays cheap): a
   top of book of a few BTC on BTCUSDT, as on Binance.
3. One trade against that book: a taker buy at the best ask or a taker sell
   at the best bid (down moves are sells), for at most the quantity of that
   level.

So every trade is at the best bid or the best ask of the book quoted just
before it, and never larger than that level: the simulated market never
prints outside its own spread. 24 h statistics start from the start price
as the open and track high, low and volume of the trades (a simulated day
starts when the engine starts).

Start prices: a symbol starts at its entry of :data:`START_PRICES` (or a
stable made-up price), unless ``start_prices`` gives it one: the last price
it traded at before a restart (the Engine passes the closes of the newest
stored klines; the FeedActor, on a restart of its own, the prices its last
generation reached), rounded to the symbol's tick. So a restarted market
resumes where it was instead of jumping back to its seed's start; the walk
from there is still deterministic for a given seed.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext

from engine.messages import BookLevel, DepthSnapshot, Ticker24h, Trade
from engine.money import MONEY

__all__ = [
    "BOOK_LEVELS",
    "MAX_SPREAD_TICKS",
    "START_PRICES",
    "SimStep",
    "SimulatedMarket",
    "SimulatedSymbol",
]

#: Realistic start prices (USDT) and tick sizes of well-known symbols.
START_PRICES: dict[str, tuple[str, str]] = {
    "BTCUSDT": ("86000.00", "0.01"),
    "ETHUSDT": ("3200.00", "0.01"),
    "BNBUSDT": ("600.00", "0.01"),
    "SOLUSDT": ("140.00", "0.01"),
    "XRPUSDT": ("0.6000", "0.0001"),
    "ADAUSDT": ("0.4500", "0.0001"),
    "DOGEUSDT": ("0.15000", "0.00001"),
    "LTCUSDT": ("85.00", "0.01"),
}
#: Levels quoted on each side of the simulated book.
BOOK_LEVELS = 5
#: The widest simulated spread, in ticks.
MAX_SPREAD_TICKS = 3
_HUNDRED = Decimal(100)


@dataclass(slots=True)
class SimulatedSymbol:
    symbol: str
    rng: random.Random
    tick: Decimal
    lot: Decimal
    open: Decimal
    price: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal
    trade_id: int = 0
    mid: Decimal = Decimal(0)
    update_id: int = 0
    book: DepthSnapshot | None = None
    #: The quantity unit of a book level: about 20,000 USDT, whole lots.
    level_unit: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class SimStep:
    """One step of a symbol: the book quoted, then the trade made against it."""

    book: DepthSnapshot
    trade: Trade


def _start_for(symbol: str) -> tuple[Decimal, Decimal]:
    known = START_PRICES.get(symbol)
    if known:
        return Decimal(known[0]), Decimal(known[1])
    # An unknown symbol gets a stable made-up price between 1 and 1000.
    h = zlib.crc32(symbol.encode())
    return Decimal(1 + h % 1000).quantize(Decimal("0.01")), Decimal("0.01")


class SimulatedMarket:
    """Deterministic random walks and books for a set of symbols."""

    def __init__(self, symbols: tuple[str, ...], seed: int, volatility_bps: float = 5.0,
                 start_prices: Mapping[str, Decimal] | None = None) -> None:
        self._sigma = volatility_bps / 10000.0
        self._symbols: dict[str, SimulatedSymbol] = {}
        starts = start_prices or {}
        for sym in symbols:
            self.add_symbol(sym, seed, starts.get(sym))

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._symbols)

    def add_symbol(self, symbol: str, seed: int, start_price: Decimal | None = None) -> None:
        """Add ``symbol``, starting at ``start_price`` (rounded to its tick) when
        given and positive, else at its usual start price."""
        if symbol in self._symbols:
            return
        reference, tick = _start_for(symbol)
        rng = random.Random(seed * 1_000_003 + zlib.crc32(symbol.encode()))
        lot = Decimal("0.00001") if reference > 1000 else Decimal("0.001")
        start = reference
        if start_price is not None and start_price.is_finite() and start_price > 0:
            with localcontext(MONEY):
                start = max(2 * tick, start_price.quantize(tick))
        unit = max(lot, (Decimal(20_000) / start).quantize(lot))
        self._symbols[symbol] = SimulatedSymbol(
            symbol, rng, tick, lot, start, start, start, start, Decimal(0), mid=start,
            level_unit=unit,
        )

    def last_prices(self) -> dict[str, Decimal]:
        """Each symbol's last trade price (its start price before its first step)."""
        return {sym: s.price for sym, s in self._symbols.items()}

    def step(self, symbol: str, now_ms: int) -> SimStep:
        """The next book and trade of ``symbol`` at time ``now_ms`` (see the module docstring)."""
        s = self._symbols[symbol]
        r = s.rng.gauss(0.0, self._sigma)
        with localcontext(MONEY):
            moved = s.mid * Decimal(repr(math.exp(r)))
            s.mid = max(2 * s.tick, moved.quantize(s.tick))
            book = self._quote(s, now_ms)
            buyer_is_maker = r < 0  # a down move: a taker sold into the bid
            price, level_qty = book.bids[0] if buyer_is_maker else book.asks[0]
            qty = min(level_qty, self._size(s))
            s.price = price
            s.high = max(s.high, price)
            s.low = min(s.low, price)
            s.volume += qty
        s.trade_id += 1
        trade = Trade(
            symbol=symbol,
            price=price,
            quantity=qty,
            event_time=now_ms,
            trade_time=now_ms,
            trade_id=s.trade_id,
            buyer_is_maker=buyer_is_maker,
        )
        return SimStep(book, trade)

    def _size(self, s: SimulatedSymbol) -> Decimal:
        """A log-normal quantity worth about 100 USDT, at least one lot."""
        qty_f = math.exp(s.rng.gauss(0.0, 1.0)) * float(Decimal(100) / s.open)
        return max(s.lot, Decimal(repr(qty_f)).quantize(s.lot))

    def _quote(self, s: SimulatedSymbol, now_ms: int) -> DepthSnapshot:
        tick, unit, draw = s.tick, s.level_unit, s.rng.getrandbits
        spread = 1 + s.rng.randrange(MAX_SPREAD_TICKS)
        bid = max(tick, s.mid - (spread // 2) * tick)
        ask = bid + spread * tick
        bids: list[BookLevel] = []
        asks: list[BookLevel] = []
        for _ in range(BOOK_LEVELS):
            bits = draw(10)  # 4 bits per quantity, 1 per gap
            if bid > 0:
                bids.append((bid, unit * (1 + (bits & 15))))
            asks.append((ask, unit * (1 + (bits >> 4 & 15))))
            bid -= (1 + (bits >> 8 & 1)) * tick
            ask += (1 + (bits >> 9 & 1)) * tick
        s.update_id += 1
        s.book = DepthSnapshot(s.symbol, tuple(bids), tuple(asks), s.update_id, now_ms)
        return s.book

    def ticker(self, symbol: str, now_ms: int) -> Ticker24h:
        """The 24 h statistics of ``symbol`` as of its last step."""
        s = self._symbols[symbol]
        with localcontext(MONEY):
            change = s.price - s.open
            percent = (change / s.open * _HUNDRED).quantize(Decimal("0.001"))
        book = s.book
        return Ticker24h(
            symbol=symbol,
            event_time=now_ms,
            price_change=change,
            price_change_percent=percent,
            high=s.high,
            low=s.low,
            volume=s.volume,
            last_price=s.price,
            bid=book.bids[0][0] if book is not None and book.bids else None,
            ask=book.asks[0][0] if book is not None and book.asks else None,
        )
