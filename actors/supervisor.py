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
child are reported through ``on_feed_status`` (FEED_STATUS):

* ``UP`` when the child is serving. A child whose spec says
  ``up_on_start`` (the simulated and replay feeds) is up as soon as it has
  started. Otherwise (the Binance feed) the child reports it itself, through
  ``link.up(name, generation)``, once its upstream connection is open; until
  then the status stays what it was (``RECONNECTING``; on the very first
  start ``RECONNECTING`` attempt 0, reason ``connecting``).
* ``RECONNECTING`` with ``attempt`` and ``retryInMs`` when it failed and a
  restart is scheduled.
* ``DOWN`` when the restart budget is exhausted (escalation); restarts
  continue at the maximum delay and the next ``UP`` clears it.

Reports of an older generation (a child already replaced) are ignored.

Every start, failure and restart is also recorded in a :class:`ChildBoard`
(thread-safe; the Engine's, read by ``/healthz`` and ``/metrics`` through
:mod:`engine.health`), so crash loops and escalations are visible from
outside the actor tree.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pykka

from actors.base import ActorSlot, TickdeskActor
from actors.messages import ChildFailed, ChildUp, RestartChild
from engine.backoff import Backoff, BackoffPolicy
from engine.clock import Clock
from engine.health import ChildRecord
from engine.stats import counter

__all__ = ["AwaitStarted", "ChildBoard", "ChildSpec", "ChildStatistics", "FeedStatusReport",
           "Supervisor", "SupervisorLink", "SupervisorStatistics"]

log = logging.getLogger("tickdesk.supervisor")


@dataclass(frozen=True, slots=True)
class ChildStatistics:
    """What the :class:`ChildBoard` counts (``/metrics``: ``tickdesk_actor_restarts``)."""

    restarts: Mapping[str, int] = counter("Restarts of each supervised actor.", label="actor")


class ChildBoard:
    """Each child's starts, failures and restarts (thread-safe: the Supervisor
    writes from its thread, ``/healthz`` and ``/metrics`` read from HTTP
    threads). Keeps the last ``max_failures`` failure times per child (a bound)."""

    def __init__(self, max_failures: int = 100) -> None:
        self._lock = threading.Lock()
        self._max = max_failures
        self._restarts: dict[str, int] = {}
        self._failures: dict[str, deque[float]] = {}
        self._started: dict[str, float | None] = {}
        self._escalated: dict[str, bool] = {}
        self._reason: dict[str, str | None] = {}

    def _add(self, name: str) -> None:
        if name not in self._failures:
            self._restarts[name] = 0
            self._failures[name] = deque(maxlen=self._max)
            self._started[name] = None
            self._escalated[name] = False
            self._reason[name] = None

    def started(self, name: str, now_s: float, restart: bool) -> None:
        with self._lock:
            self._add(name)
            self._started[name] = now_s
            if restart:
                self._restarts[name] += 1

    def failed(self, name: str, now_s: float, reason: str, escalated: bool) -> None:
        with self._lock:
            self._add(name)
            self._failures[name].append(now_s)
            self._started[name] = None
            self._escalated[name] = escalated
            self._reason[name] = reason

    def statistics(self) -> ChildStatistics:
        with self._lock:
            return ChildStatistics(dict(self._restarts))

    def records(self) -> tuple[ChildRecord, ...]:
        with self._lock:
            return tuple(
                ChildRecord(name, self._restarts[name], tuple(self._failures[name]),
                            self._started[name], self._escalated[name], self._reason[name])
                for name in self._failures)


class SupervisorLink(Protocol):
    """What a child gets from its Supervisor (thread-safe, never blocks).

    Calling it is the :data:`~actors.base.FailureHook` (``link(name,
    generation, reason)``); ``link.up(name, generation)`` says the child is
    really serving (used by children whose spec is not ``up_on_start``).
    """

    def __call__(self, name: str, generation: int, reason: str) -> None: ...

    def up(self, name: str, generation: int) -> None: ...


#: ``factory(link, generation)`` starts one child and returns its ref; pass
#: ``link`` as the child's failure hook.
ChildFactory = Callable[[SupervisorLink, int], pykka.ActorRef[Any]]


@dataclass(frozen=True, slots=True)
class ChildSpec:
    name: str
    slot: ActorSlot
    factory: ChildFactory
    #: True: the child counts as up once started. False: it calls ``link.up``.
    up_on_start: bool = True


class _Link:
    """The :class:`SupervisorLink` of one Supervisor: turns calls into messages."""

    def __init__(self, ref: pykka.ActorRef[Any]) -> None:
        self._ref = ref

    def __call__(self, name: str, generation: int, reason: str) -> None:
        with contextlib.suppress(pykka.ActorDeadError):  # shutting down
            self._ref.tell(ChildFailed(name, generation, reason))

    def up(self, name: str, generation: int) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self._ref.tell(ChildUp(name, generation))


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


@dataclass(frozen=True, slots=True)
class SupervisorStatistics:
    """What the Supervisor counts (``/metrics``: ``tickdesk_supervisor_*``)."""

    restarts: Mapping[str, int] = counter("Restarts of each supervised child.", label="child")


class Supervisor(TickdeskActor):
    def __init__(
        self,
        children: list[ChildSpec],
        policy: BackoffPolicy,
        clock: Clock,
        *,
        on_feed_status: Callable[[FeedStatusReport], None] | None = None,
        rand: Callable[[], float] = random.random,
        board: ChildBoard | None = None,
    ) -> None:
        super().__init__("supervisor")
        self.board = board if board is not None else ChildBoard()
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
        self._link: _Link | None = None
        self.handlers = {ChildFailed: self._on_failed, RestartChild: self._on_restart,
                         ChildUp: self._on_up, AwaitStarted: lambda _msg: None}

    def statistics(self) -> SupervisorStatistics:
        return SupervisorStatistics(dict(self.restarts))

    def started(self) -> None:
        self._link = _Link(self.actor_ref)
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

    def _start_child(self, name: str) -> None:
        spec = self._children[name]
        gen = self._generation[name]
        assert self._link is not None
        if not spec.up_on_start and gen == 0:
            self._feed_status(name, FeedStatusReport("RECONNECTING", 0, 0, "connecting"))
        ref = spec.factory(self._link, gen)
        spec.slot.set(ref)
        now = self._clock.monotonic()
        self._backoff[name].on_started(now)
        self.board.started(name, now, restart=gen > 0)
        if spec.up_on_start:
            self._feed_status(name, FeedStatusReport("UP", 0, None, None))

    def _feed_status(self, name: str, report: FeedStatusReport) -> None:
        if name == "feed" and self._on_feed_status is not None:
            self._on_feed_status(report)

    def _on_up(self, msg: ChildUp) -> None:
        if self._stopping or msg.generation != self._generation.get(msg.name):
            return
        if msg.name in self._timers:  # failed already, a restart is pending
            return
        self._feed_status(msg.name, FeedStatusReport("UP", 0, None, None))

    def _on_failed(self, msg: ChildFailed) -> None:
        if self._stopping or msg.generation != self._generation.get(msg.name):
            return
        spec = self._children[msg.name]
        old = spec.slot.ref
        spec.slot.set(None)
        if old is not None and old.is_alive():
            # A child may report a failure and still be running (a source that
            # lost its upstream): never leave two generations alive.
            with contextlib.suppress(pykka.ActorDeadError):
                old.stop(block=False)
        now = self._clock.monotonic()
        decision = self._backoff[msg.name].on_failure(now, self._rand())
        self.board.failed(msg.name, now, msg.reason, decision.escalate)
        log.warning("%s %s; restart %d in %.2fs%s", msg.name, msg.reason, decision.attempt,
                    decision.delay_s, " (escalated)" if decision.escalate else "")
        self._feed_status(msg.name, FeedStatusReport(
            "DOWN" if decision.escalate else "RECONNECTING",
            decision.attempt, int(decision.delay_s * 1000), msg.reason))
        self._generation[msg.name] = msg.generation + 1
        me = self.actor_ref
        restart = RestartChild(msg.name, msg.generation + 1)

        def fire() -> None:
            with contextlib.suppress(pykka.ActorDeadError):
                me.tell(restart)

        pending = self._timers.pop(msg.name, None)
        if pending is not None:
            pending.cancel()
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
