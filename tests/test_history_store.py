"""The account history in the store and in memory: paging, filters, bounds,
and the schema migration that added it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.money import Side
from engine.store import SCHEMA_VERSION, Store, migrate
from engine.trading.errors import RequestError
from engine.trading.events import FillIntent, Outcome
from engine.trading.history import (
    EquityQuery,
    EquitySample,
    FillRecord,
    FillsPage,
    FillsQuery,
    MemoryHistory,
    parse_equity_query,
    parse_fills_query,
    quote_asset,
)
from engine.trading.ledger import Ledger

T0 = 1_767_225_600_000


def _fill(i: int, symbol: str) -> FillIntent:
    return FillIntent(account="alice", order_id=100 + i, client_order_id=f"c{i}",
                      symbol=symbol, side=Side.BUY if i % 2 else Side.SELL,
                      quantity=Decimal("0.001") * i, price=Decimal(40000 + i),
                      fee=Decimal("0.04") * i, time=T0 + 1000 * i)


SYMBOLS = ("BTCUSDT", "LRCBTC", "BTCUSDT", "ETHUSDT", "BTCUSDT", "LRCBTC", "BTCUSDT",
           "BTCUSDT")
FILLS = [_fill(i, s) for i, s in enumerate(SYMBOLS, start=1)]
REALIZED = [Decimal(i) - 4 for i in range(1, len(FILLS) + 1)]


class Backend:
    """The same history written to the store or to a MemoryHistory."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.store = Store(str(tmp_path / "h.db")) if kind == "store" else None
        self.memory = MemoryHistory()
        ledger = Ledger("alice", {"USDT": Decimal(10000)})
        if self.store is not None:
            self.store.add_accounts([ledger])
        for fill, realized in zip(FILLS, REALIZED, strict=True):
            facts = (quote_asset(fill.symbol), realized)
            if self.store is not None:
                self.store.settle(Outcome(fills=(fill,)), {"alice": ledger}, 1, 1, [facts])
            else:
                self.memory.add_fill(FillRecord(
                    self.memory.take_fill_id(), fill.account, fill.order_id,
                    fill.client_order_id, fill.symbol, fill.side, fill.quantity, fill.price,
                    fill.fee, facts[0], facts[1], fill.time))

    def page(self, query: FillsQuery) -> FillsPage:
        if self.store is not None:
            return self.store.fill_page("alice", query)
        return self.memory.fills("alice", query)


@pytest.fixture(params=["store", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = Backend(request.param, tmp_path)
    yield b
    if b.store is not None:
        b.store.close()


def _all(backend: Backend, **query: object) -> list[FillRecord]:
    """Page through everything with ``before``, 3 at a time."""
    seen: list[FillRecord] = []
    before: int | None = None
    for _ in range(100):
        page = backend.page(FillsQuery(before=before, limit=3, **query))  # type: ignore[arg-type]
        assert len(page.fills) <= 3
        seen.extend(page.fills)
        before = page.next_before
        if before is None:
            return seen
    raise AssertionError("paging did not end")


def test_pages_cover_every_fill_once_newest_first(backend: Backend) -> None:
    seen = _all(backend)
    assert [f.order_id for f in seen] == [100 + i for i in range(len(FILLS), 0, -1)]
    assert len({f.fill_id for f in seen}) == len(FILLS)
    newest = seen[0]
    assert (newest.symbol, newest.side, newest.quantity, newest.price, newest.fee) == (
        "BTCUSDT", Side.SELL, Decimal("0.008"), Decimal(40008), Decimal("0.32"))
    assert newest.realized_pnl == Decimal(4) and newest.fee_asset == "USDT"
    assert newest.time == T0 + 8000 and newest.client_order_id == "c8"


def test_a_page_as_long_as_the_rest_is_the_last(backend: Backend) -> None:
    page = backend.page(FillsQuery(limit=len(FILLS)))
    assert len(page.fills) == len(FILLS) and page.next_before is None
    page = backend.page(FillsQuery(limit=len(FILLS) - 1))
    assert page.next_before == page.fills[-1].fill_id


def test_symbol_and_since_filters(backend: Backend) -> None:
    lrc = _all(backend, symbol="LRCBTC")
    assert [f.order_id for f in lrc] == [106, 102]
    assert {f.fee_asset for f in lrc} == {"BTC"}  # the quote asset, not USDT
    since = _all(backend, since=T0 + 5000)
    assert [f.order_id for f in since] == [108, 107, 106, 105]
    assert _all(backend, symbol="BTCUSDT", since=T0 + 5000) == [
        f for f in since if f.symbol == "BTCUSDT"]
    assert backend.page(FillsQuery(symbol="XRPUSDT")) == FillsPage((), None)


def test_both_backends_answer_alike(tmp_path: Path) -> None:
    store = Backend("store", tmp_path)
    memory = Backend("memory", tmp_path)
    try:
        for query in (FillsQuery(), FillsQuery(limit=2, before=5), FillsQuery(symbol="LRCBTC"),
                      FillsQuery(since=T0 + 3000, limit=1)):
            assert store.page(query) == memory.page(query)
    finally:
        assert store.store is not None
        store.store.close()


def test_memory_fills_are_bounded() -> None:
    memory = MemoryHistory(max_fills=3)
    for fill in FILLS:
        memory.add_fill(FillRecord(memory.take_fill_id(), "alice", fill.order_id, "c",
                                   fill.symbol, fill.side, fill.quantity, fill.price, fill.fee,
                                   "USDT", Decimal(0), fill.time))
    page = memory.fills("alice", FillsQuery())
    assert [f.fill_id for f in page.fills] == [8, 7, 6] and page.next_before is None


def test_the_store_bounds_fills_when_asked(tmp_path: Path) -> None:
    with Store(str(tmp_path / "b.db"), fill_bound=3) as store:
        ledger = Ledger("alice", {"USDT": Decimal(10000)})
        store.add_accounts([ledger])
        for fill in FILLS:
            store.settle(Outcome(fills=(fill,)), {"alice": ledger}, 1, 1)
        assert [f.order_id for f in store.fills("alice")] == [106, 107, 108]
    with Store(str(tmp_path / "c.db"), fill_bound=20) as store:
        ledger = Ledger("alice", {"USDT": Decimal(10000)})
        store.add_accounts([ledger])
        counts = []
        for i in range(100):
            store.settle(Outcome(fills=(_fill(i + 1, "BTCUSDT"),)), {"alice": ledger}, 1, 1)
            counts.append(len(store.fills("alice")))
        assert max(counts) <= 22 and counts[-1] >= 20  # trimmed every 2 fills, to 20
        assert [f.order_id for f in store.fills("alice")][-1] == 200


@pytest.mark.parametrize("kind", ["store", "memory"])
def test_equity_samples_keep_the_latest(kind: str, tmp_path: Path) -> None:
    store = Store(str(tmp_path / "e.db")) if kind == "store" else None
    memory = MemoryHistory(max_samples=5)
    try:
        for i in range(8):
            sample = EquitySample(T0 + 60_000 * i, Decimal(10000) + i)
            if store is not None:
                store.add_equity_samples({"alice": sample, "bob": sample}, keep=5)
            else:
                memory.add_sample("alice", sample)

        def read(query: EquityQuery) -> list[EquitySample]:
            if store is not None:
                return store.equity_samples("alice", query)
            return memory.samples("alice", query)

        kept = read(EquityQuery())
        assert [s.equity for s in kept] == [Decimal(10003 + i) for i in range(5)]  # oldest first
        assert [s.time for s in read(EquityQuery(limit=2))] == [T0 + 360_000, T0 + 420_000]
        assert [s.time for s in read(EquityQuery(since=T0 + 400_000))] == [T0 + 420_000]
        if store is not None:
            assert len(store.equity_samples("bob", EquityQuery())) == 5
    finally:
        if store is not None:
            store.close()


def test_migrating_a_v2_database_keeps_its_fills(tmp_path: Path) -> None:
    db = str(tmp_path / "v2.db")
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, target=2) == 0
    conn.execute("INSERT INTO accounts VALUES ('alice', '10000', '0', '0.04')")
    conn.execute("INSERT INTO fills (account, order_id, client_order_id, symbol, side, "
                 "quantity, price, fee, time) VALUES ('alice', 1, 'td-1', 'BTCUSDT', 'BUY', "
                 "'0.001', '40000', '0.04', ?)", (T0,))
    conn.close()
    with Store(db) as store:
        assert (store.migrated_from, store.schema_version) == (2, SCHEMA_VERSION)
        ledger = store.load().ledgers["alice"]
        store.settle(Outcome(fills=(FILLS[1],)), {"alice": ledger}, 3, 1,
                     [("BTC", Decimal("1.5"))])
        old, new = reversed(store.fill_page("alice", FillsQuery()).fills)
        assert (old.order_id, old.quantity, old.fee) == (1, Decimal("0.001"), Decimal("0.04"))
        assert old.fee_asset is None and old.realized_pnl is None  # not known before v4
        assert (new.fee_asset, new.realized_pnl) == ("BTC", Decimal("1.5"))
        store.add_equity_samples({"alice": EquitySample(T0, Decimal(1))})
        assert store.equity_samples("alice", EquityQuery()) == [EquitySample(T0, Decimal(1))]
    with Store(db) as again:  # reopening migrates nothing
        assert again.migrated_from == SCHEMA_VERSION


PARSE_ERRORS: list[tuple[Callable[[dict[str, object]], object], dict[str, object], str]] = [
    (parse_fills_query, {"limit": 0}, "limit"),
    (parse_fills_query, {"limit": 1001}, "limit"),
    (parse_fills_query, {"limit": "10"}, "limit"),
    (parse_fills_query, {"limit": True}, "limit"),
    (parse_fills_query, {"since": -1}, "since"),
    (parse_fills_query, {"since": 1.5}, "since"),
    (parse_fills_query, {"before": 0}, "before"),
    (parse_fills_query, {"symbol": 7}, "symbol"),
    (parse_equity_query, {"limit": 10081}, "limit"),
    (parse_equity_query, {"since": "yesterday"}, "since"),
]


@pytest.mark.parametrize(("parse", "body", "field"), PARSE_ERRORS)
def test_bad_queries_name_the_field(parse: Callable[[dict[str, object]], object],
                                    body: dict[str, object], field: str) -> None:
    with pytest.raises(RequestError) as info:
        parse(body)
    assert str(info.value).startswith(field)


def test_query_defaults_and_values() -> None:
    assert parse_fills_query({}) == FillsQuery(None, None, None, 100)
    assert parse_fills_query({"symbol": "btcusdt", "since": 5, "before": 9, "limit": 1000}) == (
        FillsQuery("BTCUSDT", 5, 9, 1000))
    assert parse_equity_query({}) == EquityQuery(None, 1440)
    assert parse_equity_query({"limit": 10080, "since": 0}) == EquityQuery(0, 10080)


@pytest.mark.parametrize(("symbol", "asset"), [("BTCUSDT", "USDT"), ("LRCBTC", "BTC"),
                                               ("NKNUSDT", "USDT"), ("ETHFDUSD", "FDUSD"),
                                               ("XYZABC", None), ("USDT", None)])
def test_quote_asset(symbol: str, asset: str | None) -> None:
    assert quote_asset(symbol) == asset


@settings(max_examples=60)
@given(
    symbols=st.lists(st.sampled_from(["BTCUSDT", "LRCBTC", "ETHUSDT"]), max_size=30),
    limit=st.integers(1, 7),
    symbol=st.sampled_from([None, "BTCUSDT", "LRCBTC"]),
    since_index=st.integers(0, 30),
)
def test_paging_any_history_sees_each_matching_fill_once(
    symbols: list[str], limit: int, symbol: str | None, since_index: int
) -> None:
    """Store and memory agree page by page, and the pages together are exactly
    the matching fills, newest first (the reference is a plain filter here)."""
    fills = [_fill(i, s) for i, s in enumerate(symbols, start=1)]
    since = T0 + 1000 * since_index
    memory = MemoryHistory()
    with Store(":memory:") as store:
        ledger = Ledger("alice", {"USDT": Decimal(10000)})
        store.add_accounts([ledger])
        for fill in fills:
            store.settle(Outcome(fills=(fill,)), {"alice": ledger}, 1, 1, [("X", Decimal(1))])
            memory.add_fill(FillRecord(memory.take_fill_id(), "alice", fill.order_id,
                                       fill.client_order_id, fill.symbol, fill.side,
                                       fill.quantity, fill.price, fill.fee, "X", Decimal(1),
                                       fill.time))
        expected = [f.order_id for f in reversed(fills)
                    if (symbol is None or f.symbol == symbol) and f.time >= since]
        seen: list[int] = []
        before: int | None = None
        for _ in range(len(fills) + 2):
            query = FillsQuery(symbol=symbol, since=since, before=before, limit=limit)
            page = store.fill_page("alice", query)
            assert page == memory.fills("alice", query)
            seen.extend(f.order_id for f in page.fills)
            before = page.next_before
            if before is None:
                break
        assert seen == expected
