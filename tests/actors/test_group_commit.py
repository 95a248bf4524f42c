"""Group commit: the commands waiting for the OrderMonitorActor settle in ONE transaction.

The OrderMonitorActor is held, deterministically, inside a Drain whose desk
blocks until the test releases it (as in ``test_command_desk.py``); meanwhile
the commands of the test queue up in the real desk, so the first Drain after
the release takes them all as one batch. Commits are counted by the store's
statistics (``tickdesk_store_settle_commits_total``). No timing is asserted.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest

from actors.base import ActorSlot
from actors.command_desk import CommandDesk, Drain
from actors.messages import AccountRequest
from engine.config import AccountConfig, ServerConfig
from engine.store import Store
from tests.conftest import make_config, timeout, wait_until
from tickdesk import Engine

SYMBOL = "BTCUSDT"
ALICE = AccountConfig(name="alice", token="alice-token-123",
                      balances=(("USDT", Decimal(1000)),))
BOB = AccountConfig(name="bob", token="bob-token-4567", balances=(("USDT", Decimal(1000)),))


class _HeldDesk(CommandDesk):
    """Blocks the actor that takes from it until released (then gives nothing)."""

    def __init__(self) -> None:
        super().__init__(ActorSlot("unused"), 1, lambda: 0)
        self.entered, self.release = threading.Event(), threading.Event()

    def take_batch(self, limit: int) -> list[AccountRequest]:
        self.entered.set()
        self.release.wait(timeout(10))
        return []


class _Inbox:
    """Every message of one session, in arrival order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.got: list[dict[str, Any]] = []

    def __call__(self, msg: dict[str, Any]) -> None:
        with self.lock:
            self.got.append(msg)

    def answers(self, rid: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.got if m.get("id") == rid]

    def first(self, pred: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        def found() -> bool:
            with self.lock:
                return any(pred(m) for m in self.got)
        wait_until(found, what=what)
        with self.lock:
            return next(m for m in self.got if pred(m))


@pytest.fixture
def engine() -> Iterator[Engine]:
    cfg = make_config(accounts=(ALICE, BOB), server=ServerConfig(port=0))
    with Engine(cfg, listen=False) as running:
        yield running


def _price(engine: Engine) -> Decimal:
    inbox = _Inbox()
    session = engine.connect(callback=inbox, token=ALICE.token)
    session.send({"action": "subscribe_ticker", "symbol": SYMBOL, "id": "t"})
    msg = inbox.first(lambda m: m["type"] == "MARKET_UPDATE", "a price")
    session.close()
    return Decimal(str(msg["price"]))


def _buy(rid: str, price: Decimal, notional: Decimal) -> dict[str, Any]:
    """A resting LIMIT buy of about ``notional`` USDT at ``price``."""
    qty = (notional / price).quantize(Decimal("0.00001"), rounding=ROUND_DOWN)
    return {"action": "place_order", "symbol": SYMBOL, "side": "BUY", "type": "LIMIT",
            "quantity": str(qty), "price": str(price), "id": rid}


@contextmanager
def _held(engine: Engine) -> Iterator[CommandDesk]:
    """The OrderMonitorActor held in a Drain until the block ends; yields its desk."""
    held = _HeldDesk()
    assert engine.order_monitor.tell(Drain(held))
    assert held.entered.wait(timeout(5))
    try:
        yield engine.desks["order_monitor"]
    finally:
        held.release.set()


def _commits(engine: Engine) -> tuple[int, int]:
    stats = engine.store_health.statistics()
    return stats.settle_commits, stats.settled_outcomes


def _limit_price(engine: Engine) -> Decimal:
    return (_price(engine) * Decimal("0.9")).quantize(Decimal("0.01"))


def test_commands_of_two_accounts_waiting_together_commit_once(engine: Engine) -> None:
    price = _limit_price(engine)
    alice, bob = _Inbox(), _Inbox()
    a = engine.connect(callback=alice, token=ALICE.token)
    b = engine.connect(callback=bob, token=BOB.token)
    before = _commits(engine)
    with _held(engine) as desk:
        for i in range(3):
            a.send(_buy(f"a{i}", price, Decimal(100)))
        wait_until(lambda: desk.waiting("alice") == 3, what="alice's commands queued")
        for i in range(2):
            b.send(_buy(f"b{i}", price, Decimal(100)))
        wait_until(lambda: desk.waiting() == 5, what="five commands queued")
        assert _commits(engine) == before  # nothing settled while held
    ids = {"a0": alice, "a1": alice, "a2": alice, "b0": bob, "b1": bob}
    wait_until(lambda: all(inbox.answers(rid) for rid, inbox in ids.items()),
               what="every command answered")
    for rid, inbox in ids.items():
        (answer,) = inbox.answers(rid)  # exactly one answer each
        assert (answer["type"], answer["executionType"]) == ("ORDER_UPDATE", "NEW")
    commits, outcomes = _commits(engine)
    assert (commits - before[0], outcomes - before[1]) == (1, 5)  # one transaction for all
    # run in the desk's round-robin order (order ids are given in run order):
    # alice's backlog did not go ahead of bob's commands
    run = sorted(ids, key=lambda rid: ids[rid].answers(rid)[0]["order"]["orderId"])
    assert run == ["a0", "b0", "a1", "b1", "a2"]
    a.close()
    b.close()


def test_risk_sees_the_reservations_of_earlier_commands_of_the_batch(engine: Engine) -> None:
    price = _limit_price(engine)
    alice = _Inbox()
    a = engine.connect(callback=alice, token=ALICE.token)
    before = _commits(engine)
    with _held(engine) as desk:
        # each within alice's 1,000 USDT, together not
        a.send(_buy("first", price, Decimal(600)))
        a.send(_buy("second", price, Decimal(600)))
        wait_until(lambda: desk.waiting() == 2, what="both commands queued")
    wait_until(lambda: alice.answers("first") and alice.answers("second"), what="answers")
    (first,), (second,) = alice.answers("first"), alice.answers("second")
    assert first["executionType"] == "NEW"
    assert second["executionType"] == "REJECTED"
    assert "balance" in second["order"]["rejectReason"].lower()
    commits, outcomes = _commits(engine)
    assert (commits - before[0], outcomes - before[1]) == (1, 2)  # they were one batch
    a.send({"action": "get_portfolio", "id": "p"})
    portfolio = alice.first(lambda m: m.get("id") == "p", "the portfolio")["portfolio"]
    usdt = next(b for b in portfolio["balances"] if b["asset"] == "USDT")
    assert Decimal(str(usdt["locked"])) > 0 and Decimal(str(usdt["free"])) >= 0
    a.close()


def test_a_refused_commit_keeps_nothing_of_the_batch(engine: Engine,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    price = _limit_price(engine)
    alice, bob = _Inbox(), _Inbox()
    a = engine.connect(callback=alice, token=ALICE.token)
    b = engine.connect(callback=bob, token=BOB.token)
    a.send(_buy("kept", price, Decimal(100)))  # committed before: must survive the rollback
    alice.first(lambda m: m.get("id") == "kept", "the first order")
    refusals: list[int] = []
    real_settle = Store.settle

    def refusing(self: Store, outcome: Any, *args: Any, **kwargs: Any) -> None:
        if not refusals:
            refusals.append(len(outcome.events))
            raise sqlite3.OperationalError("disk I/O error")
        real_settle(self, outcome, *args, **kwargs)

    monkeypatch.setattr(Store, "settle", refusing)
    before = _commits(engine)
    with _held(engine) as desk:
        a.send(_buy("a0", price, Decimal(100)))
        b.send(_buy("b0", price, Decimal(100)))
        a.send({"action": "cancel_order", "orderId": 10**9, "id": "a1"})  # unknown order
        wait_until(lambda: desk.waiting() == 3, what="three commands queued")
    ids = {"a0": alice, "b0": bob, "a1": alice}
    wait_until(lambda: all(inbox.answers(rid) for rid, inbox in ids.items()), what="answers")
    for rid, inbox in ids.items():
        (answer,) = inbox.answers(rid)
        assert (answer["type"], answer["code"]) == ("ERROR", "STORE_UNAVAILABLE"), answer
    assert refusals == [2]  # one transaction for the batch's two orders
    assert _commits(engine) == before
    # nothing of the batch announced to the accounts' other sessions either
    assert not [m for m in alice.got + bob.got
                if m["type"] == "ORDER_UPDATE" and m.get("id") not in ("kept", None)]
    # nothing of it kept: the book and the ledgers are what was committed
    a.send({"action": "get_orders", "id": "orders"})
    orders = alice.first(lambda m: m.get("id") == "orders", "alice's orders")["orders"]
    assert [o["clientOrderId"] for o in orders] == [alice.answers("kept")[0]["order"]
                                                    ["clientOrderId"]]
    b.send({"action": "get_portfolio", "id": "p"})
    portfolio = bob.first(lambda m: m.get("id") == "p", "bob's portfolio")["portfolio"]
    usdt = next(x for x in portfolio["balances"] if x["asset"] == "USDT")
    assert Decimal(str(usdt["locked"])) == 0
    # the store writes again (the probe, or the retry a second later): orders work
    wait_until(lambda: engine.store_health.writable, what="the store writable again")
    b.send(_buy("b1", price, Decimal(100)))
    (after,) = [bob.first(lambda m: m.get("id") == "b1", "bob's next order")]
    assert after["executionType"] == "NEW"
    a.close()
    b.close()
