"""The Supervisor restarts crashed children with backoff and keeps their address."""

from __future__ import annotations

import threading
from typing import Any

import pykka

from actors.base import ActorSlot, FailureHook, TickdeskActor
from actors.supervisor import ChildSpec, FeedStatusReport, Supervisor
from engine.backoff import BackoffPolicy
from engine.clock import SystemClock
from tests.conftest import timeout, wait_until


class Boom:
    pass


class Fragile(TickdeskActor):
    starts: list[int] = []

    def __init__(self, hook: FailureHook, gen: int, fail_on_start: bool = False) -> None:
        super().__init__("feed", hook, gen)
        self.fail_on_start = fail_on_start
        self.handlers = {Boom: self._boom, str: self._echo}

    def started(self) -> None:
        Fragile.starts.append(self.generation)
        if self.fail_on_start:
            raise RuntimeError("cannot start")

    def _boom(self, _msg: Boom) -> None:
        raise RuntimeError("boom")

    def _echo(self, msg: str) -> str:
        return msg


def test_crashed_child_is_restarted_into_the_same_slot() -> None:
    Fragile.starts = []
    slot = ActorSlot("feed")
    reports: list[FeedStatusReport] = []
    done = threading.Event()

    def on_status(r: FeedStatusReport) -> None:
        reports.append(r)
        if len(reports) >= 3:
            done.set()

    def factory(hook: FailureHook, gen: int) -> pykka.ActorRef[Any]:
        return Fragile.start(hook, gen)

    policy = BackoffPolicy(min_s=0.01, max_s=0.05, factor=2, jitter=0, reset_after_s=60,
                           max_restarts=10, restart_window_s=60)
    sup = Supervisor.start([ChildSpec("feed", slot, factory)], policy, SystemClock(),
                           on_feed_status=on_status)
    try:
        wait_until(lambda: slot.ref is not None, what="first start")
        assert slot.ask("hello") == "hello"
        slot.tell(Boom())
        assert done.wait(timeout(5))
        assert [r.status for r in reports] == ["UP", "RECONNECTING", "UP"]
        assert reports[1].attempt == 1 and reports[1].retry_in_ms == 10
        wait_until(lambda: slot.ref is not None and slot.ref.is_alive(), what="restart")
        assert slot.ask("again") == "again"
        assert Fragile.starts == [0, 1]
    finally:
        sup.stop()


def test_failure_in_on_start_is_reported_and_retried() -> None:
    Fragile.starts = []
    slot = ActorSlot("feed")
    attempts = []

    def factory(hook: FailureHook, gen: int) -> pykka.ActorRef[Any]:
        attempts.append(gen)
        return Fragile.start(hook, gen, fail_on_start=gen < 2)

    policy = BackoffPolicy(min_s=0.01, max_s=0.02, factor=2, jitter=0, reset_after_s=60,
                           max_restarts=10, restart_window_s=60)
    sup = Supervisor.start([ChildSpec("feed", slot, factory)], policy, SystemClock())
    try:
        wait_until(lambda: len(attempts) >= 3 and slot.ref is not None and slot.ref.is_alive(),
                   what="third generation running")
        assert slot.ask("ok") == "ok"
        assert attempts[:3] == [0, 1, 2]
    finally:
        sup.stop()
