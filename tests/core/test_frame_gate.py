"""The frame gate: which data frames reach a connection's actor, with time passed in."""

from __future__ import annotations

import orjson
import pytest

from engine.frame_gate import (
    ACCOUNT_REFUSAL,
    CONNECTION_REFUSAL,
    Admit,
    FrameGate,
    GateCounts,
)
from engine.rate_limit import KeyedBuckets, RateLimiter


def _frame(action: str, rid: object = None) -> str:
    obj: dict[str, object] = {"action": action}
    if rid is not None:
        obj["id"] = rid
    return orjson.dumps(obj).decode()


PING = _frame("ping", 1)
ORDER = _frame("get_orders", "o")


@pytest.mark.parametrize(
    ("burst", "frames", "expected"),
    [
        # the bucket starts full: `burst` frames pass, then refusals
        (2, [PING, PING, PING], [Admit.PASS, Admit.PASS, Admit.REFUSE]),
        # more than `burst` refusals within 10 s: CLOSE, then everything is dropped
        (1, [PING] * 5, [Admit.PASS, Admit.REFUSE, Admit.CLOSE, Admit.DROP, Admit.DROP]),
        (2, [PING] * 6, [Admit.PASS, Admit.PASS, Admit.REFUSE, Admit.REFUSE, Admit.CLOSE,
                         Admit.DROP]),
        # garbage takes a token too
        (1, ["not json", PING], [Admit.PASS, Admit.REFUSE]),
        (1, [b"\x00\x01", PING], [Admit.PASS, Admit.REFUSE]),
    ],
)
def test_connection_budget_table(burst: int, frames: list[str | bytes],
                                 expected: list[Admit]) -> None:
    gate = FrameGate(RateLimiter(0.001, burst))
    got = [gate.check(f, isinstance(f, bytes), 0.0).admit for f in frames]
    assert got == expected
    assert gate.closed is (Admit.CLOSE in expected)


@pytest.mark.parametrize(
    ("frame", "binary", "rid"),
    [
        (_frame("ping", 7), False, 7),
        (_frame("place_order", "abc"), False, "abc"),
        (_frame("no_such_action", 3), False, 3),  # the id is read whatever the action
        ('{"id": 9}', False, 9),
        ('{"id": true, "action": "ping"}', False, None),  # an id decode_command refuses
        ('{"id": "' + "x" * 65 + '", "action": "ping"}', False, None),
        ("[1, 2]", False, None),
        ("{not json", False, None),
        ('{"action": "ping", "id": 5}', True, None),  # binary frames are never read
    ],
)
def test_a_refusal_carries_the_commands_id_when_readable(frame: str, binary: bool,
                                                         rid: object) -> None:
    gate = FrameGate(RateLimiter(0.001, 1))
    assert gate.check(PING, False, 0.0).admit is Admit.PASS
    verdict = gate.check(frame, binary, 0.0)
    assert (verdict.admit, verdict.request_id, verdict.message) == (
        Admit.REFUSE, rid, CONNECTION_REFUSAL)


def _budgets(burst: int) -> KeyedBuckets:
    return KeyedBuckets(0.001, burst)


def test_the_account_budget_is_shared_by_the_accounts_connections_and_spares_others() -> None:
    budgets = _budgets(2)
    counts = GateCounts()
    a1 = FrameGate(RateLimiter(100, 100), budgets.try_take, "alice", counts)
    a2 = FrameGate(RateLimiter(100, 100), budgets.try_take, "alice", counts)
    b = FrameGate(RateLimiter(100, 100), budgets.try_take, "bob", counts)
    got = [g.check(ORDER, False, 0.0) for g in (a1, a2, a1, a2, b)]
    assert [v.admit for v in got] == [Admit.PASS, Admit.PASS, Admit.REFUSE, Admit.REFUSE,
                                      Admit.PASS]
    assert got[2].request_id == "o"
    assert got[2].message == ACCOUNT_REFUSAL.format(account="alice")
    stats = counts.statistics()
    assert stats.passed == 3
    assert stats.refused == {"connection": 0, "account": 2}


def test_account_refusals_do_not_count_towards_the_abuse_close() -> None:
    gate = FrameGate(RateLimiter(100, 100), _budgets(1).try_take, "alice")
    # within the connection's limit (50/s < 100/s), far over the account's
    verdicts = [gate.check(ORDER, False, i * 0.02).admit for i in range(300)]
    assert verdicts[0] is Admit.PASS
    assert set(verdicts[1:]) == {Admit.REFUSE}
    assert not gate.closed


@pytest.mark.parametrize(
    ("account", "frame", "expected"),
    [
        # session commands and market data never take an account token
        ("alice", _frame("ping", 1), Admit.PASS),
        ("alice", _frame("subscribe_ticker", 1), Admit.PASS),
        ("alice", "{not json", Admit.PASS),  # the actor answers BAD_REQUEST
        # an account command does, even a malformed one
        ("alice", _frame("place_order", 1), Admit.REFUSE),
        ("alice", _frame("get_portfolio"), Admit.REFUSE),
        # an anonymous connection is not charged (the actor answers UNAUTHORIZED)
        (None, _frame("place_order", 1), Admit.PASS),
    ],
)
def test_what_takes_an_account_token(account: str | None, frame: str,
                                     expected: Admit) -> None:
    budgets = _budgets(1)
    assert budgets.try_take("alice", 0.0)  # alice's budget is spent
    gate = FrameGate(RateLimiter(100, 100), budgets.try_take, account)
    assert gate.check(frame, False, 0.0).admit is expected


def test_the_account_follows_what_the_actor_sets() -> None:
    budgets = _budgets(1)
    gate = FrameGate(RateLimiter(100, 100), budgets.try_take, None)
    assert gate.check(ORDER, False, 0.0).admit is Admit.PASS  # anonymous: not charged
    gate.account = "alice"  # auth succeeded
    assert gate.check(ORDER, False, 0.0).admit is Admit.PASS  # alice's one token
    assert gate.check(ORDER, False, 0.0).admit is Admit.REFUSE
    gate.account = None  # a failed auth
    assert gate.check(ORDER, False, 0.0).admit is Admit.PASS


def test_tokens_refill_with_time() -> None:
    gate = FrameGate(RateLimiter(1.0, 1), _budgets(5).try_take, "alice")
    assert [gate.check(PING, False, t).admit for t in (0.0, 0.5, 1.0)] == [
        Admit.PASS, Admit.REFUSE, Admit.PASS]
