"""Upstream frame -> client latency through the live-feed path (issue #3).

A fake Binance upstream on 127.0.0.1 pushes aggTrade frames at a fixed rate;
tickdesk's Binance source decodes them, the FeedActor routes them and a
websocket-client subscriber receives the MARKET_UPDATE. Each trade carries a
unique price, so the receiver matches it to the push time (same process,
monotonic clock). Prints p50/p99/max in ms. Not a test: no assertion on time.

    python -m tickdesk.bench.upstream_latency [--trades 2000] [--rate 200]
"""

from __future__ import annotations

import argparse
import threading
import time
from decimal import Decimal

import orjson
import websocket

from engine.config import BinanceConfig, FeedConfig, ServerConfig, StoreConfig
from tests.fakes.binance_upstream import FakeBinanceUpstream
from tickdesk import Config, Engine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trades", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=200.0, help="trades per second")
    args = ap.parse_args()
    with FakeBinanceUpstream(known_symbols={"BTCUSDT"}) as up:
        cfg = Config(server=ServerConfig(port=0), store=StoreConfig(path=""),
                     feed=FeedConfig(source="binance", symbols=("BTCUSDT",),
                                     binance=BinanceConfig(url=up.base_url, stall_timeout_s=60)))
        with Engine(cfg) as eng:
            ws = websocket.create_connection(eng.url, timeout=10, skip_utf8_validation=True)
            ws.send('{"action":"subscribe_ticker","symbol":"BTCUSDT"}')
            up.wait_until(lambda: up.subscribers("btcusdt@aggTrade") == 1, 10)
            sent: dict[float, int] = {}
            got: list[float] = []
            done = threading.Event()

            def reader() -> None:
                while len(got) < args.trades:
                    m = orjson.loads(ws.recv())
                    t = time.monotonic_ns()
                    if m.get("type") == "MARKET_UPDATE" and m["price"] in sent:
                        got.append((t - sent.pop(m["price"])) / 1e6)
                done.set()

            threading.Thread(target=reader, daemon=True).start()
            period = 1.0 / args.rate
            start = time.monotonic()
            for i in range(args.trades):
                price = Decimal(50000) + Decimal(i) / 100
                delay = start + i * period - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                sent[float(price)] = time.monotonic_ns()
                up.push_trade("BTCUSDT", price, "0.01")
            done.wait(30)
            ws.close()
    got.sort()
    n = len(got)
    print(f"trades {args.trades} received {n} at {args.rate:.0f}/s: "
          f"p50 {got[n // 2]:.2f} ms  p99 {got[int(n * 0.99)]:.2f} ms  max {got[-1]:.2f} ms")


if __name__ == "__main__":
    main()
