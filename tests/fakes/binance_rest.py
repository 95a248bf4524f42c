"""A fake Binance Spot REST API serving ``GET /api/v3/exchangeInfo``, for tests.

It answers as Binance documents (``rest-api.md``, "Exchange information"):
``?symbol=BTCUSDT`` or ``?symbols=["BTCUSDT","ETHUSDT"]`` gives
``{"timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols": [...]}``
with the requested symbols' entries; a symbol it does not know makes the whole
request fail with HTTP 400 ``{"code": -1121, "msg": "Invalid symbol."}``.
By default it knows the symbols of the shipped snapshot
(``engine/market/data/binance_exchange_info.json``); :meth:`add` adds more.

Faults: :meth:`fail_next` answers the next requests with an HTTP error (500 by
default); ``delay_s`` holds every answer that long (for timeouts). Records:
:attr:`requests` (the request targets, in order).

Threads: ``http.server.ThreadingHTTPServer`` runs its accept loop in one daemon
thread (``serve_forever`` polling every 50 ms) and each request in a daemon
handler thread. :meth:`close` shuts the loop down, closes the socket and joins
the loop's thread. Bound to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from engine.config import BinanceConfig

__all__ = ["FakeBinanceRest", "entry", "shared_rest"]

_SNAPSHOT = (Path(__file__).resolve().parents[2] / "engine" / "market" / "data"
             / "binance_exchange_info.json")


def entry(symbol: str, base: str, quote: str, *, tick: str = "0.01", step: str = "0.001",
          min_notional: str = "5") -> dict[str, Any]:
    """A symbol entry in today's format (NOTIONAL, TRAILING_DELTA, PERCENT_PRICE_BY_SIDE)."""
    return {
        "symbol": symbol, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
        "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000",
             "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000000.00000000",
             "stepSize": step},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100000.0",
             "stepSize": "0.00000000"},
            {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10,
             "maxTrailingAboveDelta": 2000, "minTrailingBelowDelta": 10,
             "maxTrailingBelowDelta": 2000},
            {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5",
             "bidMultiplierDown": "0.2", "askMultiplierUp": "5", "askMultiplierDown": "0.2",
             "avgPriceMins": 5},
            {"filterType": "NOTIONAL", "minNotional": min_notional, "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ],
    }


class _Server(ThreadingHTTPServer):
    """Names its request threads ``fake-binance-rest-request`` (socketserver's
    ``Thread-N (process_request_thread)`` would count as the engine's own HTTP
    handlers in the tests that count those)."""

    daemon_threads = True

    def process_request(self, request: Any, client_address: Any) -> None:
        t = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                             name="fake-binance-rest-request", daemon=True)
        t.start()


class FakeBinanceRest:
    def __init__(self, symbols: Mapping[str, Mapping[str, Any]] | None = None, *,
                 delay_s: float = 0.0) -> None:
        if symbols is None:
            doc = json.loads(_SNAPSHOT.read_text(encoding="utf-8"))
            symbols = {e["symbol"]: e for e in doc["symbols"]}
        self._symbols: dict[str, Mapping[str, Any]] = dict(symbols)
        self.delay_s = delay_s
        self.requests: list[str] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                fake._answer(self)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="fake-binance-rest", daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, symbol_entry: Mapping[str, Any]) -> None:
        with self._lock:
            self._symbols[str(symbol_entry["symbol"])] = symbol_entry

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeBinanceRest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the handler, in a request thread ------------------------------------

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append(h.path)
            failure = self._failures.pop(0) if self._failures else None
            known = dict(self._symbols)
        if self.delay_s:
            time.sleep(self.delay_s)
        url = urllib.parse.urlsplit(h.path)
        if url.path != "/api/v3/exchangeInfo":
            return self._send(h, 404, {"code": -1, "msg": "Not found."})
        if failure is not None:
            return self._send(h, failure, {"code": -1000, "msg": "An unknown error occurred."})
        query = urllib.parse.parse_qs(url.query)
        try:
            if "symbols" in query:
                wanted = json.loads(query["symbols"][0])
            elif "symbol" in query:
                wanted = [query["symbol"][0]]
            else:
                wanted = sorted(known)
        except ValueError:
            return self._send(h, 400, {"code": -1100, "msg": "Illegal characters found."})
        if not isinstance(wanted, list) or any(s not in known for s in wanted):
            return self._send(h, 400, {"code": -1121, "msg": "Invalid symbol."})
        self._send(h, 200, {"timezone": "UTC", "serverTime": int(time.time() * 1000),
                            "rateLimits": [], "exchangeFilters": [],
                            "symbols": [known[s] for s in wanted]})

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


_shared: FakeBinanceRest | None = None
_shared_lock = threading.Lock()


def shared_rest() -> FakeBinanceRest:
    """One fake for the whole test session (started on first use; its daemon
    threads end with the process), for tests that start Binance-fed engines."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = FakeBinanceRest()
        return _shared


def binance_config(url: str, **options: Any) -> BinanceConfig:
    """``feed.binance`` for an engine fed by a fake upstream at ``url``: its
    filters come from the session's fake exchangeInfo server (:func:`shared_rest`),
    so no Binance-fed test can reach for the real REST API."""
    return BinanceConfig(url=url, rest_url=shared_rest().base_url, **options)
