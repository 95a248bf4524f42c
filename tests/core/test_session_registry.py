"""The pure session registry (engine/session_registry.py): what a reconnecting
client gets back from ``resume {session}``, with time passed in."""

from __future__ import annotations

import pytest

from engine.session_registry import SessionRegistry, Subscriptions


def _reg(keep_s: float = 300.0, cap: int = 100, max_symbols: int = 50) -> SessionRegistry:
    return SessionRegistry(keep_s, cap, max_symbols)


def test_a_closed_session_restores_its_symbols_and_books_in_order() -> None:
    reg = _reg()
    reg.open("s1", "alice", now=0)
    for sym in ("ETHUSDT", "BTCUSDT", "SOLUSDT"):
        assert reg.subscribe("s1", sym)
    assert reg.subscribe("s1", "BTCUSDT", book=True)
    assert reg.unsubscribe("s1", "SOLUSDT")
    reg.close("s1", now=10)
    assert reg.restore("s1", "alice", now=20) == Subscriptions(("ETHUSDT", "BTCUSDT"),
                                                               ("BTCUSDT",))


def test_subscribing_twice_and_unsubscribing_what_is_not_there_change_nothing() -> None:
    reg = _reg()
    reg.open("s1", None, now=0)
    assert reg.subscribe("s1", "BTCUSDT")
    assert not reg.subscribe("s1", "BTCUSDT")
    assert not reg.unsubscribe("s1", "ETHUSDT")
    assert not reg.unsubscribe("s1", "BTCUSDT", book=True)  # books are apart
    assert reg.restore("s1", None, now=1) == Subscriptions(("BTCUSDT",), ())


def test_a_session_expires_keep_s_after_it_closed_not_while_open() -> None:
    reg = _reg(keep_s=300)
    reg.open("s1", "alice", now=0)
    reg.subscribe("s1", "BTCUSDT")
    assert reg.restore("s1", "alice", now=10_000) is not None  # open: never expires
    reg.close("s1", now=10_000)
    assert reg.restore("s1", "alice", now=10_299.9) is not None
    assert reg.restore("s1", "alice", now=10_300) is None
    assert len(reg) == 0


def test_a_restore_copies_the_old_session_stays_until_it_expires() -> None:
    reg = _reg(keep_s=5)
    reg.open("s1", "alice", now=0)
    reg.subscribe("s1", "BTCUSDT")
    reg.close("s1", now=1)
    assert reg.restore("s1", "alice", now=2) == reg.restore("s1", "alice", now=3)
    assert reg.restore("s1", "alice", now=6) is None


def test_another_account_or_anonymous_gets_nothing() -> None:
    reg = _reg()
    reg.open("s1", "alice", now=0)
    reg.subscribe("s1", "BTCUSDT")
    reg.open("anon", None, now=0)
    reg.subscribe("anon", "ETHUSDT")
    reg.close("s1", now=1)
    reg.close("anon", now=1)
    assert reg.restore("s1", "bob", now=2) is None
    assert reg.restore("s1", None, now=2) is None
    assert reg.restore("anon", "alice", now=2) is None  # an anonymous session stays anonymous
    assert reg.restore("anon", None, now=2) == Subscriptions(("ETHUSDT",), ())
    assert reg.restore("unknown", None, now=2) is None


def test_the_account_follows_auth() -> None:
    reg = _reg()
    reg.open("s1", None, now=0)
    reg.subscribe("s1", "BTCUSDT")
    reg.set_account("s1", "alice")
    reg.close("s1", now=1)
    assert reg.restore("s1", None, now=2) is None
    assert reg.restore("s1", "alice", now=2) == Subscriptions(("BTCUSDT",), ())


def test_over_the_cap_the_oldest_closed_session_goes_first_then_the_oldest_open() -> None:
    reg = _reg(cap=3)
    for n, sid in enumerate(("a", "b", "c")):
        reg.open(sid, None, now=n)
    reg.close("b", now=3)
    reg.close("a", now=4)  # b closed first: it goes first
    reg.open("d", None, now=5)
    assert len(reg) == 3
    assert reg.restore("b", None, now=5) is None
    assert reg.restore("a", None, now=5) is not None
    reg.open("e", None, now=6)  # a, the only closed one, goes
    assert reg.restore("a", None, now=6) is None
    reg.open("f", None, now=7)  # none closed: the oldest open (c) goes
    assert reg.restore("c", None, now=7) is None
    assert not reg.subscribe("c", "BTCUSDT")  # forgotten: changes are ignored
    assert [reg.restore(s, None, now=7) is not None for s in ("d", "e", "f")] == [True] * 3
    assert len(reg) == 3


def test_at_most_max_symbols_of_each_kind_are_remembered() -> None:
    reg = _reg(max_symbols=2)
    reg.open("s1", None, now=0)
    assert [reg.subscribe("s1", s) for s in ("AAA1", "BBB1", "CCC1")] == [True, True, False]
    assert reg.subscribe("s1", "CCC1", book=True)
    assert reg.restore("s1", None, now=0) == Subscriptions(("AAA1", "BBB1"), ("CCC1",))


def test_a_closed_session_takes_no_more_changes() -> None:
    reg = _reg()
    reg.open("s1", None, now=0)
    reg.close("s1", now=1)
    assert not reg.subscribe("s1", "BTCUSDT")
    reg.set_account("s1", "alice")
    assert reg.restore("s1", None, now=2) == Subscriptions()


@pytest.mark.parametrize("args", [(-1.0, 10, 10), (1.0, 0, 10), (1.0, 10, 0)])
def test_bad_bounds_are_refused(args: tuple[float, int, int]) -> None:
    with pytest.raises(ValueError):
        SessionRegistry(*args)
