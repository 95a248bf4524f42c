"""The trade relay: the order monitor and the portfolio hear of a trade after its
MARKET_UPDATE fan-out, yet before any command a client sends in reaction to it.

The FeedActor runs with a real Hub and CommandDesks in front of recording
stand-ins for the two engine actors. Clients react to a MARKET_UPDATE by
submitting a command, from the fan-out thread itself (an embedded session's
callback) or from another thread while the fan-out is still writing to the
other subscribers; the recorders' order of arrival is what a real actor's
mailbox would hold. No timing is asserted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from actors.base import ActorSlot
from actors.command_desk import CommandDesk, Drain
from actors.feed import FeedActor
from actors.messages import AccountRequest, TradeTick
from actors.trade_relay import TradeRelay
from engine.clock import SystemClock
from engine.config import FeedConfig, SimulatedConfig
from engine.protocol.commands import OrdersQuery
from engine.protocol.enums import Action
from engine.protocol.server_messages import Outgoing
from engine.server.hub import Hub
from tests.conftest import timeout, wait_until
from tests.feeds.helpers import RecordingSlot
from tickdesk.bench import PRICE_BASE
from tickdesk.bench.servers import make_trade

SYMBOL = "BTCUSDT"


class _Client:
    """A subscriber that records its MARKET_UPDATEs and may react to one."""

    closed = False

    def __init__(self, conn_id: int, log: list[tuple[str, Any]], lock: threading.Lock,
                 react: Any = None) -> None:
        self.conn_id = conn_id
        self._log, self._lock, self._react = log, lock, react

    def deliver(self, out: Outgoing) -> None:
        if b'"MARKET_UPDATE"' not in out.payload:
            return
        with self._lock:
            self._log.append((f"client{self.conn_id}", out))
        if self._react is not None:
            self._react()

    def close(self, code: int, reason: str) -> None:
        pass


def _request(channel: Any) -> AccountRequest:
    return AccountRequest("default", channel, "r1", Action.GET_ORDERS, {}, OrdersQuery(False))


def _feed(hub: Hub, orders: ActorSlot, portfolio: ActorSlot, relay: TradeRelay) -> Any:
    # The slowest simulated pulse: the test's own trades are the only ones that matter.
    cfg = FeedConfig(symbols=(SYMBOL,), simulated=SimulatedConfig(ticks_per_second=0.01))
    return FeedActor.start(cfg, hub, orders, portfolio, SystemClock(), relay=relay)


def _clients_saw(log: list[tuple[str, Any]], k: int) -> list[int]:
    """Where in ``log`` a client received the MARKET_UPDATE of ``make_trade(k)``."""
    price = b'"price":%d.0,' % (PRICE_BASE + k)
    return [i for i, (w, m) in enumerate(log) if w.startswith("client") and price in m.payload]


def _first_trade_tick(log: list[tuple[str, Any]], who: str, trade_id: int) -> int:
    return next(i for i, (w, m) in enumerate(log)
                if w == who and isinstance(m, TradeTick) and m.trade.trade_id == trade_id)


def _route_one(world: _World, k: int,
               until: list[tuple[Callable[[list[tuple[str, Any]]], bool], str]],
               ) -> list[tuple[str, Any]]:
    """Start the FeedActor, tell it ``make_trade(k)``, wait for each of ``until``
    (a predicate on the log, and what it waits for), stop it; the log."""
    ref = _feed(world.hub, world.orders, world.portfolio, world.relay)
    try:
        ref.tell(TradeTick(make_trade(k), 0))
        for pred, what in until:
            wait_until(lambda p=pred: p(list(world.log)), seconds=10,  # type: ignore[misc]
                       what=what)
    finally:
        ref.stop(timeout=5)
    with world.lock:
        return list(world.log)


def _drained(log: list[tuple[str, Any]]) -> bool:
    return any(w == "orders" and isinstance(m, Drain) for w, m in log)


@dataclass
class _World:
    log: list[tuple[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    relay: TradeRelay = field(default_factory=TradeRelay)
    hub: Hub = field(default_factory=Hub)

    def __post_init__(self) -> None:
        self.orders = RecordingSlot("orders", self.log, self.lock)
        self.portfolio = RecordingSlot("portfolio", self.log, self.lock)
        self.desk = CommandDesk(self.orders, 8, lambda: 0, self.relay)

    def subscribe(self, clients: list[_Client]) -> None:
        for ch in clients:
            self.hub.add(ch)
            self.hub.subscribe(ch, SYMBOL)


@pytest.fixture
def world() -> _World:
    return _World()


def test_without_commands_the_engine_actors_hear_of_a_trade_after_every_client(
        world: _World) -> None:
    log, lock, relay = world.log, world.lock, world.relay
    world.subscribe([_Client(i, log, lock) for i in range(1, 6)])
    events = _route_one(world, 7_000, [(
        lambda lg: any(w == "portfolio" and isinstance(m, TradeTick)
                       and m.trade.trade_id == 7_000 for w, m in lg),
        "the trade told to the portfolio")])
    told = _first_trade_tick(events, "orders", 7_000)
    seen = _clients_saw(events, 7_000)
    assert len(seen) == 5
    assert max(seen) < told  # written to every client first: no actor woke during the fan-out
    assert told < _first_trade_tick(events, "portfolio", 7_000)
    assert not relay.holding


def test_a_command_sent_from_the_fan_out_thread_reaches_the_order_monitor_after_the_trade(
        world: _World) -> None:
    """An embedded session's callback runs in the feed's thread and may submit at once."""
    log, lock, desk = world.log, world.lock, world.desk
    reacted = threading.Event()

    def react() -> None:
        if not reacted.is_set() and _clients_saw(list(log), 7_001):
            reacted.set()
            assert desk.submit(_request(first))

    first = _Client(1, log, lock, react)
    world.subscribe([first, *(_Client(i, log, lock) for i in range(2, 6))])
    events = _route_one(world, 7_001, [
        (_drained, "the command's Drain"),
        (lambda lg: len(_clients_saw(lg, 7_001)) == 5, "the fan-out's end")])
    told = _first_trade_tick(events, "orders", 7_001)
    drain = next(i for i, (w, m) in enumerate(events) if w == "orders" and isinstance(m, Drain))
    assert told < drain
    # The trade went out early (the command asked for it), before the last clients saw it.
    assert told < max(_clients_saw(events, 7_001))
    assert sum(1 for w, m in events if w == "orders" and isinstance(m, TradeTick)
               and m.trade.trade_id == 7_001) == 1  # told exactly once


def test_a_command_from_another_thread_during_the_fan_out_reaches_it_after_the_trade(
        world: _World) -> None:
    """A connection's thread submits while the fan-out still writes to later clients."""
    log, lock, desk = world.log, world.lock, world.desk
    saw, submitted = threading.Event(), threading.Event()

    def hold_fan_out() -> None:
        # The later subscribers' writes wait until the other thread submitted.
        if not _clients_saw(list(log), 7_002) or saw.is_set():
            return
        saw.set()
        assert submitted.wait(timeout(10))

    first = _Client(1, log, lock, hold_fan_out)
    world.subscribe([first, *(_Client(i, log, lock) for i in range(2, 6))])
    results: list[bool] = []

    def connection_thread() -> None:
        assert saw.wait(timeout(10))
        results.append(desk.submit(_request(first)))
        submitted.set()

    t = threading.Thread(target=connection_thread, daemon=True)
    t.start()
    events = _route_one(world, 7_002, [
        (lambda lg: len(_clients_saw(lg, 7_002)) == 5, "the fan-out's end"),
        (_drained, "the command's Drain")])
    t.join(timeout(10))
    assert results == [True]
    told = _first_trade_tick(events, "orders", 7_002)
    drain = next(i for i, (w, m) in enumerate(events) if w == "orders" and isinstance(m, Drain))
    assert told < drain
    assert _first_trade_tick(events, "portfolio", 7_002) < drain


def test_flush_runs_the_held_tells_once_and_hold_flushes_the_previous_trade() -> None:
    relay = TradeRelay()
    told: list[str] = []
    relay.flush()  # nothing held: nothing happens
    relay.hold(lambda: told.append("a"))
    assert relay.holding and told == []
    relay.hold(lambda: told.append("b"))  # a new trade: the previous one is told first
    assert told == ["a"]
    relay.flush()
    relay.flush()
    assert told == ["a", "b"] and not relay.holding


def test_a_flush_returns_only_once_the_tells_another_thread_runs_are_done() -> None:
    relay = TradeRelay()
    inside, finish = threading.Event(), threading.Event()
    done: list[str] = []

    def slow_tell() -> None:
        inside.set()
        assert finish.wait(timeout(10))
        done.append("told")

    relay.hold(slow_tell)
    runner = threading.Thread(target=relay.flush, daemon=True)
    runner.start()
    assert inside.wait(timeout(10))
    returned = threading.Event()

    def second() -> None:
        relay.flush()
        returned.set()

    t = threading.Thread(target=second, daemon=True)
    t.start()
    # The second flush cannot return while the tells are under way in the runner.
    assert not returned.wait(0.2)
    finish.set()
    assert returned.wait(timeout(10))
    runner.join(timeout(10))
    assert done == ["told"]


def test_a_tell_that_raises_is_not_held_again() -> None:
    relay = TradeRelay()

    def broken() -> None:
        raise RuntimeError("boom")

    relay.hold(broken)
    with pytest.raises(RuntimeError):
        relay.flush()
    assert not relay.holding
    relay.flush()  # nothing left to run
