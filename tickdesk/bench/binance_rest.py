"""Round trips of the Binance-compatible REST API: signed orders on a live daemon.

A daemon in a child process (simulated feed, one account with an API key),
and this process as the bot: ``--orders`` signed ``POST /api/v3/order``
MARKET orders (answered FULL, with their fills), then as many LIMIT orders
far from the market each cancelled with ``DELETE /api/v3/order``, over one
keep-alive connection. Prints p50 / p99 / max in ms per kind. Not a test:
nothing is asserted.

    python -m tickdesk.bench.binance_rest [--orders 200]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from urllib.parse import urlencode

import requests

_KEY, _SECRET = "bench-api-key-0001", "bench-secret-0001"
_CONFIG = f"""
[server]
port = 0
[store]
path = ""
[log]
level = "INFO"
[[accounts]]
name = "bench"
token = "bench-token-0001"
api_key = "{_KEY}"
api_secret = "{_SECRET}"
balances = {{USDT = 100000000}}
"""


def _signed(http: requests.Session, base: str, method: str, path: str,
            **params: object) -> requests.Response:
    params["timestamp"] = int(time.time() * 1000)
    payload = urlencode(params)
    sig = hmac.new(_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    headers = {"X-MBX-APIKEY": _KEY, "Content-Type": "application/x-www-form-urlencoded"}
    return http.request(method, base + path, data=f"{payload}&signature={sig}",
                        headers=headers, timeout=10)


def _report(name: str, ms: list[float]) -> None:
    ms.sort()
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"{name:28s} n={len(ms):4d}  p50 {statistics.median(ms):6.2f} ms  "
          f"p99 {p99:6.2f} ms  max {ms[-1]:6.2f} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "config.toml")
        with open(cfg, "w") as f:
            f.write(_CONFIG)
        proc = subprocess.Popen([sys.executable, "-m", "tickdesk.cli", "run", "--config", cfg],
                                cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        try:
            port = None
            assert proc.stderr is not None
            deadline = time.monotonic() + 30
            while port is None and time.monotonic() < deadline:
                m = re.search(r"listening on ws://[^:]+:(\d+)/", proc.stderr.readline())
                if m:
                    port = int(m.group(1))
            if port is None:
                raise SystemExit("the daemon did not start")
            base = f"http://127.0.0.1:{port}"
            http = requests.Session()
            price = None
            while price is None and time.monotonic() < deadline:
                r = http.get(base + "/api/v3/ticker/price", params={"symbol": "BTCUSDT"},
                             timeout=10)
                price = Decimal(r.json()["price"]) if r.status_code == 200 else None
            assert price is not None
            below = str((price * Decimal("0.9")).quantize(Decimal("0.01")))
            market: list[float] = []
            limit: list[float] = []
            cancel: list[float] = []
            for _ in range(args.orders):
                t0 = time.perf_counter()
                r = _signed(http, base, "POST", "/api/v3/order", symbol="BTCUSDT", side="BUY",
                            type="MARKET", quantity="0.001")
                market.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
            for _ in range(args.orders):
                t0 = time.perf_counter()
                r = _signed(http, base, "POST", "/api/v3/order", symbol="BTCUSDT", side="BUY",
                            type="LIMIT", timeInForce="GTC", quantity="0.001", price=below)
                limit.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
                t0 = time.perf_counter()
                c = _signed(http, base, "DELETE", "/api/v3/order", symbol="BTCUSDT",
                            orderId=r.json()["orderId"])
                cancel.append((time.perf_counter() - t0) * 1000)
                assert c.status_code == 200, c.text
            _report("POST order MARKET (FULL)", market)
            _report("POST order LIMIT (FULL)", limit)
            _report("DELETE order", cancel)
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
