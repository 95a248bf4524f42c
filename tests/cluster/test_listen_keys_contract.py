"""The listen-key stores (engine/server/shared_keys.py): the same rules in
memory (role ``all``) and in Redis (gateways), the same tests on both, plus
what only the Redis one can show: a key made through one gateway's store is
valid through another's (two clients on the same redis-server).

Times are the caller's (fake) epoch ms; the validity is 60 s so that Redis's
own expiry (real time) never runs out during a test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from engine.binance.listen_keys import ListenKeyLimit
from engine.server.redis_listen_keys import RedisListenKeys
from engine.server.shared_keys import ListenKeyStore, ListenKeysUnavailable, SharedListenKeys
from tests.cluster.redis_server import RedisServer

V = 60_000  # validity, ms
MakeStore = Callable[..., ListenKeyStore]


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> Iterator[MakeStore]:
    if request.param == "memory":
        yield lambda max_keys=1024: SharedListenKeys(max_keys, V)
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    clients: list[redis.Redis] = []

    def make(max_keys: int = 1024) -> ListenKeyStore:
        client = redis.Redis.from_url(server.url, socket_timeout=2)
        clients.append(client)
        return RedisListenKeys(client, max_keys=max_keys, validity_ms=V)

    yield make
    for c in clients:
        c.close()


def test_create_returns_the_accounts_live_key_and_extends_it(make_store: MakeStore) -> None:
    keys = make_store()
    assert keys.create("alice", 0, "k1") == "k1"
    assert keys.create("alice", V - 1, "k2") == "k1"
    assert keys.account("k1", V + 10) == "alice"  # create extended it
    assert keys.create("bob", 0, "k3") == "k3"
    assert len(keys) == 2


def test_a_key_lives_the_validity_after_its_last_keepalive(make_store: MakeStore) -> None:
    keys = make_store()
    keys.create("alice", 1000, "k1")
    assert keys.keepalive("k1", 1000 + V - 1)
    assert keys.account("k1", 1000 + 2 * V - 2) == "alice"
    assert keys.account("k1", 1000 + 2 * V - 1) is None  # expired
    assert keys.owner_of("k1") is None  # and forgotten
    assert not keys.keepalive("k1", 1000 + 2 * V)
    assert keys.create("alice", 1000 + 2 * V, "k9") == "k9"


def test_close_forgets_the_key(make_store: MakeStore) -> None:
    keys = make_store()
    keys.create("alice", 0, "k1")
    assert keys.owner_of("k1") == "alice"
    assert keys.close("k1")
    assert not keys.close("k1")
    assert keys.account("k1", 1) is None and keys.owner_of("k1") is None
    assert not keys.keepalive("k1", 1)
    assert keys.create("alice", 2, "k2") == "k2"
    assert len(keys) == 1


def test_unknown_keys_are_unknown(make_store: MakeStore) -> None:
    keys = make_store()
    assert keys.account("nope", 0) is None
    assert keys.owner_of("nope") is None
    assert not keys.keepalive("nope", 0)


def test_bounded_expired_keys_make_room_live_ones_refuse(make_store: MakeStore) -> None:
    keys = make_store(max_keys=2)
    keys.create("a", 0, "ka")
    keys.create("b", V // 2, "kb")
    with pytest.raises(ListenKeyLimit):
        keys.create("c", V // 2 + 10, "kc")
    assert len(keys) == 2 and keys.account("ka", V // 2 + 10) == "a"  # nothing changed
    assert keys.create("c", V + 20, "kc") == "kc"  # ka expired: its slot is reused
    assert keys.account("kb", V + 20) == "b"
    assert keys.account("ka", V + 20) is None


def test_a_key_made_on_one_gateway_is_valid_on_another(redis_server: RedisServer) -> None:
    c1 = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    c2 = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    try:
        gw1 = RedisListenKeys(c1, validity_ms=V)
        gw2 = RedisListenKeys(c2, validity_ms=V)
        key = gw1.create("alice", 0, "k1")
        assert gw2.account(key, 1) == "alice"
        assert gw2.create("alice", 2, "other") == key  # the same live key, not a second one
        assert gw2.keepalive(key, V - 1)
        assert gw1.account(key, 2 * V - 2) == "alice"  # extended through gateway 2
        assert gw2.close(key)
        assert gw1.account(key, 3) is None
        # and Redis expires it by itself: the validity is its TTL
        gw1.create("bob", 0, "kb")
        ttl = c1.pttl("td:lk:kb")
        assert 0 < ttl <= V
    finally:
        c1.close()
        c2.close()


def test_redis_down_is_a_typed_error(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=1, socket_connect_timeout=1)
    keys = RedisListenKeys(client, validity_ms=V)
    redis_server.stop()
    try:
        with pytest.raises(ListenKeysUnavailable):
            keys.create("alice", 0, "k1")
        with pytest.raises(ListenKeysUnavailable):
            keys.account("k1", 0)
    finally:
        client.close()
