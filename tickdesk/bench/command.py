"""``tickdesk bench``: arguments and the run (see ``docs/performance.md``)."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

__all__ = ["add_arguments", "cmd_bench"]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true",
                   help="a small subset (N=10,50 at 20 ticks/s, 2 s each), under 30 s; "
                        "fails only if a message is lost or a server fails")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--clients", type=_ints, metavar="N,N,...",
                   help="connection counts (default 10,100,500)")
    p.add_argument("--rates", type=_floats, metavar="R,R,...",
                   help="fixed tick rates, ticks/s (default 20,100)")
    p.add_argument("--seconds", type=float, help="duration of each fixed-rate run (default 5)")
    p.add_argument("--flat-deliveries", type=int, metavar="D",
                   help="deliveries per flat-out run, ticks = D/N (default 100000; 0: skip)")
    p.add_argument("--servers", default="tickdesk,reference,floor",
                   help="which servers (default tickdesk,reference,floor; floor: one "
                        "pre-built frame sent to every socket, the physical floor; "
                        "tickdesk-open: tickdesk in open mode, where every reader also "
                        "gets account default's periodic updates)")
    p.add_argument("--idle-seconds", type=float, metavar="S",
                   help="first measure each server idle with its N connections for S s: "
                        "CPU %%, RSS, RSS per connection (default 2; --quick: 0)")
    p.add_argument("--repeat", type=int, default=1, metavar="K",
                   help="run the whole matrix K times (interleaved) and print medians "
                        "with min–max (default 1)")
    p.add_argument("--trigger-orders", type=int, metavar="N",
                   help="open orders for the trade -> ORDER_UPDATE TRADE run "
                        "(default 1000; --quick: 100; 0: skip)")
    p.add_argument("--no-stalled-check", action="store_true",
                   help="skip the cost-of-one-stalled-client run (N=100 at 100/s with one "
                        "extra connection that never reads; not in --quick)")
    p.add_argument("--conns-per-process", type=int, default=500,
                   help="connections per lean client process (default 500)")
    p.add_argument("--cluster", action="store_true",
                   help="one engine and two gateways over Redis Streams (needs redis-server) "
                        "against the single process, same run: deliveries/s, latency, "
                        "gateway CPU per delivery, failover (docs/scaling.md); N=100 at "
                        "100 ticks/s unless --clients/--rates say otherwise")


def _cmd_cluster(args: argparse.Namespace) -> int:
    from tickdesk.bench.cluster import run_cluster_bench
    from tickdesk.bench.runner import BenchError

    quick = bool(args.quick)
    n = (args.clients or [10 if quick else 100])[0]
    rate = (args.rates or [20.0 if quick else 100.0])[0]
    seconds = args.seconds or (2.0 if quick else 5.0)
    flat = 0 if quick else (100_000 if args.flat_deliveries is None else args.flat_deliveries)
    t0 = time.monotonic()
    try:
        report = run_cluster_bench(n, rate, seconds, flat_deliveries=flat,
                                   failover_clients=5 if quick else 50,
                                   per_proc=max(1, args.conns_per_process),
                                   log=lambda s: print(s, file=sys.stderr, flush=True))
    except BenchError as exc:
        print(f"tickdesk bench: {exc}", file=sys.stderr)
        return 1
    print(report.render())
    print(f"\n({time.monotonic() - t0:.0f} s on {os.cpu_count()} CPUs; N={n}, {rate:g} ticks/s "
          f"for {seconds:g} s; latency = client receive - tick creation, CLOCK_MONOTONIC)")
    if args.json:
        doc = {"single": [dataclasses.asdict(r) for r in report.single],
               "cluster": [dataclasses.asdict(r) for r in report.cluster],
               "gateway_cpu_us": report.gateway_cpu_us, "failover_s": report.failover_s,
               "recovered": report.recovered, "failover_clients": report.failover_clients,
               "errors": report.errors}
        Path(args.json).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    rows = [*report.single, *report.cluster]
    return 1 if report.errors or any(not r.ok for r in rows) else 0


def cmd_bench(args: argparse.Namespace) -> int:
    if getattr(args, "cluster", False):
        return _cmd_cluster(args)
    from tickdesk.bench.report import as_json, render
    from tickdesk.bench.runner import Workload, run_matrix
    from tickdesk.bench.servers import SERVER_KINDS

    kinds = [k for k in args.servers.split(",") if k]
    if any(k not in SERVER_KINDS for k in kinds):
        print(f"tickdesk bench: unknown server in {args.servers!r}", file=sys.stderr)
        return 2
    if "reference" in kinds and importlib.util.find_spec("websockets") is None:
        print("tickdesk bench: the reference server needs 'websockets': "
              "pip install 'tickdesk[bench]' (or --servers tickdesk)", file=sys.stderr)
        return 2
    if args.quick:
        clients = args.clients or [10, 50]
        rates = args.rates or [20.0]
        seconds = args.seconds or 2.0
        flat = args.flat_deliveries or 0
        idle_s = args.idle_seconds or 0.0
    else:
        clients = args.clients or [10, 100, 500]
        rates = args.rates or [20.0, 100.0]
        seconds = args.seconds or 5.0
        flat = 100_000 if args.flat_deliveries is None else args.flat_deliveries
        idle_s = 2.0 if args.idle_seconds is None else args.idle_seconds

    def workloads(n: int) -> Sequence[Workload]:
        ws = [Workload(f"{r:g}/s", max(1, round(r * seconds)), r) for r in rates]
        if flat > 0:
            ws.append(Workload("flat out", max(1, math.ceil(flat / n)), 0.0))
        return ws

    t0 = time.monotonic()
    load0 = os.getloadavg()
    rows = run_matrix(kinds, clients, workloads, per_proc=max(1, args.conns_per_process),
                      repeat=max(1, args.repeat), idle_s=idle_s,
                      log=lambda s: print(s, file=sys.stderr, flush=True))
    print(render(rows))
    load1 = os.getloadavg()
    print(f"\n({time.monotonic() - t0:.0f} s on {os.cpu_count()} CPUs, load average "
          f"{load0[0]:.1f} -> {load1[0]:.1f}; latency = client receive - tick creation, "
          "CLOCK_MONOTONIC; server CPU = the whole server process, client CPU = the busiest "
          "client process)")
    stalled = [] if (args.quick or args.no_stalled_check) else _stalled_check(
        kinds, rows, seconds, max(1, args.conns_per_process))
    trigger = _trigger(args)
    if args.json:
        settings = {"quick": bool(args.quick), "clients": clients, "rates": rates,
                    "seconds": seconds, "flat_deliveries": flat, "servers": kinds,
                    "idle_seconds": idle_s, "repeat": max(1, args.repeat),
                    "load_average_1min": [load0[0], load1[0]]}
        doc = orjson.loads(as_json(rows, settings))
        doc["trigger"] = [dataclasses.asdict(t) for t in trigger]
        doc["stalled"] = stalled
        Path(args.json).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    failed = [r for r in rows if not r.ok or (args.quick and r.missing)]
    if failed:
        print(f"tickdesk bench: {len(failed)} run(s) failed or lost messages", file=sys.stderr)
        return 1
    return 0


def _trigger(args: argparse.Namespace) -> list[Any]:
    """Trade in -> ORDER_UPDATE TRADE at the client, with many open orders."""
    from tickdesk.bench.trigger import TriggerResult, run_trigger_bench

    n = args.trigger_orders if args.trigger_orders is not None else (
        100 if args.quick else 1000)
    if n <= 0:
        return []
    stores = ["memory"] if args.quick else ["memory", "normal", "full"]
    symbols = 10 if args.quick else 100
    trials = 20 if args.quick else 200
    results = []
    for store in stores:
        print(f"trigger run: {n} open orders, store {store}", file=sys.stderr, flush=True)
        results.append(run_trigger_bench(n, symbols, trials, store))
    print("\nTrade in -> ORDER_UPDATE TRADE at the client (in-process client: an upper bound)")
    print(TriggerResult.HEADER)
    for r in results:
        print(r.row())
    return results


def _stalled_check(kinds: Sequence[str], rows: Sequence[Any], seconds: float,
                   per_proc: int) -> list[dict[str, Any]]:
    """The cost of one client that never reads: N=100 at 100 ticks/s with one
    extra stalled connection, against the same workload of the main matrix."""
    from tickdesk.bench.runner import Workload, run_matrix

    n, rate = 100, 100.0
    base = {r.server: r for r in rows if r.clients == n and r.workload == "100/s" and r.ok}
    if not base:
        return []
    print("stalled-client run: N=100, 100/s, +1 connection that never reads",
          file=sys.stderr, flush=True)
    with_stall = run_matrix(kinds, [n], lambda _n: [Workload("100/s", round(rate * seconds),
                                                            rate)],
                            per_proc=per_proc, stalled=1,
                            log=lambda s: print(s, file=sys.stderr, flush=True))
    out: list[dict[str, Any]] = []
    print("\nCost of one stalled client (N=100 readers at 100 ticks/s, plus one that never "
          "reads)")
    print("| server | CPU µs/delivery without / with | p50 ms without / with "
          "| p99 ms without / with | readers complete |")
    print("|---|---|---|---|---|")
    for r in with_stall:
        b = base.get(r.server)
        if b is None:
            continue
        item = {"server": r.server, "cpu_us": [b.cpu_us_per_delivery, r.cpu_us_per_delivery],
                "p50_ms": [b.p50_ms, r.p50_ms], "p99_ms": [b.p99_ms, r.p99_ms],
                "readers_complete": r.complete_conns, "ok": r.ok}
        out.append(item)

        def f(x: float | None) -> str:
            return "–" if x is None else f"{x:.2f}"

        print(f"| {r.server} | {f(b.cpu_us_per_delivery)} / {f(r.cpu_us_per_delivery)} | "
              f"{f(b.p50_ms)} / {f(r.p50_ms)} | {f(b.p99_ms)} / {f(r.p99_ms)} | "
              f"{r.complete_conns}/{r.clients} |")
    return out
