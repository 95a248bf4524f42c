"""The durable store: accounts, positions, fills, orders, id counters and klines in SQLite.

Edge module (``sqlite3`` from the standard library). One :class:`Store` wraps
one connection.

Threading
---------
A ``Store`` has exactly **one owner thread**, the PortfolioActor's: it is
opened in that actor's ``started()`` (which pykka runs in the actor's own
thread) and closed in its ``cleanup()`` (same thread). The connection keeps
``sqlite3``'s default ``check_same_thread=True``, so a call from any other
thread fails loudly instead of racing. Other actors reach the data by asking
the PortfolioActor (``Settle``, ``LoadBook``), never SQLite.

Durability
----------
* ``journal_mode=WAL``: a commit appends to the write-ahead log; readers are
  never blocked and a crash at any moment leaves either the whole
  transaction or none of it.
* ``synchronous=FULL``: the WAL is fsynced at **every** commit, so a commit
  that returned survives ``kill -9`` *and* power loss. (``NORMAL`` would
  survive ``kill -9`` too but may lose the last commits on power loss, and
  docs/trading.md promises that what was announced is on disk.) The price is one
  fsync per settle; ``docs/storage.md`` has the measured cost. ``store.synchronous
  = "normal"`` trades power-loss safety for latency (still safe under ``kill -9``).
* :meth:`Store.settle` writes one order-book outcome (order snapshots, list
  snapshots, fills, the affected accounts and positions, the id counters)
  in **one** transaction (``BEGIN IMMEDIATE`` … ``COMMIT``, ``ROLLBACK`` on
  any exception), so a crash keeps all of a settle or none of it.

Schema and migrations
---------------------
``schema_version`` holds one integer. :data:`MIGRATIONS` is an ordered list;
migration *n* (1-based) moves the schema from version *n-1* to *n*. Opening a
store applies, each in its own transaction, every migration above the stored
version. A database newer than this code refuses to open
(:class:`StoreError`). Migrations are append-only: a released one is never
edited. Decimals are stored as TEXT (``str(Decimal)``), which is exact.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

import orjson

from engine.errors import TickdeskError
from engine.market.klines import INTERVALS, Kline
from engine.money import Side
from engine.trading.assets import symbol_assets
from engine.trading.events import FillIntent, OrderEvent, Outcome
from engine.trading.history import (
    EQUITY_SAMPLES_PER_ACCOUNT,
    EquityQuery,
    EquitySample,
    FillRecord,
    FillsPage,
    FillsQuery,
    page_of,
)
from engine.trading.ledger import LEDGER, AssetsFn, Ledger, Position, Reservation
from engine.trading.order import ListStatus, ListType, Order, OrderStatus
from engine.trading.order_list import OrderList

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "FillFacts",
    "Store",
    "StoreError",
    "StoredFill",
    "StoredState",
    "migrate",
]

log = logging.getLogger("tickdesk.store")


class StoreError(TickdeskError):
    """The database cannot be used (e.g. written by a newer tickdesk)."""


Migration = Callable[[sqlite3.Connection], None]
#: What the ledger said of one fill: its fee asset and its realized P&L.
FillFacts = tuple[str | None, Decimal | None]


def _v1_core(db: sqlite3.Connection) -> None:
    """Accounts, positions, fills, orders and id counters."""
    db.execute(
        """CREATE TABLE accounts (
            name TEXT PRIMARY KEY,
            starting_balance TEXT NOT NULL,
            realized_pnl TEXT NOT NULL,
            fees TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE positions (
            account TEXT NOT NULL REFERENCES accounts(name),
            symbol TEXT NOT NULL,
            quantity TEXT NOT NULL,
            entry_price TEXT NOT NULL,
            realized_pnl TEXT NOT NULL,
            PRIMARY KEY (account, symbol)
        )"""
    )
    db.execute(
        """CREATE TABLE fills (
            fill_id INTEGER PRIMARY KEY AUTOINCREMENT,
            account TEXT NOT NULL,
            order_id INTEGER NOT NULL,
            client_order_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            quantity TEXT NOT NULL,
            price TEXT NOT NULL,
            fee TEXT NOT NULL,
            time INTEGER NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE orders (
            order_id INTEGER PRIMARY KEY,
            account TEXT NOT NULL,
            list_id INTEGER,
            status TEXT NOT NULL,
            record TEXT NOT NULL
        )"""
    )
    db.execute("CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")


def _v2_lists(db: sqlite3.Connection) -> None:
    """Order-list snapshots, and indexes for per-account reads."""
    db.execute(
        """CREATE TABLE order_lists (
            list_id INTEGER PRIMARY KEY,
            account TEXT NOT NULL,
            symbol TEXT NOT NULL,
            list_type TEXT NOT NULL,
            status TEXT NOT NULL,
            order_ids TEXT NOT NULL,
            create_time INTEGER NOT NULL,
            update_time INTEGER NOT NULL
        )"""
    )
    db.execute("CREATE INDEX fills_by_account ON fills(account, fill_id)")
    db.execute("CREATE INDEX orders_by_account ON orders(account, order_id)")


def _v3_assets(db: sqlite3.Connection) -> None:
    """A balance per asset, each position's exact cost, and the reservations of
    open orders. A v2 account's one balance becomes its ``USDT`` balance (the
    quote asset every v2 balance was kept in); a position's cost is its
    quantity times its stored entry price. Orders open at the upgrade reserve
    nothing (a v2 store has no reservations to carry over)."""
    db.execute(
        """CREATE TABLE balances (
            account TEXT NOT NULL REFERENCES accounts(name),
            asset TEXT NOT NULL,
            starting TEXT NOT NULL,
            realized_pnl TEXT NOT NULL,
            fees TEXT NOT NULL,
            PRIMARY KEY (account, asset)
        )"""
    )
    db.execute(
        "INSERT INTO balances SELECT name, 'USDT', starting_balance, realized_pnl, fees "
        "FROM accounts"
    )
    db.execute("ALTER TABLE positions ADD COLUMN cost TEXT")
    rows = db.execute("SELECT account, symbol, quantity, entry_price FROM positions").fetchall()
    with localcontext(LEDGER):
        db.executemany(
            "UPDATE positions SET cost = ? WHERE account = ? AND symbol = ?",
            ((str(Decimal(q) * Decimal(e)), a, s) for a, s, q, e in rows),
        )
    db.execute(
        """CREATE TABLE reservations (
            account TEXT NOT NULL REFERENCES accounts(name),
            key INTEGER NOT NULL,
            record TEXT NOT NULL,
            PRIMARY KEY (account, key)
        )"""
    )


def _v4_history(db: sqlite3.Connection) -> None:
    """The history: each fill's fee asset and realized P&L (NULL for fills
    recorded before, which the ledger did not report per fill), an index for
    per-symbol pages, and the equity samples."""
    db.execute("ALTER TABLE fills ADD COLUMN fee_asset TEXT")
    db.execute("ALTER TABLE fills ADD COLUMN realized_pnl TEXT")
    db.execute("CREATE INDEX fills_by_account_symbol ON fills(account, symbol, fill_id)")
    db.execute(
        """CREATE TABLE equity_samples (
            sample_id INTEGER PRIMARY KEY AUTOINCREMENT,
            account TEXT NOT NULL,
            time INTEGER NOT NULL,
            equity TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX equity_by_account ON equity_samples(account, sample_id)")


def _v5_klines(db: sqlite3.Connection) -> None:
    """Klines (engine.market.klines): one row per bar, keyed by symbol,
    interval and open time; bounded per symbol and interval by
    :meth:`Store.write_klines`."""
    db.execute(
        """CREATE TABLE klines (
            symbol TEXT NOT NULL,
            interval TEXT NOT NULL,
            open_time INTEGER NOT NULL,
            close_time INTEGER NOT NULL,
            open TEXT NOT NULL,
            high TEXT NOT NULL,
            low TEXT NOT NULL,
            close TEXT NOT NULL,
            volume TEXT NOT NULL,
            quote_volume TEXT NOT NULL,
            trades INTEGER NOT NULL,
            PRIMARY KEY (symbol, interval, open_time)
        )"""
    )


#: Ordered, append-only: ``MIGRATIONS[n - 1]`` takes the schema to version ``n``.
MIGRATIONS: tuple[Migration, ...] = (_v1_core, _v2_lists, _v3_assets, _v4_history,
                                     _v5_klines)
SCHEMA_VERSION = len(MIGRATIONS)


def _version(db: sqlite3.Connection) -> int:
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT version FROM schema_version").fetchone()
    if row is None:
        db.execute("INSERT INTO schema_version (version) VALUES (0)")
        return 0
    return int(row[0])


def migrate(db: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring ``db`` (autocommit mode) up to schema ``target``; return the version
    found before. Each migration runs in its own transaction with its version
    bump, so an interrupted upgrade resumes where it stopped."""
    db.execute("BEGIN IMMEDIATE")
    try:
        found = _version(db)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"database schema version {found} is newer than this tickdesk "
            f"(knows up to {SCHEMA_VERSION}); refusing to open it"
        )
    for version in range(found + 1, target + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version - 1](db)
            db.execute("UPDATE schema_version SET version = ?", (version,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return found


@dataclass(frozen=True, slots=True)
class StoredFill:
    """One persisted fill (read back for history and tests)."""

    fill_id: int
    account: str
    order_id: int
    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    time: int


@dataclass(frozen=True, slots=True)
class StoredState:
    """Everything :meth:`Store.load` reads: the ledgers by account, every
    accepted order (open and closed) and list, and the id counters — what
    ``OrderBook.restore(orders, next_order_id, next_list_id)`` needs."""

    ledgers: dict[str, Ledger]
    orders: tuple[Order, ...]
    lists: tuple[OrderList, ...]
    next_order_id: int
    next_list_id: int


#: TEST-ONLY crash hook (the cluster tests): when this environment variable is
#: set, the process exits at once (``os._exit(137)``, like ``kill -9``) right
#: after a settle transaction that wrote an order whose ``clientOrderId``
#: starts with its value has committed, i.e. before anything is answered or
#: acknowledged. Never set it in production.
CRASH_AFTER_SETTLE_ENV = "TICKDESK_TEST_CRASH_AFTER_SETTLE"


def _dumps(record: Any) -> str:
    return orjson.dumps(record).decode()


class Store:
    """One SQLite database; see the module docstring. Not thread-safe: one owner."""

    def __init__(self, path: str, synchronous: str = "full", *,
                 fill_bound: int | None = None) -> None:
        """Open (creating if needed) and migrate the database at ``path``.

        ``":memory:"`` gives a private in-memory database; a ``file:`` URI is
        opened as a URI (e.g. a shared-cache in-memory database).
        ``synchronous`` is ``"full"`` (fsync every commit) or ``"normal"``.
        ``fill_bound`` keeps the latest that many fills per account, dropping
        older ones (an account holds at most 110 % of it, see
        :meth:`_trim_fills`): for an in-memory database, whose history must not
        grow without end; None keeps every fill."""
        if synchronous not in ("full", "normal"):
            raise ValueError("synchronous must be 'full' or 'normal'")
        if fill_bound is not None and fill_bound < 1:
            raise ValueError("fill_bound must be >= 1")
        self.path = path
        self._fill_bound = fill_bound
        self._crash_prefix = os.environ.get(CRASH_AFTER_SETTLE_ENV) or None
        self._untrimmed: dict[str, int] = {}
        #: Per account, the reservations the last committed settle left in the
        #: table (see :meth:`_write_reservations`).
        self._written: dict[str, dict[int, Reservation]] = {}
        self._db = sqlite3.connect(
            path, isolation_level=None, uri=path.startswith("file:"), timeout=10.0
        )
        try:
            self.journal_mode = str(
                self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            ).lower()
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self.migrated_from = migrate(self._db)
        except BaseException:
            self._db.close()
            raise

    # -- lifecycle ------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (the last closer checkpoints the WAL). Idempotent."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("SELECT version FROM schema_version").fetchone()[0])

    # -- writes ---------------------------------------------------------------

    def add_accounts(self, ledgers: Iterable[Ledger]) -> None:
        """Persist accounts, and starting balances of assets, not stored yet
        (existing rows are left alone), so an account keeps the balances it was
        created with; an asset added to its configuration later starts at its
        configured amount."""
        with self._transaction():
            for ledger in ledgers:
                self._db.execute(
                    "INSERT OR IGNORE INTO accounts VALUES (?, ?, '0', '0')",
                    (ledger.name, str(ledger.starting_balance)),
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO balances VALUES (?, ?, ?, '0', '0')",
                    ((ledger.name, asset, str(amount))
                     for asset, amount in sorted(ledger.starting.items())),
                )

    def settle(
        self,
        outcome: Outcome,
        ledgers_after: Mapping[str, Ledger],
        next_order_id: int,
        next_list_id: int,
        fill_facts: Sequence[FillFacts] = (),
    ) -> None:
        """Persist one order-book outcome in ONE transaction.

        Writes the latest snapshot of every order the outcome's events touch
        (trailing state included; REJECTED orders are not kept, as in the
        book), every list snapshot (REJECTED lists are not kept), every fill,
        the balances, traded positions and reservations of every account in
        ``ledgers_after`` (the accounts the outcome touched, *after* it was
        applied), and the id counters. ``fill_facts[i]`` is the fee asset and
        realized P&L of ``outcome.fills[i]`` (stored NULL when not given). Any
        exception rolls everything back and propagates.
        """
        orders: dict[int, Order] = {}
        lists: dict[int, OrderList] = {}
        for event in outcome.events:
            if isinstance(event, OrderEvent):
                if event.order.status is not OrderStatus.REJECTED:
                    orders[event.order.order_id] = event.order
            elif event.order_list.status is not ListStatus.REJECTED:
                lists[event.order_list.list_id] = event.order_list
        written: dict[str, dict[int, Reservation]] = {}
        with self._transaction():
            self._write_orders(orders.values())
            self._write_lists(lists.values())
            self._write_fills(outcome.fills, fill_facts)
            traded: dict[str, set[str]] = {}
            for fill in outcome.fills:
                traded.setdefault(fill.account, set()).add(fill.symbol)
            for account in sorted(set(traded) | set(ledgers_after)):
                # KeyError (rolled back) if a traded account's ledger is missing
                self._write_account(ledgers_after[account], traded.get(account, set()),
                                    written)
                self._trim_fills(account, sum(f.account == account for f in outcome.fills))
            self._db.executemany(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (("next_order_id", next_order_id), ("next_list_id", next_list_id)),
            )
        self._written.update(written)  # committed: what the rows now hold
        prefix = self._crash_prefix
        if prefix is not None and any(o.client_order_id.startswith(prefix)
                                      for o in orders.values()):
            log.critical("test hook %s: exiting after the settle of %d orders",
                         CRASH_AFTER_SETTLE_ENV, len(orders))
            os._exit(137)

    def _write_orders(self, orders: Iterable[Order]) -> None:
        self._db.executemany(
            "INSERT INTO orders (order_id, account, list_id, status, record) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(order_id) DO UPDATE SET "
            "status = excluded.status, list_id = excluded.list_id, record = excluded.record",
            (
                (o.order_id, o.account, o.list_id, o.status.value, _dumps(o.to_record()))
                for o in orders
            ),
        )

    def _write_lists(self, lists: Iterable[OrderList]) -> None:
        self._db.executemany(
            "INSERT INTO order_lists VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(list_id) DO UPDATE SET status = excluded.status, "
            "order_ids = excluded.order_ids, update_time = excluded.update_time",
            (
                (lst.list_id, lst.account, lst.symbol, lst.list_type.value, lst.status.value,
                 _dumps(list(lst.order_ids)), lst.create_time, lst.update_time)
                for lst in lists
            ),
        )

    def _write_fills(self, fills: Sequence[FillIntent], facts: Sequence[FillFacts]) -> None:
        def row(i: int, f: FillIntent) -> tuple[Any, ...]:
            asset, realized = facts[i] if i < len(facts) else (None, None)
            return (f.account, f.order_id, f.client_order_id, f.symbol, f.side.value,
                    str(f.quantity), str(f.price), str(f.fee), f.time, asset,
                    None if realized is None else str(realized))

        self._db.executemany(
            "INSERT INTO fills (account, order_id, client_order_id, symbol, side, quantity, "
            "price, fee, time, fee_asset, realized_pnl) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row(i, f) for i, f in enumerate(fills)),
        )

    def _trim_fills(self, account: str, added: int) -> None:
        """With ``fill_bound``: once an account has had a tenth of the bound of
        new fills, delete its fills older than the latest ``fill_bound`` (so it
        holds at most 110 % of the bound; trimming on every settle would scan
        the bound's worth of index entries each time: ~0.3 ms vs ~0.02 ms)."""
        bound = self._fill_bound
        if bound is None:
            return
        pending = self._untrimmed.get(account, 0) + added
        if pending < max(1, bound // 10):
            self._untrimmed[account] = pending
            return
        self._untrimmed[account] = 0
        self._db.execute(
            "DELETE FROM fills WHERE account = ? AND fill_id <= ("
            "SELECT fill_id FROM fills WHERE account = ? ORDER BY fill_id DESC LIMIT 1 OFFSET ?)",
            (account, account, bound),
        )

    def add_equity_samples(self, samples: Mapping[str, EquitySample],
                           keep: int = EQUITY_SAMPLES_PER_ACCOUNT) -> None:
        """Append one sample per account in ONE transaction; an account then
        holding more than ``keep`` samples loses its oldest."""
        with self._transaction():
            for account, sample in samples.items():
                self._db.execute(
                    "INSERT INTO equity_samples (account, time, equity) VALUES (?, ?, ?)",
                    (account, sample.time, str(sample.equity)),
                )
                self._db.execute(
                    "DELETE FROM equity_samples WHERE account = ? AND sample_id <= ("
                    "SELECT sample_id FROM equity_samples WHERE account = ? "
                    "ORDER BY sample_id DESC LIMIT 1 OFFSET ?)",
                    (account, account, keep),
                )

    def write_klines(self, bars: Iterable[Kline], keep: int) -> None:
        """Insert or replace bars (closed or still open) in ONE transaction;
        each symbol and interval written then keeps only its newest ``keep``
        bars."""
        if keep < 1:
            raise ValueError("keep must be >= 1")
        rows = [(b.symbol, b.interval, b.open_time, b.close_time, str(b.open), str(b.high),
                 str(b.low), str(b.close), str(b.volume), str(b.quote_volume), b.trades)
                for b in bars]
        if not rows:
            return
        with self._transaction():
            self._db.executemany(
                "INSERT INTO klines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(symbol, interval, open_time) DO UPDATE SET "
                "close_time = excluded.close_time, open = excluded.open, high = excluded.high, "
                "low = excluded.low, close = excluded.close, volume = excluded.volume, "
                "quote_volume = excluded.quote_volume, trades = excluded.trades",
                rows,
            )
            self._db.executemany(
                "DELETE FROM klines WHERE symbol = ? AND interval = ? AND open_time <= ("
                "SELECT open_time FROM klines WHERE symbol = ? AND interval = ? "
                "ORDER BY open_time DESC LIMIT 1 OFFSET ?)",
                ((sym, iv, sym, iv, keep) for sym, iv in sorted({(r[0], r[1]) for r in rows})),
            )

    def _write_account(self, ledger: Ledger, symbols: Iterable[str],
                       written: dict[str, dict[int, Reservation]]) -> None:
        name = ledger.name
        self._db.executemany(
            "INSERT INTO balances VALUES (?, ?, ?, ?, ?) ON CONFLICT(account, asset) DO UPDATE "
            "SET starting = excluded.starting, realized_pnl = excluded.realized_pnl, "
            "fees = excluded.fees",
            ((name, asset, str(ledger.starting.get(asset, 0)),
              str(ledger.realized.get(asset, 0)), str(ledger.fees.get(asset, 0)))
             for asset in ledger.assets()),
        )
        rows = []
        for symbol in sorted(symbols):
            pos = ledger.position(symbol)
            rows.append((name, symbol, str(pos.quantity), str(pos.entry_price),
                         str(pos.realized_pnl), str(pos.cost)))
        self._db.executemany(
            "INSERT INTO positions (account, symbol, quantity, entry_price, realized_pnl, cost) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(account, symbol) DO UPDATE SET quantity = excluded.quantity, "
            "entry_price = excluded.entry_price, realized_pnl = excluded.realized_pnl, "
            "cost = excluded.cost",
            rows,
        )
        self._write_reservations(name, ledger.reservations, written)

    def _write_reservations(self, name: str, now: Mapping[int, Reservation],
                            written: dict[str, dict[int, Reservation]]) -> None:
        """The account's reservations as they are ``now``. Reservations are
        frozen (a change replaces the object), so against what the last
        committed settle wrote only the ones that are new or replaced are
        written and the gone ones deleted: a settle costs what it changed,
        not one row per open order. Without that record (the first settle
        since this store was opened) every row is rewritten. ``written[name]``
        gets the new record, kept by :meth:`settle` once it commits."""
        known = self._written.get(name)
        if known is None:
            self._db.execute("DELETE FROM reservations WHERE account = ?", (name,))
            fresh = sorted(now.values(), key=lambda r: r.key)
        else:
            self._db.executemany(
                "DELETE FROM reservations WHERE account = ? AND key = ?",
                ((name, key) for key in known if key not in now))
            fresh = [held for key, held in now.items() if known.get(key) is not held]
        self._db.executemany(
            "INSERT INTO reservations VALUES (?, ?, ?) "
            "ON CONFLICT(account, key) DO UPDATE SET record = excluded.record",
            ((name, held.key, _dumps(held.to_record())) for held in fresh),
        )
        written[name] = dict(now)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; ``ROLLBACK`` on any exception,
        including a failed ``COMMIT`` (e.g. disk full)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:  # the original error is the one to report
                    log.warning("rollback failed after a failed write", exc_info=True)
            raise

    def probe(self) -> None:
        """Commit one real write that touches no tickdesk data: raises
        ``sqlite3.Error`` while the store cannot write, returns once it can.

        It bumps SQLite's ``PRAGMA user_version`` (a header field tickdesk
        does not otherwise use; the schema version is its own table), which
        rewrites page 1: one page appended to the write-ahead log and one
        fsync. (Rewriting a row with its own value would not do: SQLite skips
        identical overwrites, and the commit would succeed on a full disk.)"""
        with self._transaction():
            n = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            self._db.execute(f"PRAGMA user_version = {(n + 1) % 2**31}")

    def account_names(self) -> set[str]:
        """The names of the stored accounts."""
        return {name for (name,) in self._db.execute("SELECT name FROM accounts")}

    # -- reads ----------------------------------------------------------------

    def load(self, fee_bps: Decimal = Decimal(10),
             homes: Mapping[str, str] | None = None, default_home: str = "USDT",
             assets_of: AssetsFn = symbol_assets) -> StoredState:
        """Read everything back (see :class:`StoredState`). ``fee_bps``, the
        accounts' home assets (``homes``, else ``default_home``) and the symbols'
        assets (``assets_of``) are not persisted state: they come from the
        configuration and the exchange info."""
        db = self._db
        ledgers: dict[str, Ledger] = {}
        homes = homes or {}
        for (name,) in db.execute("SELECT name FROM accounts ORDER BY name"):
            ledgers[name] = Ledger(name, {}, fee_bps, homes.get(name, default_home),
                                   assets_of=assets_of)
        for account, asset, start, realized, fees in db.execute(
            "SELECT account, asset, starting, realized_pnl, fees FROM balances "
            "ORDER BY account, asset"
        ):
            ledger = ledgers[account]
            ledger.starting[asset] = Decimal(start)
            if Decimal(realized):
                ledger.realized[asset] = Decimal(realized)
            if Decimal(fees):
                ledger.fees[asset] = Decimal(fees)
        for account, symbol, qty, cost, realized in db.execute(
            "SELECT account, symbol, quantity, cost, realized_pnl FROM positions "
            "ORDER BY account, symbol"
        ):
            ledgers[account].positions[symbol] = Position(
                symbol, Decimal(qty), Decimal(cost), Decimal(realized)
            )
        for account, record in db.execute(
            "SELECT account, record FROM reservations ORDER BY account, key"
        ):
            held = Reservation.from_record(orjson.loads(record))
            ledgers[account].reservations[held.key] = held
        orders = tuple(
            Order.from_record(orjson.loads(record))
            for (record,) in db.execute("SELECT record FROM orders ORDER BY order_id")
        )
        lists = tuple(
            OrderList(
                list_id=lid, list_type=ListType(ltype), account=account, symbol=symbol,
                status=ListStatus(status), order_ids=tuple(orjson.loads(ids)),
                create_time=created, update_time=updated,
            )
            for lid, account, symbol, ltype, status, ids, created, updated in db.execute(
                "SELECT list_id, account, symbol, list_type, status, order_ids, create_time, "
                "update_time FROM order_lists ORDER BY list_id"
            )
        )
        counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        return StoredState(
            ledgers=ledgers,
            orders=orders,
            lists=lists,
            next_order_id=int(counters.get("next_order_id", 1)),
            next_list_id=int(counters.get("next_list_id", 1)),
        )

    def fills(self, account: str | None = None) -> list[StoredFill]:
        """The fill history, oldest first (of one account, or all)."""
        sql = ("SELECT fill_id, account, order_id, client_order_id, symbol, side, quantity, "
               "price, fee, time FROM fills")
        args: tuple[Any, ...] = ()
        if account is not None:
            sql += " WHERE account = ?"
            args = (account,)
        return [
            StoredFill(fid, acct, oid, cid, sym, Side(side), Decimal(q), Decimal(p),
                       Decimal(fee), t)
            for fid, acct, oid, cid, sym, side, q, p, fee, t in self._db.execute(
                sql + " ORDER BY fill_id", args
            )
        ]

    def fill_page(self, account: str, query: FillsQuery) -> FillsPage:
        """One page of ``account``'s fills, newest first (engine.trading.history)."""
        sql = ("SELECT fill_id, account, order_id, client_order_id, symbol, side, quantity, "
               "price, fee, fee_asset, realized_pnl, time FROM fills WHERE account = ?")
        args: list[Any] = [account]
        if query.symbol is not None:
            sql += " AND symbol = ?"
            args.append(query.symbol)
        if query.since is not None:
            sql += " AND time >= ?"
            args.append(query.since)
        if query.before is not None:
            sql += " AND fill_id < ?"
            args.append(query.before)
        sql += " ORDER BY fill_id DESC LIMIT ?"
        args.append(query.limit + 1)
        rows = (
            FillRecord(fid, acct, oid, cid, sym, Side(side), Decimal(q), Decimal(p),
                       Decimal(fee), asset, None if realized is None else Decimal(realized), t)
            for fid, acct, oid, cid, sym, side, q, p, fee, asset, realized, t
            in self._db.execute(sql, args).fetchall()
        )
        return page_of(rows, query.limit)

    def klines(self, keep: int | None = None) -> list[Kline]:
        """Every stored bar (of each symbol and interval only the newest
        ``keep``, if given), oldest first per series; for ``KlineBook.restore``."""
        columns = ("symbol, interval, open_time, close_time, open, high, low, close, volume, "
                   "quote_volume, trades")
        sql = f"SELECT {columns} FROM klines"
        args: tuple[Any, ...] = ()
        if keep is not None:
            sql = (f"SELECT {columns} FROM (SELECT {columns}, ROW_NUMBER() OVER (PARTITION BY "
                   "symbol, interval ORDER BY open_time DESC) AS newness FROM klines) "
                   "WHERE newness <= ?")
            args = (keep,)
        return [
            Kline(sym, iv, ot, ct, Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(v),
                  Decimal(qv), int(n))
            for sym, iv, ot, ct, o, h, lo, c, v, qv, n in self._db.execute(
                sql + " ORDER BY symbol, interval, open_time", args)
        ]

    def last_prices(self) -> dict[str, Decimal]:
        """Each symbol's last stored price: the close of its newest stored bar
        (the latest open time; of equal ones, the shortest interval's, which
        was written last by the same trade)."""
        newest: dict[str, tuple[int, int, Decimal]] = {}
        for symbol, interval, open_time, close in self._db.execute(
            "SELECT symbol, interval, MAX(open_time), close FROM klines "
            "GROUP BY symbol, interval"
        ):
            rank = (open_time, -INTERVALS.get(interval, 0))
            held = newest.get(symbol)
            if held is None or rank > held[:2]:
                newest[symbol] = (*rank, Decimal(close))
        return {symbol: close for symbol, (_, _, close) in sorted(newest.items())}

    def equity_samples(self, account: str, query: EquityQuery) -> list[EquitySample]:
        """The latest ``query.limit`` samples of ``account`` at or after
        ``query.since``, oldest first."""
        sql = "SELECT time, equity FROM equity_samples WHERE account = ?"
        args: list[Any] = [account]
        if query.since is not None:
            sql += " AND time >= ?"
            args.append(query.since)
        sql += " ORDER BY sample_id DESC LIMIT ?"
        args.append(query.limit)
        found = [EquitySample(t, Decimal(e)) for t, e in self._db.execute(sql, args)]
        found.reverse()
        return found
