"""Commands queued behind a crash still get their one answer (ERROR INTERNAL).

pykka drops the ``tell`` messages left in a failed actor's mailbox; the
PortfolioActor and OrderMonitorActor answer the account commands among them
instead. The PortfolioActor is held inside a client's callback (its thread
delivers the reply) while more commands queue up behind a message that
crashes it (an account it does not have), so the queue is certain.
"""

from __future__ import annotations

import threading
from typing import Any

from actors.messages import AccountRequest
from engine.config import SupervisorConfig
from tests.conftest import make_config, timeout, wait_until
from tickdesk import Engine


def test_commands_queued_behind_a_crash_are_answered() -> None:
    cfg = make_config(supervisor=SupervisorConfig(backoff_min_s=0.01, backoff_max_s=0.05))
    entered, release = threading.Event(), threading.Event()
    got: list[dict[str, Any]] = []
    lock = threading.Lock()

    def callback(msg: dict[str, Any]) -> None:
        if msg.get("id") == "hold":
            entered.set()
            release.wait(timeout(5))
        with lock:
            got.append(msg)

    with Engine(cfg, listen=False) as engine:
        session = engine.connect(callback=callback)
        slot = engine.portfolio
        assert slot.tell(AccountRequest("default", session, "hold", "get_positions", {}))
        assert entered.wait(timeout(5))
        assert slot.tell(AccountRequest("ghost", session, None, "get_positions", {}))
        queued = [f"q{i}" for i in range(5)]
        for rid in queued:
            assert slot.tell(AccountRequest("default", session, rid, "get_portfolio", {}))
        release.set()

        def answered() -> bool:
            with lock:
                return {m.get("id") for m in got} >= set(queued)

        wait_until(answered, what="every queued command answered")
        wait_until(lambda: engine.portfolio.ref is not None
                   and engine.portfolio.ref.is_alive(), what="the portfolio restarted")
        session.send({"action": "get_portfolio", "id": "after"})
        wait_until(lambda: any(m.get("id") == "after" for m in list(got)), what="answer")
        session.close()
    with lock:
        replies = {rid: [m for m in got if m.get("id") == rid] for rid in queued}
    assert all(len(r) == 1 for r in replies.values()), replies
    assert {r[0]["type"] for r in replies.values()} == {"ERROR"}
    assert {r[0]["code"] for r in replies.values()} == {"INTERNAL"}
    assert [m["type"] for m in got if m.get("id") == "after"] == ["PORTFOLIO_UPDATE"]
