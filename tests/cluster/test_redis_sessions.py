"""Sessions in Redis (engine/server/redis_sessions.py): what one gateway
records, another restores; bounded by TTLs; Redis errors never reach the
connection. On a real redis-server (loopback, no persistence)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from engine.server.redis_sessions import RedisSessions
from engine.session_registry import Subscriptions
from tests.cluster.redis_server import RedisServer
from tests.conftest import timeout, wait_until


def _key(*parts: str) -> str:
    return "td:" + ":".join(parts)


@pytest.fixture
def gateways(redis_server: RedisServer) -> Iterator[tuple[RedisSessions, RedisSessions]]:
    made = [RedisSessions(redis.Redis.from_url(redis_server.url), _key, keep_s=30,
                          max_symbols=3) for _ in range(2)]
    try:
        yield made[0], made[1]
    finally:
        for g in made:
            g.close()


def test_what_one_gateway_records_another_restores_in_order(
        gateways: tuple[RedisSessions, RedisSessions]) -> None:
    g1, g2 = gateways
    sid = g1.open(7, None)
    assert len(sid) == 32 and int(sid, 16) >= 0
    for sym in ("SOLUSDT", "BTCUSDT", "ETHUSDT"):
        g1.subscribed(7, sym, False)
    g1.subscribed(7, "BTCUSDT", True)
    g1.unsubscribed(7, "BTCUSDT", False)
    g1.set_account(7, "alice")
    assert g2.restore(sid, "alice") == Subscriptions(("SOLUSDT", "ETHUSDT"), ("BTCUSDT",))
    g1.closed(7)  # still restorable after the close, by any gateway
    assert g2.restore(sid, "alice") == Subscriptions(("SOLUSDT", "ETHUSDT"), ("BTCUSDT",))


def test_another_account_anonymous_or_unknown_gets_nothing(
        gateways: tuple[RedisSessions, RedisSessions]) -> None:
    g1, g2 = gateways
    alice = g1.open(1, "alice")
    anonymous = g1.open(2, None)
    g1.subscribed(1, "BTCUSDT", False)
    g1.subscribed(2, "ETHUSDT", False)
    assert g2.restore(alice, "bob") is None
    assert g2.restore(alice, None) is None
    assert g2.restore(anonymous, "alice") is None
    assert g2.restore(anonymous, None) == Subscriptions(("ETHUSDT",), ())
    assert g2.restore("0" * 32, None) is None


def test_at_most_max_symbols_are_remembered(
        gateways: tuple[RedisSessions, RedisSessions]) -> None:
    g1, g2 = gateways
    sid = g1.open(1, None)
    for sym in ("AAA1", "BBB1", "CCC1", "DDD1"):
        g1.subscribed(1, sym, False)
    assert g2.restore(sid, None) == Subscriptions(("AAA1", "BBB1", "CCC1"), ())


def test_keys_have_a_ttl_renewed_while_open_and_keep_s_after_the_close(
        redis_server: RedisServer) -> None:
    r = redis.Redis.from_url(redis_server.url)
    g = RedisSessions(redis.Redis.from_url(redis_server.url), _key, keep_s=1.0,
                      refresh_s=60.0)
    try:
        sid = g.open(1, None)
        g.subscribed(1, "BTCUSDT", False)
        name = _key("session", sid)
        assert 1000 < r.pttl(name) <= 61_000  # keep_s + one renewal period
        r.pexpire(name, 200)
        g.renew()  # what the renewing thread does every refresh_s
        assert r.pttl(name) > 1000
        g.closed(1)
        assert 0 < r.pttl(name) <= 1000
        wait_until(lambda: g.restore(sid, None) is None, timeout(5), "the key to expire")
        assert not r.exists(name)
    finally:
        g.close()
        r.close()


def test_the_renewing_thread_runs_and_stops(redis_server: RedisServer) -> None:
    r = redis.Redis.from_url(redis_server.url)
    g = RedisSessions(redis.Redis.from_url(redis_server.url), _key, keep_s=1.0,
                      refresh_s=0.05)
    try:
        sid = g.open(1, None)
        name = _key("session", sid)
        r.pexpire(name, 100_000)  # longer than the renewals set: we see them
        g.start()
        wait_until(lambda: r.pttl(name) <= 1050, timeout(5), "a renewal")
    finally:
        g.close()
        r.close()


def test_redis_down_never_raises_and_restores_nothing(redis_server: RedisServer) -> None:
    g = RedisSessions(redis.Redis.from_url(redis_server.url, socket_timeout=1,
                                           socket_connect_timeout=1), _key, keep_s=30)
    try:
        sid = g.open(1, None)
        redis_server.stop()
        g.subscribed(1, "BTCUSDT", False)
        g.unsubscribed(1, "BTCUSDT", False)
        g.set_account(1, "alice")
        g.renew()
        g.closed(1)
        assert g.restore(sid, None) is None
        assert g.errors >= 5
    finally:
        g.close()
