"""Measure the dashboard's main-thread long tasks with many symbols streaming.

Starts an engine on the simulated feed with ``--symbols`` symbols (default 50) at
``--tps`` trades a second each, opens the dashboard in Debian's Chromium
(/usr/bin/chromium, headless) at 1400x900 with all of them in the watch list,
and for ``--seconds`` records every long task (a main-thread task over 50 ms,
the browser's own definition) with a PerformanceObserver installed before the
page's scripts run, and a Chromium trace of the same window. Halfway through it
switches symbol and interval and places an order, as a trader would. Prints
the number of long tasks and the longest, the messages the page received and
the frames it drew; and from the trace the renderer main thread's tasks over
50 ms by wall time and by the thread's own CPU time (on a loaded machine a
task's wall time includes the time the thread waited for a core), and that
thread's CPU use.

    PYTHONPATH=. python scripts/dashboard_longtasks.py --symbols 50 --seconds 30

Not a test (timings depend on the machine); docs/dashboard.md quotes a run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import sync_playwright  # noqa: E402

from engine.config import (  # noqa: E402
    Config,
    FeedConfig,
    IntervalsConfig,
    ServerConfig,
    SimulatedConfig,
    StoreConfig,
)
from tickdesk import Engine  # noqa: E402

KNOWN = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "COMPUSDT", "CRVUSDT", "NKNUSDT",
         "ZRXUSDT"]

OBSERVER = """
window.__longtasks = [];
window.__messages = 0;
window.__frames = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longtasks.push([e.startTime, e.duration]);
}).observe({ type: "longtask", buffered: true });
const count = () => { window.__frames += 1; requestAnimationFrame(count); };
requestAnimationFrame(count);
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", () => { window.__messages += 1; });
  }
};
"""


def main_thread(trace: Path) -> dict[str, Any]:
    """The renderer main thread's tasks in the trace: over 50 ms by wall and CPU time."""
    data = json.loads(trace.read_text())
    events = data["traceEvents"] if isinstance(data, dict) else data
    mains = {(e["pid"], e["tid"]) for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"
             and e.get("args", {}).get("name") == "CrRendererMain"}
    tasks = [e for e in events if e.get("ph") == "X" and e.get("name") == "RunTask"
             and (e["pid"], e["tid"]) in mains]
    if not tasks:
        return {"trace": "no renderer main thread found"}
    span_us = max(e["ts"] + e["dur"] for e in tasks) - min(e["ts"] for e in tasks)
    wall = [e["dur"] / 1000 for e in tasks]
    cpu = [e.get("tdur", 0) / 1000 for e in tasks]
    return {
        "trace_tasks_over_50ms_wall": sum(d > 50 for d in wall),
        "trace_longest_wall_ms": round(max(wall), 1),
        "trace_tasks_over_50ms_cpu": sum(d > 50 for d in cpu),
        "trace_longest_cpu_ms": round(max(cpu), 1),
        "main_thread_cpu_percent": round(100 * sum(cpu) * 1000 / span_us, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=50)
    ap.add_argument("--tps", type=float, default=10.0, help="trades a second per symbol")
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    symbols = (KNOWN + [f"SIM{i:02d}USDT" for i in range(args.symbols)])[: args.symbols]
    cfg = Config(server=ServerConfig(port=0), store=StoreConfig(path=""),
                 feed=FeedConfig(symbols=tuple(symbols),
                                 simulated=SimulatedConfig(seed=11, ticks_per_second=args.tps)),
                 intervals=IntervalsConfig())
    with Engine(cfg) as engine, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                     args=["--headless", "--no-sandbox", "--disable-gpu",
                                           "--no-first-run"])
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.add_init_script(OBSERVER)
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{engine.port}/")
        page.wait_for_function(
            f"() => document.querySelectorAll('#watch-rows tr').length === {len(symbols)}",
            timeout=30_000)
        page.wait_for_function(
            "() => document.getElementById('status').dataset.state === 'realtime'",
            timeout=30_000)
        trace = Path(tempfile.mkdtemp()) / "trace.json"
        browser.start_tracing(page=page, path=str(trace), categories=["devtools.timeline",
                                                                 "disabled-by-default-devtools.timeline"])
        start = page.evaluate("[performance.now(), window.__messages, window.__frames]")
        t0 = time.monotonic()
        half = False
        while time.monotonic() - t0 < args.seconds:
            if not half and time.monotonic() - t0 > args.seconds / 2:
                half = True
                page.click(f'#watch-rows tr[data-symbol="{symbols[1]}"]')
                page.click('#chart-intervals button[data-interval="5m"]')
                page.fill("#t-quantity", "0.01")
                page.click("#t-submit")
            page.wait_for_timeout(250)
        end = page.evaluate("[performance.now(), window.__messages, window.__frames]")
        tasks = page.evaluate("window.__longtasks.filter(t => t[0] >= %f)" % start[0])
        all_tasks = page.evaluate("window.__longtasks")
        browser.stop_tracing()
        context.close()
        browser.close()
    elapsed = (end[0] - start[0]) / 1000
    report = {
        "symbols": len(symbols), "trades_per_s_per_symbol": args.tps,
        "measured_s": round(elapsed, 1),
        "messages_per_s": round((end[1] - start[1]) / elapsed),
        "frames_per_s": round((end[2] - start[2]) / elapsed, 1),
        "long_tasks": len(tasks),
        "longest_ms": round(max((d for _, d in tasks), default=0.0), 1),
        "long_tasks_during_load": len(all_tasks) - len(tasks),
        "longest_during_load_ms": round(max((d for _, d in all_tasks), default=0.0), 1),
        **main_thread(trace),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
