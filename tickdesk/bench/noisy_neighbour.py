"""Noisy neighbour: account B's ``place_order`` -> ``NEW`` while account A floods.

Three kinds of process, all on loopback:

* the **daemon** (:func:`_daemon`): a real :class:`~tickdesk.app.Engine` with two
  accounts (``flood`` and ``probe``), the simulated feed and a SQLite store
  in a temporary directory (so every accepted order is a settle transaction,
  as in production), default limits otherwise;
* the **flood** (:func:`flood`): account A on ``--flood-conns`` connections
  (default 50), each sending ``place_order`` (a resting LIMIT buy) at
  ``--flood-rate`` per connection (default: the per-connection limit,
  ``server.rate_limit_per_s``); it reads and counts every answer;
* the **probe**, this process: account B on one connection places a resting
  LIMIT buy, records ``monotonic_ns()`` from just before the ``send`` to just
  after the ``recv`` that brought its ``ORDER_UPDATE NEW``, then cancels it;
  ``--probes`` times, ``--probe-rate`` per second.

The probe runs with the daemon idle, then while the flood runs, alternating
``--rounds`` times (so a slow phase of a shared machine hits both), and
prints p50/p99/max of both and the flood/idle ratio of the p99 (the
issue's target: within 2x). Nothing is asserted; ``--quick`` (a few probes,
two flood connections) is what the test suite runs to prove that the bench
works. Every wait is bounded; the children are stopped, then killed.

    python -m tickdesk.bench.noisy_neighbour [--probes 300] [--flood-conns 50]
        [--json PATH] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing as mp
import os
import selectors
import socket
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from tickdesk.bench import SYMBOL
from tickdesk.bench.lean_client import handshake, masked_frame, parse_frames

__all__ = ["Probe", "flood", "main", "order_frame", "pct"]

_CTX = mp.get_context("spawn")
FLOOD_TOKEN = "flood-token-000001"
PROBE_TOKEN = "probe-token-000001"
_QTY = "0.001"


def _daemon(store_dir: str, synchronous: str, pipe: Connection) -> None:
    """The daemon process: the Engine until the parent says stop (or is gone)."""
    from engine.config import (
        AccountConfig,
        Config,
        FeedConfig,
        ServerConfig,
        SimulatedConfig,
        StoreConfig,
    )
    from tickdesk.app import Engine

    big = (("USDT", Decimal(100_000_000)),)
    cfg = Config().with_overrides(
        server=ServerConfig(host="127.0.0.1", port=0),
        store=StoreConfig(path=str(Path(store_dir) / "bench.db"), synchronous=synchronous),
        feed=FeedConfig(source="simulated", symbols=(SYMBOL,),
                        simulated=SimulatedConfig(ticks_per_second=5.0)),
        accounts=(AccountConfig(name="flood", token=FLOOD_TOKEN, balances=big),
                  AccountConfig(name="probe", token=PROBE_TOKEN, balances=big)),
    )
    try:
        engine = Engine(cfg).start()
    except Exception as exc:
        pipe.send(("error", f"daemon failed to start: {exc!r}"))
        return
    try:
        pipe.send(("ready", engine.url, os.getpid(), cfg.server.rate_limit_per_s))
        while pipe.poll(3600):
            cmd = pipe.recv()[0]
            if cmd == "stop":
                break
            if cmd == "stats":  # the store's settle transactions and the outcomes in them
                stats = engine.store_health.statistics()
                pipe.send(("stats", getattr(stats, "settle_commits", None),
                           getattr(stats, "settled_outcomes", None)))
    finally:
        engine.stop()
        pipe.close()


def order_frame(price: str, rid: str) -> bytes:
    return masked_frame(0x1, orjson.dumps({
        "action": "place_order", "symbol": SYMBOL, "side": "BUY", "type": "LIMIT",
        "quantity": _QTY, "price": price, "id": rid}))


def flood(host: str, port: int, path: str, conns: int, rate: float, price: str,
           pipe: Connection) -> None:
    """The flood process: ``conns`` connections of account A, each sending at ``rate``/s
    between ``("go",)`` and ``("halt",)``; answers ``("counts", {type or code: n})``."""
    socks: list[socket.socket] = []
    sel = selectors.DefaultSelector()
    counts: Counter[str] = Counter()
    bufs: dict[int, bytearray] = {}
    try:
        for _ in range(conns):
            sock, rest = handshake(host, port, path, 10.0)
            sock.setblocking(False)
            socks.append(sock)
            bufs[sock.fileno()] = bytearray(rest)
            sel.register(sock, selectors.EVENT_READ)
        pipe.send(("ready", len(socks)))
        period = 1.0 / (rate * conns)
        flooding = False
        start = time.monotonic()
        sent = block = 0
        flood_s = 0.0  # seconds spent flooding, over every go ... halt
        scratch = memoryview(bytearray(1 << 18))
        while True:
            if pipe.poll(0):
                cmd = pipe.recv()[0]
                if cmd == "go":
                    flooding, start, block = True, time.monotonic(), 0
                elif cmd == "halt":
                    flooding = False
                    flood_s += time.monotonic() - start
                    counts["sent"] = sent
                    pipe.send(("counts", dict(counts), flood_s))
                else:
                    return
            wait = 0.05
            if flooding:
                due = int((time.monotonic() - start) / period) + 1
                while block < due:
                    sock = socks[sent % conns]
                    with contextlib.suppress(BlockingIOError, InterruptedError):
                        sock.send(order_frame(price, f"f{sent}"))  # a frame fits a free buffer
                    sent += 1
                    block += 1
                wait = start + block * period - time.monotonic()
            for key, _ in sel.select(max(0.0, min(wait, 0.05))):
                s: Any = key.fileobj
                try:
                    n = s.recv_into(scratch)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    n = 0
                if not n:
                    sel.unregister(s)
                    counts["closed"] += 1
                    continue
                buf = bufs[s.fileno()]
                buf += scratch[:n]
                for op, payload in parse_frames(buf):
                    if op == 0x9:  # the server's keep-alive ping
                        with contextlib.suppress(BlockingIOError, InterruptedError):
                            s.send(masked_frame(0xA, payload))
                    elif op == 0x1:
                        msg = orjson.loads(payload)
                        if msg.get("id") is not None:
                            counts[msg.get("code") or msg.get("executionType")
                                   or msg["type"]] += 1
    except OSError as exc:
        pipe.send(("error", f"flood: {exc}"))
    finally:
        for sock in socks:
            sock.close()
        pipe.close()


class Probe:
    """Account B's one connection (blocking, bounded by timeouts)."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.sock, rest = handshake(host, port, path, 10.0)
        self.sock.settimeout(10.0)
        self.buf = bytearray(rest)
        self.pending: list[dict[str, Any]] = []

    def send(self, msg: dict[str, Any]) -> None:
        self.sock.sendall(masked_frame(0x1, orjson.dumps(msg)))

    def next_msg(self) -> dict[str, Any]:
        while not self.pending:
            data = self.sock.recv(1 << 16)
            if not data:
                raise OSError("the daemon closed the probe connection")
            self.buf += data
            for op, payload in parse_frames(self.buf):
                if op == 0x1:
                    self.pending.append(orjson.loads(payload))
                elif op == 0x9:  # the server's keep-alive ping
                    self.sock.sendall(masked_frame(0xA, payload))
                elif op == 0x8:
                    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                    raise OSError(f"the daemon closed the probe connection ({code})")
        return self.pending.pop(0)

    def wait(self, pred: Any, timeout: float = 10.0) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            msg = self.next_msg()
            if pred(msg):
                return msg
        raise OSError("no answer within the timeout")

    def price(self) -> Decimal:
        self.send({"action": "subscribe_ticker", "symbol": SYMBOL})
        msg = self.wait(lambda m: m.get("type") == "MARKET_UPDATE")
        self.send({"action": "unsubscribe_ticker", "symbol": SYMBOL})
        return Decimal(str(msg["price"]))

    def round_trips(self, n: int, rate: float, price: str, tag: str) -> tuple[list[int], int]:
        """``n`` place -> NEW latencies (ns) and how many were not NEW."""
        lat: list[int] = []
        failed = 0
        period = 1.0 / rate
        start = time.monotonic()
        for i in range(n):
            wait = start + i * period - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # pacing of the probe, not a synchronisation
            rid = f"{tag}{i}"
            frame = order_frame(price, rid)
            t0 = time.monotonic_ns()
            self.sock.sendall(frame)
            msg = self.wait(lambda m, r=rid: m.get("id") == r)
            t1 = time.monotonic_ns()
            if msg.get("executionType") != "NEW":
                failed += 1
                continue
            lat.append(t1 - t0)
            cid = f"c{rid}"
            self.send({"action": "cancel_order", "orderId": msg["order"]["orderId"], "id": cid})
            self.wait(lambda m, c=cid: m.get("id") == c)
        return lat, failed

    def close(self) -> None:
        self.sock.close()


def pct(values: list[int], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))] / 1e6


def _summary(lat: list[int], failed: int) -> dict[str, Any]:
    return {"probes": len(lat), "failed": failed, "p50_ms": pct(lat, 0.5),
            "p99_ms": pct(lat, 0.99), "max_ms": pct(lat, 1.0)}


def _recv(pipe: Connection, timeout: float, who: str) -> Any:
    if not pipe.poll(timeout):
        raise OSError(f"{who}: no answer within {timeout:.0f} s")
    msg = pipe.recv()
    if msg[0] == "error":
        raise OSError(f"{who}: {msg[1]}")
    return msg


def run(probes: int, probe_rate: float, flood_conns: int, flood_rate: float | None,
        warmup_s: float, rounds: int = 1, synchronous: str = "full") -> dict[str, Any]:
    """Both phases; returns the figures (see the module docstring)."""
    procs: list[Any] = []
    pipes: list[Connection] = []

    def spawn(target: Any, *args: Any) -> Connection:
        parent, child = _CTX.Pipe()
        proc = _CTX.Process(target=target, args=(*args, child), daemon=True)
        proc.start()
        child.close()
        procs.append(proc)
        pipes.append(parent)
        return parent

    with tempfile.TemporaryDirectory(prefix="tickdesk-noisy-") as store_dir:
        try:
            daemon = spawn(_daemon, store_dir, synchronous)
            _, url, pid, per_conn_limit = _recv(daemon, 60, "daemon")
            print(f"noisy_neighbour: daemon pid {pid} at {url}", file=sys.stderr, flush=True)
            parts = urlsplit(url)
            host, port = parts.hostname or "127.0.0.1", parts.port or 80
            probe = Probe(host, port, f"{parts.path}?token={PROBE_TOKEN}")
            price = str((probe.price() * Decimal("0.9")).quantize(Decimal("0.01")))
            rate = flood_rate if flood_rate is not None else float(per_conn_limit)
            flooder = spawn(flood, host, port, f"{parts.path}?token={FLOOD_TOKEN}",
                          flood_conns, rate, price)
            _, opened = _recv(flooder, 60, "flood")
            idle_lat: list[int] = []
            flood_lat: list[int] = []
            idle_failed = flood_failed = 0
            per_round = max(1, probes // rounds)
            counts: dict[str, int] = {}
            flood_s = 0.0
            for r in range(rounds):  # interleaved: a slow phase of the machine hits both
                lat, failed = probe.round_trips(per_round, probe_rate, price, f"i{r}-")
                idle_lat += lat
                idle_failed += failed
                flooder.send(("go",))
                time.sleep(warmup_s)  # let the flood reach its steady state
                lat, failed = probe.round_trips(per_round, probe_rate, price, f"n{r}-")
                flood_lat += lat
                flood_failed += failed
                flooder.send(("halt",))
                _, counts, flood_s = _recv(flooder, 60, "flood")
                time.sleep(warmup_s)  # let the daemon drain what the flood left
            idle, loaded = _summary(idle_lat, idle_failed), _summary(flood_lat, flood_failed)
            probe.close()
            daemon.send(("stats",))
            _, commits, outcomes = _recv(daemon, 60, "daemon")
        finally:
            for pipe in pipes:
                with contextlib.suppress(OSError, ValueError):
                    pipe.send(("stop",))
            for proc in procs:
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
                    proc.join(2)
    ratio = (loaded["p99_ms"] / idle["p99_ms"]
             if loaded["p99_ms"] and idle["p99_ms"] else None)
    # A's commands the engine ran (answered with an order event or a typed
    # refusal of the order itself), not those the edge refused before they
    # reached the order monitor (RATE_LIMITED) or its full queue (BUSY)
    ran = sum(n for k, n in counts.items() if k not in ("sent", "closed", "RATE_LIMITED",
                                                        "BUSY"))
    return {"daemon_pid": pid, "rounds": rounds, "synchronous": synchronous,
            "flood_connections": opened, "flood_seconds": flood_s,
            "settle_commits": commits, "settled_outcomes": outcomes,
            "flood_commands_run_per_s": ran / flood_s if flood_s else None,
            "flood_rate_per_conn": rate,
            "flood_answers": counts, "idle": idle, "flood": loaded, "p99_ratio": ratio,
            "probe_rate": probe_rate}


def render(doc: dict[str, Any]) -> str:
    def f(x: float | None) -> str:
        return "–" if x is None else f"{x:.2f}"

    lines = ["| phase | probes | not NEW | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
    for phase in ("idle", "flood"):
        s = doc[phase]
        lines.append(f"| {phase} | {s['probes']} | {s['failed']} | {f(s['p50_ms'])} | "
                     f"{f(s['p99_ms'])} | {f(s['max_ms'])} |")
    lines.append(f"\np99 flood / idle: {f(doc['p99_ratio'])} (target: <= 2)")
    lines.append(f"flood: {doc['flood_connections']} connections of account A at "
                 f"{doc['flood_rate_per_conn']:g}/s each; answers {doc['flood_answers']}")
    lines.append(f"A's commands run by the engine: {f(doc['flood_commands_run_per_s'])}/s "
                 f"over {doc['flood_seconds']:.1f} s of flood")
    if doc["settle_commits"]:
        lines.append(f"settle transactions: {doc['settle_commits']} for "
                     f"{doc['settled_outcomes']} outcomes (mean group "
                     f"{doc['settled_outcomes'] / doc['settle_commits']:.2f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tickdesk.bench.noisy_neighbour",
                                 description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--probes", type=int, default=300)
    ap.add_argument("--probe-rate", type=float, default=5.0,
                    help="probes per second (each is a place_order and a cancel_order)")
    ap.add_argument("--flood-conns", type=int, default=50)
    ap.add_argument("--flood-rate", type=float, default=None,
                    help="commands/s per flood connection (default: the per-connection limit)")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of flood before probing")
    ap.add_argument("--rounds", type=int, default=5,
                    help="idle and flood phases alternate this many times (default 5)")
    ap.add_argument("--synchronous", choices=("full", "normal"), default="full",
                    help="the daemon's store.synchronous (default full, the default of "
                         "the configuration)")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--quick", action="store_true",
                    help="10 probes, 2 flood connections: proves the bench runs (no figures)")
    args = ap.parse_args(argv)
    if args.quick:
        args.probes, args.flood_conns, args.warmup, args.rounds = 10, 2, 0.2, 1
    try:
        doc = run(args.probes, args.probe_rate, args.flood_conns, args.flood_rate, args.warmup,
                  max(1, args.rounds), args.synchronous)
    except OSError as exc:
        print(f"noisy_neighbour: {exc}", file=sys.stderr)
        return 1
    print(render(doc))
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    ok = doc["idle"]["probes"] > 0 and doc["flood"]["probes"] > 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
