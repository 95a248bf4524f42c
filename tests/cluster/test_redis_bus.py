"""What only the Redis bus has to survive: an engine that restarts (commands
executed at most once, seq continuing), commands sent while no engine runs,
and a Redis that restarts and loses everything (new epoch, the bus goes on)."""

from __future__ import annotations

import threading

import orjson

from engine.protocol.enums import Action
from engine.server.bus import AccountRequest
from engine.server.hub import Hub
from engine.server.redis_bus import RedisBus
from tests.cluster.redis_server import RedisServer
from tests.cluster.test_bus_contract import Recorder, message
from tests.conftest import wait_until


def _orders(ch: Recorder, rid: str) -> AccountRequest:
    return AccountRequest("alice", ch, rid, Action.GET_ORDERS, {"action": "get_orders",
                                                                "id": rid})


def test_a_command_sent_while_no_engine_runs_is_run_once_when_it_starts(
        redis_server: RedisServer) -> None:
    hub = Hub()
    gateway = RedisBus(redis_server.url, gateway="g1")
    gateway.start_gateway(hub)
    sender = Recorder()
    hub.add(sender)
    hub.set_account(sender, "alice")
    run: list[AccountRequest] = []

    def route(req: AccountRequest) -> bool:
        run.append(req)
        req.channel.deliver(message("ORDERS", id=req.request_id))
        return True

    try:
        assert gateway.submit(_orders(sender, "early"))
        engine = RedisBus(redis_server.url)
        engine.start_engine(route)
        wait_until(lambda: len(sender.got) == 1, what="the answer")
        engine.close()
        engine = RedisBus(redis_server.url)  # a restart: nothing is run again
        engine.start_engine(route)
        assert gateway.submit(_orders(sender, "later"))
        wait_until(lambda: len(sender.got) == 2, what="the second answer")
        engine.close()
    finally:
        gateway.close()
    assert [r.request_id for r in run] == ["early", "later"]
    assert [m["id"] for m in sender.messages()] == ["early", "later"]


def _place(ch: Recorder, rid: str, **fields: str) -> AccountRequest:
    body = {"action": "place_order", "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
            "quantity": "0.01", "price": "80000", "id": rid, **fields}
    return AccountRequest("alice", ch, rid, Action.PLACE_ORDER, body)


def test_commands_an_engine_took_and_never_answered_are_answered_once_not_run_twice(
        redis_server: RedisServer) -> None:
    """Three commands pending when the engine died: an order it placed (named by
    the gateway) is answered from the account's orders, not placed again; an
    order it did not place and a read-only command are executed."""
    hub = Hub()
    gateway = RedisBus(redis_server.url, gateway="g1")
    gateway.start_gateway(hub)
    sender = Recorder()
    hub.add(sender)
    taken: list[AccountRequest] = []

    def dies(req: AccountRequest) -> bool:  # takes them, never answers (killed mid-command)
        taken.append(req)
        return True

    second_run: list[AccountRequest] = []

    def route(req: AccountRequest) -> bool:
        if req.request_id is None:  # the engine's own look-up: the store's orders
            placed = {"orderId": 11, "clientOrderId": taken[0].body["clientOrderId"],
                      "listId": None, "type": "LIMIT", "status": "NEW"}
            req.channel.deliver(message("ORDERS", orders=[placed]))
            return True
        second_run.append(req)
        req.channel.deliver(message("ORDERS" if req.action is Action.GET_ORDERS
                                    else "ORDER_UPDATE", id=req.request_id))
        return True

    try:
        engine = RedisBus(redis_server.url)
        engine.start_engine(dies)
        for req in (_place(sender, "ran"), _place(sender, "not-run", clientOrderId="mine"),
                    _orders(sender, "read")):
            assert gateway.submit(req)
        wait_until(lambda: len(taken) == 3, what="the engine took them")
        engine.close()
        engine = RedisBus(redis_server.url)
        engine.start_engine(route)
        wait_until(lambda: len(sender.got) == 3, what="the answers")
        engine.close()
    finally:
        gateway.close()
    assigned = taken[0].body["clientOrderId"]
    assert assigned.startswith("gw") and taken[1].body["clientOrderId"] == "mine"
    got = sender.messages()
    assert [m["id"] for m in got] == ["ran", "not-run", "read"]  # one answer each, in order
    assert got[0]["redelivered"] is True and got[0]["order"]["clientOrderId"] == assigned
    assert [r.request_id for r in second_run] == ["not-run", "read"]  # "ran" not run again


def test_seq_goes_on_after_an_engine_restart(redis_server: RedisServer) -> None:
    engine = RedisBus(redis_server.url)
    assert [engine.to_account("alice", message("ORDER_UPDATE")) for _ in range(3)] == [1, 2, 3]
    engine.close()
    engine = RedisBus(redis_server.url)
    epoch = engine.epoch
    assert engine.to_account("alice", message("ORDER_UPDATE")) == 4
    got = engine.resume("alice", epoch, 1)
    assert got.recovered
    assert [orjson.loads(p)["seq"] for p in got.events] == [2, 3, 4]
    engine.close()


def test_a_redis_restart_is_a_new_epoch_and_the_bus_goes_on(redis_server: RedisServer) -> None:
    hub = Hub()
    gateway = RedisBus(redis_server.url, gateway="g1")
    changed = threading.Event()
    gateway.on_epoch_change = lambda _epoch: changed.set()
    gateway.start_gateway(hub)
    engine = RedisBus(redis_server.url)
    engine.start_engine(lambda req: True)
    alice = Recorder()
    hub.add(alice)
    hub.set_account(alice, "alice")
    try:
        engine.to_account("alice", message("ORDER_UPDATE", orderId=1))
        wait_until(lambda: len(alice.got) == 1, what="the first event")
        before = gateway.epoch
        redis_server.restart()
        assert changed.wait(10)
        assert gateway.epoch != before
        assert not gateway.resume("alice", before, 1).recovered  # the client re-fetches
        # the bus goes on: a write fails at most while Redis is away, then works
        wait_until(lambda: engine.to_account("alice", message("ORDER_UPDATE", orderId=2)) > 0
                   and len(alice.got) >= 2, seconds=10, what="events after the restart")
        assert alice.messages()[-1]["orderId"] == 2
    finally:
        engine.close()
        gateway.close()


def test_a_command_that_fails_in_the_engine_is_answered_and_the_next_one_runs(
        redis_server: RedisServer) -> None:
    hub = Hub()
    gateway = RedisBus(redis_server.url, gateway="g1")
    gateway.start_gateway(hub)
    sender = Recorder()
    hub.add(sender)

    def route(req: AccountRequest) -> bool:
        if req.request_id == "boom":
            raise RuntimeError("a bug")
        req.channel.deliver(message("ORDERS", id=req.request_id))
        return True

    engine = RedisBus(redis_server.url)
    engine.start_engine(route)
    try:
        assert gateway.submit(_orders(sender, "boom"))
        assert gateway.submit(_orders(sender, "fine"))
        wait_until(lambda: len(sender.got) == 2, what="both answers")
    finally:
        engine.close()
        gateway.close()
    first, second = sender.messages()
    assert (first["type"], first["code"], first["id"]) == ("ERROR", "INTERNAL", "boom")
    assert (second["type"], second["id"]) == ("ORDERS", "fine")
