"""What ``/healthz`` says: the rules that turn the engine's state into reasons.

Pure core: no threads, clocks or I/O; times come in as monotonic seconds.
The Supervisor records each child's starts and failures
(:class:`ChildRecord`, kept by ``actors.supervisor.ChildBoard``); the Engine
reads them with the store's and the feed's state and asks :func:`assess` and
:func:`reasons`, from an HTTP handler thread.

Rules (``window_s`` is ``supervisor.restart_window_s``, ``stable_s`` is
``supervisor.reset_after_s``):

* A child is **stable** once it has run ``stable_s`` since its last start
  without failing again.
* A child is **crash-looping** while it has failed at least twice within the
  last ``window_s`` and is not stable: it is restarting more than once within
  the window.
* A child is **escalated** from a failure whose restart decision escalated
  (more than ``supervisor.max_restarts`` failures in the window) until it is
  stable.
* The feed is not judged by its restarts: they are its reconnects, and
  FEED_STATUS already says what they mean (``RECONNECTING`` is degraded but
  healthy, ``DOWN`` — the feed's escalation — is a reason).

Every reason is one line for people, e.g. ``order_monitor is crash-looping
(3 failures in 300 s; last: crashed: KeyError)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ActorHealth", "ChildRecord", "assess", "reasons"]

#: The child whose restarts are reconnects (judged by FEED_STATUS instead).
FEED_CHILD = "feed"


@dataclass(frozen=True, slots=True)
class ChildRecord:
    """What the Supervisor recorded of one child."""

    name: str
    #: Restarts so far (generations started after the first).
    restarts: int = 0
    #: Monotonic times of its failures, oldest first (only recent ones are kept).
    failures: tuple[float, ...] = ()
    #: Monotonic time of its last start; None while a restart is pending.
    last_started: float | None = None
    #: Whether the restart decision of its last failure escalated.
    escalated: bool = False
    last_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ActorHealth:
    name: str
    restarts: int
    recent_failures: int
    crash_looping: bool
    escalated: bool
    last_reason: str | None


def assess(record: ChildRecord, now_s: float, window_s: float, stable_s: float) -> ActorHealth:
    """Apply the rules of the module docstring to one child at ``now_s``."""
    recent = [t for t in record.failures if now_s - t < window_s]
    last_failure = record.failures[-1] if record.failures else None
    started = record.last_started
    stable = started is not None and (
        (last_failure is None or started >= last_failure) and now_s - started >= stable_s)
    return ActorHealth(
        name=record.name,
        restarts=record.restarts,
        recent_failures=len(recent),
        crash_looping=len(recent) >= 2 and not stable,
        escalated=record.escalated and not stable,
        last_reason=record.last_reason,
    )


def reasons(
    actors: Mapping[str, ActorHealth],
    feed: Mapping[str, object],
    store_writable: bool,
    store_error: str | None,
    window_s: float,
) -> list[str]:
    """Why the engine is unhealthy (empty: healthy). Order: feed, actors, store."""
    out: list[str] = []
    if feed.get("status") == "DOWN":
        why = feed.get("reason")
        out.append(f"feed is DOWN{f': {why}' if why else ''}")
    for name in sorted(actors):
        a = actors[name]
        if name == FEED_CHILD:
            continue
        last = f"; last: {a.last_reason}" if a.last_reason else ""
        if a.escalated:
            out.append(f"{name} is escalated ({a.recent_failures} failures in "
                       f"{window_s:g} s{last})")
        elif a.crash_looping:
            out.append(f"{name} is crash-looping ({a.recent_failures} failures in "
                       f"{window_s:g} s{last})")
    if not store_writable:
        out.append(f"store cannot write ({store_error or 'unknown error'})")
    return out
