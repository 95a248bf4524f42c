"""Abuse: a real daemon under six attacks, and what its other clients feel.

Edge module (processes, sockets, clocks). One ``python -m tickdesk.cli run``
daemon with its own temporary config: bound to ``0.0.0.0`` (every
interface, ``allowed_hosts`` at its default), two accounts with tokens
(``victim`` and ``attacker``), the simulated feed (:data:`SYMBOLS` at 20
trades/s each), a SQLite store with ``synchronous = "normal"`` and
RLIMIT_NOFILE lowered to :data:`NOFILE` so descriptor exhaustion is
reachable. All traffic goes to 127.0.0.1; each attacker connects from its
own loopback addresses (:mod:`tickdesk.bench.abuse_attacks`), the victims
from 127.0.0.1 (:mod:`tickdesk.bench.abuse_victims`): readers measuring
tick -> client latency and one trader measuring ``place_order`` -> ``NEW``
and ``cancel_order`` -> ``CANCELED``, running through every phase.

Phases, each about ``--phase`` seconds, separated by ``--settle`` seconds
that are not measured: ``baseline``, ``slowloris``, ``exhaustion``,
``rebinding``, ``guessing``, ``noisy`` (the flood of
:func:`tickdesk.bench.noisy_neighbour.flood`) and ``ping_flood``. A sampler
thread of this process reads the daemon's threads, descriptors and RSS from
``/proc`` every 0.25 s and scrapes ``/metrics`` every second (a scrape that
fails, as it does while descriptors are exhausted, is counted); both
lists are bounded by the run's length. At the end the daemon gets SIGTERM
and its exit code is reported.

Output: per phase a table of the attack's outcome, one table of the
victims' p50/p99 with the ratio to the baseline, and one of the daemon's
figures. Nothing is asserted here (the suite's test asserts the behaviour of
a ``--quick`` run); the exit status is 1 when the run itself broke or the
daemon died.

    python -m tickdesk.bench.abuse [--json PATH] [--quick] [--phase 15]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing as mp
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from array import array
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from tickdesk.bench import abuse_attacks as attacks
from tickdesk.bench.abuse_victims import WS_PATH, readers, trader
from tickdesk.bench.connections import free_port, proc_figures, wait_listening
from tickdesk.bench.lean_client import handshake
from tickdesk.bench.noisy_neighbour import Probe, flood

__all__ = ["NOFILE", "SYMBOLS", "Plan", "main", "run"]

_CTX = mp.get_context("spawn")
VICTIM_TOKEN = "victim-token-0000001"
ATTACKER_TOKEN = "attacker-token-00001"
#: The daemon's descriptor limit (soft and, if it allows, hard).
NOFILE = 1024
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
_METRICS = ("tickdesk_edge_connections", "tickdesk_edge_pending",
            "tickdesk_edge_handshake_timeouts_total", "tickdesk_edge_pending_refused_total",
            "tickdesk_edge_pending_evicted_total",
            "tickdesk_edge_misdirected_total", "tickdesk_edge_descriptor_limit_total",
            "tickdesk_auth_failures_total", "tickdesk_auth_refused_total")


@dataclass(frozen=True, slots=True)
class Plan:
    """Sizes of one run (:data:`FULL` or :data:`QUICK`)."""

    phase_s: float = 15.0
    settle_s: float = 3.0
    readers: int = 20
    trade_rate: float = 8.0
    slow_sources: int = 10
    slow_per_source: int = 80
    idle_sources: int = 8
    idle_per_source: int = 70
    ws_sources: int = 11
    ws_per_source: int = 100
    guessers: int = 4
    guesses_per: int = 3000
    flood_conns: int = 50
    ping_max_s: float = 20.0
    rebind_window_s: float = 30.0
    #: server.handshake_timeout_s of the daemon (10 s, the default, in a full run).
    handshake_timeout_s: float = 10.0


FULL = Plan()
QUICK = Plan(phase_s=3.0, settle_s=1.0, readers=4, slow_sources=2, slow_per_source=80,
             idle_sources=2, idle_per_source=70, ws_sources=2, ws_per_source=20,
             guessers=2, guesses_per=100, flood_conns=2, ping_max_s=10.0,
             handshake_timeout_s=1.5)


def _limit_nofile() -> None:
    """preexec_fn of the daemon: RLIMIT_NOFILE = :data:`NOFILE`."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = NOFILE if hard == resource.RLIM_INFINITY else min(NOFILE, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (cap, cap))


def _config(port: int, store: Path, handshake_timeout_s: float) -> str:
    syms = ", ".join(f'"{s}"' for s in SYMBOLS)
    return f"""
[server]
host = "0.0.0.0"
port = {port}
handshake_timeout_s = {handshake_timeout_s}
[feed]
source = "simulated"
symbols = [{syms}]
[feed.simulated]
ticks_per_second = 20.0
[store]
path = "{store}"
synchronous = "normal"
[[accounts]]
name = "victim"
token = "{VICTIM_TOKEN}"
balances = {{USDT = 100000000}}
[[accounts]]
name = "attacker"
token = "{ATTACKER_TOKEN}"
balances = {{USDT = 100000000}}
"""


def _metrics(port: int) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=2.0) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in _METRICS:
            out[name] = float(value)
    return out


class _Sampler:
    """The daemon's /proc figures (every 0.25 s) and /metrics (every 1 s)."""

    def __init__(self, pid: int, port: int) -> None:
        self.pid, self.port = pid, port
        self.procs: list[tuple[float, dict[str, int]]] = []
        self.scrapes: list[tuple[float, dict[str, float] | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="abuse-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        k = 0
        while not self._stop.wait(0.25):
            now = _now_ms()
            with contextlib.suppress(OSError):
                self.procs.append((now, proc_figures(self.pid)))
            k += 1
            if k % 4 == 0:
                try:
                    self.scrapes.append((now, _metrics(self.port)))
                except (OSError, ValueError):
                    self.scrapes.append((now, None))

    def window(self, start: float, end: float) -> dict[str, Any]:
        procs = [p for t, p in self.procs if start <= t <= end]
        scrapes = [m for t, m in self.scrapes if start <= t <= end]
        ok = [m for m in scrapes if m is not None]

        def peak(name: str) -> float | None:
            vals = [m[name] for m in ok if name in m]
            return max(vals) if vals else None

        def delta(name: str) -> float | None:
            vals = [m[name] for m in ok if name in m]
            return vals[-1] - vals[0] if len(vals) >= 2 else None

        return {
            "counters": {name.removeprefix("tickdesk_"): delta(name) for name in _METRICS
                         if name.endswith("_total")},
            "threads_max": max((p["threads"] for p in procs), default=None),
            "fds_max": max((p["fds"] for p in procs), default=None),
            "rss_mib_max": (max(p["rss"] for p in procs) / 2**20) if procs else None,
            "connections_max": peak("tickdesk_edge_connections"),
            "pending_max": peak("tickdesk_edge_pending"),
            "scrapes": len(scrapes), "scrapes_failed": len(scrapes) - len(ok),
        }


def _now_ms() -> float:
    return time.time() * 1000.0


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


class _Run:
    """The processes of one run and the helpers its phases share."""

    def __init__(self, plan: Plan, tmp: Path) -> None:
        self.plan = plan
        self.port = free_port()
        self.log_path = tmp / "daemon.log"
        cfg = tmp / "config.toml"
        cfg.write_text(_config(self.port, tmp / "abuse.db", plan.handshake_timeout_s))
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in close()
        self.daemon = subprocess.Popen(
            [sys.executable, "-m", "tickdesk.cli", "run", "--config", str(cfg)],
            stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=_limit_nofile)
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

    @staticmethod
    def recv(pipe: Connection, timeout: float, who: str) -> Any:
        if not pipe.poll(timeout):
            raise OSError(f"{who}: no answer within {timeout:.0f} s")
        msg = pipe.recv()
        if msg[0] == "error":
            raise OSError(f"{who}: {msg[1]}")
        return msg

    def log_lines(self, pattern: str) -> int:
        with open(self.log_path, "rb") as fh:
            return sum(1 for line in fh if pattern.encode() in line)

    def can_connect(self, source: str | None, token: str) -> bool:
        try:
            sock, _ = handshake("127.0.0.1", self.port, f"{WS_PATH}?token={token}", 1.0,
                                source=source)
        except OSError:
            return False
        sock.close()
        return True

    def until_connect(self, source: str | None, token: str, limit_s: float) -> float | None:
        """Seconds until a handshake from ``source`` succeeds (None: not within ``limit_s``)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit_s:
            if self.can_connect(source, token):
                return time.monotonic() - t0
            time.sleep(0.1)  # a bounded retry interval, not a synchronisation
        return None

    def alive(self) -> bool:
        return self.daemon.poll() is None

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError, ValueError):
                pipe.send(("stop",))
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(2)
        if self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait(10)
        self._log.close()


def _sources(block: int, n: int) -> list[str]:
    return [f"127.0.{block}.{i + 1}" for i in range(n)]


# -- the phases: each returns its outcome ----------------------------------------


def _baseline(r: _Run) -> dict[str, Any]:
    time.sleep(r.plan.phase_s)  # the measurement window
    return {}


def _slowloris(r: _Run) -> dict[str, Any]:
    p = r.plan
    pipe = r.spawn(attacks.slowloris, r.port, _sources(1, p.slow_sources), p.slow_per_source,
                   p.phase_s, 1.0)
    _, counts = r.recv(pipe, p.phase_s + 120, "slowloris")
    return counts  # type: ignore[no-any-return]


def _exhaustion(r: _Run) -> dict[str, Any]:
    p = r.plan
    lines0 = r.log_lines("descriptor limit reached")
    idle = r.spawn(attacks.idle_holder, r.port, _sources(2, p.idle_sources), p.idle_per_source)
    _, idle_open = r.recv(idle, 120, "idle holder")
    ws = r.spawn(attacks.ws_holder, r.port, _sources(3, p.ws_sources), p.ws_per_source,
                 ATTACKER_TOKEN)
    _, ws_open = r.recv(ws, 300, "ws holder")
    refused_while_held = not r.can_connect(None, VICTIM_TOKEN)
    time.sleep(p.phase_s)  # hold them: the measurement window
    for pipe in (idle, ws):
        pipe.send(("leave",))
    _, idle_counts = r.recv(idle, 60, "idle holder")
    _, ws_counts = r.recv(ws, 60, "ws holder")
    reconnect_s = r.until_connect(None, VICTIM_TOKEN, 60.0)
    return {"idle_opened": idle_open, "ws_upgraded": ws_open, "idle": idle_counts,
            "ws": ws_counts, "new_client_refused_while_held": refused_while_held,
            "new_client_after_leave_s": reconnect_s,
            "descriptor_log_lines": r.log_lines("descriptor limit reached") - lines0}


def _rebinding(r: _Run) -> dict[str, Any]:
    t0 = time.monotonic()
    rows = attacks.rebinding(r.port, "127.0.4.1", VICTIM_TOKEN)
    probe = Probe("127.0.0.1", r.port, f"{WS_PATH}?token={VICTIM_TOKEN}")
    try:
        probe.send({"action": "get_orders", "status": "all", "id": "rebind-check"})
        msg = probe.wait(lambda m: m.get("id") == "rebind-check")
    finally:
        probe.close()
    placed = [o for o in msg.get("orders", [])
              if str(o.get("clientOrderId", "")).startswith("rebind-")]
    time.sleep(max(0.0, r.plan.phase_s - (time.monotonic() - t0)))  # the window
    return {"requests": rows, "orders_placed": len(placed),
            "all_refused": all(row["status"] in ("421", "403") for row in rows)}


def _guessing(r: _Run) -> dict[str, Any]:
    p = r.plan
    lines0 = r.log_lines("failed token handshake")
    sources = _sources(5, p.guessers)
    pipes = [r.spawn(attacks.guesser, r.port, src, p.guesses_per, f"g{i}")
             for i, src in enumerate(sources)]
    totals: dict[str, float] = {}
    seconds = 0.0
    for pipe in pipes:
        _, counts = r.recv(pipe, 600, "guesser")
        seconds = max(seconds, counts.pop("seconds"))
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
    metrics = _metrics(r.port)
    other = r.can_connect("127.0.5.200", VICTIM_TOKEN)
    same_now = r.can_connect(sources[0], VICTIM_TOKEN)
    same_after = r.until_connect(sources[0], VICTIM_TOKEN, p.rebind_window_s)
    return {"guesses": p.guessers * p.guesses_per, "processes": p.guessers,
            "seconds": seconds, "statuses": totals,
            "auth_failures_total": metrics.get("tickdesk_auth_failures_total"),
            "auth_refused_total": metrics.get("tickdesk_auth_refused_total"),
            "log_lines": r.log_lines("failed token handshake") - lines0,
            "right_token_other_address": other,
            "right_token_same_address_at_once": same_now,
            "right_token_same_address_after_s": same_after}


def _noisy(r: _Run) -> dict[str, Any]:
    p = r.plan
    probe = Probe("127.0.0.1", r.port, f"{WS_PATH}?token={ATTACKER_TOKEN}")
    try:
        price = str((probe.price() * Decimal("0.9")).quantize(Decimal("0.01")))
    finally:
        probe.close()
    rate = 20.0  # server.rate_limit_per_s at its default: each connection at its limit
    pipe = r.spawn(flood, "127.0.0.1", r.port, f"{WS_PATH}?token={ATTACKER_TOKEN}",
                   p.flood_conns, rate, price)
    _, opened = r.recv(pipe, 120, "flood")
    pipe.send(("go",))
    time.sleep(p.phase_s)  # the measurement window
    pipe.send(("halt",))
    _, counts, _flood_s = r.recv(pipe, 60, "flood")
    pipe.send(("stop",))
    return {"connections": opened, "rate_per_connection": rate, "answers": counts}


def _ping_flood(r: _Run) -> dict[str, Any]:
    p = r.plan
    t0 = time.monotonic()
    pipe = r.spawn(attacks.ping_flood, r.port, "127.0.6.1", ATTACKER_TOKEN, p.ping_max_s)
    _, out = r.recv(pipe, p.ping_max_s + 60, "ping flood")
    # server.rate_limit_burst + server.rate_limit_per_s x the flood's length (defaults)
    out["budget"] = 40 + 20.0 * out["seconds"]
    time.sleep(max(0.0, p.phase_s - (time.monotonic() - t0)))  # the window
    return out  # type: ignore[no-any-return]


PHASES: tuple[tuple[str, Callable[[_Run], dict[str, Any]]], ...] = (
    ("baseline", _baseline), ("slowloris", _slowloris), ("exhaustion", _exhaustion),
    ("rebinding", _rebinding), ("guessing", _guessing), ("noisy", _noisy),
    ("ping_flood", _ping_flood))


def _victims(windows: list[dict[str, Any]], reader_doc: tuple[bytes, bytes],
             trader_doc: bytes) -> None:
    """Cut the victims' samples into the phases' windows (in place)."""
    t, lat = array("d"), array("d")
    t.frombytes(reader_doc[0])
    lat.frombytes(reader_doc[1])
    tr = array("d")
    tr.frombytes(trader_doc)
    trades = [(tr[i], tr[i + 1], tr[i + 2]) for i in range(0, len(tr) - 2, 3)]
    for w in windows:
        a, b = w["start_ms"], w["end_ms"]
        ticks = [x for ts, x in zip(t, lat, strict=True) if a <= ts <= b]
        place = [p for ts, p, _ in trades if a <= ts <= b]
        cancel = [c for ts, _, c in trades if a <= ts <= b]
        w["victims"] = {
            "ticks": len(ticks), "tick_p50_ms": _pct(ticks, 0.5), "tick_p99_ms": _pct(ticks, 0.99),
            "orders": len(place), "place_p50_ms": _pct(place, 0.5),
            "place_p99_ms": _pct(place, 0.99), "cancel_p50_ms": _pct(cancel, 0.5),
            "cancel_p99_ms": _pct(cancel, 0.99)}
    base = windows[0]["victims"]
    for w in windows:
        v = w["victims"]
        for key in ("tick_p50_ms", "tick_p99_ms", "place_p50_ms", "place_p99_ms",
                    "cancel_p50_ms", "cancel_p99_ms"):
            v[key.replace("_ms", "_ratio")] = (v[key] / base[key] if v[key] is not None
                                               and base[key] else None)


def run(plan: Plan, only: set[str] | None = None) -> dict[str, Any]:
    """Every phase (or those in ``only``, after the baseline); returns the figures."""
    doc: dict[str, Any] = {"plan": asdict(plan), "nofile": NOFILE,
                           "load_average": os.getloadavg(), "phases": []}
    with tempfile.TemporaryDirectory(prefix="tickdesk-abuse-") as tmp:
        r = _Run(plan, Path(tmp))
        sampler: _Sampler | None = None
        try:
            wait_listening(r.port, r.daemon, 60)
            doc["daemon_pid"] = r.daemon.pid
            rd = r.spawn(readers, r.port, plan.readers, VICTIM_TOKEN, list(SYMBOLS))
            td = r.spawn(trader, r.port, VICTIM_TOKEN, plan.trade_rate)
            _, doc["readers"] = r.recv(rd, 60, "readers")
            r.recv(td, 60, "trader")
            sampler = _Sampler(r.daemon.pid, r.port)
            sampler.start()
            time.sleep(plan.settle_s)  # let the subscriptions' snapshots pass
            for name, phase in PHASES:
                if only and name != "baseline" and name not in only:
                    continue
                print(f"abuse: {name} ...", file=sys.stderr, flush=True)
                start = _now_ms()
                outcome = phase(r)
                end = _now_ms()
                doc["phases"].append({"name": name, "start_ms": start, "end_ms": end,
                                      "outcome": outcome, "alive": r.alive()})
                if not r.alive():
                    break
                time.sleep(plan.settle_s)  # let the daemon settle; not measured
            sampler.stop()
            for w in doc["phases"]:
                w["daemon"] = sampler.window(w["start_ms"], w["end_ms"])
            rd.send(("report",))
            td.send(("report",))
            _, reader_samples, doc["reader_counts"] = r.recv(rd, 60, "readers")
            _, trader_samples, doc["trader_counts"] = r.recv(td, 60, "trader")
            _victims(doc["phases"], reader_samples, trader_samples)
            doc["alive_at_end"] = r.alive()
            t0 = time.monotonic()
            r.daemon.send_signal(signal.SIGTERM)
            try:
                doc["exit_code"] = r.daemon.wait(timeout=30)
                doc["exit_s"] = time.monotonic() - t0
            except subprocess.TimeoutExpired:
                doc["exit_code"] = None
            doc["tracebacks"] = r.log_lines("Traceback")
            doc["load_average_end"] = os.getloadavg()
        finally:
            if sampler is not None:
                sampler.stop()
            r.close()
    return doc


# -- output ---------------------------------------------------------------------


def _f(x: Any, d: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:,.{d}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def _kv(title: str, items: dict[str, Any]) -> list[str]:
    lines = [f"### {title}", "", "| outcome | value |", "|---|---|"]
    for k, v in items.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}: {_f(b)}" for a, b in sorted(v.items()))
        lines.append(f"| {k} | {_f(v)} |")
    return [*lines, ""]


def render(doc: dict[str, Any]) -> str:
    la = ", ".join(f"{x:.2f}" for x in doc["load_average"])
    la_end = ", ".join(f"{x:.2f}" for x in doc.get("load_average_end", ()))
    lines = [f"abuse: daemon bound to 0.0.0.0, RLIMIT_NOFILE {doc['nofile']}; "
             f"load average {la} at start, {la_end} at the end", ""]
    for w in doc["phases"]:
        o = dict(w["outcome"])
        if w["name"] == "rebinding":
            lines += ["### rebinding", "", "| request | status | order answered |",
                      "|---|---|---|"]
            lines += [f"| {row['request']} | {row['status']} | {_f(row['order_answered'])} |"
                      for row in o.pop("requests")]
            lines += [f"\norders placed through rebinding: {o['orders_placed']}; "
                      f"all refused: {_f(o['all_refused'])}", ""]
        elif o:
            counters = {f"daemon: {k}": v for k, v in w["daemon"]["counters"].items() if v}
            lines += _kv(w["name"], {**o, **counters})
    lines += ["### victims (p50 / p99 ms; × baseline p99)", "",
              "| phase | ticks | tick p50 | tick p99 | × | orders | place p50 | place p99 | × "
              "| cancel p50 | cancel p99 | × |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for w in doc["phases"]:
        v = w["victims"]
        lines.append(
            f"| {w['name']} | {_f(v['ticks'])} | {_f(v['tick_p50_ms'])} | {_f(v['tick_p99_ms'])} "
            f"| {_f(v['tick_p99_ratio'])} | {_f(v['orders'])} | {_f(v['place_p50_ms'])} "
            f"| {_f(v['place_p99_ms'])} | {_f(v['place_p99_ratio'])} "
            f"| {_f(v['cancel_p50_ms'])} | {_f(v['cancel_p99_ms'])} "
            f"| {_f(v['cancel_p99_ratio'])} |")
    lines += ["", "### daemon", "",
              "| phase | threads max | fds max | RSS MiB max | edge connections max "
              "| pending max | scrapes failed | alive |", "|---|---|---|---|---|---|---|---|"]
    for w in doc["phases"]:
        d = w["daemon"]
        lines.append(f"| {w['name']} | {_f(d['threads_max'])} | {_f(d['fds_max'])} "
                     f"| {_f(d['rss_mib_max'], 1)} | {_f(d['connections_max'], 0)} "
                     f"| {_f(d['pending_max'], 0)} | {d['scrapes_failed']}/{d['scrapes']} "
                     f"| {_f(w['alive'])} |")
    lines += ["", f"readers: {doc['reader_counts']}; trader: {doc['trader_counts']}",
              f"daemon alive at the end: {_f(doc['alive_at_end'])}; SIGTERM -> exit code "
              f"{doc['exit_code']} after {_f(doc.get('exit_s'))} s; tracebacks in its log: "
              f"{doc['tracebacks']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tickdesk.bench.abuse",
                                 description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="small counts, a few seconds per phase (the suite's run)")
    ap.add_argument("--phase", type=float, default=None, help="seconds per phase")
    ap.add_argument("--only", default="",
                    help="comma-separated phases to run after the baseline (default: all)")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.phase is not None:
        plan = replace(plan, phase_s=args.phase)
    only = {s.strip() for s in args.only.split(",") if s.strip()} or None
    unknown = (only or set()) - {name for name, _ in PHASES}
    if unknown:
        ap.error(f"unknown phases: {', '.join(sorted(unknown))}")
    try:
        doc = run(plan, only)
    except OSError as exc:
        print(f"abuse: {exc}", file=sys.stderr)
        return 1
    print(render(doc))
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    ok = all(w["alive"] for w in doc["phases"]) and doc["exit_code"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
