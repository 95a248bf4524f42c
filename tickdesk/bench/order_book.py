"""Cost of ``OrderBook.on_trade`` with many open orders on one symbol.

Run: ``python -m tickdesk.bench.order_book [N]`` (default 1000). Places N open
orders (resting LIMITs on both sides, stops and, in the last case, trailing
stops) on one symbol, spread 100-600 price units from the last price, then
times ``on_trade`` for:

1. trades that touch no order (the common case; the price index skips all),
2. the same with ``full_scan=True`` (every order evaluated; the worst case),
3. a rising path where every tenth order is a trailing stop that moves
   (one AMENDED event per trailing order per trade).
"""

from __future__ import annotations

import sys
import time
from decimal import Decimal

from engine.messages import Trade
from engine.trading import OrderBook, OrderRequest, OrderType, Side

LAST = Decimal(40000)


def build(n: int, *, trailing_every: int = 0, full_scan: bool = False) -> OrderBook:
    book = OrderBook(max_open_orders=n, full_scan=full_scan)
    for i in range(n):
        off = Decimal(100 + i % 500)
        if trailing_every and i % trailing_every == 0:
            req = OrderRequest(
                "BTCUSDT", Side.SELL, OrderType.TRAILING_STOP, Decimal(1), trailing_delta=500
            )
        elif i % 3 == 0:
            req = OrderRequest("BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal(1), price=LAST - off)
        elif i % 3 == 1:
            req = OrderRequest("BTCUSDT", Side.SELL, OrderType.LIMIT, Decimal(1), price=LAST + off)
        else:
            req = OrderRequest(
                "BTCUSDT", Side.SELL, OrderType.STOP_LOSS, Decimal(1), stop_price=LAST - off
            )
        book.place("acct", req, now_ms=0, last_price=LAST)
    assert book.order_count("acct") == n
    return book


def per_trade_us(book: OrderBook, prices: list[Decimal], rounds: int) -> float:
    trades = [Trade("BTCUSDT", p, Decimal(1), 0, 0) for p in prices]
    start = time.perf_counter()
    for _ in range(rounds):
        for t in trades:
            book.on_trade(t, now_ms=0)
    return (time.perf_counter() - start) / (rounds * len(trades)) * 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    wiggle = [LAST + Decimal(k) for k in (-50, 30, -20, 60, 0)]
    rising = [LAST + Decimal(k) for k in range(1, 201)]
    quiet = per_trade_us(build(n), wiggle, 400)
    scan = per_trade_us(build(n, full_scan=True), wiggle, 40)
    moving = per_trade_us(build(n, trailing_every=10), rising, 1)
    print(f"{n} open orders on one symbol, us per on_trade:")
    print(f"  no order touched (indexed):          {quiet:9.1f}")
    print(f"  no order touched (full scan):        {scan:9.1f}")
    print(f"  {n // 10:4d} trailing stops AMENDED/trade: {moving:9.1f}")


if __name__ == "__main__":
    main()
