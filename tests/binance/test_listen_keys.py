"""The listen-key registry: Binance's create / keepalive / close rules, 60 minutes, bounded."""

from __future__ import annotations

import pytest

from engine.binance.listen_keys import VALIDITY_MS, ListenKeyLimit, ListenKeys


def test_create_returns_the_accounts_active_key_and_extends_it() -> None:
    keys = ListenKeys()
    k = keys.create("alice", 0, "k1")
    assert k == "k1"
    assert keys.create("alice", VALIDITY_MS - 1, "k2") == "k1"  # still active: the same key
    # ... and that create extended it: alive past the first hour
    assert keys.account("k1", VALIDITY_MS + 10) == "alice"
    assert keys.create("bob", 0, "k3") == "k3"
    assert len(keys) == 2


def test_a_key_lives_sixty_minutes_after_its_last_keepalive() -> None:
    keys = ListenKeys()
    keys.create("alice", 1000, "k1")
    assert keys.account("k1", 1000 + VALIDITY_MS - 1) == "alice"
    assert keys.keepalive("k1", 1000 + VALIDITY_MS - 1)
    assert keys.account("k1", 1000 + 2 * VALIDITY_MS - 2) == "alice"
    assert keys.account("k1", 1000 + 2 * VALIDITY_MS - 1) is None  # expired
    assert not keys.keepalive("k1", 1000 + 2 * VALIDITY_MS)
    # an expired key is replaced by a fresh one
    assert keys.create("alice", 1000 + 2 * VALIDITY_MS, "k9") == "k9"


def test_close_forgets_the_key() -> None:
    keys = ListenKeys()
    keys.create("alice", 0, "k1")
    assert keys.close("k1")
    assert not keys.close("k1")
    assert keys.account("k1", 1) is None
    assert not keys.keepalive("k1", 1)
    assert keys.create("alice", 2, "k2") == "k2"


def test_unknown_keys_are_unknown() -> None:
    keys = ListenKeys()
    assert keys.account("nope", 0) is None
    assert not keys.keepalive("nope", 0)


def test_bounded_expired_keys_make_room_live_ones_refuse() -> None:
    keys = ListenKeys(max_keys=2, validity_ms=100)
    keys.create("a", 0, "ka")
    keys.create("b", 50, "kb")
    with pytest.raises(ListenKeyLimit):
        keys.create("c", 60, "kc")
    assert len(keys) == 2 and keys.account("ka", 60) == "a"  # nothing changed
    assert keys.create("c", 120, "kc") == "kc"  # ka expired at 100: its slot is reused
    assert keys.account("kb", 120) == "b"


def test_a_random_key_must_be_fresh() -> None:
    keys = ListenKeys()
    keys.create("a", 0, "k")
    with pytest.raises(ValueError):
        keys.create("b", 0, "k")
    with pytest.raises(ValueError):
        keys.create("b", 0, "")
