"""TimerActor: sends a message to a target on fixed deadlines.

pykka has no timer (jodal/pykka#53), so the actor owns one small driver
thread that waits on an Event until the next deadline of
:func:`engine.schedule.next_deadline` and then ``tell``s the target. Missed
deadlines are skipped, never replayed (no catch-up storm), and while the
target's mailbox holds more than ``max_backlog`` messages a fire is skipped
rather than piling up work the target cannot do (overflow policy: drop the
fire, count it in ``skipped``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from actors.base import ActorSlot, FailureHook, TickdeskActor
from engine.clock import Clock
from engine.schedule import next_deadline
from engine.stats import counter

__all__ = ["TimerActor", "TimerStatistics"]


@dataclass(frozen=True, slots=True)
class TimerStatistics:
    """What a timer counts (``/metrics``: ``tickdesk_timer_*{timer}``)."""

    fired: int = counter("Timer messages sent to the target (since the timer last started).")
    skipped: int = counter("Timer fires skipped because the target's mailbox was behind.")


class TimerActor(TickdeskActor):
    def __init__(
        self,
        name: str,
        target: ActorSlot,
        message: Any,
        period_s: float,
        clock: Clock,
        *,
        max_backlog: int = 100,
        on_failure: FailureHook | None = None,
        generation: int = 0,
    ) -> None:
        super().__init__(name, on_failure, generation)
        self._target = target
        self._message = message
        self._period = period_s
        self._clock = clock
        self._max_backlog = max_backlog
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired = 0
        self.skipped = 0

    def statistics(self) -> TimerStatistics:
        return TimerStatistics(self.fired, self.skipped)

    def started(self) -> None:
        self._thread = threading.Thread(target=self._drive, name=f"{self.name}-driver",
                                        daemon=True)
        self._thread.start()

    def cleanup(self) -> None:
        self._halt.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=2.0)

    def _drive(self) -> None:
        anchor = self._clock.monotonic()
        deadline = anchor + self._period
        while not self._halt.is_set():
            delay = deadline - self._clock.monotonic()
            if delay > 0 and self._halt.wait(delay):
                return
            if self._target.backlog() > self._max_backlog:
                self.skipped += 1
            elif self._target.tell(self._message):
                self.fired += 1
            deadline = next_deadline(anchor, self._period, self._clock.monotonic())
