"""The store's start-up integrity check: pages, schema version, every record.

Edge module (``sqlite3``). :func:`verify` opens its own connection, runs
:func:`check_pages`, :func:`check_schema_version` and :func:`check_records`,
and closes it; ``Engine.start`` calls it in the caller's thread before the
store is migrated and before any actor or listener exists. Each raises
:class:`StoreCorrupt` naming what is wrong — the table, the row id and the
field — so the daemon exits 1 with a message an operator can act on instead
of starting and answering every account command with ``INTERNAL``.

What "decodes" means, per table (the code writes these, so anything else is
damage or a foreign hand):

* every money or quantity column is TEXT holding a finite ``Decimal``
  (``balances``, ``positions.cost`` included);
* ``reservations.record`` is a JSON object :meth:`Reservation.from_record`
  accepts;
* ``orders.record`` is a JSON object whose decimal fields are finite
  decimals, which :meth:`Order.from_record` accepts, and whose ``order_id``
  is the row's;
* ``order_lists.order_ids`` is a JSON array of integers, its type and status
  are known names; ``fills.side`` is ``BUY`` or ``SELL``;
* ``klines``: its prices and volumes are finite decimals, ``trades`` an integer;
* ``counters.value`` and ``schema_version.version`` are integers
  (exactly one ``schema_version`` row, not newer than the code).

The cost is one pass over the database (``PRAGMA quick_check`` reads every
page; the records are decoded once); ``docs/storage.md`` has a measurement.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from engine.money import Side
from engine.store import SCHEMA_VERSION, StoreError
from engine.trading.ledger import Reservation
from engine.trading.order import ListStatus, ListType, Order

__all__ = ["StoreCorrupt", "check_pages", "check_records", "check_schema_version", "verify"]

#: Decimal fields of an ``orders.record``; ``None`` allowed unless listed in _REQUIRED.
_RECORD_DECIMALS = ("quantity", "price", "stop_price", "current_stop_price",
                    "trailing_extreme", "filled_quantity", "avg_price", "fee")
_REQUIRED = frozenset({"quantity"})
#: The decimal columns of a ``klines`` row.
_KLINE_DECIMALS = ("open", "high", "low", "close", "volume", "quote_volume")
#: At most this many quick_check complaints are quoted.
_MAX_QUOTED = 5


class StoreCorrupt(StoreError):
    """The database is damaged or holds a record tickdesk cannot read."""


def verify(path: str) -> None:
    """Check the database file at ``path`` (nothing to check if it does not exist
    yet). Raises :class:`StoreCorrupt`, or ``sqlite3.Error`` if it cannot be opened."""
    if not os.path.exists(path):
        return
    db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    try:
        check_pages(db, path)
        check_schema_version(db, path)
        check_records(db, path)
    finally:
        db.close()


def _where(table: str, rowid: Any, key: str, field: str) -> str:
    return f"table {table}, row {rowid}{key}, field {field}"


def _decimal_problem(value: Any) -> str | None:
    """None if ``value`` is a stored decimal (TEXT, finite), else what is wrong."""
    if not isinstance(value, str):
        return f"{value!r} is not a decimal string"
    try:
        d = Decimal(value)
    except InvalidOperation:
        return f"{value!r} is not a decimal"
    if not d.is_finite():
        return f"{value!r} is not a finite decimal"
    return None


def check_pages(db: sqlite3.Connection, path: str) -> None:
    """``PRAGMA quick_check``: every page and b-tree is well formed (indexes are
    not compared with their tables; ``integrity_check`` would, at more cost)."""
    try:
        rows = db.execute(f"PRAGMA quick_check({_MAX_QUOTED})").fetchall()
    except sqlite3.DatabaseError as exc:
        raise StoreCorrupt(f"store {path} is damaged: {exc}") from exc
    problems = [str(r[0]) for r in rows if r[0] != "ok"]
    if problems:
        raise StoreCorrupt(f"store {path} is damaged (PRAGMA quick_check): "
                           + "; ".join(problems))


def check_schema_version(db: sqlite3.Connection, path: str) -> None:
    """Exactly one integer ``schema_version`` row, not newer than the code
    (a database without the table is new and is created by the migrations)."""
    exists = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                        "AND name = 'schema_version'").fetchone()
    if exists is None:
        return
    rows = db.execute("SELECT rowid, version FROM schema_version").fetchall()
    if len(rows) != 1:
        raise StoreCorrupt(f"store {path}: table schema_version has {len(rows)} rows, "
                           "expected exactly 1")
    rowid, version = rows[0]
    if not isinstance(version, int):
        raise StoreCorrupt(f"store {path}: {_where('schema_version', rowid, '', 'version')}: "
                           f"{version!r} is not an integer")
    if version > SCHEMA_VERSION:
        raise StoreCorrupt(f"store {path}: schema version {version} is newer than this "
                           f"tickdesk (knows up to {SCHEMA_VERSION}); refusing to open it")


def check_records(db: sqlite3.Connection, path: str) -> None:
    """Decode every stored record (see the module docstring); raise on the first bad one."""
    try:
        problem = _first_problem(db)
    except sqlite3.DatabaseError as exc:  # damage quick_check did not see
        raise StoreCorrupt(f"store {path} is damaged: {exc}") from exc
    if problem is not None:
        raise StoreCorrupt(f"store {path}: {problem}")


def _first_problem(db: sqlite3.Connection) -> str | None:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def rows(table: str, sql: str) -> Iterator[tuple[Any, ...]]:
        # An older schema lacks later tables; the migrations create them empty.
        if table in tables:
            yield from db.execute(sql)

    for rowid, name, *money in rows(
            "accounts", "SELECT rowid, name, starting_balance, realized_pnl, fees FROM accounts"):
        for field, value in zip(("starting_balance", "realized_pnl", "fees"), money,
                                strict=True):
            if (p := _decimal_problem(value)) is not None:
                return f"{_where('accounts', rowid, f' ({name})', field)}: {p}"
    for rowid, account, symbol, *money in rows(
            "positions", "SELECT rowid, account, symbol, quantity, entry_price, realized_pnl "
                         "FROM positions"):
        for field, value in zip(("quantity", "entry_price", "realized_pnl"), money,
                                strict=True):
            if (p := _decimal_problem(value)) is not None:
                return f"{_where('positions', rowid, f' ({account}/{symbol})', field)}: {p}"
    has_cost = "positions" in tables and "cost" in {
        r[1] for r in db.execute("PRAGMA table_info(positions)")}
    for rowid, account, symbol, cost in rows(
            "positions", "SELECT rowid, account, symbol, cost FROM positions"
            if has_cost else "SELECT rowid, account, symbol, '0' FROM positions"):
        if (p := _decimal_problem(cost)) is not None:
            return f"{_where('positions', rowid, f' ({account}/{symbol})', 'cost')}: {p}"
    for rowid, account, asset, *money in rows(
            "balances", "SELECT rowid, account, asset, starting, realized_pnl, fees "
                        "FROM balances"):
        for field, value in zip(("starting", "realized_pnl", "fees"), money, strict=True):
            if (p := _decimal_problem(value)) is not None:
                return f"{_where('balances', rowid, f' ({account}/{asset})', field)}: {p}"
    for rowid, account, text in rows(
            "reservations", "SELECT rowid, account, record FROM reservations"):
        try:
            Reservation.from_record(orjson.loads(text))
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError, ArithmeticError,
                AssertionError) as exc:
            where = _where("reservations", rowid, f" ({account})", "record")
            return f"{where}: does not decode ({type(exc).__name__})"
    for fill_id, side, *money in rows(
            "fills", "SELECT fill_id, side, quantity, price, fee FROM fills"):
        if side not in {s.value for s in Side}:
            return f"{_where('fills', fill_id, '', 'side')}: {side!r} is not BUY or SELL"
        for field, value in zip(("quantity", "price", "fee"), money, strict=True):
            if (p := _decimal_problem(value)) is not None:
                return f"{_where('fills', fill_id, '', field)}: {p}"
    for order_id, text in rows("orders", "SELECT order_id, record FROM orders"):
        if (bad := _order_problem(order_id, text)) is not None:
            return f"{_where('orders', order_id, '', bad[0])}: {bad[1]}"
    for list_id, ltype, status, ids in rows(
            "order_lists", "SELECT list_id, list_type, status, order_ids FROM order_lists"):
        if ltype not in {t.value for t in ListType}:
            return f"{_where('order_lists', list_id, '', 'list_type')}: unknown {ltype!r}"
        if status not in {s.value for s in ListStatus}:
            return f"{_where('order_lists', list_id, '', 'status')}: unknown {status!r}"
        try:
            parsed = orjson.loads(ids)
        except (orjson.JSONDecodeError, TypeError):
            return f"{_where('order_lists', list_id, '', 'order_ids')}: not JSON"
        if not (isinstance(parsed, list) and all(type(i) is int for i in parsed)):
            return (f"{_where('order_lists', list_id, '', 'order_ids')}: "
                    "not a JSON array of integers")
    for rowid, symbol, interval, trades, *money in rows(
            "klines", "SELECT rowid, symbol, interval, trades, open, high, low, close, volume, "
                      "quote_volume FROM klines"):
        where = f" ({symbol}/{interval})"
        for field, value in zip(_KLINE_DECIMALS, money, strict=True):
            if (p := _decimal_problem(value)) is not None:
                return f"{_where('klines', rowid, where, field)}: {p}"
        if not isinstance(trades, int):
            return f"{_where('klines', rowid, where, 'trades')}: {trades!r} is not an integer"
    for rowid, name, value in rows("counters", "SELECT rowid, name, value FROM counters"):
        if not isinstance(value, int):
            where = _where("counters", rowid, f" ({name})", "value")
            return f"{where}: {value!r} is not an integer"
    return None


def _order_problem(order_id: Any, text: Any) -> tuple[str, str] | None:
    """(field, what is wrong) for a bad ``orders`` row, else None."""
    try:
        record = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        return "record", "not JSON"
    if not isinstance(record, dict):
        return "record", "not a JSON object"
    for name in _RECORD_DECIMALS:
        value = record.get(name)
        if value is None and name not in _REQUIRED:
            continue
        if (p := _decimal_problem(value)) is not None:
            return f"record.{name}", p
    try:
        order = Order.from_record(record)
    except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
        what = f"missing {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        return "record", f"does not decode ({what})"
    if order.order_id != order_id:
        return "record.order_id", f"{order.order_id} is not the row's order_id {order_id}"
    return None
