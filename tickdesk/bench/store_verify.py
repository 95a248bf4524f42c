"""Benchmark: the start-up integrity check of a large store.

    python -m tickdesk.bench.store_verify [--orders 20000] [--dir PATH]

Builds a store the way the daemon writes one — every order a MARKET order
placed and filled through the pure order book and settled with
:meth:`Store.settle` (two snapshots of one order row, one fill, the account
and position rows, the counters), in batches of 1,000 per transaction to
build it quickly — then times :func:`engine.store_check.verify` (``PRAGMA
quick_check`` and decoding every record) three times. Point ``--dir`` at the
disk the daemon will use.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from engine.store import Store
from engine.store_check import verify
from engine.trading.book import OrderBook
from engine.trading.events import Outcome
from engine.trading.ledger import Ledger
from engine.trading.requests import parse_order


def build(path: str, orders: int) -> None:
    store = Store(path, "normal")
    book = OrderBook(max_open_orders=orders + 1)
    ledgers = {"bench": Ledger.single("bench", Decimal(10) ** 9)}
    store.add_accounts(ledgers.values())
    batch: list[Outcome] = []
    for i in range(orders):
        req = parse_order({"symbol": "BTCUSDT", "side": ("BUY", "SELL")[i % 2],
                           "type": "MARKET", "quantity": "0.001"})
        out = book.place("bench", req, now_ms=i, last_price=Decimal("86000.12"))
        for f in out.fills:
            ledgers[f.account].apply_fill(f.symbol, f.side, f.quantity, f.price)
        batch.append(out)
        if len(batch) == 1000 or i == orders - 1:
            merged = Outcome(tuple(e for o in batch for e in o.events),
                             tuple(f for o in batch for f in o.fills))
            store.settle(merged, ledgers, book.next_order_id, book.next_list_id)
            batch = []
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = str(Path(tmp) / "big.db")
        build(path, args.orders)
        size = os.path.getsize(path) / 1e6
        for _ in range(3):
            t0 = time.perf_counter()
            verify(path)
            took = time.perf_counter() - t0
            print(f"verify: {args.orders} orders and fills, {size:.1f} MB: {took:.3f} s")


if __name__ == "__main__":
    main()
