"""A damaged store is refused at start: exit 1 naming what is wrong, before listening.

The database is a real one (an Engine placed orders into it), then damaged the
way a disk, a bad restore or a foreign hand would: garbage over a table's
pages, a record that is not JSON, a decimal that is not one, a schema version
from the future. The daemon runs as ``python -m tickdesk.cli run``.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.store import SCHEMA_VERSION, Store, migrate
from engine.store_check import StoreCorrupt, verify
from tests.conftest import timeout
from tests.test_kill9 import CONFIG, ROOT
from tests.test_persistence import SYMBOL, Client, quiet_config
from tickdesk.app import Engine


def _populated(path: Path) -> None:
    """A store with an account, a position, a fill, orders (one in an OCO) and a list."""
    with Engine(quiet_config(str(path)), listen=False) as engine:
        c = Client(engine)
        c.request("subscribe_ticker", "SUBSCRIBED", symbol=SYMBOL)
        price = c.until(lambda m: m["type"] == "MARKET_UPDATE")["price"]
        c.place("TRADE", symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.1")
        c.place("NEW", symbol=SYMBOL, side="SELL", type="LIMIT", quantity="0.05",
                price=str(price * 2))
        c.request("place_oco", "ORDER_LIST_UPDATE", symbol=SYMBOL, side="SELL",
                  quantity="0.01", above={"type": "LIMIT_MAKER", "price": str(price * 3)},
                  below={"type": "STOP_LOSS", "stopPrice": str(round(price / 3, 2))})
    assert not Path(str(path) + "-wal").exists()  # checkpointed: all pages in the file


def _sql(path: Path, statement: str) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute(statement)
    finally:
        db.close()


def _garbage_over_table(table: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        db = sqlite3.connect(path)
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?",
                          (table,)).fetchone()[0]
        db.close()
        with open(path, "r+b") as f:
            f.seek((root - 1) * page_size)
            f.write(random.Random(7).randbytes(page_size))
    return damage


DAMAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "corrupted pages": (_garbage_over_table("orders"), "is damaged"),
    "non-JSON record": (lambda p: _sql(p, "UPDATE orders SET record = '{not json' "
                                          "WHERE order_id = 2"),
                        "table orders, row 2, field record: not JSON"),
    "bad decimal": (lambda p: _sql(p, "UPDATE accounts SET realized_pnl = '12.3.4'"),
                    "table accounts, row 1 (default), field realized_pnl: "
                    "'12.3.4' is not a decimal"),
    "future schema version": (lambda p: _sql(p, "UPDATE schema_version SET version = 99"),
                              f"schema version 99 is newer than this tickdesk (knows up to "
                              f"{SCHEMA_VERSION})"),
}


@pytest.fixture(scope="module")
def good_store(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("good") / "good.db"
    _populated(path)
    return path.read_bytes()


@pytest.mark.parametrize("fault", sorted(DAMAGES))
def test_a_damaged_store_exits_1_naming_what_is_wrong_before_listening(
        tmp_path: Path, good_store: bytes, fault: str) -> None:
    db = tmp_path / "bad.db"
    db.write_bytes(good_store)
    damage, expected = DAMAGES[fault]
    damage(db)
    before = db.read_bytes()
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(db=str(db)))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "tickdesk.cli", "run", "--config", str(config)],
                          cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout(30))
    assert proc.returncode == 1, proc.stderr
    assert expected in proc.stderr
    assert str(db) in proc.stderr
    assert "listening on" not in proc.stderr
    assert db.read_bytes() == before  # refused, not "repaired" or migrated


def test_the_good_store_passes_and_starts(tmp_path: Path, good_store: bytes) -> None:
    db = tmp_path / "good.db"
    db.write_bytes(good_store)
    verify(str(db))
    with Engine(quiet_config(str(db)), listen=False) as engine:
        c = Client(engine)
        assert len(c.request("get_orders", "ORDERS", status="all")["orders"]) == 4


@pytest.mark.parametrize(("statement", "expected"), [
    ("UPDATE orders SET record = '[1, 2]' WHERE order_id = 1",
     "table orders, row 1, field record: not a JSON object"),
    ("UPDATE orders SET record = json_set(record, '$.price', 'NaN') WHERE order_id = 2",
     "table orders, row 2, field record.price: 'NaN' is not a finite decimal"),
    ("UPDATE orders SET record = json_set(record, '$.quantity', 5) WHERE order_id = 2",
     "table orders, row 2, field record.quantity: 5 is not a decimal string"),
    ("UPDATE orders SET record = json_remove(record, '$.symbol') WHERE order_id = 3",
     "table orders, row 3, field record: does not decode (missing 'symbol')"),
    ("UPDATE orders SET record = json_set(record, '$.side', 'UP') WHERE order_id = 3",
     "table orders, row 3, field record: does not decode (ValueError"),
    ("UPDATE orders SET record = json_set(record, '$.order_id', 9) WHERE order_id = 3",
     "table orders, row 3, field record.order_id: 9 is not the row's order_id 3"),
    ("UPDATE positions SET entry_price = 'abc'",
     "table positions, row 1 (default/BTCUSDT), field entry_price: 'abc' is not a decimal"),
    ("UPDATE positions SET cost = '1e'",
     "table positions, row 1 (default/BTCUSDT), field cost: '1e' is not a decimal"),
    ("UPDATE balances SET fees = 'abc'",
     "table balances, row 1 (default/USDT), field fees: 'abc' is not a decimal"),
    ("INSERT INTO reservations VALUES ('default', 99, '{\"key\": 99}')",
     "table reservations, row 3 (default), field record: does not decode (KeyError)"),
    ("UPDATE fills SET fee = 'Infinity'",
     "table fills, row 1, field fee: 'Infinity' is not a finite decimal"),
    ("UPDATE fills SET side = 'HOLD'", "table fills, row 1, field side: 'HOLD' is not BUY"),
    ("UPDATE order_lists SET order_ids = 'x'",
     "table order_lists, row 1, field order_ids: not JSON"),
    ("UPDATE order_lists SET list_type = 'OTO'",
     "table order_lists, row 1, field list_type: unknown 'OTO'"),
    ("UPDATE counters SET value = 'many' WHERE name = 'next_order_id'",
     "table counters, row 1 (next_order_id), field value: 'many' is not an integer"),
    ("UPDATE klines SET high = 'x' WHERE interval = '1m'",
     "(BTCUSDT/1m), field high: 'x' is not a decimal"),
    ("UPDATE klines SET quote_volume = 'NaN' WHERE interval = '1d'",
     "(BTCUSDT/1d), field quote_volume: 'NaN' is not a finite decimal"),
    ("UPDATE klines SET trades = 'many' WHERE interval = '4h'",
     "(BTCUSDT/4h), field trades: 'many' is not an integer"),
    ("INSERT INTO schema_version VALUES (2)", "table schema_version has 2 rows"),
    ("UPDATE schema_version SET version = 'two'",
     "table schema_version, row 1, field version: 'two' is not an integer"),
])
def test_verify_names_the_table_row_and_field(tmp_path: Path, good_store: bytes,
                                              statement: str, expected: str) -> None:
    db = tmp_path / "bad.db"
    db.write_bytes(good_store)
    _sql(db, statement)
    with pytest.raises(StoreCorrupt) as err:
        verify(str(db))
    assert expected in str(err.value)
    assert str(err.value).startswith(f"store {db}")


def test_an_engine_refuses_a_damaged_store_and_releases_it(tmp_path: Path,
                                                           good_store: bytes) -> None:
    db = tmp_path / "bad.db"
    db.write_bytes(good_store)
    _sql(db, "UPDATE accounts SET fees = ''")
    engine = Engine(quiet_config(str(db)), listen=False)
    with pytest.raises(StoreCorrupt, match="field fees"):
        engine.start()
    engine.stop()
    _sql(db, "UPDATE accounts SET fees = '0'")  # repaired by the operator
    with Engine(quiet_config(str(db)), listen=False):
        pass  # starts: the failed start released the lock


def test_a_version_1_store_is_checked_then_migrated(tmp_path: Path) -> None:
    db = str(tmp_path / "v1.db")
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, target=1) == 0
    conn.execute("INSERT INTO accounts VALUES ('alice', '10000', '12.5', '0.75')")
    conn.close()
    verify(db)  # no order_lists table yet: nothing to decode there
    with Store(db) as store:
        assert store.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("UPDATE accounts SET fees = '0.7.5'")
    conn.close()
    with pytest.raises(StoreCorrupt, match="table accounts, row 1 \\(alice\\), field fees"):
        verify(db)
