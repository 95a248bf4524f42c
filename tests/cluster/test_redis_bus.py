"""What only the Redis bus has to survive: an engine that restarts (commands
executed at most once, seq continuing), commands sent while no engine runs,
and a Redis that restarts and loses everything (new epoch, the bus goes on)."""

from __future__ import annotations

import threading

import orjson

from engine.protocol.enums import Action
from engine.protocol.server_messages import Outgoing
from engine.server.bus import AccountRequest
from engine.server.hub import Hub, UserStream
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


def test_a_gateway_that_stops_announcing_is_forgotten_after_the_ttl(
        redis_server: RedisServer) -> None:
    """A killed gateway (its announcement is not refreshed): the engine stops
    wanting its streams once the key expires; a live one's interest stays."""
    engine = RedisBus(redis_server.url)
    silent, live = RedisBus(redis_server.url, gateway="silent"), Hub()
    silent_hub, watcher = Hub(), Recorder()
    silent_hub.add(watcher)
    silent_hub.subscribe_stream(watcher, "btcusdt@trade", "BTCUSDT", combined=False)
    other = Recorder()
    live.add(other)
    live.subscribe_stream(other, "ethusdt@trade", "ETHUSDT", combined=True)
    gateway = RedisBus(redis_server.url, gateway="live")
    try:
        silent.announce_interest(silent_hub)  # once, as a gateway killed right after
        gateway.start_gateway(live)
        wait_until(lambda: (engine.refresh_interest(), engine.has_stream("ethusdt@trade"))[1],
                   what="the live gateway's interest")
        assert engine.has_stream("btcusdt@trade")
        assert engine.statistics().gateways_interested == 2
        assert engine.statistics().streams_wanted == 2
        wait_until(lambda: (engine.refresh_interest(),
                            not engine.has_stream("btcusdt@trade"))[1],
                   10, "the silent gateway's interest to expire")
        assert engine.has_stream("ethusdt@trade")
        stats = engine.statistics()
        assert (stats.gateways_interested, stats.streams_wanted) == (1, 1)
    finally:
        gateway.close()
        silent.close()
        engine.close()


def test_a_gateway_that_closes_withdraws_its_interest_at_once(
        redis_server: RedisServer) -> None:
    engine = RedisBus(redis_server.url)
    hub, ch = Hub(), Recorder()
    hub.add(ch)
    hub.add_user_stream(UserStream(ch), "alice")
    gateway = RedisBus(redis_server.url, gateway="g1")
    gateway.start_gateway(hub)
    try:
        wait_until(lambda: (engine.refresh_interest(), engine.has_user_stream("alice"))[1],
                   what="the interest")
        gateway.close()
        engine.refresh_interest()  # no wait for the expiry
        assert not engine.has_user_stream("alice")
        assert engine.statistics().gateways_interested == 0
    finally:
        gateway.close()
        engine.close()


def test_stream_and_user_events_are_written_once_each_and_counted(
        redis_server: RedisServer) -> None:
    engine = RedisBus(redis_server.url)
    try:
        for n in range(3):
            engine.publish_stream("btcusdt@trade", orjson.dumps({"t": n}), None)
        engine.to_user("alice", [b'{"e":"executionReport"}', b'{"e":"outboundAccountPosition"}'])
        stats = engine.statistics()
        assert (stats.stream_events, stats.user_events) == ({"trade": 3}, 2)
        info = engine._r.xinfo_stream(engine.key("streams"))
        assert info["length"] == 3
        # one entry per event: the stream's name and the engine's bytes
        [(_id, fields)] = engine._r.xrevrange(engine.key("streams"), count=1)
        assert fields[b"n"] == b"btcusdt@trade" and orjson.loads(fields[b"p"]) == {"t": 2}
    finally:
        engine.close()


def test_books_cross_redis_only_where_a_gateway_watches_them(
        redis_server: RedisServer) -> None:
    """A book nobody watches is kept fresh in the latest-book hash (for /depth)
    at most every LATEST_BOOK_EVERY_S and never written into the market stream;
    once a gateway announces a book subscriber, every change of it is."""
    engine = RedisBus(redis_server.url)
    hub, ch = Hub(), Recorder()
    hub.add(ch)
    gateway = RedisBus(redis_server.url, gateway="g1")
    market = engine.key("market")
    book = Outgoing(b'{"type":"BOOK_UPDATE"}', b"", "BTCUSDT")
    try:
        assert engine.book_subscriber_count("BTCUSDT") == 1  # never written yet
        engine.publish_book("BTCUSDT", book)
        assert engine.book_subscriber_count("BTCUSDT") == 0  # just written, unwatched
        assert engine._r.xlen(market) == 0
        assert engine._r.hget(engine.key("latestbook"), "BTCUSDT") == book.payload
        hub.subscribe_book(ch, "BTCUSDT")
        gateway.start_gateway(hub)
        wait_until(lambda: (engine.refresh_interest(),
                            engine.book_subscriber_count("BTCUSDT") == 1)[1],
                   what="the gateway's book interest")
        assert engine.statistics().books_wanted == 1
        assert engine.book_subscriber_count("ETHUSDT") == 1  # not written yet either
        for _ in range(3):
            engine.publish_book("BTCUSDT", book)
        assert engine._r.xlen(market) == 3
        assert engine.book_subscriber_count("BTCUSDT") == 1
    finally:
        gateway.close()
        engine.close()
