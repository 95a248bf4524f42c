"""A minimal Binance REST client for the tests: signs as Binance's docs say
(HMAC-SHA256 of query + body), built here from the documented rule, not from
the server's code."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlencode

import requests

from engine.config import AccountConfig, ServerConfig
from tests.conftest import make_config
from tickdesk import Config

ALICE_KEY = "alice-api-key-0001"
ALICE_SECRET = "alice-secret-0001"
BOB_KEY = "bob-api-key-0002"
BOB_SECRET = "bob-secret-0002"


def accounts_config(**server: Any) -> Config:
    """Two accounts with API keys (alice with 10000 USDT and 1 BTC)."""
    from decimal import Decimal

    return make_config(
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
