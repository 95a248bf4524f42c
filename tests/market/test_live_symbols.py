"""Symbols added while the feed runs (engine.market.live_symbols), without threads:
admission, the pending subscriptions and their deadlines (time passed in)."""

from __future__ import annotations

import pytest

from engine.market.live_symbols import (
    MAX_PENDING_SYMBOLS,
    LiveSymbols,
    Refused,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Withdraw,
)
from engine.protocol.enums import ErrorCode

Waiter = str  # the actor answers a (channel, request id); any value will do here


def live(timeout_s: float = 5.0, max_pending: int = MAX_PENDING_SYMBOLS) -> LiveSymbols[Waiter]:
    return LiveSymbols(timeout_s, max_pending)


def ask(symbols: LiveSymbols[Waiter], symbol: str, waiter: Waiter, *, served: bool = False,
        supported: bool = True, served_count: int = 2, max_symbols: int | None = 512) -> list[
            object]:
    return list(symbols.add(symbol, waiter, served=served, supported=supported,
                            served_count=served_count, max_symbols=max_symbols))


def pend(symbols: LiveSymbols[Waiter], symbol: str, waiter: Waiter, request: int,
         sent_at: float | None = None) -> None:
    """Ask for ``symbol``, report its SUBSCRIBE as ``request``, and (if given) sent."""
    assert ask(symbols, symbol, waiter) == [Subscribe(symbol)]
    symbols.requested(symbol, request)
    if sent_at is not None:
        symbols.sent(request, sent_at)


# -- admission ----------------------------------------------------------------


def test_a_served_symbol_is_answered_at_once_with_a_snapshot() -> None:
    symbols = live()
    assert ask(symbols, "SOLUSDT", "a", served=True) == [Subscribed("SOLUSDT", ("a",), new=False)]
    assert "SOLUSDT" not in symbols


def test_a_new_symbol_is_subscribed_upstream_and_pending() -> None:
    symbols = live()
    assert ask(symbols, "SOLUSDT", "a") == [Subscribe("SOLUSDT")]
    assert "SOLUSDT" in symbols and len(symbols) == 1


def test_a_source_without_live_symbols_refuses() -> None:
    symbols = live()
    assert ask(symbols, "SOLUSDT", "a", supported=False) == [
        Refused("SOLUSDT", ("a",), ErrorCode.UNKNOWN_SYMBOL,
                "symbol SOLUSDT is not served by this feed")]
    assert len(symbols) == 0


def test_the_pending_cap_refuses_with_rate_limited() -> None:
    symbols = live(max_pending=2)
    assert ask(symbols, "AAAUSDT", "a") == [Subscribe("AAAUSDT")]
    assert ask(symbols, "BBBUSDT", "b") == [Subscribe("BBBUSDT")]
    assert ask(symbols, "CCCUSDT", "c") == [
        Refused("CCCUSDT", ("c",), ErrorCode.RATE_LIMITED,
                "too many symbols being added; try again")]
    # joining a pending symbol is not a new pending one
    assert ask(symbols, "AAAUSDT", "d") == []
    # once one is answered there is room again
    assert symbols.first_event("AAAUSDT") == Subscribed("AAAUSDT", ("a", "d"), new=True)
    assert ask(symbols, "CCCUSDT", "c") == [Subscribe("CCCUSDT")]


def test_the_default_pending_cap_is_sixteen() -> None:
    symbols = live()
    for i in range(16):
        assert ask(symbols, f"S{i}USDT", "w") == [Subscribe(f"S{i}USDT")]
    assert [type(d) for d in ask(symbols, "S16USDT", "w")] == [Refused]


def test_the_stream_limit_boundary() -> None:
    symbols = live()
    # 511 served + 1 = 512 = the limit: allowed; 512 served + 1: refused
    assert ask(symbols, "AAAUSDT", "a", served_count=511, max_symbols=512) == [
        Subscribe("AAAUSDT")]
    assert ask(symbols, "BBBUSDT", "b", served_count=512, max_symbols=512) == [
        Refused("BBBUSDT", ("b",), ErrorCode.UNKNOWN_SYMBOL,
                "symbol BBBUSDT cannot be added: the feed's stream limit is reached")]
    assert ask(symbols, "CCCUSDT", "c", served_count=10_000, max_symbols=None) == [
        Subscribe("CCCUSDT")]


def test_refusals_are_checked_in_order() -> None:
    symbols = live(max_pending=1)
    assert ask(symbols, "AAAUSDT", "a") == [Subscribe("AAAUSDT")]
    # unsupported beats the cap, the cap beats the stream limit
    assert ask(symbols, "BBBUSDT", "b", supported=False, served_count=600)[0] == Refused(
        "BBBUSDT", ("b",), ErrorCode.UNKNOWN_SYMBOL, "symbol BBBUSDT is not served by this feed")
    refused = ask(symbols, "BBBUSDT", "b", served_count=600)[0]
    assert isinstance(refused, Refused) and refused.code is ErrorCode.RATE_LIMITED


# -- the pending subscriptions ------------------------------------------------------


def test_the_first_event_confirms_every_waiter_once() -> None:
    symbols = live()
    pend(symbols, "SOLUSDT", "a", 1, sent_at=100.0)
    assert ask(symbols, "SOLUSDT", "b") == []
    assert symbols.first_event("SOLUSDT") == Subscribed("SOLUSDT", ("a", "b"), new=True)
    assert "SOLUSDT" not in symbols
    assert symbols.first_event("SOLUSDT") is None  # already answered
    assert symbols.expired(1e9) == []


def test_an_event_nobody_asked_for_is_dropped() -> None:
    assert live().first_event("XRPUSDT") is None


def test_the_deadline_runs_from_when_the_subscribe_is_sent() -> None:
    symbols = live(timeout_s=5.0)
    pend(symbols, "SOLUSDT", "a", 7)
    # queued behind the upstream rate limit: no deadline yet, nothing expires
    assert symbols.next_deadline() is None
    assert symbols.expired(1e9) == []
    symbols.sent(7, 100.0)
    assert symbols.next_deadline() == 105.0
    symbols.sent(7, 200.0)  # a repeated report does not move it
    assert symbols.next_deadline() == 105.0
    assert symbols.expired(104.999) == []
    assert symbols.expired(105.0) == [
        Refused("SOLUSDT", ("a",), ErrorCode.UNKNOWN_SYMBOL,
                "symbol SOLUSDT: no market data from the exchange (unknown or not trading)"),
        Unsubscribe("SOLUSDT"),
    ]
    assert "SOLUSDT" not in symbols and symbols.next_deadline() is None
    assert symbols.expired(106.0) == []  # answered once only


def test_only_the_expired_ones_expire() -> None:
    symbols = live(timeout_s=5.0)
    pend(symbols, "AAAUSDT", "a", 1, sent_at=100.0)
    pend(symbols, "BBBUSDT", "b", 2, sent_at=102.0)
    assert [d.symbol for d in symbols.expired(105.5)] == ["AAAUSDT", "AAAUSDT"]
    assert symbols.next_deadline() == 107.0
    assert "BBBUSDT" in symbols


def test_sent_reports_of_other_requests_change_nothing() -> None:
    symbols = live()
    pend(symbols, "SOLUSDT", "a", 3)
    symbols.sent(4, 100.0)
    assert symbols.next_deadline() is None


def test_an_exchange_refusal_answers_the_waiters_of_that_request() -> None:
    symbols = live()
    pend(symbols, "AAAUSDT", "a", 1, sent_at=0.0)
    pend(symbols, "BBBUSDT", "b", 2, sent_at=0.0)
    assert symbols.refused(99) == []
    assert symbols.refused(2) == [
        Refused("BBBUSDT", ("b",), ErrorCode.UNKNOWN_SYMBOL,
                "symbol BBBUSDT was refused by the exchange")]
    assert "AAAUSDT" in symbols and "BBBUSDT" not in symbols
    assert symbols.refused(2) == []


def test_abandon_answers_everyone_once() -> None:
    symbols = live()
    pend(symbols, "AAAUSDT", "a", 1, sent_at=0.0)
    pend(symbols, "BBBUSDT", "b", 2)
    assert ask(symbols, "AAAUSDT", "c") == []
    assert symbols.abandon() == [
        Refused("AAAUSDT", ("a", "c"), ErrorCode.UNKNOWN_SYMBOL,
                "symbol AAAUSDT could not be checked: the feed is reconnecting; try again"),
        Refused("BBBUSDT", ("b",), ErrorCode.UNKNOWN_SYMBOL,
                "symbol BBBUSDT could not be checked: the feed is reconnecting; try again"),
    ]
    assert len(symbols) == 0 and symbols.abandon() == []


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        LiveSymbols(0.0)
    with pytest.raises(ValueError):
        LiveSymbols(1.0, max_pending=0)


# -- owners: a bound per account, and withdrawal after the last subscriber left --------


def owned(max_per_account: int = 2, grace_s: float = 30.0) -> LiveSymbols[Waiter]:
    return LiveSymbols(5.0, max_per_account=max_per_account, grace_s=grace_s)


def confirm(symbols: LiveSymbols[Waiter], symbol: str, account: str, request: int,
            now: float = 0.0) -> None:
    """``account`` adds ``symbol``; its SUBSCRIBE leaves and its first event arrives."""
    assert symbols.add(symbol, f"{account}-w", served=False, supported=True, served_count=2,
                       max_symbols=512, account=account) == [Subscribe(symbol)]
    symbols.requested(symbol, request)
    symbols.sent(request, now)
    got = symbols.first_event(symbol)
    assert got is not None and got.new


def test_an_account_may_add_only_so_many_symbols_pending_or_served() -> None:
    symbols = owned(max_per_account=2)
    confirm(symbols, "AAAUSDT", "alice", 1)
    assert symbols.add("BBBUSDT", "a2", served=False, supported=True, served_count=3,
                       max_symbols=512, account="alice") == [Subscribe("BBBUSDT")]
    [refused] = symbols.add("CCCUSDT", "a3", served=False, supported=True, served_count=4,
                            max_symbols=512, account="alice")
    assert isinstance(refused, Refused) and refused.code is ErrorCode.RATE_LIMITED
    assert refused.waiters == ("a3",) and "max_live_symbols_per_account" in refused.message
    # another account has its own budget; joining a pending symbol costs nothing
    assert symbols.add("CCCUSDT", "b1", served=False, supported=True, served_count=4,
                       max_symbols=512, account="bob") == [Subscribe("CCCUSDT")]
    assert symbols.add("BBBUSDT", "b2", served=False, supported=True, served_count=4,
                       max_symbols=512, account="bob") == []
    assert symbols.owned_by("alice") == 2 and symbols.owned_by("bob") == 1


def test_a_symbol_nobody_watches_is_withdrawn_after_the_grace_and_frees_its_owner() -> None:
    symbols = owned(max_per_account=1, grace_s=30.0)
    confirm(symbols, "AAAUSDT", "alice", 1)
    symbols.interest("AAAUSDT", True, 1.0)
    symbols.interest("AAAUSDT", False, 10.0)  # the last subscriber left
    assert symbols.next_deadline() == 40.0
    assert symbols.expired(39.9) == []
    assert symbols.expired(40.0) == [Withdraw("AAAUSDT", "alice")]
    assert symbols.owned_by("alice") == 0 and symbols.next_deadline() is None
    assert symbols.owners() == {}


def test_coming_back_within_the_grace_keeps_the_symbol() -> None:
    symbols = owned(grace_s=30.0)
    confirm(symbols, "AAAUSDT", "alice", 1)
    symbols.interest("AAAUSDT", False, 10.0)
    symbols.interest("AAAUSDT", True, 20.0)
    assert symbols.expired(100.0) == [] and symbols.next_deadline() is None
    assert symbols.owners() == {"AAAUSDT": "alice"}


def test_a_subscriber_whose_report_is_on_its_way_keeps_the_symbol() -> None:
    symbols = owned(grace_s=30.0)
    confirm(symbols, "AAAUSDT", "alice", 1)
    symbols.interest("AAAUSDT", False, 0.0)
    assert symbols.expired(30.0, watched={"AAAUSDT"}) == []
    assert symbols.owners() == {"AAAUSDT": "alice"}


def test_interest_in_configured_symbols_is_ignored() -> None:
    symbols = owned()
    symbols.interest("BTCUSDT", False, 0.0)
    assert symbols.next_deadline() is None and symbols.expired(1e9) == []


def test_a_new_generation_takes_over_owners_and_starts_the_grace_of_unwatched_ones() -> None:
    old = owned(max_per_account=2, grace_s=30.0)
    confirm(old, "AAAUSDT", "alice", 1)
    confirm(old, "BBBUSDT", "alice", 2)
    new = owned(max_per_account=2, grace_s=30.0)
    new.restore(old.owners(), watched={"AAAUSDT"}, now=100.0)
    assert new.owned_by("alice") == 2
    assert new.expired(130.0) == [Withdraw("BBBUSDT", "alice")]
    assert new.owners() == {"AAAUSDT": "alice"}


def test_bad_owner_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        LiveSymbols(5.0, max_per_account=0)
    with pytest.raises(ValueError):
        LiveSymbols(5.0, grace_s=-1)
# -- given up before subscribing (its exchange filters could not be loaded) ----


def test_unavailable_answers_every_waiter_once_and_frees_the_slot() -> None:
    symbols = live(max_pending=1)
    assert ask(symbols, "NEWUSDT", "a") == [Subscribe("NEWUSDT")]
    assert ask(symbols, "NEWUSDT", "b") == []  # waits with the first
    assert symbols.unavailable("NEWUSDT", "no filters") == [
        Refused("NEWUSDT", ("a", "b"), ErrorCode.UNKNOWN_SYMBOL, "no filters")]
    assert "NEWUSDT" not in symbols
    assert symbols.unavailable("NEWUSDT", "no filters") == []  # answered already
    assert ask(symbols, "OTHERUSDT", "c") == [Subscribe("OTHERUSDT")]  # the slot is free


def test_unavailable_leaves_a_requested_subscription_alone() -> None:
    symbols = live()
    pend(symbols, "SOLUSDT", "a", request=4)
    assert symbols.unavailable("SOLUSDT", "no filters") == []
    assert "SOLUSDT" in symbols
