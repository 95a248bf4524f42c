"""API keys, signatures, timestamps, listen keys, weights and bounds on a live daemon."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from engine.config import parse_config
from engine.errors import ConfigError
from tests.binance.helpers import ALICE_KEY, BOB_KEY, BOB_SECRET, Rest, accounts_config
from tickdesk import Engine


@pytest.fixture
def daemon() -> Iterator[Engine]:
    eng = Engine(accounts_config()).start()
    try:
        yield eng
    finally:
        eng.stop()


def _code(resp: object) -> int:
    return int(resp.json()["code"])  # type: ignore[attr-defined]


def test_api_key_config_rules() -> None:
    base = {"name": "a", "token": "a-token-123"}
    with pytest.raises(ConfigError) as info:
        parse_config({"accounts": [{**base, "api_key": "key-0000001"}]})
    assert info.value.key == "accounts[0].api_secret"  # the missing one is named
    with pytest.raises(ConfigError) as info:
        parse_config({"accounts": [{**base, "api_secret": "s" * 8}]})
    assert info.value.key == "accounts[0].api_key"
    with pytest.raises(ConfigError) as info:
        parse_config({"accounts": [{**base, "api_key": "bad key!", "api_secret": "s" * 8}]})
    assert info.value.key == "accounts[0].api_key"
    with pytest.raises(ConfigError) as info:
        parse_config({"accounts": [
            {**base, "api_key": "same-key-1", "api_secret": "s" * 8},
            {"name": "b", "token": "b-token-123", "api_key": "same-key-1",
             "api_secret": "t" * 8}]})
    assert info.value.key == "accounts"
    with pytest.raises(ConfigError) as info:
        parse_config({"accounts": [{**base, "api_key": "key-0000001",
                                    "api_secret_env": "NOPE_SECRET"}]}, env={})
    assert info.value.key == "accounts[0].api_secret_env"
    cfg = parse_config({"accounts": [{**base, "api_key": "key-0000001",
                                      "api_secret_env": "S"}]}, env={"S": "from-env-secret"})
    assert cfg.accounts[0].api_secret == "from-env-secret"
    # secrets never appear in the configuration's repr (what a log or print would show)
    assert "from-env-secret" not in repr(cfg) and "a-token-123" not in repr(cfg)
    assert "key-0000001" in repr(cfg)


def test_listen_keys_over_rest(daemon: Engine) -> None:
    alice, bob = Rest(daemon.port), Rest(daemon.port, BOB_KEY, BOB_SECRET)
    r = alice.keyed("POST", "/api/v3/userDataStream")
    assert r.status_code == 200, r.text
    key = r.json()["listenKey"]
    assert len(key) == 64
    assert alice.keyed("POST", "/api/v3/userDataStream").json()["listenKey"] == key
    assert daemon.listen_keys.account(key, daemon.clock.now_ms()) == "alice"
    assert alice.keyed("PUT", "/api/v3/userDataStream", listenKey=key).json() == {}
    # someone else's key is not theirs to keep alive or close
    r = bob.keyed("PUT", "/api/v3/userDataStream", listenKey=key)
    assert r.status_code == 400 and _code(r) == -1125
    r = bob.keyed("DELETE", "/api/v3/userDataStream", listenKey=key)
    assert _code(r) == -1125
    assert alice.keyed("DELETE", "/api/v3/userDataStream", listenKey=key).json() == {}
    assert daemon.listen_keys.account(key, daemon.clock.now_ms()) is None
    r = alice.keyed("PUT", "/api/v3/userDataStream", listenKey=key)
    assert _code(r) == -1125
    r = alice.keyed("PUT", "/api/v3/userDataStream")
    assert _code(r) == -1102


@pytest.mark.parametrize(("key", "code"), [(None, -2014), ("not a key!", -2014),
                                           ("unknown-key-99", -2015)])
def test_bad_api_keys(daemon: Engine, key: str | None, code: int) -> None:
    r = Rest(daemon.port, key).keyed("POST", "/api/v3/userDataStream")
    assert r.status_code == 401 and _code(r) == code
    assert len(daemon.listen_keys) == 0


def test_signed_endpoints_check_signature_and_timestamp(daemon: Engine) -> None:
    alice = Rest(daemon.port)
    r = alice.signed("GET", "/api/v3/account")
    assert r.status_code == 200, r.text
    balances = {b["asset"]: b for b in r.json()["balances"]}
    assert balances["BTC"]["free"] == "1.00000000" and balances["USDT"]["locked"] == "0.00000000"
    assert int(r.headers["X-MBX-USED-WEIGHT-1M"]) >= 20
    # signed with bob's secret under alice's key
    r = Rest(daemon.port, ALICE_KEY, BOB_SECRET).signed("GET", "/api/v3/account")
    assert r.status_code == 400 and _code(r) == -1022
    r = alice.keyed("GET", "/api/v3/account", timestamp=int(time.time() * 1000))
    assert _code(r) == -1102  # no signature
    r = alice.signed("GET", "/api/v3/account", timestamp=int(time.time() * 1000) - 60_000)
    assert _code(r) == -1021
    r = alice.signed("GET", "/api/v3/account", timestamp=int(time.time() * 1000) + 5_000)
    assert _code(r) == -1021
    # a refused order request places nothing
    r = Rest(daemon.port, ALICE_KEY, BOB_SECRET).signed(
        "POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")
    assert _code(r) == -1022
    r = alice.signed("GET", "/api/v3/allOrders", symbol="BTCUSDT")
    assert r.status_code == 200 and r.json() == []


def test_bodies_over_the_cap_are_refused_413(daemon: Engine) -> None:
    alice = Rest(daemon.port)
    r = alice.http.post(alice.base + "/api/v3/order", data="a=" + "x" * 70_000,
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                        timeout=10)
    assert r.status_code == 413


def test_unknown_paths_and_methods(daemon: Engine) -> None:
    alice = Rest(daemon.port)
    assert alice.public("GET", "/api/v3/nope").status_code == 404
    assert alice.public("PATCH", "/api/v3/ping").status_code == 405
    assert alice.public("DELETE", "/api/v3/ping").status_code == 405
    assert alice.public("GET", "/api/v3/ping").json() == {}


def test_request_weight_budget_answers_429_with_retry_after() -> None:
    eng = Engine(accounts_config(api_weight_per_minute=30)).start()
    try:
        rest = Rest(eng.port)
        first = rest.public("GET", "/api/v3/exchangeInfo")  # weight 20
        assert first.status_code == 200 and first.headers["X-MBX-USED-WEIGHT-1M"] == "20"
        second = rest.public("GET", "/api/v3/exchangeInfo")
        if second.status_code == 200:  # the minute turned between the two: start again
            second = rest.public("GET", "/api/v3/exchangeInfo")
        assert second.status_code == 429
        assert second.json()["code"] == -1003
        assert 1 <= int(second.headers["Retry-After"]) <= 60
    finally:
        eng.stop()


def test_open_mode_acts_on_default_without_keys_but_checks_the_timestamp() -> None:
    from tests.conftest import make_config

    eng = Engine(make_config()).start()
    try:
        rest = Rest(eng.port, key=None, secret=None)
        r = rest.keyed("GET", "/api/v3/account", timestamp=int(time.time() * 1000))
        assert r.status_code == 200, r.text
        assert {b["asset"] for b in r.json()["balances"]} == {"USDT"}
        r = rest.keyed("GET", "/api/v3/account", timestamp=int(time.time() * 1000) - 60_000)
        assert _code(r) == -1021
        key = rest.keyed("POST", "/api/v3/userDataStream").json()["listenKey"]
        assert eng.listen_keys.account(key, eng.clock.now_ms()) == "default"
    finally:
        eng.stop()


def test_a_browser_page_of_another_site_cannot_post_orders() -> None:
    """Open mode needs no key: a cross-site form post must still be refused (403)."""
    from tests.conftest import make_config

    eng = Engine(make_config()).start()
    try:
        rest = Rest(eng.port, key=None, secret=None)
        form = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01",
                "timestamp": str(int(time.time() * 1000))}
        r = rest.http.post(rest.base + "/api/v3/order", data=form, timeout=10,
                           headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and _code(r) == -1002
        r = rest.http.get(rest.base + "/api/v3/allOrders", timeout=10,
                          params={"symbol": "BTCUSDT", "timestamp": int(time.time() * 1000)})
        assert r.status_code == 200 and r.json() == []
        own = f"http://127.0.0.1:{eng.port}"
        assert rest.http.get(rest.base + "/api/v3/ping", headers={"Origin": own},
                             timeout=10).status_code == 200
    finally:
        eng.stop()
