"""Klines through a gateway against one process: ``get_klines`` and REST
``GET /api/v3/klines`` latency, in the same run.

Edge module (processes, sockets, clocks). Starts its own ``redis-server``
(free loopback port, no persistence), one process of role ``all``, and one
engine and one gateway on the same simulated feed; once bars exist, asks
each ``--requests`` times (our protocol over one ``TickdeskClient``, REST
over one keep-alive connection), alternating the two targets request by
request so both see the same machine load. Both engines start from a store
holding ``--bars`` closed 1m bars (so an answer carries that many, as a
chart's history does), each its own copy. Prints p50 / p99 / max in ms per
target and the gateway / one-process ratio, and the load average. Not a
test: nothing is asserted.

    python -m tickdesk.bench.gateway_queries [--requests 200] [--limit 500]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from decimal import Decimal

import requests

from engine.market.klines import Kline
from engine.store import Store
from tickdesk.bench.cluster import _Redis
from tickdesk.client import TickdeskClient

_CONFIG = """
[server]
host = "127.0.0.1"
port = 0
rate_limit_per_s = 10000
rate_limit_burst = 10000
api_weight_per_minute = 1000000
[feed]
source = "simulated"
symbols = ["BTCUSDT"]
[feed.simulated]
ticks_per_second = 20
[store]
path = {db!r}
[log]
level = "INFO"
"""


class _Daemon:
    """One ``tickdesk run`` child; its stderr drained by a thread."""

    def __init__(self, config: str, cwd: str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tickdesk.cli", "run", "--config", config, *extra],
            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.url = ""
        found = threading.Event()

        def drain() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                m = re.search(r"listening on (ws://\S+)", line)
                if m and not self.url:
                    self.url = m.group(1)
                    found.set()

        threading.Thread(target=drain, daemon=True).start()
        if not found.wait(30):
            self.stop()
            raise SystemExit(f"{' '.join(extra) or 'all'}: did not start")

    @property
    def base(self) -> str:
        m = re.match(r"ws://([^/]+)/", self.url)
        assert m is not None
        return f"http://{m.group(1)}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _history(path: str, bars: int) -> None:
    """A store with ``bars`` closed 1m bars of BTCUSDT, ending a minute ago."""
    end = (int(time.time() * 1000) // 60_000 - 1) * 60_000
    rows = [Kline("BTCUSDT", "1m", t, t + 59_999, Decimal("50000.10"), Decimal("50010.5"),
                  Decimal("49990.25"), Decimal("50001.75"), Decimal("1.23456789"),
                  Decimal("61728.39"), 42)
            for t in range(end - bars * 60_000, end, 60_000)]
    with Store(path) as store:
        store.write_klines(rows, keep=1000)


def _stats(ms: list[float]) -> tuple[float, float, float]:
    ms = sorted(ms)
    return statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.99))], ms[-1]


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--limit", type=int, default=500, help="bars per request (1..1000)")
    parser.add_argument("--bars", type=int, default=500, help="stored 1m bars (0..999)")
    args = parser.parse_args(argv)
    redis_server = _Redis()
    daemons: list[_Daemon] = []
    clients: list[TickdeskClient] = []
    with tempfile.TemporaryDirectory() as tmp:
        configs = []
        _history(os.path.join(tmp, "all.db"), args.bars)
        shutil.copy(os.path.join(tmp, "all.db"), os.path.join(tmp, "engine.db"))
        for name in ("all", "engine"):
            configs.append(os.path.join(tmp, f"{name}.toml"))
            with open(configs[-1], "w") as f:
                f.write(_CONFIG.format(db=os.path.join(tmp, f"{name}.db")))
        try:
            one = _Daemon(configs[0], tmp)
            daemons.append(one)
            daemons.append(_Daemon(configs[1], tmp, "--role", "engine", "--redis-url",
                                   redis_server.url))
            gateway = _Daemon(configs[1], tmp, "--role", "gateway", "--redis-url",
                              redis_server.url)
            daemons.append(gateway)
            targets = {"all": one, "gateway": gateway}
            ws = {name: TickdeskClient(d.url, request_timeout_s=10).connect()
                  for name, d in targets.items()}
            clients.extend(ws.values())
            http = {name: requests.Session() for name in targets}
            deadline = time.monotonic() + 30
            for c in ws.values():  # bars exist on both engines
                while not c.get_klines("BTCUSDT", "1m")["klines"]:
                    if time.monotonic() > deadline:
                        raise SystemExit("no bars within 30 s")
                    time.sleep(0.1)
            params = {"symbol": "BTCUSDT", "interval": "1m", "limit": args.limit}
            got: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.requests):
                for name in targets:
                    c, h, base = ws[name], http[name], targets[name].base

                    def ours(c: TickdeskClient = c) -> None:
                        c.get_klines("BTCUSDT", "1m", limit=args.limit)
                    got.setdefault(("get_klines", name), []).append(_timed(ours))

                    def rest(h: requests.Session = h, base: str = base) -> None:
                        r = h.get(base + "/api/v3/klines", params=params, timeout=10)
                        r.raise_for_status()
                    got.setdefault(("REST klines", name), []).append(_timed(rest))
            load = os.getloadavg()
            bars = len(ws["gateway"].get_klines("BTCUSDT", "1m", limit=args.limit)["klines"])
            print(f"{args.requests} requests per target, limit {args.limit} ({bars} bars in "
                  f"an answer); load average "
                  f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
            for kind in ("get_klines", "REST klines"):
                p50a, p99a, maxa = _stats(got[(kind, "all")])
                p50g, p99g, maxg = _stats(got[(kind, "gateway")])
                print(f"{kind:12s} all      p50 {p50a:6.2f} ms  p99 {p99a:6.2f} ms  "
                      f"max {maxa:6.2f} ms")
                print(f"{kind:12s} gateway  p50 {p50g:6.2f} ms  p99 {p99g:6.2f} ms  "
                      f"max {maxg:6.2f} ms   ratio p50 {p50g / p50a:.2f}x  "
                      f"p99 {p99g / p99a:.2f}x")
        finally:
            for c in clients:
                c.close()
            for d in reversed(daemons):
                d.stop()
            redis_server.close()


if __name__ == "__main__":
    main()
