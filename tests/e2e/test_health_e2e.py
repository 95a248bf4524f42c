"""``/healthz`` tells the truth about crash-looping and escalated actors, and
``/metrics`` counts their restarts (the store and the feed: see
``tests/test_store_full.py`` and ``test_ops_e2e.py``).

An actor is crashed for real: the PortfolioActor is told an account request
for an account it does not have (no client can send one: the ConnectionActor
only forwards its own account), its handler raises, pykka stops it and the
Supervisor restarts it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from actors.messages import AccountRequest
from engine.config import SupervisorConfig
from engine.health import ActorHealth, ChildRecord, assess, reasons
from tests.conftest import make_config, wait_until
from tests.e2e.test_ops_e2e import _get, _metrics
from tickdesk import Engine


def _engine(**supervisor: float) -> Engine:
    sup = SupervisorConfig(backoff_min_s=0.01, backoff_max_s=0.05, backoff_jitter=0.0,
                           **supervisor)  # type: ignore[arg-type]
    return Engine(make_config(supervisor=sup)).start()


@pytest.fixture
def looping() -> Iterator[Engine]:
    eng = _engine(reset_after_s=1.0, max_restarts=5)
    try:
        yield eng
    finally:
        eng.stop()


def _crash_portfolio(engine: Engine, times: int) -> None:
    """Crash the PortfolioActor and wait for the Supervisor to restart it."""
    session = engine.connect()
    try:
        for _ in range(times):
            before = {r.name: r.restarts for r in engine.children.records()}["portfolio"]
            assert engine.portfolio.tell(AccountRequest("ghost", session, None,
                                                        "get_positions", {}))
            wait_until(lambda b=before: {r.name: r.restarts for r in
                                         engine.children.records()}["portfolio"] > b,
                       what="the portfolio restarted")
            wait_until(lambda: engine.portfolio.ref is not None, what="portfolio slot set")
    finally:
        session.close()


def _health(engine: Engine) -> tuple[int, dict[str, object]]:
    status, _, body = _get(engine, "/healthz")
    return status, json.loads(body)


def test_one_crash_is_not_a_crash_loop(looping: Engine) -> None:
    wait_until(lambda: looping.feed_status()["status"] == "UP", what="feed UP")
    _crash_portfolio(looping, 1)
    status, health = _health(looping)
    assert status == 200 and health["status"] == "ok"
    actors = health["actors"]
    assert isinstance(actors, dict)
    assert actors["portfolio"]["restarts"] == 1
    assert actors["portfolio"]["lastFailure"] == "crashed: KeyError"


def test_healthz_is_503_while_an_actor_crash_loops_then_200(looping: Engine) -> None:
    wait_until(lambda: looping.feed_status()["status"] == "UP", what="feed UP")
    _crash_portfolio(looping, 2)
    status, health = _health(looping)
    assert status == 503 and health["status"] == "failing"
    assert health["reasons"] == [
        "portfolio is crash-looping (2 failures in 300 s; last: crashed: KeyError)"]
    metrics = _metrics(looping)
    assert metrics[("tickdesk_actor_restarts_total", (("actor", "portfolio"),))] == 2
    assert metrics[("tickdesk_actor_restarts_total", (("actor", "order_monitor"),))] == 0
    assert metrics[("tickdesk_healthy", ())] == 0
    # Stable for supervisor.reset_after_s (1 s here): healthy again.
    wait_until(lambda: _health(looping)[0] == 200, what="/healthz 200 after a stable run")
    # The account still works after the restarts (the ledgers reloaded).
    session = looping.connect()
    session.send({"action": "get_portfolio", "id": 1})
    assert session.wait_for(lambda m: m.get("id") == 1)["type"] == "PORTFOLIO_UPDATE"
    session.close()


def test_healthz_is_503_while_an_actor_is_escalated() -> None:
    engine = _engine(reset_after_s=3600.0, max_restarts=1)
    try:
        _crash_portfolio(engine, 2)
        status, health = _health(engine)
        assert status == 503
        assert health["reasons"] == [
            "portfolio is escalated (2 failures in 300 s; last: crashed: KeyError)"]
        actors = health["actors"]
        assert isinstance(actors, dict) and actors["portfolio"]["escalated"] is True
    finally:
        engine.stop()


# -- the rules, as a table (engine/health.py) ----------------------------------

W, S = 300.0, 60.0


@pytest.mark.parametrize(("record", "now", "looping", "escalated"), [
    (ChildRecord("a"), 1000.0, False, False),
    (ChildRecord("a", 1, (990.0,), 991.0), 1000.0, False, False),              # one failure
    (ChildRecord("a", 2, (980.0, 990.0), 991.0), 1000.0, True, False),         # two in window
    (ChildRecord("a", 2, (980.0, 990.0), None), 1000.0, True, False),          # restart pending
    (ChildRecord("a", 2, (980.0, 990.0), 991.0), 1051.0, False, False),        # stable 60 s
    (ChildRecord("a", 2, (600.0, 990.0), 991.0), 1000.0, False, False),        # first one old
    (ChildRecord("a", 3, (980.0, 985.0, 990.0), 991.0, True), 1000.0, True, True),
    (ChildRecord("a", 3, (980.0, 985.0, 990.0), 991.0, True), 1051.0, False, False),
])
def test_assess(record: ChildRecord, now: float, looping: bool, escalated: bool) -> None:
    got = assess(record, now, W, S)
    assert (got.crash_looping, got.escalated) == (looping, escalated)


def test_reasons_skip_the_feeds_restarts_but_not_its_down_status() -> None:
    loop = ActorHealth("feed", 5, 5, True, False, "upstream closed (1006)")
    assert reasons({"feed": loop}, {"status": "RECONNECTING"}, True, None, W) == []
    assert reasons({"feed": loop}, {"status": "DOWN", "reason": "refused"}, False,
                   "full: database or disk is full", W) == [
        "feed is DOWN: refused", "store cannot write (full: database or disk is full)"]
