"""A store that cannot write: every command answered STORE_UNAVAILABLE, nothing
changed, no crash loop, a truthful ``/healthz``, and recovery by itself.

Fault injection that is real, on a real daemon (``python -m tickdesk.cli
run``), two ways:

* **file-size limit**: ``RLIMIT_FSIZE`` set on the running daemon from
  outside with ``prlimit(2)`` (as ``ulimit -f`` or systemd's ``LimitFSIZE=``
  would) at the current end of its write-ahead log: the kernel refuses the
  next append (``EFBIG``, which SQLite reports as ``SQLITE_IOERR_WRITE``;
  the daemon ignores ``SIGXFSZ``, so it is told, not killed). Healing lifts
  the limit.
* **full disk**: the store lives on a 4 MB tmpfs that another file fills up
  (``ENOSPC``: ``SQLITE_FULL``). Healing deletes the file. Skipped where
  mounting is not allowed.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.store import Store
from tests.conftest import timeout, wait_until
from tests.fakes.binance_rest import shared_rest
from tests.fakes.binance_upstream import FakeBinanceUpstream
from tests.test_kill9 import Daemon

CONFIG = """
[server]
host = "127.0.0.1"
port = 0
rate_limit_per_s = 1000.0
rate_limit_burst = 1000
account_rate_limit_per_s = 1000.0

[feed]
source = "simulated"
symbols = ["BTCUSDT"]

[feed.simulated]
seed = 7
ticks_per_second = {tps}

[intervals]
positions_s = 0.2
portfolio_s = 0.3

[store]
path = {db!r}
"""

N = 25


class Client:
    """A WebSocket client that keeps every message it got."""

    def __init__(self, url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(url, timeout=timeout(5))
        self.ids = iter(range(1, 100_000))
        self.seen: list[dict[str, Any]] = []
        assert self.recv()["type"] == "CONNECTED"

    def recv(self) -> dict[str, Any]:
        msg: dict[str, Any] = orjson.loads(self.ws.recv())
        self.seen.append(msg)
        return msg

    def send(self, action: str, **body: Any) -> int:
        rid = next(self.ids)
        self.ws.send(orjson.dumps({"action": action, "id": rid, **body}).decode())
        return rid

    def answer(self, rid: int | None, *types: str, seconds: float = 20.0) -> dict[str, Any]:
        """The first message with this ``id`` (and one of ``types``), within ``seconds``."""
        deadline = time.monotonic() + timeout(seconds)
        while time.monotonic() < deadline:  # each recv is bounded by the socket timeout
            msg = self.recv()
            if msg.get("id") == rid and (not types or msg["type"] in types):
                return msg
        raise AssertionError(f"no {types or 'answer'} for id {rid} within {seconds} s")

    def ask(self, action: str, *types: str, **body: Any) -> dict[str, Any]:
        return self.answer(self.send(action, **body), *types)

    def close(self) -> None:
        self.ws.close()


def _http(url: str, path: str) -> tuple[int, bytes]:
    base = url.replace("ws://", "http://", 1).split("/api/", 1)[0]
    try:
        with urllib.request.urlopen(base + path, timeout=timeout(5)) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()


def _metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = _http(url, "/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}


def _rest_of_log(d: Daemon) -> list[str]:
    """The daemon's stderr after its URL line, up to its exit (it has exited)."""
    lines: list[str] = []
    while (line := d.lines.get(timeout=timeout(5))) is not None:
        lines.append(line)
    return lines


class FileSizeLimit:
    """``RLIMIT_FSIZE`` at the write-ahead log's current end, set on the
    running daemon from outside: the kernel refuses the next append (EFBIG,
    which SQLite reports as SQLITE_IOERR_WRITE). Healing lifts the limit."""

    kind = "io"
    error = "io: disk I/O error"

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path

    def break_(self, pid: int, db: Path) -> None:
        size = Path(str(db) + "-wal").stat().st_size
        _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (size, hard))

    def heal(self, pid: int) -> None:
        _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))

    def close(self) -> None:
        pass


class FullDisk:
    """A small tmpfs holding the store, filled up by another file (ENOSPC:
    SQLITE_FULL). Healing deletes the filler. Needs permission to mount."""

    kind = "full"
    error = "full: database or disk is full"

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "disk"
        self.dir.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs",
                                  str(self.dir)], capture_output=True, text=True,
                                 timeout=timeout(10))
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
        self.filler = self.dir / "filler"

    def break_(self, pid: int, db: Path) -> None:
        chunk = b"\1" * 4096
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            for _ in range(4096):  # at most 16 MB: more than the tmpfs holds
                os.write(fd, chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        else:
            raise AssertionError("the tmpfs never filled up")
        finally:
            os.close(fd)

    def heal(self, pid: int) -> None:
        self.filler.unlink()

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.dir)], capture_output=True,
                       timeout=timeout(10))


Fault = FileSizeLimit | FullDisk


@pytest.fixture(params=[FileSizeLimit, FullDisk], ids=["file-size limit", "full disk"])
def fault(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Fault]:
    f = request.param(tmp_path)
    try:
        yield f
    finally:
        f.close()


@pytest.fixture
def daemon(tmp_path: Path, fault: Fault,
           request: pytest.FixtureRequest) -> Iterator[tuple[Daemon, Path]]:
    db = fault.dir / "full.db"
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(db=str(db), tps=getattr(request, "param", 0.01)))
    d = Daemon(config, tmp_path)
    try:
        yield d, db
    finally:
        d.ensure_dead()


def test_commands_while_the_store_cannot_write(daemon: tuple[Daemon, Path],
                                               fault: Fault) -> None:
    d, db = daemon
    c = Client(d.url)
    c.ask("subscribe_ticker", "SUBSCRIBED", symbol="BTCUSDT")
    price = Decimal(str(c.answer(None, "MARKET_UPDATE")["price"]))
    resting = c.ask("place_order", "ORDER_UPDATE", symbol="BTCUSDT", side="SELL", type="LIMIT",
                    quantity="0.05", price=str(price * 2), clientOrderId="resting")
    assert resting["executionType"] == "NEW"
    before = {k: c.ask(a, t)[k] for a, t, k in (
        ("get_orders", "ORDERS", "orders"), ("get_portfolio", "PORTFOLIO_UPDATE", "portfolio"),
        ("get_positions", "POSITION_UPDATE", "positions"))}
    assert _http(d.url, "/healthz")[0] == 200

    fault.break_(d.proc.pid, db)
    commands: list[tuple[str, dict[str, Any]]] = []
    for i in range(N):
        if i % 5 == 0:
            commands.append(("cancel_order", {"clientOrderId": "resting"}))
        elif i % 5 == 1:
            commands.append(("place_oco", {
                "symbol": "BTCUSDT", "side": "SELL", "quantity": "0.01",
                "above": {"type": "LIMIT_MAKER", "price": str(price * 3)},
                "below": {"type": "STOP_LOSS", "stopPrice": str(round(price / 3, 2))}}))
        else:
            kind = ("MARKET", "LIMIT", "STOP_LOSS")[i % 3]
            body: dict[str, Any] = {"symbol": "BTCUSDT", "side": "BUY", "type": kind,
                                    "quantity": "0.01"}
            if kind == "LIMIT":
                body["price"] = str(round(price / 2, 2))
            if kind == "STOP_LOSS":
                body["stopPrice"] = str(price * 2)
            commands.append(("place_order", body))
    sent = [c.send(action, **body) for action, body in commands]
    answers = {rid: c.answer(rid) for rid in sent}
    pong = c.ask("ping", "PONG")  # everything sent before it has been answered
    assert [m for m in c.seen if m.get("id") in answers and m not in answers.values()] == []
    assert {m["code"] for m in answers.values()} == {"STORE_UNAVAILABLE"}
    assert all(m["type"] == "ERROR" for m in answers.values())
    assert [m for m in c.seen if m["type"] in ("ORDER_UPDATE", "ORDER_LIST_UPDATE")
            and m["timestamp"] >= resting["timestamp"] and m is not resting] == []
    assert pong["type"] == "PONG"

    status, body_bytes = _http(d.url, "/healthz")
    health = json.loads(body_bytes)
    assert status == 503 and health["status"] == "failing"
    assert health["reasons"] == [f"store cannot write ({fault.error})"]
    assert health["store"]["writable"] is False
    # The probe (once a second on the timer pulses) writes for real, so it
    # fails too and the store stays unwritable: no false recovery.
    errors = ("tickdesk_store_errors_total", (("kind", fault.kind),))
    refused = _metrics(d.url)[errors]
    assert refused >= 1  # the first command's settle (the others are refused at once)
    wait_until(lambda: _metrics(d.url)[errors] > refused, what="a failed probe")
    assert _http(d.url, "/healthz")[0] == 503
    metrics = _metrics(d.url)
    assert metrics[("tickdesk_store_writable", ())] == 0
    assert metrics[("tickdesk_actor_restarts_total", (("actor", "order_monitor"),))] == 0
    assert metrics[("tickdesk_actor_restarts_total", (("actor", "portfolio"),))] == 0
    # Nothing changed in memory either.
    after = {k: c.ask(a, t)[k] for a, t, k in (
        ("get_orders", "ORDERS", "orders"), ("get_portfolio", "PORTFOLIO_UPDATE", "portfolio"),
        ("get_positions", "POSITION_UPDATE", "positions"))}
    assert after == before

    fault.heal(d.proc.pid)
    # The probe on the timer pulses sees it first: healthy again without a command.
    wait_until(lambda: _http(d.url, "/healthz")[0] == 200, what="/healthz 200 again")
    trade = c.ask("place_order", "ORDER_UPDATE", symbol="BTCUSDT", side="BUY", type="MARKET",
                  quantity="0.01")
    assert trade["executionType"] == "NEW"
    assert c.answer(trade["id"], "ORDER_UPDATE")["executionType"] == "TRADE"
    assert c.ask("cancel_order", "ORDER_UPDATE", clientOrderId="resting")["order"][
        "status"] == "CANCELED"
    assert trade["order"]["orderId"] == resting["order"]["orderId"] + 1  # no id was lost
    c.close()
    assert d.terminate() == 0
    log = _rest_of_log(d)
    # One ERROR line when it broke, one INFO line when it healed; no tracebacks.
    assert len([line for line in log if f"settle failed ({fault.error})" in line]) == 1
    assert len([line for line in log if "level=info" in line and "writes again" in line]) == 1
    assert not [line for line in log if "Traceback" in line]
    with Store(str(db)) as store:
        state = store.load()
        fills = store.fills()
    assert [(o.order_id, o.status.value) for o in state.orders] == [
        (resting["order"]["orderId"], "CANCELED"), (trade["order"]["orderId"], "FILLED")]
    assert len(fills) == 1


BINANCE_CONFIG = """
[server]
host = "127.0.0.1"
port = 0

[feed]
source = "binance"
symbols = ["BTCUSDT"]
dynamic_symbols = false

[feed.binance]
url = {url!r}
rest_url = {rest!r}

[store]
path = {db!r}
"""


@pytest.fixture
def scripted_daemon(tmp_path: Path, fault: Fault
                    ) -> Iterator[tuple[Daemon, Path, FakeBinanceUpstream]]:
    """A daemon fed by a scripted fake Binance upstream: it trades only when
    the test pushes a trade, so every price move is the test's."""
    db = fault.dir / "full.db"
    config = tmp_path / "config.toml"
    with FakeBinanceUpstream(known_symbols={"BTCUSDT"}) as fake:
        config.write_text(BINANCE_CONFIG.format(url=fake.base_url, rest=shared_rest().base_url,
                                                db=str(db)))
        d = Daemon(config, tmp_path)
        try:
            yield d, db, fake
        finally:
            d.ensure_dead()


def test_trades_while_the_store_cannot_write_announce_nothing_then_resume(
        scripted_daemon: tuple[Daemon, Path, FakeBinanceUpstream], fault: Fault) -> None:
    """A trailing stop moves (AMENDED) on a new high. While the store cannot
    write, that move is refused by the store and never announced; the order
    keeps working from its stored state and moves again, from the next new
    high, once the store writes."""
    d, db, fake = scripted_daemon
    c = Client(d.url)
    c.ask("subscribe_ticker", "SUBSCRIBED", symbol="BTCUSDT")
    assert fake.wait_until(lambda: fake.subscribers("btcusdt@aggTrade") == 1,
                           timeout=timeout(10))
    fake.push_trade("BTCUSDT", "50000", "0.5")
    fake.push_trade("BTCUSDT", "50000", "0.5")  # the first price shows with the second
    while c.answer(None, "MARKET_UPDATE")["price"] != 50000:
        pass
    placed = c.ask("place_order", "ORDER_UPDATE", symbol="BTCUSDT", side="SELL",
                   type="STOP_LOSS", quantity="0.01", trailingDelta=2000)
    assert placed["executionType"] == "NEW"
    order_id = placed["order"]["orderId"]
    fault.break_(d.proc.pid, db)
    marker = c.ask("ping", "PONG")  # messages after it were sent after the limit
    errors = ("tickdesk_store_errors_total", (("kind", fault.kind),))
    fake.push_trade("BTCUSDT", "50100", "0.5")  # a new high: the stop would move
    wait_until(lambda: _metrics(d.url)[errors] >= 1,
               seconds=20, what="the trade's settle refused by the store")
    quiet = c.ask("ping", "PONG")  # drain what arrived meanwhile
    during = c.seen[c.seen.index(marker) + 1: c.seen.index(quiet)]
    assert [m for m in during if m["type"] == "ORDER_UPDATE"] == []
    assert 50100 in [m["price"] for m in during if m["type"] == "MARKET_UPDATE"]  # it traded
    assert _metrics(d.url)[("tickdesk_actor_restarts_total", (("actor", "order_monitor"),))] == 0

    fault.heal(d.proc.pid)
    wait_until(lambda: _http(d.url, "/healthz")[0] == 200, what="the store writes again")
    fake.push_trade("BTCUSDT", "50200", "0.5")  # the next new high
    moved = c.answer(None, "ORDER_UPDATE")
    assert moved["order"]["orderId"] == order_id
    assert moved["executionType"] == "AMENDED"
    # highest 50,200; stop at 50,200 x (1 - 2000/10000) (docs/trading.md, Trailing)
    assert Decimal(str(moved["order"]["trailingExtreme"])) == Decimal(50200)
    assert Decimal(str(moved["order"]["currentStopPrice"])) == Decimal(50200) * Decimal("0.8")
    rid = c.send("get_orders", status="all")
    orders = c.answer(rid, "ORDERS")["orders"]
    announced = [m for m in c.seen[:-1] if m["type"] == "ORDER_UPDATE"]
    assert orders == [announced[-1]["order"]]  # what the book holds is what was announced
    c.close()


def test_without_probes_the_next_command_after_a_second_retries(tmp_path: Path) -> None:
    """Timer pulses off (no probes): the store's recovery is found by the
    commands themselves, at most one settle attempt a second."""
    db = tmp_path / "quiet.db"
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(db=str(db), tps=0.01)
                      .replace("positions_s = 0.2", "positions_s = 3600")
                      .replace("portfolio_s = 0.3", "portfolio_s = 3600"))
    fault = FileSizeLimit(tmp_path)
    d = Daemon(config, tmp_path)
    try:
        c = Client(d.url)
        c.ask("subscribe_ticker", "SUBSCRIBED", symbol="BTCUSDT")
        c.answer(None, "MARKET_UPDATE")
        order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}
        assert c.ask("place_order", **order)["executionType"] == "NEW"
        fault.break_(d.proc.pid, db)
        assert c.ask("place_order", **order)["code"] == "STORE_UNAVAILABLE"
        fault.heal(d.proc.pid)
        assert _http(d.url, "/healthz")[0] == 503  # nothing has written since
        answers: list[dict[str, Any]] = []
        wait_until(lambda: answers.append(c.ask("place_order", **order))
                   or answers[-1]["type"] == "ORDER_UPDATE", what="a command that settles")
        assert {m.get("code") for m in answers[:-1]} <= {"STORE_UNAVAILABLE"}
        assert answers[-1]["executionType"] == "NEW"
        assert _http(d.url, "/healthz")[0] == 200
        c.close()
        assert d.terminate() == 0
    finally:
        d.ensure_dead()
    with Store(str(db)) as store:
        assert len(store.fills()) == 2  # the first order and the one after recovery
