"""The frame gate over loopback: refusals are answered by the I/O thread, and a
refused frame never reaches the ConnectionActor (``tickdesk_gate_*`` in /metrics)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import websocket

from engine.config import AccountConfig, ServerConfig
from tests.conftest import make_config, wait_until
from tests.e2e.test_ops_e2e import _metrics
from tests.e2e.wsclient import WsClient
from tickdesk import Engine

BURST = 5
ALICE = AccountConfig(name="alice", token="alice-token-123")
BOB = AccountConfig(name="bob", token="bob-token-4567")


@pytest.fixture
def tight() -> Iterator[Engine]:
    # next to no refill: what the bucket holds is all a connection gets
    cfg = make_config(server=ServerConfig(port=0, rate_limit_per_s=0.01, rate_limit_burst=BURST))
    eng = Engine(cfg).start()
    try:
        yield eng
    finally:
        eng.stop()


def _gate(eng: Engine) -> dict[str, float]:
    m = _metrics(eng)
    return {"passed": m[("tickdesk_gate_passed_total", ())],
            "connection": m[("tickdesk_gate_refused_total", (("budget", "connection"),))],
            "account": m[("tickdesk_gate_refused_total", (("budget", "account"),))],
            "queued": m[("tickdesk_gate_refusals_queued_total", ())],
            "closed": m[("tickdesk_gate_closed_total", ())]}


def _actors_idle(eng: Engine) -> bool:
    """No frame waits in any ConnectionActor's mailbox (its InboundGate; white-box)."""
    with eng._lock:
        refs = list(eng._connections.values())
    return all(getattr(getattr(ref, "_actor", None), "_gate", None) is None
               or ref._actor._gate.waiting == 0 for ref in refs)


def test_a_flood_is_refused_with_ids_then_closed_1008_without_waking_the_actor(
        tight: Engine) -> None:
    c = WsClient(tight.url)
    try:
        assert c.recv()["type"] == "CONNECTED"
        for i in range(BURST):  # one at a time: the actor is idle after each
            c.send({"action": "ping", "id": i})
            assert c.reply(i)["type"] == "PONG"
        # the client can read the last PONG a moment before the actor is done
        # with its frame: until then a refusal would queue behind it
        wait_until(lambda: _actors_idle(tight), what="the actor has no frame waiting")
        for i in range(BURST):  # the bucket is empty: each refused, none executed
            c.send({"action": "ping", "id": f"r{i}"})
        refusals = [c.reply(f"r{i}") for i in range(BURST)]
        assert [(r["type"], r["code"]) for r in refusals] == [("ERROR", "RATE_LIMITED")] * BURST
        gate = _gate(tight)
        # the actor was told only the frames that passed; the refusals were all
        # answered by the I/O thread (none had to queue behind the actor's frames)
        assert (gate["passed"], gate["connection"], gate["queued"]) == (BURST, BURST, 0)
        try:
            c.send({"action": "ping", "id": "last"})  # one refusal too many
        except (OSError, websocket.WebSocketConnectionClosedException):
            pass
        assert c.wait_closed() == 1008
        assert _gate(tight)["closed"] == 1
        assert _gate(tight)["passed"] == BURST
    finally:
        c.close()


def test_refusals_stay_behind_the_replies_of_earlier_frames(tight: Engine) -> None:
    c = WsClient(tight.url)
    try:
        c.recv()
        for i in range(BURST + 3):  # sent at once: some refusals may queue behind PONGs
            c.send({"action": "ping", "id": i})
        got = []
        while len(got) < BURST + 3:
            msg = c.recv()
            if "id" in msg:
                got.append((msg["id"], msg["type"] if msg["type"] == "PONG" else msg["code"]))
        assert got == ([(i, "PONG") for i in range(BURST)]
                       + [(i, "RATE_LIMITED") for i in range(BURST, BURST + 3)])
    finally:
        c.close()


@pytest.fixture
def secured() -> Iterator[Engine]:
    eng = Engine(make_config(accounts=(ALICE, BOB), server=ServerConfig(
        port=0, account_rate_limit_per_s=1.0, rate_limit_per_s=1000,
        rate_limit_burst=1000))).start()
    try:
        yield eng
    finally:
        eng.stop()


def test_two_connections_of_one_account_share_its_budget_at_the_edge(secured: Engine) -> None:
    a1 = WsClient(secured.url + f"?token={ALICE.token}")
    a2 = WsClient(secured.url + f"?token={ALICE.token}")
    b = WsClient(secured.url + f"?token={BOB.token}")
    try:
        for c in (a1, a2, b):
            c.recv()
        # alice's bucket holds 2 (twice 1/s): one command on each connection
        # passes, the next ones on either are refused at the edge
        for i, c in enumerate((a1, a2)):
            c.send({"action": "get_orders", "id": i})
            assert c.reply(i)["type"] == "ORDERS"
        for i, c in enumerate((a1, a2), start=2):
            c.send({"action": "get_orders", "id": i})
            err = c.reply(i)
            assert (err["code"], err["id"]) == ("RATE_LIMITED", i)
            assert "alice" in err["message"]
        # a session command of alice's is not an account command: it passes
        a1.send({"action": "ping", "id": "p"})
        assert a1.reply("p")["type"] == "PONG"
        b.send({"action": "get_orders", "id": "b"})
        assert b.reply("b")["type"] == "ORDERS"
        gate = _gate(secured)
        assert gate["account"] == 2 and gate["connection"] == 0
    finally:
        for c in (a1, a2, b):
            c.close()


def test_a_failed_auth_stops_charging_the_account(secured: Engine) -> None:
    c = WsClient(secured.url + f"?token={ALICE.token}")
    try:
        c.recv()
        c.send({"action": "auth", "token": "wrong-token-999", "id": 1})
        assert c.reply(1)["code"] == "UNAUTHORIZED"
        for i in range(2, 6):  # anonymous now: UNAUTHORIZED from the actor, never RATE_LIMITED
            c.send({"action": "get_orders", "id": i})
            assert c.reply(i)["code"] == "UNAUTHORIZED"
        assert _gate(secured)["account"] == 0
    finally:
        c.close()
