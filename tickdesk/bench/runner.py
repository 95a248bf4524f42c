"""Orchestration: a server process, client processes, workloads, one row each.

For every client count N and every server kind, the runner starts a fresh
server process (:func:`tickdesk.bench.servers.serve`) and lean client processes
(:func:`tickdesk.bench.lean_client.run_client`) holding N connections between
them, runs the workloads in order on those connections, and turns what the
processes report into :class:`Row` objects. Every wait is bounded; every
child process is stopped, then killed if it lingers.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import socket
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

import orjson

from engine.errors import TickdeskError
from tickdesk.bench import SYMBOL
from tickdesk.bench.lean_client import handshake, masked_frame, run_client
from tickdesk.bench.servers import serve

__all__ = ["BenchError", "Row", "Workload", "run_matrix"]

_CTX = mp.get_context("spawn")


class BenchError(TickdeskError):
    """A server or client process failed or did not answer in time."""


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    ticks: int
    rate: float  # ticks per second; 0 = flat out (all ticks published at once)

    @property
    def flat(self) -> bool:
        return self.rate <= 0


@dataclass(slots=True)
class Row:
    server: str
    clients: int
    workload: str
    rate: float
    ticks: int
    run: int = 0  # which repetition (--repeat)
    expected: int = 0
    received: int = 0
    complete_conns: int = 0  # connections that received the last tick
    closed_conns: int = 0
    deliveries_per_s: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    cpu_s: float = 0.0
    cpu_user_s: float = 0.0
    cpu_sys_s: float = 0.0
    cpu_us_per_delivery: float | None = None
    cpu_pct: float = 0.0  # of one core, over the workload's wall time
    client_cpu_pct: float = 0.0  # the busiest client process, same window
    threads: int = 0
    # The session, before its workloads: N connections open and subscribed, no ticks.
    idle_cpu_pct: float | None = None
    rss_mb: float | None = None  # server RSS with N idle connections
    rss_kib_per_conn: float | None = None  # (RSS with N - RSS before any) / N
    errors: list[str] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return self.expected - self.received

    @property
    def ok(self) -> bool:
        """Nothing broke: no errors, every connection open and at the last tick."""
        return not self.errors and self.closed_conns == 0 and self.complete_conns == self.clients


def _recv(pipe: Connection, timeout: float, who: str) -> Any:
    if not pipe.poll(timeout):
        raise BenchError(f"{who}: no answer within {timeout:.0f} s")
    try:
        msg = pipe.recv()
    except EOFError:
        raise BenchError(f"{who}: process exited") from None
    if msg[0] == "error":
        raise BenchError(f"{who}: {msg[1]}")
    return msg


def _percentile(sorted_values: Sequence[int], q: float) -> float:
    i = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[i] / 1e6


class _Procs:
    """The processes of one (server kind, N) session; always cleaned up."""

    def __init__(self) -> None:
        self.procs: list[Any] = []
        self.pipes: list[Connection] = []

    def spawn(self, target: Callable[..., None], *args: Any) -> Connection:
        parent, child = _CTX.Pipe()
        proc = _CTX.Process(target=target, args=(*args, child), daemon=True)
        proc.start()
        child.close()
        self.procs.append(proc)
        self.pipes.append(parent)
        return parent

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError, ValueError):
                pipe.send(("stop",))
        deadline = time.monotonic() + 8.0
        for proc in self.procs:
            proc.join(max(0.1, deadline - time.monotonic()))
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join(2.0)
        for pipe in self.pipes:
            pipe.close()


def _stall(host: str, port: int, path: str) -> socket.socket:
    """A client that subscribes and then never reads (tiny receive buffer)."""
    sock, _ = handshake(host, port, path, 10.0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(masked_frame(0x1, orjson.dumps({"action": "subscribe_ticker",
                                                 "symbol": SYMBOL})))
    return sock


def _session(kind: str, n: int, workloads: Sequence[Workload], per_proc: int,
             log: Callable[[str], None], run: int = 0, idle_s: float = 0.0,
             stalled: int = 0) -> list[Row]:
    """``stalled`` extra connections subscribe and never read (their cost is the
    difference to the same session without them; they are not counted in N)."""
    label = f" +{stalled} stalled" if stalled else ""
    rows = [Row(kind, n, w.name + label, w.rate, w.ticks, run, expected=w.ticks * n)
            for w in workloads]
    procs = _Procs()
    stalled_socks: list[socket.socket] = []
    try:
        server = procs.spawn(serve, kind)
        shares = [n // math.ceil(n / per_proc)] * math.ceil(n / per_proc)
        for i in range(n - sum(shares)):
            shares[i] += 1
        clients = [procs.spawn(run_client) for _ in shares]  # start-ups overlap
        _, url, rss0 = _recv(server, 30.0, f"{kind} server")
        parts = urlsplit(url)
        host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        for c, share in zip(clients, shares, strict=True):
            c.send(("connect", host, port, path, share))
        ready = 0
        for c in clients:
            _, count, errors = _recv(c, 30.0 + n * 0.1, "client")
            ready += count
            if errors:
                raise BenchError(f"client: {errors[0]}")
        if ready != n:
            raise BenchError(f"only {ready} of {n} connections subscribed")
        stalled_socks.extend(_stall(host, port, path) for _ in range(stalled))
        if idle_s > 0:
            server.send(("idle", idle_s))
            _, idle_cpu, rss1, _ = _recv(server, idle_s + 30.0, f"{kind} server")
            for row in rows:
                row.idle_cpu_pct = 100.0 * idle_cpu / idle_s
                row.rss_mb = rss1 / 2**20
                row.rss_kib_per_conn = (rss1 - rss0) / 1024 / n
        for i, (w, row) in enumerate(zip(workloads, rows, strict=True)):
            log(f"  {kind:9} N={n:<4} {w.name} ...")
            _workload(server, clients, w, row)
            if not row.ok:  # a backlog left behind would pollute the next workload
                for later in rows[i + 1:]:
                    later.errors.append(f"skipped: {w.name} did not complete")
                break
            time.sleep(0.3)  # let the server's other actors settle
    except BenchError as exc:
        for row in rows:
            if not row.received and not row.errors:
                row.errors.append(str(exc))
        log(f"  {kind} N={n}: {exc}")
    finally:
        for sock in stalled_socks:
            sock.close()
        procs.close()
    return rows


def _workload(server: Connection, clients: list[Connection], w: Workload, row: Row) -> None:
    wall0 = time.monotonic()
    server.send(("run", w.ticks, w.rate))
    publish_s = 0.0 if w.flat else w.ticks / w.rate
    _, first, t0_bytes = _recv(server, publish_s + 60.0, f"{row.server} server")
    t0s = array("q")
    t0s.frombytes(t0_bytes)
    last = first + w.ticks - 1
    finish_timeout = 10.0 + (w.ticks * row.clients) / 20_000
    for c in clients:
        c.send(("finish", last, finish_timeout))
    lat: list[int] = []
    client_cpus: list[float] = []
    t_last = t0s[0]
    for c in clients:
        _, ks_b, ts_b, complete, closed, errors, client_cpu = _recv(
            c, finish_timeout + 30.0, "client")
        client_cpus.append(client_cpu)
        ks, ts = array("q"), array("q")
        ks.frombytes(ks_b)
        ts.frombytes(ts_b)
        for k, t in zip(ks, ts, strict=True):
            i = k - first
            if 0 <= i < w.ticks:
                lat.append(t - t0s[i])
                if t > t_last:
                    t_last = t
        row.complete_conns += complete
        row.closed_conns += closed
        row.errors.extend(errors)
    if row.complete_conns + row.closed_conns < row.clients:
        row.errors.append(f"{row.clients - row.complete_conns - row.closed_conns} of "
                          f"{row.clients} connections lacked the last tick after "
                          f"{finish_timeout:.0f} s")
    server.send(("stats",))
    _, user, sys_, threads = _recv(server, 30.0, f"{row.server} server")
    wall = time.monotonic() - wall0
    row.received = len(lat)
    elapsed_s = max(1e-9, (t_last - t0s[0]) / 1e9)
    row.deliveries_per_s = row.received / elapsed_s
    if lat and not w.flat:  # flat-out latency is pure queueing: not reported
        lat.sort()
        row.p50_ms = _percentile(lat, 0.50)
        row.p99_ms = _percentile(lat, 0.99)
        row.max_ms = lat[-1] / 1e6
    row.cpu_user_s, row.cpu_sys_s = user, sys_
    row.cpu_s = user + sys_
    row.cpu_pct = 100.0 * row.cpu_s / wall
    row.client_cpu_pct = 100.0 * max(client_cpus, default=0.0) / wall
    if row.received:
        row.cpu_us_per_delivery = row.cpu_s * 1e6 / row.received
    row.threads = threads


def run_matrix(kinds: Sequence[str], clients: Sequence[int],
               workloads: Callable[[int], Sequence[Workload]], *, per_proc: int = 500,
               repeat: int = 1, idle_s: float = 0.0, stalled: int = 0,
               log: Callable[[str], None] = print) -> list[Row]:
    """Every server kind at every N (kinds interleaved per N), every workload,
    the whole matrix ``repeat`` times (interleaved, so slow phases of a shared
    machine hit both servers). ``idle_s`` > 0 first measures each server idle
    with its N connections for that long."""
    rows: list[Row] = []
    for run in range(repeat):
        for n in clients:
            for kind in kinds:
                rows.extend(_session(kind, n, workloads(n), per_proc, log, run, idle_s,
                                     stalled))
    return rows
