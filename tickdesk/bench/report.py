"""The bench's output: a Markdown table of rows, the tickdesk/reference and
tickdesk/floor ratios, JSON."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import orjson

from engine.version import __version__
from tickdesk.bench.runner import Row

__all__ = ["as_json", "ratios", "render", "summary"]


def _f(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


_METRICS = ("deliveries_per_s", "p50_ms", "p99_ms", "cpu_us_per_delivery", "threads")


def _spread(values: Sequence[float | None], digits: int) -> str:
    vs = sorted(v for v in values if v is not None)
    if not vs:
        return "–"
    med = statistics.median(vs)
    if len(vs) == 1 or vs[0] == vs[-1]:
        return _f(med, digits)
    return f"{_f(med, digits)} ({_f(vs[0], digits)}–{_f(vs[-1], digits)})"


def summary(rows: Sequence[Row]) -> str:
    """Medians (min–max) over repeated runs: the rows, then the ratios."""
    runs = len({r.run for r in rows})
    keys = list(dict.fromkeys((r.clients, r.workload, r.server) for r in rows))
    out = [
        f"Median (min–max) over {runs} runs; completed runs only.",
        "",
        "| N | workload | server | runs ok | deliveries/s | p50 ms | p99 ms "
        "| server CPU µs/delivery | threads |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, w, srv in keys:
        group = [r for r in rows if (r.clients, r.workload, r.server) == (n, w, srv)]
        ok = [r for r in group if r.ok]
        out.append(
            f"| {n} | {w} | {srv} | {len(ok)}/{len(group)} "
            f"| {_spread([r.deliveries_per_s for r in ok], 0)} "
            f"| {_spread([r.p50_ms for r in ok], 2)} | {_spread([r.p99_ms for r in ok], 2)} "
            f"| {_spread([r.cpu_us_per_delivery for r in ok], 1)} "
            f"| {_spread([float(r.threads) for r in ok], 0)} |"
        )
    for against in ("reference", "floor"):
        table = ratios(rows, against)
        if not table:
            continue
        out += [
            "",
            f"tickdesk / {against}, median (min–max) over the runs where both completed",
            "",
            "| N | workload | runs | deliveries/s | p50 | p99 | CPU µs/delivery | threads |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for n, w in dict.fromkeys((t["clients"], t["workload"]) for t in table):
            pairs = [t for t in table if (t["clients"], t["workload"]) == (n, w)]
            cells = " | ".join(_spread([t[m] for t in pairs], 2) for m in _METRICS)
            out.append(f"| {n} | {w} | {len(pairs)} | {cells} |")
    return "\n".join(out)


def idle_table(rows: Sequence[Row]) -> list[str]:
    """Each server idle with N subscribed connections (median over runs)."""
    firsts: dict[tuple[int, int, str], Row] = {}
    for r in rows:
        if r.rss_mb is not None:
            firsts.setdefault((r.run, r.clients, r.server), r)
    keys = list(dict.fromkeys((n, srv) for _, n, srv in firsts))
    if not keys:
        return []
    out = ["", "Idle, N connections subscribed, no ticks (median over runs)", "",
           "| N | server | RSS MiB | RSS KiB per connection | idle CPU % | threads |",
           "|---|---|---|---|---|---|"]
    for n, srv in keys:
        group = [r for (_, rn, rs), r in firsts.items() if (rn, rs) == (n, srv)]
        out.append(
            f"| {n} | {srv} | {_spread([r.rss_mb for r in group], 1)} "
            f"| {_spread([r.rss_kib_per_conn for r in group], 1)} "
            f"| {_spread([r.idle_cpu_pct for r in group], 1)} "
            f"| {_spread([float(r.threads) for r in group], 0)} |")
    return out


def render(rows: Sequence[Row]) -> str:
    if len({r.run for r in rows}) > 1:
        return "\n".join([summary(rows), *idle_table(rows)])
    out = [
        "| N | workload | server | deliveries/s | received / expected | p50 ms | p99 ms "
        "| max ms | server CPU µs/delivery | server CPU % | client CPU % | threads | ok |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r.clients} | {r.workload} | {r.server} | {r.deliveries_per_s:,.0f} "
            f"| {r.received:,} / {r.expected:,} | {_f(r.p50_ms, 2)} | {_f(r.p99_ms, 2)} "
            f"| {_f(r.max_ms, 2)} | {_f(r.cpu_us_per_delivery)} | {r.cpu_pct:.0f} "
            f"| {r.client_cpu_pct:.0f} "
            f"| {r.threads} | {'yes' if r.ok else 'NO: ' + '; '.join(r.errors[:2])} |"
        )
    for against in ("reference", "floor"):
        table = ratios(rows, against)
        if not table:
            continue
        out += [
            "",
            f"tickdesk / {against} (same N and workload; >1 means tickdesk is higher)",
            "",
            "| N | workload | deliveries/s | p50 | p99 | CPU µs/delivery | threads |",
            "|---|---|---|---|---|---|---|",
        ]
        for t in table:
            out.append(
                f"| {t['clients']} | {t['workload']} | {_f(t['deliveries_per_s'], 2)} "
                f"| {_f(t['p50_ms'], 2)} | {_f(t['p99_ms'], 2)} "
                f"| {_f(t['cpu_us_per_delivery'], 2)} | {_f(t['threads'], 0)} |"
            )
    return "\n".join(out + idle_table(rows))


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def ratios(rows: Sequence[Row], against: str = "reference") -> list[dict[str, Any]]:
    """tickdesk / ``against`` (``reference`` or ``floor``) for each (run, N,
    workload) where both completed in the same run."""
    ref = {(r.run, r.clients, r.workload): r for r in rows if r.server == against and r.ok}
    out: list[dict[str, Any]] = []
    for r in rows:
        b = ref.get((r.run, r.clients, r.workload))
        if r.server != "tickdesk" or b is None or not r.ok:
            continue
        out.append({
            "run": r.run,
            "clients": r.clients,
            "workload": r.workload,
            "deliveries_per_s": _ratio(r.deliveries_per_s, b.deliveries_per_s),
            "p50_ms": _ratio(r.p50_ms, b.p50_ms),
            "p99_ms": _ratio(r.p99_ms, b.p99_ms),
            "cpu_us_per_delivery": _ratio(r.cpu_us_per_delivery, b.cpu_us_per_delivery),
            "threads": _ratio(r.threads, b.threads),
        })
    return out


def as_json(rows: Sequence[Row], settings: dict[str, Any]) -> bytes:
    doc = {
        "tickdesk": __version__,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "settings": settings,
        "ok": all(r.ok for r in rows),
        "rows": [dict(asdict(r), missing=r.missing, ok=r.ok) for r in rows],
        "ratios": ratios(rows),
        "floor_ratios": ratios(rows, "floor"),
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)
