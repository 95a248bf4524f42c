"""Benchmark: the cost of one ``Store.settle`` commit (what every announced
order-book outcome pays before it is announced).

    python -m tickdesk.bench.store_settle [--n 1000] [--dir PATH]

Each settle is a realistic outcome: a MARKET order placed and filled (two
ORDER_UPDATE snapshots, one fill, one account and one position row, the id
counters) in one transaction. Reports the median and p99 wall time per
settle for ``synchronous=FULL`` (what tickdesk uses), ``NORMAL`` (for
comparison) and an in-memory database (``store.path = ""``). The database
lives in ``--dir`` (default: a temporary directory), so point it at the disk
the daemon will use.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from engine.store import Store
from engine.trading.book import OrderBook
from engine.trading.ledger import Ledger
from engine.trading.requests import parse_order


def run(path: str, n: int, synchronous: str | None) -> list[float]:
    store = Store(path)
    if synchronous is not None:
        store._db.execute(f"PRAGMA synchronous={synchronous}")
    book = OrderBook()
    ledgers = {"bench": Ledger.single("bench", Decimal(10) ** 9)}
    store.add_accounts(ledgers.values())
    sides = ("BUY", "SELL")
    times: list[float] = []
    for i in range(n):
        req = parse_order({"symbol": "BTCUSDT", "side": sides[i % 2], "type": "MARKET",
                           "quantity": "0.001"})
        out = book.place("bench", req, now_ms=i, last_price=Decimal("86000.12"))
        for f in out.fills:
            ledgers[f.account].apply_fill(f.symbol, f.side, f.quantity, f.price)
        t0 = time.perf_counter()
        store.settle(out, ledgers, book.next_order_id, book.next_list_id)
        times.append(time.perf_counter() - t0)
    store.close()
    return times


def report(name: str, times: list[float]) -> None:
    times = sorted(times)
    med = statistics.median(times) * 1e6
    p99 = times[int(len(times) * 0.99) - 1] * 1e6
    print(f"{name:28s} median {med:8.1f} us   p99 {p99:8.1f} us   ({len(times)} settles)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        report("file, synchronous=FULL", run(str(Path(tmp) / "full.db"), args.n, None))
        report("file, synchronous=NORMAL", run(str(Path(tmp) / "normal.db"), args.n, "NORMAL"))
    report("in memory (store.path='')",
           run("file:bench?mode=memory&cache=shared", args.n, None))


if __name__ == "__main__":
    main()
