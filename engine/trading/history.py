"""The account's history: its fills and its equity samples, with paging.

Pure core: no threads, sockets, clocks or pykka. It defines

* :class:`FillRecord` (one fill as history shows it, with the realized P&L the
  ledger computed for it) and :class:`EquitySample`;
* the queries of ``get_fills`` / ``get_equity_history`` (:class:`FillsQuery`,
  :class:`EquityQuery`) and their parsers, which raise
  :class:`~engine.trading.errors.RequestError` naming the field;
* :class:`MemoryHistory`, the bounded history an engine without a store keeps
  (owned by one caller, the PortfolioActor); :class:`~engine.store.Store`
  answers the same queries from SQLite with the same semantics.

Paging (docs/protocol.md, ``get_fills``): fills come **newest first** (highest
fill id first). A page holds at most ``limit`` fills; ``nextBefore`` is the id
to pass as ``before`` for the next (older) page, or None when there is none.
Fill ids increase with every fill and are never reused, so paging with
``before`` never repeats or skips a fill, even while new fills arrive.
Equity samples come oldest first (a chart's order): the latest ``limit``
samples at or after ``since``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.money import Side
from engine.trading.errors import RequestError
from engine.trading.validation import symbol_field

__all__ = [
    "EQUITY_LIMIT_DEFAULT",
    "EQUITY_LIMIT_MAX",
    "EQUITY_SAMPLES_PER_ACCOUNT",
    "FILLS_LIMIT_DEFAULT",
    "FILLS_LIMIT_MAX",
    "MEMORY_FILLS_PER_ACCOUNT",
    "QUOTE_ASSETS",
    "EquityQuery",
    "EquitySample",
    "FillRecord",
    "FillsPage",
    "FillsQuery",
    "MemoryHistory",
    "page_of",
    "parse_equity_query",
    "parse_fills_query",
    "quote_asset",
]

#: ``get_fills`` page size: the default and the most one page may hold.
FILLS_LIMIT_DEFAULT = 100
FILLS_LIMIT_MAX = 1000
#: Fills an engine without a store keeps per account (the oldest are dropped).
MEMORY_FILLS_PER_ACCOUNT = 10_000
#: Equity samples kept per account, in the store or in memory: one week of
#: one-minute samples. When a sample would exceed it, the oldest is dropped.
EQUITY_SAMPLES_PER_ACCOUNT = 10_080
#: ``get_equity_history``: the default (one day of minutes) and the maximum.
EQUITY_LIMIT_DEFAULT = 1440
EQUITY_LIMIT_MAX = EQUITY_SAMPLES_PER_ACCOUNT

#: Quote assets recognised at the end of a symbol, longest first, for the fee
#: asset of a fill until the symbols' exchange info gives each symbol's quote
#: asset (the fee is charged in the quote asset).
QUOTE_ASSETS: tuple[str, ...] = (
    "FDUSD", "USDT", "USDC", "TUSD", "BUSD", "EURI", "BTC", "ETH", "BNB", "EUR", "TRY",
    "BRL", "JPY",
)


def quote_asset(symbol: str) -> str | None:
    """The quote asset of ``symbol`` (``LRCBTC`` → ``BTC``), or None when its
    end is not a known quote asset."""
    for asset in QUOTE_ASSETS:
        if symbol.endswith(asset) and len(symbol) > len(asset):
            return asset
    return None


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One fill as the history shows it. ``fill_id`` is unique and increasing
    per store (per engine without one). ``fee_asset`` and ``realized_pnl`` are
    None for fills recorded before the history kept them (schema < 3)."""

    fill_id: int
    account: str
    order_id: int
    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str | None
    realized_pnl: Decimal | None
    time: int


@dataclass(frozen=True, slots=True)
class EquitySample:
    """The account's equity at ``time`` (epoch ms)."""

    time: int
    equity: Decimal


@dataclass(frozen=True, slots=True)
class FillsQuery:
    """``get_fills``: fills of ``symbol`` (all if None) with ``time >= since``
    and ``fill_id < before``, newest first, at most ``limit``."""

    symbol: str | None = None
    since: int | None = None
    before: int | None = None
    limit: int = FILLS_LIMIT_DEFAULT


@dataclass(frozen=True, slots=True)
class EquityQuery:
    """``get_equity_history``: the latest ``limit`` samples with ``time >= since``."""

    since: int | None = None
    limit: int = EQUITY_LIMIT_DEFAULT


@dataclass(frozen=True, slots=True)
class FillsPage:
    """One page of fills (newest first) and the ``before`` of the next page."""

    fills: tuple[FillRecord, ...]
    next_before: int | None


def _json_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(name, "must be a JSON integer")
    if not low <= value <= high:
        raise RequestError(name, f"must be between {low} and {high}")
    return value


_MAX_MS = 2**53 - 1


def parse_fills_query(body: Mapping[str, Any]) -> FillsQuery:
    """``{symbol?, since?, before?, limit?}``: ``since`` epoch ms >= 0,
    ``before`` a fill id >= 1, ``limit`` 1..:data:`FILLS_LIMIT_MAX`."""
    symbol = body.get("symbol")
    since = body.get("since")
    before = body.get("before")
    limit = body.get("limit")
    return FillsQuery(
        symbol=None if symbol is None else symbol_field("symbol", symbol),
        since=None if since is None else _json_int("since", since, 0, _MAX_MS),
        before=None if before is None else _json_int("before", before, 1, _MAX_MS),
        limit=(FILLS_LIMIT_DEFAULT if limit is None
               else _json_int("limit", limit, 1, FILLS_LIMIT_MAX)),
    )


def parse_equity_query(body: Mapping[str, Any]) -> EquityQuery:
    """``{since?, limit?}``: ``since`` epoch ms >= 0, ``limit`` 1..:data:`EQUITY_LIMIT_MAX`."""
    since = body.get("since")
    limit = body.get("limit")
    return EquityQuery(
        since=None if since is None else _json_int("since", since, 0, _MAX_MS),
        limit=(EQUITY_LIMIT_DEFAULT if limit is None
               else _json_int("limit", limit, 1, EQUITY_LIMIT_MAX)),
    )


def page_of(newest_first: Iterable[FillRecord], limit: int) -> FillsPage:
    """The first ``limit`` of ``newest_first`` (which may hold one more, to
    know whether an older page exists)."""
    taken: list[FillRecord] = []
    more = False
    for record in newest_first:
        if len(taken) == limit:
            more = True
            break
        taken.append(record)
    return FillsPage(tuple(taken), taken[-1].fill_id if more and taken else None)


class MemoryHistory:
    """Fills and equity samples per account, in memory, bounded: at most
    ``max_fills`` fills and ``max_samples`` samples per account, the oldest
    dropped first. Not thread-safe: one owner (the PortfolioActor)."""

    def __init__(self, max_fills: int = MEMORY_FILLS_PER_ACCOUNT,
                 max_samples: int = EQUITY_SAMPLES_PER_ACCOUNT) -> None:
        self._max_fills = max_fills
        self._max_samples = max_samples
        self._fills: dict[str, deque[FillRecord]] = {}
        self._samples: dict[str, deque[EquitySample]] = {}
        self._next_id = 1

    def take_fill_id(self) -> int:
        fid = self._next_id
        self._next_id += 1
        return fid

    def add_fill(self, record: FillRecord) -> None:
        kept = self._fills.get(record.account)
        if kept is None:
            kept = self._fills[record.account] = deque(maxlen=self._max_fills)
        kept.append(record)

    def fills(self, account: str, query: FillsQuery) -> FillsPage:
        def matching() -> Iterable[FillRecord]:
            for record in reversed(self._fills.get(account, ())):
                if query.before is not None and record.fill_id >= query.before:
                    continue
                if query.since is not None and record.time < query.since:
                    continue
                if query.symbol is None or record.symbol == query.symbol:
                    yield record

        return page_of(matching(), query.limit)

    def add_sample(self, account: str, sample: EquitySample) -> None:
        kept = self._samples.get(account)
        if kept is None:
            kept = self._samples[account] = deque(maxlen=self._max_samples)
        kept.append(sample)

    def samples(self, account: str, query: EquityQuery) -> list[EquitySample]:
        kept = self._samples.get(account, ())
        chosen = [s for s in kept if query.since is None or s.time >= query.since]
        return chosen[-query.limit:]
