"""Live symbols have an owner: authentication, a bound per account, withdrawal.

Against the fake Binance on loopback (streaming every listed symbol), with
two accounts configured (so anonymous connections exist). Every wait is
bounded; "kept within the grace" is shown by ordering, not by sleeping: a
symbol left later is withdrawn first, so the earlier deadline has passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from engine.config import AccountConfig, FeedConfig
from engine.market.binance_codec import stream_names
from tests.fakes.binance_rest import FakeBinanceRest, binance_config, entry
from tests.fakes.binance_upstream import FakeBinanceUpstream
from tests.feeds.helpers import engine_config, wait_until
from tickdesk.app import Engine, LocalSession

LISTED = {"BTCUSDT": "50000.0", **{f"X{i}USDT": f"{i + 1}.0" for i in range(4)}}
ALICE, BOB = "alice-token-1", "bob-token-22"


@pytest.fixture
def upstream(binance_rest: FakeBinanceRest) -> Iterator[FakeBinanceUpstream]:
    for i in range(4):  # exchangeInfo knows the symbols that may be added live
        binance_rest.add(entry(f"X{i}USDT", f"X{i}", "USDT"))
    with FakeBinanceUpstream(stream_prices=LISTED) as fake:
        yield fake


def _engine(url: str, *, grace_s: float = 60.0, per_account: int = 8) -> Engine:
    feed = FeedConfig(source="binance", symbols=("BTCUSDT",),
                      max_live_symbols_per_account=per_account,
                      binance=binance_config(url, stall_timeout_s=2.0, unsubscribe_grace_s=grace_s))
    cfg = engine_config(feed).with_overrides(accounts=(AccountConfig("alice", ALICE),
                                                       AccountConfig("bob", BOB)))
    engine = Engine(cfg, listen=False)
    return engine


def _up(engine: Engine) -> None:
    wait_until(lambda: engine.feed_status()["status"] == "UP", what="feed UP")


def _ask(session: LocalSession, action: str, symbol: str, rid: Any) -> dict[str, Any]:
    session.send({"action": action, "symbol": symbol, "id": rid})
    return session.wait_for(lambda m: m.get("id") == rid, timeout=5)


def _controls(fake: FakeBinanceUpstream, method: str) -> list[list[str]]:
    return [c["params"] for c in fake.control_requests
            if isinstance(c, dict) and c.get("method") == method]


def test_adding_a_symbol_needs_an_authenticated_connection(
        upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url) as engine:
        _up(engine)
        anon = engine.connect()
        err = _ask(anon, "subscribe_ticker", "X0USDT", 1)
        assert (err["type"], err["code"]) == ("ERROR", "UNAUTHORIZED")
        assert "authenticate" in err["message"]
        ok = _ask(anon, "subscribe_ticker", "BTCUSDT", 2)  # configured: anyone may watch
        assert ok["type"] == "SUBSCRIBED"
        anon.send({"action": "auth", "token": ALICE, "id": 3})
        assert anon.wait_for(lambda m: m.get("id") == 3, timeout=5)["type"] == "AUTHENTICATED"
        assert _ask(anon, "subscribe_ticker", "X0USDT", 4)["type"] == "SUBSCRIBED"
        assert _controls(upstream, "SUBSCRIBE") == [stream_names("X0USDT")]


def test_an_account_may_add_only_so_many_symbols(upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url, per_account=2) as engine:
        _up(engine)
        alice, bob = engine.connect(token=ALICE), engine.connect(token=BOB)
        assert _ask(alice, "subscribe_ticker", "X0USDT", 1)["type"] == "SUBSCRIBED"
        assert _ask(alice, "subscribe_ticker", "X1USDT", 2)["type"] == "SUBSCRIBED"
        err = _ask(alice, "subscribe_ticker", "X2USDT", 3)
        assert (err["type"], err["code"]) == ("ERROR", "RATE_LIMITED")
        assert not engine.feed_shared.serves("X2USDT")
        # bob has his own budget, and joining alice's symbols costs him nothing
        assert _ask(bob, "subscribe_ticker", "X1USDT", 4)["type"] == "SUBSCRIBED"
        assert _ask(bob, "subscribe_ticker", "X2USDT", 5)["type"] == "SUBSCRIBED"
        assert engine.feed_shared.live_owners() == {"X0USDT": "alice", "X1USDT": "alice",
                                                    "X2USDT": "bob"}


def test_a_symbol_is_withdrawn_after_its_last_subscriber_left(
        upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url, grace_s=0.2, per_account=1) as engine:
        _up(engine)
        alice, bob = engine.connect(token=ALICE), engine.connect(token=BOB)
        assert _ask(alice, "subscribe_ticker", "X0USDT", 1)["type"] == "SUBSCRIBED"
        assert _ask(bob, "subscribe_ticker", "X0USDT", 2)["type"] == "SUBSCRIBED"
        assert _ask(alice, "unsubscribe_ticker", "X0USDT", 3)["type"] == "UNSUBSCRIBED"
        bob.close()  # a disconnect leaves too
        wait_until(lambda: _controls(upstream, "UNSUBSCRIBE") == [
            stream_names("X0USDT")], what="X0USDT unsubscribed upstream")
        assert not engine.feed_shared.serves("X0USDT")
        assert engine.feed_shared.live_owners() == {}
        # its owner may add another one now, and the same one again later
        assert _ask(alice, "subscribe_ticker", "X1USDT", 4)["type"] == "SUBSCRIBED"
        assert _ask(alice, "unsubscribe_ticker", "X1USDT", 5)["type"] == "UNSUBSCRIBED"
        wait_until(lambda: not engine.feed_shared.serves("X1USDT"), what="X1USDT withdrawn")
        assert _ask(alice, "subscribe_ticker", "X0USDT", 6)["type"] == "SUBSCRIBED"


def test_subscribing_again_within_the_grace_keeps_the_symbol(
        upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url, grace_s=0.5) as engine:
        _up(engine)
        alice = engine.connect(token=ALICE)
        for i, sym in enumerate(("X0USDT", "X1USDT")):
            assert _ask(alice, "subscribe_ticker", sym, i)["type"] == "SUBSCRIBED"
        assert _ask(alice, "unsubscribe_ticker", "X0USDT", 10)["type"] == "UNSUBSCRIBED"
        assert _ask(alice, "subscribe_ticker", "X0USDT", 11)["type"] == "SUBSCRIBED"
        assert _ask(alice, "unsubscribe_ticker", "X1USDT", 12)["type"] == "UNSUBSCRIBED"
        # X1USDT's deadline is after X0USDT's first one: once X1USDT is withdrawn,
        # X0USDT's would have been too, had the re-subscription not kept it
        wait_until(lambda: not engine.feed_shared.serves("X1USDT"), what="X1USDT withdrawn")
        assert engine.feed_shared.serves("X0USDT")
        assert upstream.wait_until(lambda: len(_controls(upstream, "UNSUBSCRIBE")) == 1)
        assert _controls(upstream, "UNSUBSCRIBE") == [stream_names("X1USDT")]


def test_owners_and_audiences_survive_a_reconnect(upstream: FakeBinanceUpstream) -> None:
    with _engine(upstream.base_url, grace_s=0.3, per_account=1) as engine:
        _up(engine)
        alice, bob = engine.connect(token=ALICE), engine.connect(token=BOB)
        assert _ask(alice, "subscribe_ticker", "X0USDT", 1)["type"] == "SUBSCRIBED"
        assert _ask(bob, "subscribe_ticker", "X1USDT", 2)["type"] == "SUBSCRIBED"
        opened = engine.feed_shared.statistics().connections_opened
        upstream.drop_all()
        wait_until(lambda: engine.feed_shared.statistics().connections_opened > opened
                   and engine.feed_status()["status"] == "UP", what="a new connection")
        assert "x0usdt@aggTrade" in upstream.request_targets[-1]
        # still alice's: her bound holds
        err = _ask(alice, "subscribe_ticker", "X2USDT", 3)
        assert (err["type"], err["code"]) == ("ERROR", "RATE_LIMITED")
        # bob leaves X1USDT after the reconnect; once it is withdrawn, the new
        # generation has had X0USDT for longer than the grace: watched, it stays
        assert _ask(bob, "unsubscribe_ticker", "X1USDT", 4)["type"] == "UNSUBSCRIBED"
        wait_until(lambda: not engine.feed_shared.serves("X1USDT"), what="X1USDT withdrawn")
        assert engine.feed_shared.live_owners() == {"X0USDT": "alice"}
        assert _ask(alice, "unsubscribe_ticker", "X0USDT", 5)["type"] == "UNSUBSCRIBED"
        wait_until(lambda: not engine.feed_shared.serves("X0USDT"), what="X0USDT withdrawn")
