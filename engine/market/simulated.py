"""The simulated market: a seeded, deterministic random walk per symbol.

Pure core: the caller supplies the time of each step (epoch ms). For a given
``seed`` and symbol list the sequence of prices and quantities is always the
same, whatever the timing, so tests and demos are reproducible.

Model: each step moves the price by a Gaussian log-return with a per-step
volatility of ``volatility_bps`` basis points, rounded to the symbol's tick
size and never below one tick; quantities are log-normal, rounded to the lot
size. 24 h statistics start from the start price as the open and track
high, low and volume from the first step (a simulated day starts when the
engine starts). Bid and ask sit one tick around the last price.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass
from decimal import Decimal, localcontext

from engine.messages import Ticker24h, Trade
from engine.money import MONEY

__all__ = ["START_PRICES", "SimulatedMarket", "SimulatedSymbol"]

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


def _start_for(symbol: str) -> tuple[Decimal, Decimal]:
    known = START_PRICES.get(symbol)
    if known:
        return Decimal(known[0]), Decimal(known[1])
    # An unknown symbol gets a stable made-up price between 1 and 1000.
    h = zlib.crc32(symbol.encode())
    return Decimal(1 + h % 1000).quantize(Decimal("0.01")), Decimal("0.01")


class SimulatedMarket:
    """Deterministic random walks for a set of symbols."""

    def __init__(self, symbols: tuple[str, ...], seed: int, volatility_bps: float = 5.0) -> None:
        self._sigma = volatility_bps / 10000.0
        self._symbols: dict[str, SimulatedSymbol] = {}
        for sym in symbols:
            self.add_symbol(sym, seed)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._symbols)

    def add_symbol(self, symbol: str, seed: int) -> None:
        if symbol in self._symbols:
            return
        start, tick = _start_for(symbol)
        rng = random.Random(seed * 1_000_003 + zlib.crc32(symbol.encode()))
        lot = Decimal("0.00001") if start > 1000 else Decimal("0.001")
        self._symbols[symbol] = SimulatedSymbol(
            symbol, rng, tick, lot, start, start, start, start, Decimal(0)
        )

    def step(self, symbol: str, now_ms: int) -> Trade:
        """The next trade of ``symbol`` at time ``now_ms``."""
        s = self._symbols[symbol]
        r = s.rng.gauss(0.0, self._sigma)
        with localcontext(MONEY):
            moved = s.price * Decimal(repr(math.exp(r)))
            price = max(s.tick, moved.quantize(s.tick))
            qty_f = math.exp(s.rng.gauss(0.0, 1.0)) * float(Decimal(100) / s.open)
            qty = max(s.lot, Decimal(repr(qty_f)).quantize(s.lot))
            s.price = price
            s.high = max(s.high, price)
            s.low = min(s.low, price)
            s.volume += qty
        s.trade_id += 1
        return Trade(
            symbol=symbol,
            price=price,
            quantity=qty,
            event_time=now_ms,
            trade_time=now_ms,
            trade_id=s.trade_id,
            buyer_is_maker=r < 0,
        )

    def ticker(self, symbol: str, now_ms: int) -> Ticker24h:
        """The 24 h statistics of ``symbol`` as of its last step."""
        s = self._symbols[symbol]
        with localcontext(MONEY):
            change = s.price - s.open
            percent = (change / s.open * _HUNDRED).quantize(Decimal("0.001"))
        return Ticker24h(
            symbol=symbol,
            event_time=now_ms,
            price_change=change,
            price_change_percent=percent,
            high=s.high,
            low=s.low,
            volume=s.volume,
            last_price=s.price,
            bid=s.price - s.tick,
            ask=s.price + s.tick,
        )
