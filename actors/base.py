"""What every tickdesk actor shares: dispatch by message type and failures that surface.

pykka has no supervision: an exception in a ``tell``
handler stops the actor and calls ``on_failure`` in its thread, while an
exception in ``on_start`` stops it with neither hook. :class:`TickdeskActor`
reports both to a failure callback (the Supervisor's), so no actor dies
silently. Exceptions in ``ask`` handlers go back to the asker and the actor
keeps running, as in pykka.

:class:`ActorSlot` is the stable address of a supervised actor: other actors
hold the slot, the Supervisor swaps the reference inside when it restarts
the child, and a message sent while the child is down is counted as dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import pykka

from engine.errors import StoreUnavailable, TickdeskError
from engine.stats import counter

__all__ = ["ActorSlot", "ExpectedFailure", "FailureHook", "GetStatistics", "SlotStatistics",
           "TickdeskActor"]

log = logging.getLogger("tickdesk.actors")


class ExpectedFailure(TickdeskError):
    """A failure an actor raises on purpose so that the Supervisor restarts it
    (an upstream lost, a stall). The actor logs its own one-line reason;
    pykka's ERROR traceback for it is filtered out, so a daemon that
    reconnects for months does not fill its log with stack traces."""


class _HideExpectedFailures(logging.Filter):
    """Drops pykka's tracebacks of :class:`ExpectedFailure` and of
    :class:`~engine.errors.StoreUnavailable` returned to an asker (the
    PortfolioActor logs the store failure itself, once)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ExpectedFailure | StoreUnavailable)


logging.getLogger("pykka").addFilter(_HideExpectedFailures())

#: ``hook(name, generation, reason)`` — called from the dying actor's thread.
FailureHook = Callable[[str, int, str], None]


@dataclass(frozen=True, slots=True)
class GetStatistics:
    """Ask any actor for its ``statistics()`` (None when it keeps none)."""


@dataclass(frozen=True, slots=True)
class SlotStatistics:
    """What an :class:`ActorSlot` counts (``/metrics``: ``tickdesk_actor_*{actor}``)."""

    messages_dropped: int = counter("Messages not delivered because the actor was down "
                                    "(between a failure and its restart).")


class TickdeskActor(pykka.ThreadingActor):
    """Base actor: ``handlers`` maps a message class to a bound method.

    The reason reported for a crash is ``"crashed: <ExceptionType>"`` (no
    exception text, which may hold anything), unless the exception carries a
    ``failure_reason`` string written for people (e.g. the feed's
    ``"upstream closed (1006)"``), which is then reported as is.
    """

    #: Actor threads are daemons so a bug can never keep the process alive;
    #: shutdown still stops every actor explicitly (``Engine.stop``).
    use_daemon_thread = True

    def __init__(self, name: str, on_failure: FailureHook | None = None,
                 generation: int = 0) -> None:
        super().__init__()
        self.name = name
        self.generation = generation
        self._failure_hook = on_failure
        self.handlers: dict[type, Callable[[Any], Any]] = {}

    def on_receive(self, message: Any) -> Any:
        handler = self.handlers.get(type(message))
        if handler is None:
            if isinstance(message, GetStatistics):
                return self.statistics()
            log.warning("%s: ignoring unexpected message %s", self.name, type(message).__name__)
            return None
        return handler(message)

    def on_start(self) -> None:
        try:
            self.started()
        except Exception as exc:
            self._report(f"start failed: {type(exc).__name__}")
            self._drain()
            raise

    def started(self) -> None:
        """Override instead of ``on_start`` (failures are reported)."""

    def statistics(self) -> object | None:
        """What this actor counts, as a frozen dataclass of
        :func:`engine.stats.counter`/:func:`~engine.stats.gauge` fields, or None.
        Runs on the actor's thread (asked with :class:`GetStatistics`); counts
        start again at 0 in a restarted generation."""
        return None

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cleanup()
        reason = getattr(exception_value, "failure_reason", None)
        if not isinstance(reason, str):
            name = exception_type.__name__ if exception_type else "failure"
            reason = f"crashed: {name}"
        self._report(reason)
        self._drain()

    def _drain(self) -> None:
        """Hand every ``tell`` message still in the mailbox of this failed
        actor to :meth:`orphaned` (pykka would drop them silently). ``ask``
        messages go back to the mailbox for pykka, which fails them with
        ``ActorDeadError`` (or answers a stop). Bounded by what the mailbox
        holds; a tell racing with the stop may still be dropped by pykka."""
        inbox = self.actor_inbox
        asks = []
        while not inbox.empty():  # this thread is the only consumer: get() cannot block
            envelope = inbox.get()
            if envelope.reply_to is not None:
                asks.append(envelope)
                continue
            try:
                self.orphaned(envelope.message)
            except Exception:
                log.exception("%s: answering an orphaned message failed", self.name)
        for envelope in asks:
            inbox.put(envelope)

    def orphaned(self, message: Any) -> None:
        """A ``tell`` message left in the mailbox when this actor failed; the
        default drops it. Actors that owe an answer (account commands)
        override this to give one."""

    def on_stop(self) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        """Release resources (threads, sockets); runs on stop and on failure."""

    def _report(self, reason: str) -> None:
        hook = self._failure_hook
        if hook is not None:
            try:
                hook(self.name, self.generation, reason)
            except Exception:
                log.exception("%s: failure hook failed", self.name)


class ActorSlot:
    """A stable, thread-safe address for an actor that may be restarted."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._ref: pykka.ActorRef[Any] | None = None
        self._lock = threading.Lock()
        self.dropped = 0

    def set(self, ref: pykka.ActorRef[Any] | None) -> None:
        with self._lock:
            self._ref = ref

    @property
    def ref(self) -> pykka.ActorRef[Any] | None:
        return self._ref

    def tell(self, message: Any) -> bool:
        """Send without waiting; False (and counted) when the actor is down."""
        ref = self._ref
        if ref is None:
            self.dropped += 1
            return False
        try:
            ref.tell(message)
            return True
        except pykka.ActorDeadError:
            self.dropped += 1
            return False

    def ask(self, message: Any, timeout: float = 5.0) -> Any:
        """Send and wait for the reply; raises ``pykka.ActorDeadError`` when down."""
        ref = self._ref
        if ref is None:
            raise pykka.ActorDeadError(f"{self.name} is not running")
        return ref.ask(message, timeout=timeout)

    def statistics(self) -> SlotStatistics:
        return SlotStatistics(self.dropped)

    def actor_statistics(self, timeout: float = 0.5) -> object | None:
        """The current actor's ``statistics()``; None when it is down, keeps
        none, or does not answer within ``timeout`` (a busy actor)."""
        try:
            stats: object | None = self.ask(GetStatistics(), timeout=timeout)
        except (pykka.ActorDeadError, pykka.Timeout):
            return None
        return stats

    def backlog(self) -> int:
        ref = self._ref
        if ref is None:
            return 0
        return int(ref.actor_inbox.qsize())  # type: ignore[attr-defined]
