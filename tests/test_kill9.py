"""``kill -9`` the real daemon and restart it on the same database.

The daemon (``python -m tickdesk.cli run``) runs as a subprocess on a loopback
port it picks itself (``server.port = 0``; the URL is read from its log line).
The simulated feed is slowed to one pulse per 100 s, so after its first trade
the market is still and everything that changes is what this test asks for:
the state after the restart must be exactly what was announced before the
kill, and no order may fill twice. Every wait is bounded.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import websocket

from engine.store import CRASH_AFTER_SETTLE_ENV, Store

ROOT = Path(__file__).resolve().parents[1]
WAIT = 5.0
URL_LINE = re.compile(r"listening on (ws://\S+)")
CRASH_LINE = re.compile(r"exiting after the settle of (\d+) orders")

CONFIG = """
[server]
host = "127.0.0.1"
port = 0

[feed]
source = "simulated"
symbols = ["BTCUSDT"]

[feed.simulated]
seed = 7
ticks_per_second = 0.01

[intervals]
positions_s = 3600
portfolio_s = 3600

[store]
path = {db!r}
"""


class Daemon:
    """One ``tickdesk run`` process and its log."""

    def __init__(self, config: Path, cwd: Path, extra_env: dict[str, str] | None = None) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", **(extra_env or {}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tickdesk.cli", "run", "--config", str(config)],
            cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.url = self._wait_url()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def _wait_url(self) -> str:
        while True:
            try:
                line = self.lines.get(timeout=WAIT * 2)
            except queue.Empty:
                raise AssertionError(f"no URL logged: {self.log}") from None
            if line is None:
                raise AssertionError(f"daemon exited early: {''.join(self.log)}")
            self.log.append(line)
            found = URL_LINE.search(line)
            if found:
                return found.group(1)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=WAIT) == -signal.SIGKILL

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=WAIT * 2)

    def ensure_dead(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)


class WsClient:
    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=WAIT, skip_utf8_validation=True)
        self.ids = iter(range(1, 10_000))
        self.announced: dict[int, dict[str, Any]] = {}
        self.trades = 0
        assert self.recv()["type"] == "CONNECTED"

    def recv(self) -> dict[str, Any]:
        msg: dict[str, Any] = orjson.loads(self.ws.recv())
        if msg["type"] == "ORDER_UPDATE":
            self.announced[msg["order"]["orderId"]] = msg["order"]
            self.trades += msg["executionType"] == "TRADE"
        assert msg["type"] != "ERROR", msg
        return msg

    def send(self, action: str, **body: Any) -> int:
        rid = next(self.ids)
        self.ws.send(orjson.dumps({"action": action, "id": rid, **body}).decode())
        return rid

    def until(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        while True:  # each recv is bounded by the socket timeout
            msg = self.recv()
            if predicate(msg):
                return msg

    def ask(self, action: str, answer: str, **body: Any) -> dict[str, Any]:
        rid = self.send(action, **body)
        return self.until(lambda m: m.get("id") == rid and m["type"] == answer)

    def place(self, expect: str, action: str = "place_order", **body: Any) -> dict[str, Any]:
        """Send and wait for this command's ORDER_UPDATE with ``expect`` (the
        acknowledgement: it is only sent once committed)."""
        rid = self.send(action, **body)
        msg = self.until(lambda m: m.get("id") == rid and m["type"] == "ORDER_UPDATE"
                         and m["executionType"] in (expect, "REJECTED"))
        assert msg["executionType"] == expect, msg
        return msg

    def state(self) -> dict[str, Any]:
        return {
            "orders": self.ask("get_orders", "ORDERS", status="all")["orders"],
            "portfolio": self.ask("get_portfolio", "PORTFOLIO_UPDATE")["portfolio"],
            "positions": self.ask("get_positions", "POSITION_UPDATE")["positions"],
        }

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    running: list[Daemon] = []
    yield running
    for d in running:
        d.ensure_dead()


def test_kill9_then_restart_keeps_what_was_announced(tmp_path: Path,
                                                    daemons: list[Daemon]) -> None:
    db = tmp_path / "kill9.db"
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(db=str(db)))

    first = Daemon(config, tmp_path)
    daemons.append(first)
    c = WsClient(first.url)
    c.ask("subscribe_ticker", "SUBSCRIBED", symbol="BTCUSDT")
    p = Decimal(str(c.until(lambda m: m["type"] == "MARKET_UPDATE")["price"]))
    cent = Decimal("0.01")
    c.place("TRADE", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.1")
    c.place("TRADE", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.05")
    c.place("NEW", symbol="BTCUSDT", side="SELL", type="LIMIT", quantity="0.05",
            price=str(p * 2), clientOrderId="far-sell")
    # the far sell reserves the whole long: this stop opens a short (reserving
    # buying power), as does the OCO (docs/trading.md, Reservations)
    c.place("NEW", symbol="BTCUSDT", side="SELL", type="STOP_LOSS", quantity="0.01",
            trailingDelta=500)
    c.place("NEW", "place_oco", symbol="BTCUSDT", side="SELL", quantity="0.01",
            above={"type": "LIMIT_MAKER", "price": str(p * 3)},
            below={"type": "STOP_LOSS", "stopPrice": str((p / 3).quantize(cent))})
    c.place("NEW", "place_bracket", symbol="BTCUSDT", side="BUY", quantity="0.01",
            entry={"type": "LIMIT", "price": str((p / 2).quantize(cent))},
            takeProfit={"price": str(p)},
            stopLoss={"stopPrice": str((p / 4).quantize(cent))})
    before = c.state()
    assert {o["orderId"]: o for o in before["orders"]} == c.announced
    announced_trades = c.trades
    # two MARKET orders: at least one fill each (more when one walks the book's levels)
    assert announced_trades >= 2
    first.kill9()
    c.close()

    with Store(str(db)) as store:  # what survived, read directly
        assert len(store.fills()) == announced_trades

    second = Daemon(config, tmp_path)
    daemons.append(second)
    c2 = WsClient(second.url)
    c2.ask("subscribe_ticker", "SUBSCRIBED", symbol="BTCUSDT")
    assert Decimal(str(c2.until(lambda m: m["type"] == "MARKET_UPDATE")["price"])) == p
    after = c2.state()
    # The same seeded first trade: the marks are the same, so even the
    # mark-dependent fields must match exactly.
    assert after == before
    assert c2.announced == {}  # nothing was re-executed on restart
    new = c2.place("TRADE", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.01")
    assert new["order"]["orderId"] > max(c.announced)
    c2.close()
    assert second.terminate() == 0
    with Store(str(db)) as store:
        fills = store.fills()
    new_id = new["order"]["orderId"]
    # what was announced before the kill, once each; the new order's fills add up to it
    assert len([f for f in fills if f.order_id != new_id]) == announced_trades
    assert sum(f.quantity for f in fills if f.order_id == new_id) == Decimal("0.01")
    assert len({f.fill_id for f in fills}) == len(fills)  # nothing recorded twice


def test_kill9_right_after_a_group_commit_announced_none_of_it(tmp_path: Path,
                                                              daemons: list[Daemon]) -> None:
    """A burst of orders on one connection: while the first settles (an fsync),
    the others wait in the desk and settle as one group. The daemon exits (the
    store's test hook, like ``kill -9``) right after the commit of the group
    holding the last order: none of that group was announced, everything
    announced is stored, and the restarted daemon has every stored order once."""
    db = tmp_path / "group.db"
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(db=str(db)))
    first = Daemon(config, tmp_path, {CRASH_AFTER_SETTLE_ENV: "crash"})
    daemons.append(first)
    c = WsClient(first.url)
    c.ask("subscribe_ticker", "SUBSCRIBED", symbol="BTCUSDT")
    p = Decimal(str(c.until(lambda m: m["type"] == "MARKET_UPDATE")["price"]))
    c.ask("unsubscribe_ticker", "UNSUBSCRIBED", symbol="BTCUSDT")
    price = str((p / 2).quantize(Decimal("0.01")))
    c.place("NEW", symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="0.001", price=price,
            clientOrderId="alone")  # settled alone, and announced
    names = [f"o{i}" for i in range(1, 12)] + ["crash"]
    for name in names:
        c.send("place_order", symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="0.001",
               price=price, clientOrderId=name)
    with pytest.raises((websocket.WebSocketException, OSError)):
        while True:  # until the daemon is gone (each recv bounded by the socket timeout)
            c.recv()
    assert first.proc.wait(timeout=WAIT) == 137
    while True:  # the rest of its log, to the end (the pump puts None)
        line = first.lines.get(timeout=WAIT)
        if line is None:
            break
        first.log.append(line)
    crash = [m for line in first.log if (m := CRASH_LINE.search(line))]
    assert len(crash) == 1, "".join(first.log)
    group = int(crash[0].group(1))
    announced = {o["clientOrderId"] for o in c.announced.values()}
    c.close()

    with Store(str(db)) as store:
        stored = [o.client_order_id for o in store.load().orders]
    assert "alone" in announced
    assert set(announced) <= set(stored)  # nothing acknowledged was lost
    assert stored[-1] == "crash" and "crash" not in announced
    # the last transaction held several orders, and none of them was announced
    assert group >= 2, f"no group formed: {group} order(s) in the last settle"
    assert not set(stored[-group:]) & announced

    second = Daemon(config, tmp_path)
    daemons.append(second)
    c2 = WsClient(second.url)
    orders = c2.ask("get_orders", "ORDERS", status="all")["orders"]
    assert [o["clientOrderId"] for o in orders] == stored  # each once, none re-executed
    c2.close()
    assert second.terminate() == 0
