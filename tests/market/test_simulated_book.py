"""The simulated market quotes a book and never prints a trade outside its own spread.

The property, exactly: for every step k of every symbol, with B_k the book the
step quotes (published by the feed before the step's trade T_k):

* B_k is a valid book: bids strictly descending, asks strictly ascending, every
  price a positive multiple of the tick, every quantity a positive multiple of
  the lot, best bid < best ask, at most BOOK_LEVELS levels a side;
* T_k.price is B_k's best bid (a taker sell, ``buyer_is_maker``) or its best
  ask (a taker buy), so best bid <= T_k.price <= best ask;
* T_k.quantity is at most the quantity of that level.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.market.simulated import BOOK_LEVELS, MAX_SPREAD_TICKS, START_PRICES, SimulatedMarket

SYMBOLS = ("BTCUSDT", "XRPUSDT", "DOGEUSDT", "ZZZUSDT")


def _multiple(value: Decimal, unit: Decimal) -> bool:
    return value > 0 and value % unit == 0


def _tick(symbol: str) -> Decimal:
    return Decimal(START_PRICES[symbol][1]) if symbol in START_PRICES else Decimal("0.01")


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31), volatility=st.sampled_from([1.0, 5.0, 50.0, 500.0]))
def test_every_trade_is_inside_the_book_quoted_before_it(seed: int, volatility: float) -> None:
    market = SimulatedMarket(SYMBOLS, seed, volatility_bps=volatility)
    sides = {True: 0, False: 0}
    for k in range(250):
        for sym in SYMBOLS:
            step = market.step(sym, 1_000 + k)
            book, trade = step.book, step.trade
            tick = _tick(sym)
            bids, asks = book.bids, book.asks
            assert 1 <= len(bids) <= BOOK_LEVELS and len(asks) == BOOK_LEVELS
            assert all(a[0] > b[0] for a, b in itertools.pairwise(bids))
            assert all(a[0] < b[0] for a, b in itertools.pairwise(asks))
            assert all(_multiple(p, tick) and q > 0 for p, q in bids + asks)
            best_bid, best_ask = bids[0], asks[0]
            assert tick <= best_ask[0] - best_bid[0] <= MAX_SPREAD_TICKS * tick
            assert best_bid[0] <= trade.price <= best_ask[0]
            level = best_bid if trade.buyer_is_maker else best_ask
            assert trade.price == level[0] and 0 < trade.quantity <= level[1]
            assert trade.symbol == book.symbol == sym and trade.event_time == book.event_time
            sides[bool(trade.buyer_is_maker)] += 1
    assert sides[True] > 0 and sides[False] > 0  # both sides trade


def test_the_same_seed_gives_the_same_books_and_trades() -> None:
    a, b = SimulatedMarket(SYMBOLS, 7), SimulatedMarket(SYMBOLS, 7)
    for k in range(50):
        for sym in SYMBOLS:
            assert a.step(sym, k) == b.step(sym, k + 0)


def test_ticker_bid_ask_is_the_last_book() -> None:
    market = SimulatedMarket(("BTCUSDT",), 3)
    step = market.step("BTCUSDT", 5)
    ticker = market.ticker("BTCUSDT", 6)
    assert (ticker.bid, ticker.ask) == (step.book.bids[0][0], step.book.asks[0][0])
    assert ticker.last_price == step.trade.price
