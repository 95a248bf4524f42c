"""resume {session} in one process: a reconnecting client's market
subscriptions come back, each with SUBSCRIBED and a snapshot, before RESUMED;
a session of another account (or an unknown one) restores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from engine.config import AccountConfig
from tests.conftest import make_config
from tickdesk import Engine
from tickdesk.app import LocalSession

ALICE = AccountConfig(name="alice", token="alice-token-123")
BOB = AccountConfig(name="bob", token="bob-token-4567")


def _is(mtype: str) -> Any:
    return lambda m: m["type"] == mtype


def _until(session: LocalSession, mtype: str, timeout: float = 5) -> list[dict[str, Any]]:
    """Every message up to and including the first of type ``mtype``."""
    got: list[dict[str, Any]] = []
    session.wait_for(lambda m: got.append(m) is None and m["type"] == mtype, timeout=timeout)
    return got


def _subscribed(session: LocalSession, hello: dict[str, Any]) -> str:
    """Subscribe BTCUSDT and ETHUSDT tickers and the BTCUSDT book; the session id."""
    for n, (action, symbol) in enumerate((("subscribe_ticker", "BTCUSDT"),
                                          ("subscribe_ticker", "ETHUSDT"),
                                          ("subscribe_book", "BTCUSDT"))):
        session.send({"action": action, "symbol": symbol, "id": f"s{n}"})
        session.wait_for(lambda m, n=n: m.get("id") == f"s{n}", timeout=5)
    session.wait_for(_is("BOOK_UPDATE"), timeout=5)
    sid = hello["session"]
    assert isinstance(sid, str) and len(sid) == 32 and int(sid, 16) >= 0
    return str(sid)


def test_resume_with_the_session_restores_subscriptions_with_snapshots(
        local_engine: Engine) -> None:
    first = local_engine.connect()
    hello = first.wait_for(_is("CONNECTED"), timeout=5)
    sid = _subscribed(first, hello)
    first.send({"action": "unsubscribe_ticker", "symbol": "ETHUSDT", "id": "u"})
    first.wait_for(lambda m: m.get("id") == "u", timeout=5)
    first.send({"action": "subscribe_ticker", "symbol": "SOLUSDT", "id": "s3"})
    first.wait_for(lambda m: m.get("id") == "s3", timeout=5)
    first.close()

    second = local_engine.connect()
    hello2 = second.wait_for(_is("CONNECTED"), timeout=5)
    assert hello2["session"] != sid  # every connection has its own
    second.send({"action": "resume", "epoch": hello["epoch"], "seq": 0, "session": sid,
                 "id": "r"})
    got = _until(second, "RESUMED")
    done = got[-1]
    assert (done["id"], done["recovered"], done["restored"]) == ("r", True, True)
    assert done["subscriptions"] == {"symbols": ["BTCUSDT", "SOLUSDT"], "books": ["BTCUSDT"]}
    subscribed = [(m["symbol"], m.get("stream")) for m in got if m["type"] == "SUBSCRIBED"]
    assert subscribed == [("BTCUSDT", None), ("SOLUSDT", None), ("BTCUSDT", "book")]
    assert all("id" not in m for m in got if m["type"] == "SUBSCRIBED")
    # each with its snapshot, before RESUMED
    assert {m["symbol"] for m in got if m["type"] == "MARKET_UPDATE"} == {"BTCUSDT", "SOLUSDT"}
    assert [m["symbol"] for m in got if m["type"] == "BOOK_UPDATE"][:1] == ["BTCUSDT"]
    # and live data goes on for exactly those
    ticks = [second.wait_for(_is("MARKET_UPDATE"), timeout=5)["symbol"] for _ in range(20)]
    assert set(ticks) <= {"BTCUSDT", "SOLUSDT"}

    # the new connection's session holds the restored subscriptions in turn
    second.close()
    third = local_engine.connect()
    third.wait_for(_is("CONNECTED"), timeout=5)
    third.send({"action": "resume", "epoch": hello["epoch"], "seq": 0,
                "session": hello2["session"], "id": "r3"})
    done3 = third.wait_for(_is("RESUMED"), timeout=5)
    assert done3["subscriptions"] == done["subscriptions"]
    third.close()


def test_an_unknown_session_restores_nothing_and_resume_without_one_is_as_before(
        local_engine: Engine) -> None:
    s = local_engine.connect()
    hello = s.wait_for(_is("CONNECTED"), timeout=5)
    s.send({"action": "resume", "epoch": hello["epoch"], "seq": 0, "session": "ab" * 16,
            "id": "r"})
    got = _until(s, "RESUMED")
    assert [m["type"] for m in got] == ["RESUMED"]
    assert (got[-1]["restored"], got[-1]["subscriptions"]) == (
        False, {"symbols": [], "books": []})
    assert got[-1]["recovered"] is True  # the account part is unchanged
    s.send({"action": "resume", "epoch": hello["epoch"], "seq": 0, "id": "r2"})
    plain = s.wait_for(_is("RESUMED"), timeout=5)
    assert "restored" not in plain and "subscriptions" not in plain
    s.close()


@pytest.mark.parametrize("session", ["", "xyz", "ab" * 15, "ab" * 17, 12, ["ab" * 16]])
def test_a_malformed_session_is_bad_request_and_subscribes_nothing(
        local_engine: Engine, session: Any) -> None:
    s = local_engine.connect()
    hello = s.wait_for(_is("CONNECTED"), timeout=5)
    s.send({"action": "resume", "epoch": hello["epoch"], "seq": 0, "session": session,
            "id": "bad"})
    got = _until(s, "ERROR")
    assert (got[-1]["code"], got[-1]["id"]) == ("BAD_REQUEST", "bad")
    assert "session" in got[-1]["message"]
    assert [m["type"] for m in got] == ["ERROR"]
    s.close()


@pytest.fixture
def accounts_engine() -> Iterator[Engine]:
    eng = Engine(make_config(accounts=(ALICE, BOB)), listen=False).start()
    try:
        yield eng
    finally:
        eng.stop()


def test_another_accounts_session_is_not_restored_and_leaks_nothing(
        accounts_engine: Engine) -> None:
    alice = accounts_engine.connect(token=ALICE.token)
    hello = alice.wait_for(_is("CONNECTED"), timeout=5)
    sid = _subscribed(alice, hello)
    alice.close()

    bob = accounts_engine.connect(token=BOB.token)
    bob.wait_for(_is("CONNECTED"), timeout=5)
    bob.send({"action": "resume", "epoch": hello["epoch"], "seq": 0, "session": sid,
              "id": "r"})
    got = _until(bob, "RESUMED")
    assert [m["type"] for m in got] == ["RESUMED"]
    assert (got[-1]["restored"], got[-1]["subscriptions"]) == (
        False, {"symbols": [], "books": []})
    bob.close()

    anonymous = accounts_engine.connect()  # nor does an anonymous connection
    anonymous.wait_for(_is("CONNECTED"), timeout=5)
    anonymous.send({"action": "resume", "epoch": hello["epoch"], "seq": 0, "session": sid,
                    "id": "r"})
    got = _until(anonymous, "RESUMED")
    assert [m["type"] for m in got] == ["RESUMED"]
    assert (got[-1]["restored"], got[-1]["recovered"]) == (False, False)
    anonymous.close()

    again = accounts_engine.connect()  # alice again, authenticated with auth
    again.wait_for(_is("CONNECTED"), timeout=5)
    again.send({"action": "auth", "token": ALICE.token, "id": "a"})
    again.wait_for(_is("AUTHENTICATED"), timeout=5)
    again.send({"action": "resume", "epoch": hello["epoch"], "seq": 0, "session": sid,
                "id": "r"})
    done = again.wait_for(_is("RESUMED"), timeout=5)
    assert (done["restored"], done["recovered"]) == (True, True)
    assert done["subscriptions"] == {"symbols": ["BTCUSDT", "ETHUSDT"], "books": ["BTCUSDT"]}
    again.close()


def test_an_anonymous_client_resumes_its_session_without_auth(
        accounts_engine: Engine) -> None:
    viewer = accounts_engine.connect()
    hello = viewer.wait_for(_is("CONNECTED"), timeout=5)
    assert hello["account"] is None
    sid = _subscribed(viewer, hello)
    viewer.close()

    back = accounts_engine.connect()
    back.wait_for(_is("CONNECTED"), timeout=5)
    back.send({"action": "resume", "epoch": hello["epoch"], "seq": 0, "id": "plain"})
    err = back.wait_for(_is("ERROR"), timeout=5)  # no account, no session: as before
    assert (err["code"], err["id"]) == ("UNAUTHORIZED", "plain")
    back.send({"action": "resume", "epoch": hello["epoch"], "seq": 0, "session": sid,
               "id": "r"})
    got = _until(back, "RESUMED")
    done = got[-1]
    assert (done["restored"], done["recovered"]) == (True, False)  # no account events
    assert done["subscriptions"] == {"symbols": ["BTCUSDT", "ETHUSDT"], "books": ["BTCUSDT"]}
    assert {m["symbol"] for m in got if m["type"] == "MARKET_UPDATE"} == {"BTCUSDT", "ETHUSDT"}
    back.close()
