"""One daemon per store: a second ``tickdesk run`` on the same file exits 2.

Real processes (``python -m tickdesk.cli run`` on loopback ports they pick
themselves, as in ``test_kill9``), plus the lock and the Engine in-process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import StoreConfig
from engine.store_lock import StoreInUse, StoreLock
from tests.conftest import make_config, timeout
from tests.test_kill9 import CONFIG, ROOT, Daemon, WsClient
from tickdesk import Engine


def _run_second(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "tickdesk.cli", "run", "--config", str(config)],
                          cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout(30))


def test_a_second_daemon_on_the_same_store_exits_2_naming_the_owner(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(db=str(db)))
    first = Daemon(config, tmp_path)
    try:
        c = WsClient(first.url)
        c.ask("subscribe_ticker", "SUBSCRIBED", symbol="BTCUSDT")
        c.until(lambda m: m["type"] == "MARKET_UPDATE")
        c.place("TRADE", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.1")

        second = _run_second(config, tmp_path)
        assert second.returncode == 2, second.stderr
        assert f"store {db} is in use by pid {first.proc.pid}" in second.stderr
        assert "listening on" not in second.stderr

        # The first daemon is untouched: it still answers and places orders.
        c.place("TRADE", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.05")
        assert len(c.ask("get_orders", "ORDERS", status="all")["orders"]) == 2
        c.close()
        # kill -9 leaves the .lock file behind, but the kernel dropped the lock.
        first.kill9()
        assert (tmp_path / "shared.db.lock").exists()
        third = Daemon(config, tmp_path)
        try:
            c3 = WsClient(third.url)
            assert len(c3.ask("get_orders", "ORDERS", status="all")["orders"]) == 2
            c3.close()
            assert third.terminate() == 0
        finally:
            third.ensure_dead()
    finally:
        first.ensure_dead()


def test_the_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    with StoreLock(db) as held:
        assert held.held
        assert Path(db + ".lock").read_text().strip() == str(os.getpid())
        with pytest.raises(StoreInUse) as err:
            StoreLock(db).acquire()
        assert str(err.value) == f"store {db} is in use by pid {os.getpid()}"
        assert err.value.pid == os.getpid()
    again = StoreLock(db).acquire()  # released: free again
    again.release()
    again.release()  # idempotent


def test_a_second_engine_on_the_same_file_does_not_start(tmp_path: Path) -> None:
    cfg = make_config(store=StoreConfig(path=str(tmp_path / "e.db")))
    with Engine(cfg, listen=False):
        other = Engine(cfg, listen=False)
        with pytest.raises(StoreInUse):
            other.start()
        other.stop()
    # Stopped: the file is free for the next engine.
    with Engine(cfg, listen=False) as eng:
        assert eng.connect() is not None


def test_in_memory_stores_take_no_lock() -> None:
    cfg = make_config(store=StoreConfig(path=""))
    with Engine(cfg, listen=False) as a, Engine(cfg, listen=False) as b:
        assert a.store_path != b.store_path  # each its own private database


def test_a_store_in_a_missing_directory_exits_1_naming_it(tmp_path: Path) -> None:
    db = tmp_path / "no-such-dir" / "x.db"
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(db=str(db)))
    proc = _run_second(config, tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert f"cannot create the lock file {db}.lock: No such file or directory" in proc.stderr
    assert not db.parent.exists()
