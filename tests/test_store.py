"""The SQLite store: round trip, migrations, atomicity (also under a real crash)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import TradingConfig
from engine.messages import Trade
from engine.money import Side
from engine.protocol.enums import ExecutionType
from engine.store import SCHEMA_VERSION, Store, StoreError, migrate
from engine.trading.book import OrderBook
from engine.trading.events import Outcome
from engine.trading.ledger import Ledger
from engine.trading.order import Order, OrderStatus
from engine.trading.requests import parse_oco, parse_order
from engine.trading.risk import risk_plan
from engine.trading.settlement import Staged, settle_outcome

T0 = 1_700_000_000_000
ROOT = Path(__file__).resolve().parents[1]
TRADING = TradingConfig(max_leverage=Decimal(3))


class Rig:
    """A book, its ledgers and a store, settled the way the actors do it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.book = OrderBook()
        self.ledgers = {"alice": Ledger.single("alice", Decimal(10000)),
                        "bob": Ledger.single("bob", Decimal(5000))}
        store.add_accounts(self.ledgers.values())
        self.last: dict[str, Decimal] = {}
        self.now = T0
        self.staged: dict[int, Staged] = {}

    def risk(self, orders: Sequence[Order], reference: Decimal) -> str | None:
        plan, reason = risk_plan(self.ledgers[orders[0].account], self.last, TRADING, orders,
                                 reference)
        if reason is None:
            ids = tuple(o.order_id for o in orders)
            self.staged[min(ids)] = Staged(orders[0].account, ids, plan)
        return reason

    def settle(self, outcome: Outcome) -> Outcome:
        settle_outcome(self.ledgers, outcome, self.staged, self.last, TRADING)
        self.staged = {}
        self.store.settle(outcome, self.ledgers, self.book.next_order_id, self.book.next_list_id)
        return outcome

    def place(self, account: str, **body: Any) -> Outcome:
        self.now += 1
        req = parse_order(body)
        return self.settle(self.book.place(account, req, now_ms=self.now,
                                           last_price=self.last.get(req.symbol), risk=self.risk))

    def oco(self, account: str, **body: Any) -> Outcome:
        self.now += 1
        req = parse_oco(body)
        return self.settle(self.book.place_oco(account, req, now_ms=self.now,
                                               last_price=self.last.get(req.symbol),
                                               risk=self.risk))

    def trade(self, symbol: str, price: str) -> Outcome:
        self.now += 1
        self.last[symbol] = Decimal(price)
        trade = Trade(symbol, Decimal(price), Decimal(1), self.now, self.now)
        return self.settle(self.book.on_trade(trade, now_ms=self.now))


def _ledger_state(ledger: Ledger) -> tuple[Any, ...]:
    positions = sorted((p.symbol, str(p.quantity), str(p.cost), str(p.realized_pnl))
                       for p in ledger.positions.values())
    held = sorted(str(r.to_record()) for r in ledger.reservations.values())
    return (ledger.name, sorted(ledger.starting.items()),
            sorted((a, ledger.balance_of(a)) for a in ledger.assets()), positions, held)


def _busy_day(rig: Rig) -> None:
    rig.trade("BTCUSDT", "40000")
    rig.trade("ETHUSDT", "2000.123456789")
    rig.place("alice", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.5")
    rig.place("alice", symbol="BTCUSDT", side="SELL", type="LIMIT", quantity="0.2",
              price="45000", clientOrderId="tp-1")
    rig.place("alice", symbol="BTCUSDT", side="SELL", type="STOP_LOSS", quantity="0.3",
              trailingDelta=700)
    rig.place("bob", symbol="ETHUSDT", side="SELL", type="MARKET", quantity="0.00012345")
    rig.oco("bob", symbol="ETHUSDT", side="BUY", quantity="0.00012345",
            above={"type": "STOP_LOSS", "stopPrice": "2100"},
            below={"type": "LIMIT_MAKER", "price": "1900"})
    rig.place("alice", symbol="BTCUSDT", side="BUY", type="LIMIT_MAKER", quantity="1",
              price="41000")  # REJECTED: would match at once
    amended = rig.trade("BTCUSDT", "42000")  # the trailing stop moves up
    assert [e.execution_type for e in amended.order_events()] == [ExecutionType.AMENDED]


def test_round_trip(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    with Store(db) as store:
        rig = Rig(store)
        _busy_day(rig)
        fills_before = store.fills()
    with Store(db) as store:
        state = store.load()
        assert store.fills() == fills_before
    assert {n: _ledger_state(ledg) for n, ledg in state.ledgers.items()} == {
        n: _ledger_state(ledg) for n, ledg in rig.ledgers.items()}
    assert list(state.orders) == rig.book.all_orders()
    assert (state.next_order_id, state.next_list_id) == (rig.book.next_order_id,
                                                        rig.book.next_list_id)
    assert [lst.list_id for lst in state.lists] == [1]
    assert len(fills_before) == 2 and fills_before[1].quantity == Decimal("0.00012345")
    assert fills_before[1].price == Decimal("2000.123456789")
    # The trailing state is there, and the rejected order is not stored.
    trailing = next(o for o in state.orders if o.trailing_delta is not None)
    assert trailing.trailing_extreme == Decimal(42000)
    assert trailing.current_stop_price == Decimal("39060.0000")
    assert all(o.status is not OrderStatus.REJECTED for o in state.orders)


def test_restored_book_keeps_working(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    with Store(db) as store:
        rig = Rig(store)
        _busy_day(rig)
    with Store(db) as store:
        state = store.load()
        rig2 = Rig.__new__(Rig)
        rig2.store, rig2.ledgers, rig2.now = store, state.ledgers, rig.now
        rig2.staged = {}
        rig2.last = dict(rig.last)
        rig2.book = OrderBook.restore(state.orders, state.next_order_id, state.next_list_id)
        out = rig2.trade("BTCUSDT", "39000")  # below 39060: the trailing stop fires
        assert [e.execution_type for e in out.order_events()] == [
            ExecutionType.TRIGGERED, ExecutionType.TRADE]
        new = rig2.place("alice", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.1")
        assert new.order_events()[0].order.order_id == rig.book.next_order_id
        after = store.load()
    assert after.ledgers["alice"].position("BTCUSDT").quantity == Decimal("0.3")
    assert len(after.orders) == len(state.orders) + 1


def test_pragmas_and_memory(tmp_path: Path) -> None:
    with Store(str(tmp_path / "t.db")) as store:
        assert store.journal_mode == "wal"
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store.schema_version == SCHEMA_VERSION
    with Store(":memory:") as mem:
        rig = Rig(mem)
        _busy_day(rig)
        assert len(mem.load().orders) == len(rig.book.all_orders())


def test_migrates_an_old_database(tmp_path: Path) -> None:
    db = str(tmp_path / "old.db")
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, target=1) == 0
    conn.execute("INSERT INTO accounts VALUES ('alice', '10000', '12.5', '0.75')")
    conn.execute("INSERT INTO positions VALUES ('alice', 'BTCUSDT', '-0.1', '40000', '12.5')")
    conn.execute("INSERT INTO counters VALUES ('next_order_id', 7), ('next_list_id', 3)")
    conn.close()
    with Store(db) as store:
        assert store.migrated_from == 1
        assert store.schema_version == SCHEMA_VERSION == 5
        state = store.load()
        tables = {r[0] for r in store._db.execute("SELECT name FROM sqlite_master")}
    assert "order_lists" in tables
    alice = state.ledgers["alice"]
    assert alice.balance == Decimal("10011.75")
    assert alice.position("BTCUSDT").quantity == Decimal("-0.1")
    assert (state.next_order_id, state.next_list_id) == (7, 3)


def test_migrates_a_v2_database_with_data_to_per_asset_balances(tmp_path: Path) -> None:
    """v2 -> v3: the one balance becomes the USDT balance, each position gets its
    exact cost (quantity x entry), open orders survive, and the account keeps
    trading exactly from there."""
    db = str(tmp_path / "v2.db")
    with Store(db) as store:  # a v3 store, only to get a real order record
        rig = Rig(store)
        rig.trade("BTCUSDT", "40000")
        rig.place("alice", symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="0.1",
                  price="39000")
        record = store._db.execute("SELECT record FROM orders").fetchone()[0]
    Path(db).unlink()
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, target=2) == 0
    conn.execute("INSERT INTO accounts VALUES ('alice', '10000', '12.5', '0.75')")
    conn.execute("INSERT INTO positions VALUES ('alice', 'ETHUSDT', '3', '2000.123456789', "
                 "'12.5')")
    conn.execute("INSERT INTO orders VALUES (1, 'alice', NULL, 'NEW', ?)", (record,))
    conn.execute("INSERT INTO counters VALUES ('next_order_id', 2), ('next_list_id', 1)")
    conn.close()
    with Store(db) as store:
        assert (store.migrated_from, store.schema_version) == (2, SCHEMA_VERSION)
        state = store.load()
    alice = state.ledgers["alice"]
    assert alice.starting == {"USDT": Decimal(10000)}
    assert alice.balance_of("USDT") == Decimal("10011.75")
    eth = alice.position("ETHUSDT")
    assert (eth.quantity, eth.cost) == (Decimal(3), Decimal("6000.370370367"))
    assert eth.entry_price == Decimal("2000.123456789")
    assert [o.order_id for o in state.orders] == [1] and state.orders[0].is_open
    assert alice.reservations == {}  # a v2 store reserved nothing
    # Selling it all at 2100 realizes exactly 3 x (2100 - 2000.123456789).
    alice.fee_bps = Decimal(0)
    result = alice.apply_fill("ETHUSDT", Side.SELL, Decimal(3), Decimal(2100))
    assert result.realized_pnl == Decimal("299.629629633")


def test_refuses_a_newer_database(tmp_path: Path) -> None:
    db = str(tmp_path / "new.db")
    Store(db).close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store(db)


def _snapshot(db: str) -> tuple[Any, ...]:
    with Store(db) as store:
        state = store.load()
        return (
            {n: _ledger_state(ledg) for n, ledg in state.ledgers.items()},
            state.orders, state.lists, state.next_order_id, state.next_list_id, store.fills(),
        )


def test_a_failing_settle_leaves_nothing(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    db = str(tmp_path / "t.db")
    with Store(db) as store:
        rig = Rig(store)
        rig.trade("BTCUSDT", "40000")
        rig.place("alice", symbol="BTCUSDT", side="SELL", type="LIMIT", quantity="1",
                  price="41000")
    before = _snapshot(db)
    with Store(db) as store:
        rig.store = store
        # Orders and fills are written, then the account write fails.
        def boom(*_a: Any) -> None:
            raise RuntimeError("disk on fire")
        monkeypatch.setattr(store, "_write_account", boom)
        with pytest.raises(RuntimeError):
            rig.place("alice", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.1")
        monkeypatch.undo()
        # A ledger missing from ledgers_after fails mid-transaction too.
        out = rig.book.place("bob", parse_order({"symbol": "BTCUSDT", "side": "BUY",
                                                 "type": "MARKET", "quantity": "0.1"}),
                             now_ms=T0 + 99, last_price=Decimal(40000))
        with pytest.raises(KeyError):
            store.settle(out, {}, rig.book.next_order_id, rig.book.next_list_id)
        assert not store._db.in_transaction
    assert _snapshot(db) == before


_CRASH_CHILD = """
import os, sys
from decimal import Decimal
sys.path.insert(0, {root!r})
from engine.store import Store
from engine.trading.book import OrderBook
from engine.trading.ledger import Ledger
from engine.trading.requests import parse_order

store = Store({db!r})
book = OrderBook()
ledgers = {{"alice": Ledger.single("alice", Decimal(10000))}}
store.add_accounts(ledgers.values())
def settle(out):
    for f in out.fills:
        ledgers[f.account].apply_fill(f.symbol, f.side, f.quantity, f.price)
    store.settle(out, ledgers, book.next_order_id, book.next_list_id)
req = {{"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.25"}}
settle(book.place("alice", parse_order(req), now_ms=1, last_price=Decimal(40000)))
real = store._write_account
def die(*a):
    real(*a)          # everything of the second settle is written, not committed
    os._exit(9)       # as abrupt as kill -9: no cleanup, no rollback
store._write_account = die
settle(book.place("alice", parse_order(req), now_ms=2, last_price=Decimal(40000)))
"""


def test_a_crash_inside_settle_keeps_all_or_nothing(tmp_path: Path) -> None:
    db = str(tmp_path / "crash.db")
    child = textwrap.dedent(_CRASH_CHILD).format(root=str(ROOT), db=db)
    proc = subprocess.run([sys.executable, "-c", child], timeout=30, capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()
    with Store(db) as store:
        state = store.load()
        fills = store.fills()
    assert [o.order_id for o in state.orders] == [1]
    assert len(fills) == 1
    alice = state.ledgers["alice"]
    assert alice.position("BTCUSDT").quantity == Decimal("0.25")
    assert alice.home_fees == Decimal("10.000")
    assert state.next_order_id == 2


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("trade"), st.integers(90, 110)),
        st.tuples(st.just("market"), st.sampled_from(["BUY", "SELL"]), st.integers(1, 5)),
        st.tuples(st.just("limit"), st.sampled_from(["BUY", "SELL"]), st.integers(90, 110)),
        st.tuples(st.just("trail"), st.sampled_from(["BUY", "SELL"]), st.integers(50, 500)),
        st.tuples(st.just("cancel"), st.integers(1, 30)),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(_OPS)
def test_load_always_matches_the_live_book_and_ledgers(ops: list[tuple[Any, ...]]) -> None:
    with Store(":memory:") as store:
        rig = Rig(store)
        rig.trade("ETHUSDT", "100")
        for op in ops:
            kind = op[0]
            if kind == "trade":
                rig.trade("ETHUSDT", str(op[1]))
            elif kind == "market":
                rig.place("alice", symbol="ETHUSDT", side=op[1], type="MARKET",
                          quantity=str(op[2]))
            elif kind == "limit":
                rig.place("alice", symbol="ETHUSDT", side=op[1], type="LIMIT", quantity="1",
                          price=str(op[2]))
            elif kind == "trail":
                rig.place("bob", symbol="ETHUSDT", side=op[1], type="STOP_LOSS", quantity="1",
                          trailingDelta=op[2])
            else:
                order = rig.book.get(op[1])
                if order is not None and order.is_open:
                    rig.now += 1
                    rig.settle(rig.book.cancel(order.account, order_id=op[1], now_ms=rig.now))
        state = store.load()
        assert list(state.orders) == rig.book.all_orders()
        assert {n: _ledger_state(ledg) for n, ledg in state.ledgers.items()} == {
            n: _ledger_state(ledg) for n, ledg in rig.ledgers.items()}
        assert (state.next_order_id, state.next_list_id) == (rig.book.next_order_id,
                                                            rig.book.next_list_id)
        assert len(store.fills()) == sum(o.status is OrderStatus.FILLED
                                         for o in rig.book.all_orders())


def test_a_full_store_refuses_a_settle_whole_then_takes_it(tmp_path: Path) -> None:
    """SQLite's ``max_page_count`` makes a write that needs a new page fail
    with SQLITE_FULL, exactly like a full disk; raising it is freeing space."""
    from engine.store_health import error_kind

    db = str(tmp_path / "full.db")
    with Store(db) as store:
        rig = Rig(store)
        rig.trade("BTCUSDT", "40000")
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")
        failed = None
        for i in range(150):
            req = parse_order({"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT",
                               "quantity": "1", "price": str(41000 + i),
                               "clientOrderId": f"resting-{i:04d}-" + "x" * 20})
            out = rig.book.place("alice", req, now_ms=T0 + i, last_price=Decimal(40000))
            before = store.load()
            try:
                store.settle(out, rig.ledgers, rig.book.next_order_id, rig.book.next_list_id)
            except sqlite3.Error as exc:
                failed = (out, exc)
                break
        assert failed is not None, "the page limit was never reached"
        out, exc = failed
        assert error_kind(exc) == "full" and "full" in str(exc)
        assert store.load() == before  # the failed settle left nothing
        assert not store._db.in_transaction
        store._db.execute(f"PRAGMA max_page_count = {pages * 100}")  # space is back
        store.settle(out, rig.ledgers, rig.book.next_order_id, rig.book.next_list_id)
        store.probe()
        after = store.load()
    assert [o.order_id for o in after.orders] == [o.order_id for o in before.orders] + [
        out.order_events()[0].order.order_id]


@pytest.mark.parametrize(("name", "kind"), [
    ("SQLITE_FULL", "full"), ("SQLITE_IOERR_WRITE", "io"), ("SQLITE_IOERR_FSYNC", "io"),
    ("SQLITE_BUSY", "busy"), ("SQLITE_READONLY_DBMOVED", "readonly"),
    ("SQLITE_CORRUPT", "corrupt"), ("SQLITE_NOTADB", "corrupt"), ("SQLITE_MISUSE", "other"),
    (None, "other"),
])
def test_store_error_kinds(name: str | None, kind: str) -> None:
    from engine.store_health import error_kind

    exc = sqlite3.OperationalError("x")
    if name is not None:
        exc.sqlite_errorname = name  # type: ignore[attr-defined]
    assert error_kind(exc) == kind


def test_reservations_written_by_difference_survive_a_refused_commit() -> None:
    # A settle writes only the reservations it changed, against what the last
    # *committed* settle wrote: a refused commit must not count as written.
    with Store(":memory:") as store:
        rig = Rig(store)
        rig.trade("BTCUSDT", "40000")
        for price in ("39000", "38000", "37000"):
            rig.place("alice", symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="0.01",
                      price=price)
        assert len(rig.ledgers["alice"].reservations) == 3
        store._db.execute("CREATE TEMP TRIGGER refuse BEFORE UPDATE ON counters "
                          "BEGIN SELECT RAISE(ABORT, 'refused'); END")
        rig.now += 1
        cancel = rig.book.cancel("alice", order_id=2, now_ms=rig.now)
        with pytest.raises(sqlite3.Error):
            rig.settle(cancel)  # the ledger in memory released order 2; the store did not
        assert len(store.load().ledgers["alice"].reservations) == 3
        store._db.execute("DROP TRIGGER refuse")
        store.settle(cancel, rig.ledgers, rig.book.next_order_id, rig.book.next_list_id)
        state = store.load()
        assert _ledger_state(state.ledgers["alice"]) == _ledger_state(rig.ledgers["alice"])
        assert len(state.ledgers["alice"].reservations) == 2
