"""A minimal Binance REST client for the tests: signs as Binance's docs say
(HMAC-SHA256 of query + body), built here from the documented rule, not from
the server's code."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import requests

from engine.config import AccountConfig, FeedConfig, ServerConfig
from tests.conftest import make_config
from tests.fakes.binance_rest import binance_config
from tests.fakes.binance_upstream import FakeBinanceUpstream
from tickdesk import Config, Engine

ALICE_KEY = "alice-api-key-0001"
ALICE_SECRET = "alice-secret-0001"
BOB_KEY = "bob-api-key-0002"
BOB_SECRET = "bob-secret-0002"


def signed(secret: str, **params: Any) -> dict[str, Any]:
    """``params`` with Binance's ``signature``: HMAC-SHA256 of the parameters
    sorted by name, as the WebSocket API's docs say."""
    query = "&".join(f"{k}={params[k]}" for k in sorted(params))
    return {**params, "signature": hmac.new(secret.encode(), query.encode(),
                                            hashlib.sha256).hexdigest()}


def ccxt_exchange(port: int, key: str = ALICE_KEY, secret: str = ALICE_SECRET, *,
                  timeout_ms: int = 10_000) -> Any:
    """An unchanged ccxt binance (sync) client whose REST URLs point at our port."""
    import ccxt  # the test extra; imported here so other helpers need not load it

    ex = ccxt.binance({"apiKey": key, "secret": secret, "timeout": timeout_ms,
                       "options": {"fetchMarkets": {"types": ["spot"]},
                                   "fetchCurrencies": False, "fetchMargins": False}})
    ex.urls["api"] = {k: f"http://127.0.0.1:{port}/api/v3" for k in ex.urls["api"]}
    return ex


def accounts_config(*, feed: FeedConfig | None = None, **server: Any) -> Config:
    """Two accounts with API keys (alice with 10000 USDT and 1 BTC); ``feed``:
    another feed than the tests' simulated one."""
    more: dict[str, Any] = {} if feed is None else {"feed": feed}
    return make_config(
        **more,
        server=ServerConfig(port=0, **server),
        accounts=(AccountConfig(name="alice", token="alice-token-1", api_key=ALICE_KEY,
                                api_secret=ALICE_SECRET,
                                balances=(("BTC", Decimal(1)), ("USDT", Decimal(10000)))),
                  AccountConfig(name="bob", token="bob-token-22", api_key=BOB_KEY,
                                api_secret=BOB_SECRET)))


class Rest:
    def __init__(self, port: int, key: str | None = ALICE_KEY,
                 secret: str | None = ALICE_SECRET) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.key = key
        self.secret = secret
        self.http = requests.Session()

    def _headers(self) -> dict[str, str]:
        return {"X-MBX-APIKEY": self.key} if self.key else {}

    def public(self, method: str, path: str, **params: Any) -> requests.Response:
        return self.http.request(method, self.base + path, params=params, timeout=10)

    def keyed(self, method: str, path: str, **params: Any) -> requests.Response:
        return self.http.request(method, self.base + path, params=params,
                                 headers=self._headers(), timeout=10)

    def signed(self, method: str, path: str, *, in_body: bool | None = None,
               timestamp: int | None = None, **params: Any) -> requests.Response:
        params["timestamp"] = timestamp if timestamp is not None else int(time.time() * 1000)
        payload = urlencode(params)
        sig = hmac.new((self.secret or "").encode(), payload.encode(),
                       hashlib.sha256).hexdigest()
        signed = f"{payload}&signature={sig}"
        body = in_body if in_body is not None else method in ("POST", "PUT")
        headers = self._headers()
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return self.http.request(method, self.base + path, data=signed, headers=headers,
                                     timeout=10)
        return self.http.request(method, f"{self.base}{path}?{signed}", headers=headers,
                                 timeout=10)


@dataclass(frozen=True)
class Pushed:
    """One trade a test pushed through the fake upstream (the reference)."""

    agg_id: int
    price: Decimal
    qty: Decimal
    time: int
    buyer_is_maker: bool


@contextmanager
def upstream_daemon() -> Iterator[tuple[Engine, FakeBinanceUpstream]]:
    """A daemon with the two API-key accounts, fed BTCUSDT by a fake Binance
    upstream the test scripts (nothing else trades)."""
    with FakeBinanceUpstream(known_symbols={"BTCUSDT"}) as upstream:
        feed = FeedConfig(source="binance", symbols=("BTCUSDT",),
                          binance=binance_config(upstream.base_url, stall_timeout_s=60))
        eng = Engine(accounts_config(feed=feed)).start()
        try:
            assert upstream.wait_until(lambda: upstream.subscribers("btcusdt@aggTrade") == 1)
            yield eng, upstream
        finally:
            eng.stop()


def push_trades(upstream: FakeBinanceUpstream, first_id: int, count: int,
                start_ms: int) -> list[Pushed]:
    """Push ``count`` BTCUSDT trades with ids ``first_id``.. and trade times 7 ms
    apart from ``start_ms``; prices, quantities and maker flags vary by index."""
    out = []
    for i in range(count):
        t = Pushed(first_id + i, Decimal("40000") + Decimal(i % 50) / 4,
                   Decimal("0.001") * (1 + i % 7), start_ms + 7 * i, i % 3 == 0)
        upstream.push_trade("BTCUSDT", t.price, t.qty, buyer_is_maker=t.buyer_is_maker,
                            agg_id=t.agg_id, event_time_ms=t.time)
        out.append(t)
    return out
