"""An independent kline reference: the recorded Binance XRP/ETH aggregate
trades (shared data file 5) and a plain group-by of them, written from the
documented rules (docs/klines.md) without the code under test."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from typing import Any

from tests.market.conftest import data_file

SYMBOL = "XRPETH"
TRADES_FILE = "freqtrade/XRP_OLD-trades.json.gz"

#: (price, quantity, trade time ms)
Tape = list[tuple[Decimal, Decimal, int]]
#: (openTime, closeTime, open, high, low, close, volume, quoteVolume, trades)
Row = tuple[Any, ...]


def recorded_trades() -> Tape:
    """The recorded aggregate trades, in id order (as Binance sent them)."""
    with gzip.open(data_file(TRADES_FILE)) as f:
        raw: list[dict[str, Any]] = json.load(f)
    raw.sort(key=lambda t: t["info"]["a"])
    return [(Decimal(t["info"]["p"]), Decimal(t["info"]["q"]), t["info"]["T"]) for t in raw]


def group_by(trades: Tape, length: int) -> list[Row]:
    """One row per UTC bucket of ``length`` ms holding a trade, oldest first."""
    buckets: dict[int, list[tuple[Decimal, Decimal]]] = {}
    for price, qty, ts in trades:
        buckets.setdefault(ts // length * length, []).append((price, qty))
    rows = []
    for start in sorted(buckets):
        group = buckets[start]
        prices = [p for p, _ in group]
        rows.append((start, start + length - 1, prices[0], max(prices), min(prices), prices[-1],
                     sum(q for _, q in group), sum(p * q for p, q in group), len(group)))
    return rows


def wire_row(row: Row) -> list[Any]:
    """A reference row as the KLINES message writes it (decimals as strings)."""
    o_t, c_t, o, h, low, c, v, qv, n = row
    return [o_t, *(format(d, "f") for d in (o, h, low, c, v)), c_t, format(qv, "f"), n]
