"""The server process: one server (tickdesk, the reference or the floor), a scripted publisher.

:func:`serve` runs in a child process. It starts the server on loopback,
reports its URL, then obeys commands from the parent's pipe:

* ``("run", ticks, rate)`` — publish ``ticks`` scripted trades from this
  (the main) thread, ``rate`` per second, or all at once if ``rate`` is 0.
  Answers ``("ran", first_k, t0s)``: the first tick number and each tick's
  creation time (``time.monotonic_ns()``, packed ``array('q')`` bytes).
  CPU accounting restarts here.
* ``("stats",)`` — ``("stats", user_s, sys_s, threads)``: this process's CPU
  time since the last ``run`` and its OS thread count.
* ``("idle", seconds)`` — publish nothing for ``seconds``; answers
  ``("idle", cpu_s, rss_bytes, threads)``.

The ``ready`` message carries the process's resident set size before any
client connected, so the parent can compute RSS per idle connection.
* ``("mark",)`` — restart CPU accounting (a gateway of ``bench --cluster``,
  which publishes nothing itself); answers ``("marked",)``.
* ``("stop",)`` — stop the server and exit.

Kinds: ``tickdesk``, ``tickdesk-open``, ``reference``, ``floor``, and for
``tickdesk bench --cluster``
``cluster-engine@REDIS_URL`` (the engine role; ticks are published here) and
``cluster-gateway@REDIS_URL`` (a gateway; clients connect to it).

tickdesk is the real :class:`~tickdesk.app.Engine` (simulated source at its
slowest pulse, one symbol); ticks are told to its FeedActor as
:class:`~actors.messages.TradeTick`, as the live feed does. ``tickdesk``
has one account with a token (the configuration a daemon on a real
interface must have), so the bench's readers are anonymous market-data
clients and receive what the reference's and the floor's receive: one
MARKET_UPDATE per tick. ``tickdesk-open`` is the same engine in open mode
(no accounts): every reader then also acts on account ``default`` and
receives its periodic POSITION_UPDATE and PORTFOLIO_UPDATE (the protocol's
``intervals.positions`` and ``intervals.portfolio``), frames the other
servers do not write but that are charged to the MARKET_UPDATEs. The
cluster kinds run open (``bench --cluster`` compares them with
``tickdesk-open``).
"""

from __future__ import annotations

import contextlib
import resource
import threading
import time
from array import array
from collections.abc import Callable
from decimal import Decimal
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from engine.messages import Trade
from tickdesk.bench import PRICE_BASE, SYMBOL

if TYPE_CHECKING:
    from tickdesk.app import Engine

__all__ = ["SERVER_KINDS", "make_trade", "serve", "start_engine"]

SERVER_KINDS = ("tickdesk", "tickdesk-open", "reference", "floor")
#: The token of the bench's one account (its readers never use it).
BENCH_TOKEN = "bench-account-token"
_QTY = Decimal("0.01")


def make_trade(k: int) -> Trade:
    now = int(time.time() * 1000)
    return Trade(SYMBOL, Decimal(PRICE_BASE + k), _QTY, now, now, k)


def os_threads() -> int:
    """This process's thread count as the kernel sees it (Python and native threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return threading.active_count()


def rss_bytes() -> int:
    """This process's resident set size (VmRSS), 0 if unknown."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cpu() -> tuple[float, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime, ru.ru_stime


def start_engine(role: str = "tickdesk", redis_url: str = "", *,
                 open_mode: bool = False) -> Engine:
    """The bench's tickdesk: a started :class:`~tickdesk.app.Engine` on loopback,
    port 0, simulated feed at its slowest pulse, one symbol, in-memory store;
    one account with a token unless ``open_mode`` (see the module docstring)."""
    from engine.config import (
        AccountConfig,
        ClusterConfig,
        Config,
        FeedConfig,
        ServerConfig,
        SimulatedConfig,
        StoreConfig,
    )
    from tickdesk.app import Engine

    cluster = (ClusterConfig() if role == "tickdesk"
               else ClusterConfig(role=role.removeprefix("cluster-"), redis_url=redis_url))
    cfg = Config().with_overrides(
        accounts=() if open_mode else (AccountConfig(name="bench", token=BENCH_TOKEN),),
        cluster=cluster,
        # All bench clients come from 127.0.0.1: lift the per-address limit.
        server=ServerConfig(host="127.0.0.1", port=0, max_connections=100_000,
                            max_connections_per_ip=100_000),
        store=StoreConfig(path=""),  # fan-out is measured, not the disk
        # The slowest simulated pulse (every 100 s): one start-up trade, then quiet.
        feed=FeedConfig(source="simulated", symbols=(SYMBOL,),
                        simulated=SimulatedConfig(ticks_per_second=0.01)),
    )
    return Engine(cfg).start()


def _start(kind: str) -> tuple[str, Callable[[Trade], None], Callable[[], None]]:
    role, _, redis_url = kind.partition("@")  # "cluster-engine@redis://..." (bench --cluster)
    if role in ("tickdesk", "tickdesk-open", "cluster-engine", "cluster-gateway"):
        from actors.messages import TradeTick

        # (a cluster's engine and gateways run open, as they always did: the
        # failover's clients resume their open-mode sessions)
        engine = start_engine("tickdesk" if role == "tickdesk-open" else role, redis_url,
                              open_mode=role != "tickdesk")

        def publish(trade: Trade) -> None:
            engine.feed.tell(TradeTick(trade, trade.event_time))

        return engine.url, publish, engine.stop
    if kind == "reference":
        from tickdesk.bench.reference_server import ReferenceServer

        ref = ReferenceServer().start()
        now = int(time.time() * 1000)
        ref.publish(Trade(SYMBOL, Decimal("86000"), _QTY, now, now, 0))  # a first price
        return ref.url, ref.publish, ref.stop
    if kind == "floor":
        from tickdesk.bench.floor_server import FloorServer

        floor = FloorServer().start()
        now = int(time.time() * 1000)
        floor.publish(Trade(SYMBOL, Decimal("86000"), _QTY, now, now, 0))  # a first price
        return floor.url, floor.publish, floor.stop
    raise ValueError(f"unknown server kind {kind!r}")


def serve(kind: str, pipe: Connection) -> None:
    """Process entry point (see the module docstring)."""
    try:
        url, publish, stop = _start(kind)
    except Exception as exc:
        pipe.send(("error", f"{kind} failed to start: {exc!r}"))
        return
    next_k = 0
    cpu0 = _cpu()
    try:
        pipe.send(("ready", url, rss_bytes()))
        while True:
            if not pipe.poll(600):
                return  # the parent is gone
            cmd: Any = pipe.recv()
            if cmd[0] == "stop":
                return
            if cmd[0] == "run":
                _, ticks, rate = cmd
                cpu0 = _cpu()
                t0s = array("q")
                first = next_k
                period = 1.0 / rate if rate > 0 else 0.0
                start = time.monotonic()
                for i in range(ticks):
                    if period:
                        wait = start + i * period - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)
                    t0s.append(time.monotonic_ns())
                    publish(make_trade(next_k))
                    next_k += 1
                pipe.send(("ran", first, t0s.tobytes()))
            elif cmd[0] == "idle":
                before = sum(_cpu())
                time.sleep(float(cmd[1]))
                pipe.send(("idle", sum(_cpu()) - before, rss_bytes(), os_threads()))
            elif cmd[0] == "mark":  # CPU accounting restarts here (a gateway's)
                cpu0 = _cpu()
                pipe.send(("marked",))
            elif cmd[0] == "stats":
                user, sys_ = _cpu()
                pipe.send(("stats", user - cpu0[0], sys_ - cpu0[1], os_threads()))
    finally:
        with contextlib.suppress(Exception):
            stop()
        pipe.close()
