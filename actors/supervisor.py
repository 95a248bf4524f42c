"""Supervisor: starts the children in order, restarts failed ones with backoff.

Runs in its own pykka thread. pykka has no supervision, so every child is a
:class:`~actors.base.TickdeskActor` whose failure hook (called from the dying
child's thread, on a crash in a handler or in ``on_start``) tells this actor
:class:`ChildFailed`. The Supervisor then waits the delay of the pure
:class:`~engine.backoff.Backoff` policy (exponential, jittered, reset after
a stable period, escalation after too many restarts in a window) and starts
a new generation of the child into the same :class:`~actors.base.ActorSlot`,
so the rest of the system keeps addressing it. A restart never gives up: an
escalated child keeps being retried at the maximum delay.

Delays are waited by one ``threading.Timer`` per child at most (a bound:
a child has at most one pending restart). Status changes of the ``feed``
child are reported through ``on_feed_status`` (FEED_STATUS).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from actors.base import ActorSlot, FailureHook, TickdeskActor
from actors.messages import ChildFailed, RestartChild
from engine.backoff import Backoff, BackoffPolicy
from engine.clock import Clock

__all__ = ["AwaitStarted", "ChildSpec", "FeedStatusReport", "Supervisor"]

log = logging.getLogger("tickdesk.supervisor")

#: ``factory(failure_hook, generation)`` starts one child and returns its ref.
ChildFactory = Callable[[FailureHook, int], pykka.ActorRef[Any]]


@dataclass(frozen=True, slots=True)
class ChildSpec:
    name: str
    slot: ActorSlot
    factory: ChildFactory


@dataclass(frozen=True, slots=True)
class AwaitStarted:
    """Ask: answered once ``started()`` has started every child (their slots
    are set; each child's own start-up still runs in its thread, before its
    first message)."""


@dataclass(frozen=True, slots=True)
class FeedStatusReport:
    status: str  # UP | RECONNECTING | DOWN
    attempt: int
    retry_in_ms: int | None
    reason: str | None


class Supervisor(TickdeskActor):
    def __init__(
        self,
        children: list[ChildSpec],
        policy: BackoffPolicy,
        clock: Clock,
        *,
        on_feed_status: Callable[[FeedStatusReport], None] | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        super().__init__("supervisor")
        self._children = {c.name: c for c in children}
        self._order = [c.name for c in children]
        self._policy = policy
        self._clock = clock
        self._rand = rand
        self._on_feed_status = on_feed_status
        self._backoff = {c.name: Backoff(policy) for c in children}
        self._generation = dict.fromkeys(self._order, 0)
        self._timers: dict[str, threading.Timer] = {}
        self._stopping = False
        self.restarts: dict[str, int] = dict.fromkeys(self._order, 0)
        self.handlers = {ChildFailed: self._on_failed, RestartChild: self._on_restart,
                         AwaitStarted: lambda _msg: None}

    def started(self) -> None:
        for name in self._order:
            self._start_child(name)

    def cleanup(self) -> None:
        self._stopping = True
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        for name in reversed(self._order):
            spec = self._children[name]
            ref = spec.slot.ref
            spec.slot.set(None)
            if ref is not None:
                with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                    ref.stop(block=True, timeout=5.0)

    # -- internals ----------------------------------------------------------

    def _hook(self, name: str, generation: int, reason: str) -> None:
        ref = self.actor_ref
        try:
            ref.tell(ChildFailed(name, generation, reason))
        except pykka.ActorDeadError:
            pass  # shutting down

    def _start_child(self, name: str) -> None:
        spec = self._children[name]
        gen = self._generation[name]
        ref = spec.factory(self._hook, gen)
        spec.slot.set(ref)
        self._backoff[name].on_started(self._clock.monotonic())
        if name == "feed" and self._on_feed_status is not None:
            self._on_feed_status(FeedStatusReport("UP", 0, None, None))

    def _on_failed(self, msg: ChildFailed) -> None:
        if self._stopping or msg.generation != self._generation.get(msg.name):
            return
        spec = self._children[msg.name]
        spec.slot.set(None)
        decision = self._backoff[msg.name].on_failure(self._clock.monotonic(), self._rand())
        log.warning("%s %s; restart %d in %.2fs%s", msg.name, msg.reason, decision.attempt,
                    decision.delay_s, " (escalated)" if decision.escalate else "")
        if msg.name == "feed" and self._on_feed_status is not None:
            self._on_feed_status(FeedStatusReport(
                "DOWN" if decision.escalate else "RECONNECTING",
                decision.attempt, int(decision.delay_s * 1000), msg.reason))
        self._generation[msg.name] = msg.generation + 1
        me = self.actor_ref
        restart = RestartChild(msg.name, msg.generation + 1)

        def fire() -> None:
            with contextlib.suppress(pykka.ActorDeadError):
                me.tell(restart)

        old = self._timers.pop(msg.name, None)
        if old is not None:
            old.cancel()
        timer = threading.Timer(decision.delay_s, fire)
        timer.daemon = True
        self._timers[msg.name] = timer
        timer.start()

    def _on_restart(self, msg: RestartChild) -> None:
        if self._stopping or msg.generation != self._generation.get(msg.name):
            return
        self._timers.pop(msg.name, None)
        self.restarts[msg.name] += 1
        try:
            self._start_child(msg.name)
        except Exception as exc:  # the factory itself failed: treat as a failure
            self._on_failed(ChildFailed(msg.name, msg.generation, f"start failed: {exc!r}"))
