"""Trade in -> ORDER_UPDATE TRADE at the client, with many open orders.

Edge module (a benchmark). A tickdesk Engine listens on 127.0.0.1 with
``symbols`` simulated symbols (the simulated walk is slowed to one pulse per
100 s, so only scripted trades move prices) and ``open_orders`` resting
orders spread evenly over the symbols and over several accounts (the book
caps open orders per account). Each trial places one stop on the next symbol,
then injects one trade through the FeedActor that crosses it, and times
from just before the injection to the moment a websocket-client connection
of the owning account has read the ORDER_UPDATE ``TRADE`` (same process,
CLOCK_MONOTONIC; the client's reader competes for the GIL, so this is an
upper bound). The fill is settled before it is announced: ``store`` is
``"memory"`` (no disk), or ``"full"`` / ``"normal"`` (a SQLite file with that
``store.synchronous``).
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import websocket

from actors.messages import TradeTick
from engine.config import (
    AccountConfig,
    Config,
    FeedConfig,
    ServerConfig,
    SimulatedConfig,
    StoreConfig,
)
from engine.messages import Trade
from tickdesk.app import Engine

__all__ = ["TriggerResult", "run_trigger_bench"]

_PER_ACCOUNT = 190  # resting orders per account (the book allows 200 open per account)


@dataclass(frozen=True, slots=True)
class TriggerResult:
    open_orders: int
    symbols: int
    trials: int
    store: str
    p50_ms: float
    p99_ms: float
    max_ms: float

    HEADER = ("| open orders | symbols | store | trials | p50 ms | p99 ms | max ms |\n"
              "|---|---|---|---|---|---|---|")

    def row(self) -> str:
        return (f"| {self.open_orders} | {self.symbols} | {self.store} | {self.trials} | "
                f"{self.p50_ms:.2f} | {self.p99_ms:.2f} | {self.max_ms:.2f} |")


class _Client:
    """One account's connection; a reader thread records TRADE arrival times."""

    def __init__(self, url: str, token: str) -> None:
        self.ws = websocket.create_connection(f"{url}?token={token}", timeout=30,
                                              skip_utf8_validation=True)
        self.trades: dict[int, int] = {}
        self.prices: dict[str, float] = {}
        self.replies: dict[str, dict[str, Any]] = {}
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while True:
                msg = orjson.loads(self.ws.recv())
                now = time.monotonic_ns()
                with self.cond:
                    if msg["type"] == "MARKET_UPDATE":
                        self.prices[msg["symbol"]] = msg["price"]
                    elif msg.get("executionType") == "TRADE":
                        self.trades[msg["order"]["orderId"]] = now
                    if "id" in msg and msg["type"] in ("ORDER_UPDATE", "ERROR"):
                        self.replies.setdefault(str(msg["id"]), msg)
                    self.cond.notify_all()
        except Exception:
            return

    def request(self, rid: str, cmd: dict[str, Any]) -> dict[str, Any]:
        cmd["id"] = rid
        self.ws.send(orjson.dumps(cmd).decode())
        with self.cond:
            if not self.cond.wait_for(lambda: rid in self.replies, 30):
                raise TimeoutError(f"no reply to {rid}")
            return self.replies.pop(rid)

    def wait_prices(self, want: dict[str, float]) -> None:
        with self.cond:
            if not self.cond.wait_for(
                    lambda: all(self.prices.get(s) == p for s, p in want.items()), 30):
                raise TimeoutError("prices never arrived")

    def wait_trade(self, order_id: int) -> int:
        with self.cond:
            if not self.cond.wait_for(lambda: order_id in self.trades, 30):
                raise TimeoutError(f"order {order_id} never filled")
            return self.trades.pop(order_id)

    def close(self) -> None:
        self.ws.close(timeout=1)
        self.thread.join(2)


def run_trigger_bench(open_orders: int = 1000, symbols: int = 100, trials: int = 200,
                      store: str = "memory") -> TriggerResult:
    n_accounts = max(1, -(-open_orders // _PER_ACCOUNT))
    accounts = tuple(AccountConfig(name=f"acct{i}", token=f"bench-token-{i:04d}")
                     for i in range(n_accounts))
    syms = tuple(f"SYM{i:03d}USDT" for i in range(symbols))
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bench.db") if store != "memory" else ""
        cfg = Config(
            server=ServerConfig(port=0, rate_limit_per_s=100000, rate_limit_burst=100000,
                                account_rate_limit_per_s=100000),
            feed=FeedConfig(symbols=syms, simulated=SimulatedConfig(ticks_per_second=0.01)),
            store=StoreConfig(path=path,
                              synchronous=store if store in ("full", "normal") else "full"),
            accounts=accounts,
        )
        with Engine(cfg) as engine:
            return _run(engine, accounts, syms, open_orders, trials, store)


def _run(engine: Engine, accounts: tuple[AccountConfig, ...], syms: tuple[str, ...],
         open_orders: int, trials: int, store: str) -> TriggerResult:
    clients = [_Client(engine.url, a.token) for a in accounts]
    try:
        # Every symbol starts from a scripted trade at 100.00, seen by a client
        # (the feed tells the order monitor of a trade before any client).
        last = dict.fromkeys(syms, Decimal("100.00"))
        now_ms = engine.clock.now_ms()
        for sym in syms:
            engine.feed.tell(TradeTick(Trade(sym, last[sym], Decimal(1), now_ms, now_ms), now_ms))
        probe = clients[0]
        for sym in syms:
            probe.ws.send(orjson.dumps({"action": "subscribe_ticker", "symbol": sym}).decode())
        probe.wait_prices(dict.fromkeys(syms, 100.0))
        placed = 0
        for k in range(open_orders):
            client = clients[k // _PER_ACCOUNT]
            sym = syms[k % len(syms)]
            rep = client.request(f"r{k}", {
                "action": "place_order", "symbol": sym, "side": "BUY", "type": "LIMIT",
                "quantity": "0.001", "price": str((last[sym] / 2).quantize(Decimal("0.01")))})
            placed += rep.get("executionType") == "NEW"
        owner = clients[-1]
        samples: list[float] = []
        for t in range(trials):
            sym = syms[t % len(syms)]
            price = last[sym]
            stop = (price * Decimal("0.99")).quantize(Decimal("0.01"))
            rep = owner.request(f"s{t}", {"action": "place_order", "symbol": sym, "side": "SELL",
                                          "type": "STOP_LOSS", "quantity": "0.0001",
                                          "stopPrice": str(stop)})
            order_id = int(rep["order"]["orderId"])
            hit = (price * Decimal("0.98")).quantize(Decimal("0.01"))
            now_ms = engine.clock.now_ms()
            trade = Trade(sym, hit, Decimal("0.01"), now_ms, now_ms)
            t0 = time.monotonic_ns()
            engine.feed.tell(TradeTick(trade, now_ms))
            t1 = owner.wait_trade(order_id)
            samples.append((t1 - t0) / 1e6)
            last[sym] = hit
        samples.sort()
        return TriggerResult(placed, len(syms), len(samples), store,
                             statistics.median(samples),
                             samples[min(len(samples) - 1, int(len(samples) * 0.99))],
                             samples[-1])
    finally:
        for c in clients:
            c.close()
