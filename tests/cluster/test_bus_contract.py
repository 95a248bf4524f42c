"""The bus contract (engine/server/bus.py), the same tests on both buses:
the in-process one (one object, the hub's channels) and the Redis Streams one
(an engine-side and a gateway-side RedisBus on a real redis-server).

What a client would notice: the bytes it receives, to which connections,
in which order, with which ``seq``; that a command reaches the engine and its
one answer comes back to the connection that sent it; what a resume returns;
that a market query (klines, recent trades) gets the engine's own values, and
an engine that cannot answer a typed error within the timeout, not a hang.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
import pytest

from engine.errors import EngineUnavailable, QueriesBusy
from engine.market.klines import Kline, KlineQuery
from engine.market.recent_trades import RecentTrade, TradesQuery
from engine.protocol.enums import Action
from engine.protocol.frames import text_frame
from engine.protocol.server_messages import Outgoing
from engine.server.bus import AccountRequest, Bus, InProcessBus
from engine.server.hub import Hub, UserStream
from engine.server.redis_bus import RedisBus
from tests.cluster.redis_server import RedisServer
from tests.conftest import timeout, wait_until


def message(mtype: str, conflate: str | None = None, **fields: Any) -> Outgoing:
    payload = orjson.dumps({"type": mtype, **fields, "timestamp": 1})
    return Outgoing(payload, text_frame(payload), conflate)


class Recorder:
    """A client's channel: what it received, in order."""

    _ids = iter(range(1, 1_000_000))

    def __init__(self) -> None:
        self.conn_id = next(self._ids)
        self.closed = False
        self._lock = threading.Lock()
        self.got: list[Outgoing] = []

    def deliver(self, out: Outgoing) -> None:
        with self._lock:
            self.got.append(out)

    def close(self, code: int, reason: str) -> None:
        self.closed = True

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [orjson.loads(o.payload) for o in self.got]


BARS = [Kline("BTCUSDT", "1m", 60_000 * n, 60_000 * n + 59_999, Decimal("100.10"),
              Decimal("101"), Decimal("99.5"), Decimal("100.25"), Decimal("0.00100000"),
              Decimal("0.1002500"), n) for n in range(3)]
TRADES = [RecentTrade(7, Decimal("100.10"), Decimal("0.5"), 1_000, True),
          RecentTrade(8, Decimal("100.20"), Decimal("1.25"), 2_000, False)]


class FakeAnswers:
    """The engine's actors, as the bus's MarketAnswers: records the queries;
    ``stuck`` makes them not answer (as an actor that is restarting)."""

    def __init__(self) -> None:
        self.queries: list[object] = []
        self.stuck = threading.Event()
        self.release = threading.Event()
        #: while stuck, hold each query this long (None: the asker's timeout)
        self.hold_s: float | None = None

    def _wait(self, query: object, timeout_s: float) -> None:
        self.queries.append(query)
        hold = timeout_s if self.hold_s is None else self.hold_s
        if self.stuck.is_set() and not self.release.wait(hold):
            raise EngineUnavailable("the portfolio did not answer")

    def klines(self, query: KlineQuery, timeout_s: float) -> list[Kline]:
        self._wait(query, timeout_s)
        return [b for b in BARS if b.symbol == query.symbol][-query.limit:]

    def recent_trades(self, query: TradesQuery, timeout_s: float) -> list[RecentTrade]:
        self._wait(query, timeout_s)
        return list(TRADES)


@dataclass
class Pair:
    """The engine's side and a gateway's side of one bus (the same object in one process)."""

    engine: Bus
    gateway: Bus
    hub: Hub
    commands: list[AccountRequest] = field(default_factory=list)
    answer: Callable[[AccountRequest], None] | None = None
    answers: FakeAnswers = field(default_factory=FakeAnswers)

    def route(self, req: AccountRequest) -> bool:
        self.commands.append(req)
        if self.answer is not None:
            self.answer(req)
        return True

    def connect(self, account: str | None = None) -> Recorder:
        ch = Recorder()
        self.hub.add(ch)
        if account is not None:
            self.hub.set_account(ch, account)
        return ch


def _local() -> Iterator[Pair]:
    hub = Hub()
    holder: list[Pair] = []
    answers = FakeAnswers()
    bus = InProcessBus(hub, lambda req: holder[0].route(req), answers=answers)
    pair = Pair(bus, bus, hub, answers=answers)
    holder.append(pair)
    yield pair


def _redis(server: RedisServer) -> Iterator[Pair]:
    hub = Hub()
    engine = RedisBus(server.url, accounts=("alice", "bob"))
    gateway = RedisBus(server.url, accounts=("alice", "bob"), gateway="g1")
    pair = Pair(engine, gateway, hub)
    gateway.start_gateway(hub)
    engine.start_engine(pair.route, pair.answers)
    try:
        yield pair
    finally:
        pair.answers.release.set()
        gateway.close()
        engine.close()


@pytest.fixture(params=["in-process", "redis"])
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    if request.param == "in-process":
        yield from _local()
    else:
        yield from _redis(request.getfixturevalue("redis_server"))


def test_a_market_frame_reaches_each_subscriber_with_the_engines_bytes(pair: Pair) -> None:
    watcher, other = pair.connect(), pair.connect()
    pair.hub.subscribe(watcher, "BTCUSDT")
    pair.hub.subscribe(other, "ETHUSDT")
    ticks = [message("MARKET_UPDATE", "BTCUSDT", symbol="BTCUSDT", price=p) for p in (1, 2, 3)]
    for out in ticks:
        pair.engine.publish("BTCUSDT", out)
    wait_until(lambda: len(watcher.got) == 3, what="three ticks")
    assert [o.payload for o in watcher.got] == [o.payload for o in ticks]
    assert [o.frame for o in watcher.got] == [o.frame for o in ticks]
    assert {o.conflate_key for o in watcher.got} == {"BTCUSDT"}  # still conflated when slow
    book = message("BOOK_UPDATE", symbol="ETHUSDT")
    pair.hub.subscribe_book(other, "ETHUSDT")
    wait_until(lambda: pair.engine.watches_book("ETHUSDT"), what="the book interest")
    pair.engine.publish_book("ETHUSDT", book)
    wait_until(lambda: len(other.got) == 1, what="the book")
    assert other.got[0].payload == book.payload
    assert len(watcher.got) == 3


def test_account_events_are_numbered_and_reach_every_connection_of_the_account(
        pair: Pair) -> None:
    a1, a2, bob = pair.connect("alice"), pair.connect("alice"), pair.connect("bob")
    for n in range(3):
        pair.engine.to_account("alice", message("ORDER_UPDATE", orderId=n))
    pair.engine.to_account("bob", message("ORDER_UPDATE", orderId=9))
    wait_until(lambda: len(a1.got) == 3 and len(a2.got) == 3 and len(bob.got) == 1,
               what="the events")
    for ch in (a1, a2):
        assert [(m["orderId"], m["seq"]) for m in ch.messages()] == [(0, 1), (1, 2), (2, 3)]
    assert [(m["orderId"], m["seq"]) for m in bob.messages()] == [(9, 1)]  # per account


def test_the_issuer_gets_its_events_with_its_id_and_the_same_seq(pair: Pair) -> None:
    issuer, watcher = pair.connect("alice"), pair.connect("alice")

    def answer(req: AccountRequest) -> None:
        # what the OrderMonitorActor does: the account's event, the issuer's with its id
        pair.engine.to_account(req.account, message("ORDER_UPDATE", orderId=1), req.channel,
                               message("ORDER_UPDATE", orderId=1, id=req.request_id))

    pair.answer = answer
    body = {"action": "get_orders", "id": "q1"}
    assert pair.gateway.submit(AccountRequest("alice", issuer, "q1", Action.GET_ORDERS, body))
    wait_until(lambda: len(issuer.got) == 1 and len(watcher.got) == 1, what="the event")
    assert issuer.messages() == [{"type": "ORDER_UPDATE", "orderId": 1, "id": "q1",
                                  "timestamp": 1, "seq": 1}]
    assert watcher.messages() == [{"type": "ORDER_UPDATE", "orderId": 1, "timestamp": 1,
                                   "seq": 1}]


def test_a_command_reaches_the_engine_and_its_one_answer_reaches_the_sender(pair: Pair) -> None:
    sender, bystander = pair.connect("alice"), pair.connect("alice")
    pair.answer = lambda req: req.channel.deliver(message("ORDERS", id=req.request_id))
    body = {"action": "get_orders", "status": "all", "id": 7}
    assert pair.gateway.submit(AccountRequest("alice", sender, 7, Action.GET_ORDERS, body))
    wait_until(lambda: len(sender.got) == 1, what="the answer")
    assert sender.messages() == [{"type": "ORDERS", "id": 7, "timestamp": 1}]
    [req] = pair.commands
    assert (req.account, req.action, req.request_id, req.body) == ("alice", Action.GET_ORDERS, 7,
                                                                   body)
    assert req.args == pair.commands[0].args
    assert bystander.got == []


def test_periodic_updates_and_broadcasts(pair: Pair) -> None:
    alice, bob, anonymous = pair.connect("alice"), pair.connect("bob"), pair.connect()
    assert set(pair.engine.accounts()) >= {"alice", "bob"}
    pair.engine.to_account_now("alice", message("POSITION_UPDATE"))
    pair.engine.broadcast(message("FEED_STATUS"))
    wait_until(lambda: len(alice.got) == 2 and len(bob.got) == 1 and len(anonymous.got) == 1,
               what="the updates")
    assert [m["type"] for m in alice.messages()] == ["POSITION_UPDATE", "FEED_STATUS"]
    assert "seq" not in alice.messages()[0]  # periodic: not an account event
    assert [m["type"] for m in bob.messages()] == ["FEED_STATUS"]


def test_resume_returns_what_was_missed_in_order(pair: Pair) -> None:
    seqs = [pair.engine.to_account("alice", message("ORDER_UPDATE", orderId=n))
            for n in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    epoch = pair.gateway.epoch
    got = pair.gateway.resume("alice", epoch, 2)
    assert got.recovered
    assert [orjson.loads(p)["orderId"] for p in got.events] == [2, 3, 4]
    assert pair.gateway.resume("alice", epoch, 5).recovered  # nothing missed
    assert pair.gateway.resume("alice", epoch, 5).events == ()
    assert not pair.gateway.resume("alice", "another-epoch", 2).recovered
    assert not pair.gateway.resume("alice", epoch, 6).recovered  # ahead: another history
    assert pair.gateway.resume("nobody", epoch, 0).recovered


def test_a_resume_past_the_kept_history_is_not_recovered(pair: Pair) -> None:
    cap = pair.engine.history if isinstance(pair.engine, RedisBus) else 1000
    for n in range(cap + 5):
        pair.engine.to_account("alice", message("ORDER_UPDATE", orderId=n))
    epoch = pair.gateway.epoch
    assert not pair.gateway.resume("alice", epoch, 1).recovered
    recent = pair.gateway.resume("alice", epoch, cap)
    assert recent.recovered
    assert [orjson.loads(p)["seq"] for p in recent.events] == list(range(cap + 1, cap + 6))


# -- Binance streams -------------------------------------------------------------


def _stream_payload(trade_id: int) -> bytes:
    return orjson.dumps({"e": "trade", "s": "BTCUSDT", "t": trade_id, "p": "1.5"})


def test_a_binance_stream_event_reaches_raw_and_combined_subscribers_once_each(
        pair: Pair) -> None:
    raw, combined, other = pair.connect(), pair.connect(), pair.connect()
    pair.hub.subscribe_stream(raw, "btcusdt@trade", "BTCUSDT", combined=False)
    pair.hub.subscribe_stream(combined, "btcusdt@trade", "BTCUSDT", combined=True)
    pair.hub.subscribe_stream(other, "ethusdt@trade", "ETHUSDT", combined=False)
    wait_until(lambda: pair.engine.has_stream("btcusdt@trade"), what="the interest")
    assert not pair.engine.has_stream("btcusdt@aggTrade")  # nobody watches it
    payloads = [_stream_payload(n) for n in (1, 2, 3)]
    for p in payloads:
        pair.engine.publish_stream("btcusdt@trade", p, None)
    pair.engine.publish_stream("btcusdt@bookTicker", b'{"u":1}', "btcusdt@bookTicker")
    wait_until(lambda: len(raw.got) == 3 and len(combined.got) == 3, what="three events")
    assert [o.payload for o in raw.got] == payloads  # the engine's bytes, unchanged
    assert [o.frame for o in raw.got] == [text_frame(p) for p in payloads]
    assert combined.messages() == [{"stream": "btcusdt@trade", "data": orjson.loads(p)}
                                   for p in payloads]
    assert {o.conflate_key for o in raw.got + combined.got} == {None}  # trades: every one
    assert other.got == []


def test_a_conflated_stream_keeps_its_key_per_wrapping(pair: Pair) -> None:
    raw, combined = pair.connect(), pair.connect()
    name = "btcusdt@bookTicker"
    pair.hub.subscribe_stream(raw, name, "BTCUSDT", combined=False)
    pair.hub.subscribe_stream(combined, name, "BTCUSDT", combined=True)
    wait_until(lambda: pair.engine.has_stream(name), what="the interest")
    pair.engine.publish_stream(name, b'{"u":7}', name)
    wait_until(lambda: len(raw.got) == 1 and len(combined.got) == 1, what="the event")
    assert raw.got[0].conflate_key == name
    assert combined.got[0].conflate_key == f"c:{name}"  # a wrapping of its own


def test_user_data_events_reach_every_user_stream_of_the_account_in_order(
        pair: Pair) -> None:
    raw, combined, api, bob = pair.connect(), pair.connect(), pair.connect(), pair.connect()
    pair.hub.add_user_stream(UserStream(raw), "alice")
    pair.hub.add_user_stream(UserStream(combined, stream="KEY"), "alice")
    pair.hub.add_user_stream(UserStream(api, subscription_id=3), "alice")
    pair.hub.add_user_stream(UserStream(bob), "bob")
    wait_until(lambda: pair.engine.has_user_stream("alice")
               and pair.engine.has_user_stream("bob"), what="the interest")
    assert not pair.engine.has_user_stream("carol")
    events = [orjson.dumps({"e": "executionReport", "i": n}) for n in range(4)]
    pair.engine.to_user("alice", events[:3])
    pair.engine.to_user("alice", events[3:])
    wait_until(lambda: all(len(c.got) == 4 for c in (raw, combined, api)), what="the events")
    assert [o.payload for o in raw.got] == events  # in order, each once
    assert combined.messages() == [{"stream": "KEY", "data": orjson.loads(e)} for e in events]
    assert api.messages() == [{"subscriptionId": 3, "event": orjson.loads(e)} for e in events]
    assert bob.got == []


def test_interest_goes_with_the_last_subscriber(pair: Pair) -> None:
    ch = pair.connect()
    pair.hub.subscribe_stream(ch, "btcusdt@kline_1m", "BTCUSDT", combined=False)
    pair.hub.add_user_stream(UserStream(ch), "alice")
    wait_until(lambda: pair.engine.has_stream("btcusdt@kline_1m")
               and pair.engine.has_user_stream("alice"), what="the interest")
    pair.hub.remove(ch)
    wait_until(lambda: not pair.engine.has_stream("btcusdt@kline_1m")
               and not pair.engine.has_user_stream("alice"), what="the interest withdrawn")
def test_a_klines_query_gets_the_engines_bars_exactly(pair: Pair) -> None:
    query = KlineQuery.checked("BTCUSDT", "1m", None, None, 2)
    got = pair.gateway.klines(query, timeout(5))
    assert got == BARS[-2:]
    assert [str(b.volume) for b in got] == ["0.00100000", "0.00100000"]  # digits kept
    assert pair.answers.queries == [query]


def test_a_trades_query_gets_the_engines_trades(pair: Pair) -> None:
    query = TradesQuery("BTCUSDT", 10, from_id=7, start_ms=None, end_ms=5_000)
    assert pair.gateway.recent_trades(query, timeout(5)) == TRADES
    assert pair.answers.queries == [query]


def test_an_engine_that_does_not_answer_is_a_typed_error_not_a_hang(pair: Pair) -> None:
    pair.answers.stuck.set()
    with pytest.raises(EngineUnavailable):
        pair.gateway.klines(KlineQuery.checked("BTCUSDT", "1m"), 0.3)
    with pytest.raises(EngineUnavailable):
        pair.gateway.recent_trades(TradesQuery("BTCUSDT", 5), 0.3)
    pair.answers.stuck.clear()  # and once it answers again, so do the queries
    assert pair.gateway.klines(KlineQuery.checked("BTCUSDT", "1m"), timeout(5)) == BARS


def test_no_engine_running_is_a_typed_error(redis_server: RedisServer) -> None:
    gateway = RedisBus(redis_server.url, gateway="lonely")
    gateway.start_gateway(Hub())
    try:
        with pytest.raises(EngineUnavailable):
            gateway.klines(KlineQuery.checked("BTCUSDT", "1m"), 0.3)
    finally:
        gateway.close()
    local = InProcessBus(Hub(), lambda _req: False)  # a process without an engine
    with pytest.raises(EngineUnavailable):
        local.klines(KlineQuery.checked("BTCUSDT", "1m"), 0.3)


def test_a_gateway_bounds_its_queries_in_flight(redis_server: RedisServer) -> None:
    answers = FakeAnswers()
    answers.stuck.set()
    answers.hold_s = timeout(10)  # until released, whatever the engine's own cap
    engine = RedisBus(redis_server.url)
    gateway = RedisBus(redis_server.url, gateway="g1", max_queries=2)
    gateway.start_gateway(Hub())
    engine.start_engine(lambda _req: True, answers)
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            gateway.klines(KlineQuery.checked("BTCUSDT", "1m"), timeout(10))
        except BaseException as exc:  # recorded: checked below
            errors.append(exc)

    askers = [threading.Thread(target=ask) for _ in range(2)]
    try:
        for t in askers:
            t.start()
        wait_until(lambda: len(answers.queries) >= 1 and len(gateway._queries) == 2,
                   what="two queries in flight")
        with pytest.raises(QueriesBusy):  # the third is refused at once, not sent
            gateway.recent_trades(TradesQuery("BTCUSDT", 5), timeout(10))
        answers.release.set()
        for t in askers:
            t.join(timeout(10))
        assert errors == []
        assert gateway.klines(KlineQuery.checked("BTCUSDT", "1m"), timeout(5)) == BARS
    finally:
        answers.release.set()
        gateway.close()
        engine.close()
