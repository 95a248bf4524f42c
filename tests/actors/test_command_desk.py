"""The command desk in front of the engine actors: per-account bounds, BUSY, fairness.

The OrderMonitorActor is held, deterministically, inside a Drain whose desk
blocks in ``take()`` until the test releases it; meanwhile account A fills
its queue to the bound and account B queues one command. Once released, the
order in which the actor answers (one thread, so one order) shows who was
served first. No timing is asserted.
"""

from __future__ import annotations

import threading
from typing import Any

import orjson

from actors.base import ActorSlot
from actors.command_desk import CommandDesk, Drain
from actors.messages import AccountRequest
from engine.config import AccountConfig, ServerConfig
from engine.protocol.commands import OrdersQuery
from engine.protocol.enums import Action
from engine.protocol.server_messages import Outgoing
from tests.conftest import make_config, timeout, wait_until
from tickdesk import Engine

ALICE = AccountConfig(name="alice", token="alice-token-123")
BOB = AccountConfig(name="bob", token="bob-token-4567")
LIMIT = 8


class _Recorder:
    """A channel that keeps what it is given."""

    conn_id = 1
    closed = False

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    def deliver(self, out: Outgoing) -> None:
        self.got.append(orjson.loads(out.payload))

    def close(self, code: int, reason: str) -> None:
        self.closed = True


class _HeldDesk(CommandDesk):
    """Blocks the actor that takes from it until released (then gives nothing)."""

    def __init__(self) -> None:
        super().__init__(ActorSlot("unused"), 1, lambda: 0)
        self.entered, self.release = threading.Event(), threading.Event()

    def take_batch(self, limit: int) -> list[AccountRequest]:
        self.entered.set()
        self.release.wait(timeout(10))
        return []


def _request(account: str, channel: _Recorder, rid: str) -> AccountRequest:
    return AccountRequest(account, channel, rid, Action.GET_ORDERS, {}, OrdersQuery(False))


def test_a_command_for_an_actor_that_is_down_is_answered_internal_at_once() -> None:
    desk = CommandDesk(ActorSlot("order_monitor"), 4, lambda: 0)  # no actor behind the slot
    ch = _Recorder()
    assert desk.submit(_request("alice", ch, "r1"))
    assert [(m["type"], m["code"], m["id"]) for m in ch.got] == [("ERROR", "INTERNAL", "r1")]
    assert desk.waiting() == 0


def test_the_bound_counts_per_account_and_a_full_account_is_refused() -> None:
    desk = CommandDesk(ActorSlot("order_monitor"), 2, lambda: 0)
    told: list[object] = []

    class _Slot(ActorSlot):
        def tell(self, message: Any) -> bool:
            told.append(message)
            return True

    desk.target = _Slot("order_monitor")
    ch = _Recorder()
    assert desk.submit(_request("alice", ch, "a1")) and desk.submit(_request("alice", ch, "a2"))
    assert not desk.submit(_request("alice", ch, "a3"))
    assert desk.submit(_request("bob", ch, "b1"))
    assert len(told) == 3 and all(isinstance(m, Drain) for m in told)  # one per queued command
    assert [r.request_id for r in iter(desk.take, None)] == ["a1", "b1", "a2"]
    assert desk.statistics().commands_busy == 1 and ch.got == []


def test_with_one_account_at_its_bound_another_accounts_command_is_served_next() -> None:
    cfg = make_config(accounts=(ALICE, BOB),
                      server=ServerConfig(port=0, account_queue_limit=LIMIT))
    order: list[tuple[str, str, str | None]] = []  # (who, type, code) in answer order
    lock = threading.Lock()

    def recorder(who: str) -> Any:
        def callback(msg: dict[str, Any]) -> None:
            if msg.get("id") is not None:
                with lock:
                    order.append((who, msg["type"], msg.get("code")))
        return callback

    with Engine(cfg, listen=False) as engine:
        alice = engine.connect(callback=recorder("alice"), token=ALICE.token)
        bob = engine.connect(callback=recorder("bob"), token=BOB.token)
        desk = engine.desks["order_monitor"]
        held = _HeldDesk()
        assert engine.order_monitor.tell(Drain(held))
        assert held.entered.wait(timeout(5))
        try:
            for i in range(LIMIT + 3):
                alice.send({"action": "get_orders", "id": f"a{i}"})
            wait_until(lambda: desk.waiting("alice") == LIMIT, what="alice's queue full")
            wait_until(lambda: sum(1 for m in list(order) if m[2] == "BUSY") == 3,
                       what="alice's overflow answered")
            bob.send({"action": "get_orders", "id": "b0"})
            wait_until(lambda: desk.waiting("bob") == 1, what="bob's command queued")
        finally:
            held.release.set()
        wait_until(lambda: len(order) == LIMIT + 3 + 1, what="every command answered")
        alice.close()
        bob.close()
    busy = [m for m in order if m[2] == "BUSY"]
    served = [m for m in order if m[2] != "BUSY"]
    assert busy == [("alice", "ERROR", "BUSY")] * 3  # the overflow: typed, not executed
    assert [m[1] for m in served] == ["ORDERS"] * (LIMIT + 1)  # nothing queued was lost
    # bob's one command is served right after alice's first, not after her backlog
    assert [m[0] for m in served[:2]] == ["alice", "bob"]
    assert desk.waiting() == 0


def test_a_batch_leaves_its_other_drains_stale_and_the_mailbox_bounded() -> None:
    told: list[object] = []

    class _Slot(ActorSlot):
        def tell(self, message: Any) -> bool:
            told.append(message)
            return True

    desk = CommandDesk(_Slot("order_monitor"), 4, lambda: 0)
    ch = _Recorder()
    for rid in ("a1", "a2", "a3"):
        assert desk.submit(_request("alice", ch, rid))
    assert desk.submit(_request("bob", ch, "b1"))
    # the first Drain takes a batch, round-robin
    assert [r.request_id for r in desk.take_batch(3)] == ["a1", "b1", "a2"]
    # the next two Drains are those of commands already taken: they take nothing,
    # so the a3 waiting is taken by the Drain that is still its own
    assert desk.take_batch(3) == [] and desk.take_batch(3) == []
    assert [r.request_id for r in desk.take_batch(3)] == ["a3"]
    assert len(told) == 4  # one Drain per command, each spent exactly once
    # a Drain lost in a failed actor spends a stale one before failing a command
    assert desk.submit(_request("alice", ch, "a4")) and desk.submit(_request("alice", ch, "a5"))
    assert [r.request_id for r in desk.take_batch(3)] == ["a4", "a5"]
    desk.fail_one()  # a5's Drain, stale: nobody is answered
    assert ch.got == []
    assert desk.submit(_request("alice", ch, "a6"))
    desk.fail_one()  # a6's own Drain lost: a6 is answered INTERNAL
    assert [(m["code"], m["id"]) for m in ch.got] == [("INTERNAL", "a6")]
    assert desk.waiting() == 0
