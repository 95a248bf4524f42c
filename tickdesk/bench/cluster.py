"""``tickdesk bench --cluster``: one engine and two gateways over Redis Streams
against the single process, in the same run (docs/scaling.md).

Edge module (processes, sockets, clocks). It starts its own ``redis-server``
(a free loopback port, no persistence), then:

1. the single process (``tickdesk``, as ``tickdesk bench`` runs it) and the
   cluster (an engine process publishing the scripted ticks, ``gateways``
   gateway processes, the lean clients split evenly across them) each run
   the same workloads: ``rate`` ticks/s for ``seconds``, then flat out.
   Reported: deliveries/s, latency p50/p99 (tick creation in the publishing
   process → receive in the client, CLOCK_MONOTONIC) and CPU µs per delivery
   of each gateway (against the single process's);
2. failover: ``failover_clients`` :class:`~tickdesk.client.TickdeskClient`\\ s
   on the first gateway (the second as their fallback); the first gateway
   is killed (SIGKILL) and the time from the kill to each client's
   ``RESUMED`` is measured, with how many were ``recovered``.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import redis

from tickdesk.bench.lean_client import run_client
from tickdesk.bench.runner import BenchError, Row, Workload, _Procs, _recv, _session, _workload
from tickdesk.bench.servers import serve

__all__ = ["ClusterReport", "run_cluster_bench"]


@dataclass(slots=True)
class ClusterReport:
    single: list[Row] = field(default_factory=list)
    cluster: list[Row] = field(default_factory=list)
    #: per workload: each gateway's CPU µs per delivery
    gateway_cpu_us: dict[str, list[float]] = field(default_factory=dict)
    failover_s: list[float] = field(default_factory=list)
    recovered: int = 0
    failover_clients: int = 0
    errors: list[str] = field(default_factory=list)

    def render(self) -> str:
        def f(x: float | None, d: int = 2) -> str:
            return "–" if x is None else f"{x:.{d}f}"

        out = ["| setup | workload | deliveries/s | p50 ms | p99 ms | CPU µs/delivery "
               "(per gateway) | complete |", "|---|---|---|---|---|---|---|"]
        for r in self.single:
            out.append(f"| one process | {r.workload} | {r.deliveries_per_s:,.0f} | "
                       f"{f(r.p50_ms)} | {f(r.p99_ms)} | {f(r.cpu_us_per_delivery, 1)} | "
                       f"{r.complete_conns}/{r.clients} |")
        for r in self.cluster:
            per = " / ".join(f(x, 1) for x in self.gateway_cpu_us.get(r.workload, []))
            out.append(f"| engine + gateways | {r.workload} | {r.deliveries_per_s:,.0f} | "
                       f"{f(r.p50_ms)} | {f(r.p99_ms)} | {per} | "
                       f"{r.complete_conns}/{r.clients} |")
        single = {r.workload: r for r in self.single}
        for r in self.cluster:
            s = single.get(r.workload)
            if s is None or r.p50_ms is None or s.p50_ms is None:
                continue
            assert r.p99_ms is not None and s.p99_ms is not None
            out.append(f"\nbroker hop at {r.workload}: {r.p50_ms - s.p50_ms:+.2f} ms p50, "
                       f"{r.p99_ms - s.p99_ms:+.2f} ms p99 against the single process")
            cpus = self.gateway_cpu_us.get(r.workload, [])
            if cpus and s.cpu_us_per_delivery:
                out.append(f"gateway CPU per delivery: {max(cpus) / s.cpu_us_per_delivery:.2f}"
                           "× the single process's (the busier gateway)")
        if self.failover_s:
            xs = sorted(self.failover_s)
            p50 = xs[len(xs) // 2]
            p99 = xs[min(len(xs) - 1, math.ceil(0.99 * len(xs)) - 1)]
            out.append(f"failover (kill -9 a gateway → every client RESUMED): p50 {p50:.2f} s, "
                       f"p99 {p99:.2f} s, max {xs[-1]:.2f} s; recovered "
                       f"{self.recovered}/{self.failover_clients}")
        out.extend(f"error: {e}" for e in self.errors)
        return "\n".join(out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Redis:
    """A redis-server for the bench (no persistence), stopped at the end."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise BenchError("bench --cluster needs redis-server (apt-get install redis-server)")
        self.port = _free_port()
        self._dir = tempfile.TemporaryDirectory()
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self._dir.name],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    break
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise BenchError("redis-server did not start") from None
                    time.sleep(0.02)
        finally:
            client.close()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._dir.cleanup()


def _cluster_session(url: str, n: int, workloads: Sequence[Workload], gateways: int,
                     per_proc: int, report: ClusterReport, failover_clients: int,
                     log: Callable[[str], None]) -> None:
    rows = [Row(f"cluster x{gateways}", n, w.name, w.rate, w.ticks, expected=w.ticks * n)
            for w in workloads]
    report.cluster.extend(rows)
    procs = _Procs()
    try:
        engine = procs.spawn(serve, f"cluster-engine@{url}")
        _recv(engine, 60.0, "engine")
        gws = [procs.spawn(serve, f"cluster-gateway@{url}") for _ in range(gateways)]
        gw_procs = procs.procs[1:1 + gateways]
        gw_urls = [_recv(g, 60.0, "gateway")[1] for g in gws]
        per_gw = [n // gateways + (1 if i < n % gateways else 0) for i in range(gateways)]
        clients = []
        shares: list[tuple[int, int]] = []  # (gateway, connections)
        for gi, count in enumerate(per_gw):
            k = max(1, math.ceil(count / per_proc))
            for j in range(k):
                shares.append((gi, count // k + (1 if j < count % k else 0)))
        clients = [procs.spawn(run_client) for _ in shares]
        for c, (gi, count) in zip(clients, shares, strict=True):
            parts = urlsplit(gw_urls[gi])
            c.send(("connect", parts.hostname or "127.0.0.1", parts.port or 80, parts.path,
                    count))
        ready = sum(_recv(c, 30.0 + n * 0.1, "client")[1] for c in clients)
        if ready != n:
            raise BenchError(f"only {ready} of {n} connections subscribed")
        for w, row in zip(workloads, rows, strict=True):
            log(f"  cluster   N={n:<4} {w.name} ...")
            for g in gws:
                g.send(("mark",))
                _recv(g, 30.0, "gateway")
            _workload(engine, clients, w, row)
            per: list[float] = []
            for g, count in zip(gws, per_gw, strict=True):
                g.send(("stats",))
                _, user, sys_, _threads = _recv(g, 30.0, "gateway")
                delivered = row.received * count / n
                per.append((user + sys_) * 1e6 / delivered if delivered else 0.0)
            report.gateway_cpu_us[w.name] = per
            if not row.ok:
                break
            time.sleep(0.3)
        if failover_clients:
            _failover(gw_urls, gw_procs[0], failover_clients, report, log)
    except BenchError as exc:
        report.errors.append(str(exc))
        log(f"  cluster N={n}: {exc}")
    finally:
        procs.close()


def _failover(urls: Sequence[str], victim: object, count: int, report: ClusterReport,
              log: Callable[[str], None]) -> None:
    from tickdesk.client import TickdeskClient

    log(f"  failover: {count} clients, kill -9 the first gateway ...")
    clients = [TickdeskClient(urls[0], fallback_urls=tuple(urls[1:])).connect()
               for _ in range(count)]
    done: dict[int, float] = {}
    try:
        t0 = time.monotonic()
        victim.kill()  # type: ignore[attr-defined]  # multiprocessing: SIGKILL
        deadline = t0 + 30.0
        while len(done) < count and time.monotonic() < deadline:
            for i, c in enumerate(clients):
                if i not in done and c.reconnects >= 1 and c.resumed is not None:
                    done[i] = time.monotonic() - t0
            time.sleep(0.005)
        report.failover_clients = count
        report.failover_s = sorted(done.values())
        report.recovered = sum(1 for c in clients if c.resumed is True)
        if len(done) < count:
            report.errors.append(f"{count - len(done)} clients did not resume within 30 s")
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                c.close(timeout=1.0)


def run_cluster_bench(n: int = 100, rate: float = 100.0, seconds: float = 5.0,
                      gateways: int = 2, flat_deliveries: int = 100_000,
                      failover_clients: int = 50, per_proc: int = 500,
                      log: Callable[[str], None] = print) -> ClusterReport:
    workloads = [Workload(f"{rate:g}/s", max(1, round(rate * seconds)), rate)]
    if flat_deliveries > 0:
        workloads.append(Workload("flat out", max(1, math.ceil(flat_deliveries / n)), 0.0))
    report = ClusterReport()
    server = _Redis()
    try:
        # open mode, like the cluster's engine and gateways (its clients resume sessions)
        report.single = _session("tickdesk-open", n, workloads, per_proc, log)
        _cluster_session(server.url, n, workloads, gateways, per_proc, report,
                         failover_clients, log)
    finally:
        server.close()
    return report

