"""Periodic account updates reach every connection, and never interleave with a
large MARKET_UPDATE fan-out (they wait for its end, for a bounded time)."""

from __future__ import annotations

import threading

import pytest

import engine.server.hub as hub_module
from engine.protocol.frames import text_frame
from engine.protocol.server_messages import Outgoing
from engine.server.hub import PACE_CHUNK, PACE_MIN, Hub
from tests.conftest import timeout


class _Recorder:
    """A channel that records what it got; ``gate`` (if set) blocks its deliveries."""

    def __init__(self, conn_id: int, log: list[tuple[int, bytes]], lock: threading.Lock,
                 gate: threading.Event | None = None,
                 entered: threading.Event | None = None) -> None:
        self.conn_id = conn_id
        self._log = log
        self._lock = lock
        self._gate = gate
        self._entered = entered
        self.got: list[bytes] = []
        self.closed = False

    def deliver(self, out: Outgoing) -> None:
        if self._entered is not None:
            self._entered.set()
        if self._gate is not None:
            assert self._gate.wait(timeout(10))
        with self._lock:
            self.got.append(out.payload)
            self._log.append((self.conn_id, out.payload))

    def close(self, code: int, reason: str) -> None:
        self.closed = True


def _out(payload: bytes, key: str | None = None) -> Outgoing:
    return Outgoing(payload, text_frame(payload), key)


def test_a_periodic_update_reaches_every_connection_of_the_account() -> None:
    hub = Hub()
    log: list[tuple[int, bytes]] = []
    lock = threading.Lock()
    chans = [_Recorder(i, log, lock) for i in range(3 * PACE_CHUNK + 5)]
    other = _Recorder(10_000, log, lock)
    for ch in chans:
        hub.add(ch)
        hub.set_account(ch, "alice")
    hub.add(other)
    hub.set_account(other, "bob")
    hub.to_account_paced("alice", _out(b"POSITION_UPDATE"))
    assert all(ch.got == [b"POSITION_UPDATE"] for ch in chans)
    assert other.got == []


def test_a_periodic_update_waits_for_the_running_fan_out(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "PACE_WAIT_S", timeout(10))  # only the end releases it
    hub = Hub()
    log: list[tuple[int, bytes]] = []
    lock = threading.Lock()
    gate, entered = threading.Event(), threading.Event()
    # The first subscriber's delivery blocks: the fan-out is "running".
    slow = _Recorder(0, log, lock, gate=gate, entered=entered)
    subs = [slow] + [_Recorder(i, log, lock) for i in range(1, PACE_MIN + 10)]
    account = subs[1:]  # the blocked one is not the account's: only the wait can hold it
    for ch in subs:
        hub.add(ch)
        hub.subscribe(ch, "BTCUSDT")
    for ch in account:
        hub.set_account(ch, "alice")
    fan_out = threading.Thread(target=hub.publish, args=("BTCUSDT", _out(b"MARKET", "BTCUSDT")))
    fan_out.start()
    assert entered.wait(timeout(5))
    periodic = threading.Thread(target=hub.to_account_paced,
                                args=("alice", _out(b"POSITION_UPDATE")))
    periodic.start()
    periodic.join(0.2)
    with lock:
        assert not any(p == b"POSITION_UPDATE" for _c, p in log)  # held back
    gate.set()
    fan_out.join(timeout(5))
    periodic.join(timeout(5))
    assert not periodic.is_alive()
    with lock:
        first_periodic = next(i for i, (_c, p) in enumerate(log) if p == b"POSITION_UPDATE")
        # The tick reached every subscriber before any periodic update went out.
        assert all(p == b"MARKET" for _c, p in log[:first_periodic])
        assert len(log[:first_periodic]) == len(subs)
    assert all(ch.got == [b"MARKET", b"POSITION_UPDATE"] for ch in account)


def test_a_stuck_fan_out_delays_a_periodic_update_only_for_a_bounded_time() -> None:
    hub = Hub()
    log: list[tuple[int, bytes]] = []
    lock = threading.Lock()
    gate, entered = threading.Event(), threading.Event()
    stuck = _Recorder(0, log, lock, gate=gate, entered=entered)
    subs = [stuck] + [_Recorder(i, log, lock) for i in range(1, PACE_MIN)]
    for ch in subs:
        hub.add(ch)
        hub.subscribe(ch, "BTCUSDT")
    account = [_Recorder(1000 + i, log, lock) for i in range(2 * PACE_CHUNK)]
    for ch in account:
        hub.add(ch)
        hub.set_account(ch, "alice")
    fan_out = threading.Thread(target=hub.publish, args=("BTCUSDT", _out(b"MARKET", "BTCUSDT")))
    fan_out.start()
    try:
        assert entered.wait(timeout(5))
        periodic = threading.Thread(target=hub.to_account_paced,
                                    args=("alice", _out(b"POSITION_UPDATE")))
        periodic.start()
        periodic.join(timeout(10))
        assert not periodic.is_alive()  # it went out although the fan-out never ended
        assert all(ch.got == [b"POSITION_UPDATE"] for ch in account)
    finally:
        gate.set()
        fan_out.join(timeout(5))
