"""The frame gate: which of a connection's data frames reach its actor.

Pure core: no clock and no I/O of its own (every call takes the monotonic
time; the account budget is a callable, in the server the thread-safe
:class:`~engine.server.limits.SharedBudgets`). One :class:`FrameGate` per
WebSocket connection of our protocol; the I/O thread asks it about every
complete data frame before anything is told to the connection's actor, so a
refused frame never wakes that actor (docs/security.md, "Rate limiting"):

1. A connection the gate has closed drops every later frame (``DROP``): the
   commands an abusive client has already sent are ignored.
2. Every frame takes a token of the connection's :class:`~engine.rate_limit.RateLimiter`
   (``server.rate_limit_per_s`` / ``rate_limit_burst``), valid or not. Without
   one it is ``REFUSE`` (``ERROR RATE_LIMITED`` with the command's ``id`` when
   it can be read); more than ``rate_limit_burst`` refusals within 10 s is
   ``CLOSE`` (1008), and from then on ``DROP``.
3. An account command (:data:`~engine.protocol.commands.ACCOUNT_ACTIONS`) of
   a connection that has an account also takes a token of that account's
   budget (shared by all its connections); without one it is ``REFUSE`` too
   (not counted by the abuse rule: the client keeps within its own limit).
   The account token is taken before the command's arguments are validated,
   so a malformed account command costs one as well.

:attr:`FrameGate.account` is the connection's current account, set by its
actor when it changes (the token handshake, ``auth``, a failed ``auth``) and
read by the I/O thread: one attribute, written whole (a frame read while
``auth`` is being processed is charged to the account before or after it).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from engine.protocol.commands import ACCOUNT_ACTIONS, RequestId, peek_command
from engine.rate_limit import RateLimiter, Verdict
from engine.stats import counter

__all__ = ["ACCOUNT_REFUSAL", "CONNECTION_REFUSAL", "Admit", "FrameGate", "GateCounts",
           "GateStatistics", "GateVerdict"]

#: The messages of the two refusals (``ERROR RATE_LIMITED``).
CONNECTION_REFUSAL = "too many commands; slow down"
ACCOUNT_REFUSAL = "account {account} is over its command budget; slow down"


class Admit(enum.Enum):
    PASS = "pass"  #: tell the frame to the actor
    REFUSE = "refuse"  #: answer ERROR RATE_LIMITED (``GateVerdict.message``), nothing else
    CLOSE = "close"  #: abusive: close 1008, the actor ignores what it still has
    DROP = "drop"  #: the gate closed this connection already: ignore the frame


@dataclass(frozen=True, slots=True)
class GateVerdict:
    admit: Admit
    request_id: RequestId = None
    #: The ERROR's message of a refusal.
    message: str = ""


_PASS = GateVerdict(Admit.PASS)
_DROP = GateVerdict(Admit.DROP)
_CLOSE = GateVerdict(Admit.CLOSE)


@dataclass(frozen=True, slots=True)
class GateStatistics:
    """What the gates refused (``/metrics``: ``tickdesk_gate_*``)."""

    passed: int = counter("Data frames the frame gates let through to a ConnectionActor.")
    refused: Mapping[str, int] = counter(
        "Data frames refused RATE_LIMITED in the I/O thread, before any actor woke, "
        "by the budget that refused them.", label="budget")
    closed: int = counter("Connections the frame gates closed 1008 for a flood.")
    refusals_queued: int = counter(
        "Refusals sent through the ConnectionActor after the frames it still had "
        "(to keep the session's answers in order); the others were answered by the I/O thread.")


class GateCounts:
    """Counters shared by the gates of one server. They are counted in the I/O
    thread (one writer) and read by ``/metrics`` without a lock."""

    __slots__ = ("by_account", "by_connection", "closed", "passed", "queued")

    def __init__(self) -> None:
        self.passed = 0
        #: Refusals the I/O thread queued behind the actor's waiting frames.
        self.queued = 0
        self.by_connection = 0
        self.by_account = 0
        self.closed = 0

    def statistics(self) -> GateStatistics:
        return GateStatistics(self.passed, {"connection": self.by_connection,
                                            "account": self.by_account},
                              self.closed, self.queued)


class FrameGate:
    """The admission rules of one connection (see the module docstring)."""

    __slots__ = ("_budget", "_counts", "_limiter", "account", "closed")

    def __init__(self, limiter: RateLimiter,
                 account_budget: Callable[[str, float], bool] | None = None,
                 account: str | None = None, counts: GateCounts | None = None) -> None:
        self._limiter = limiter
        self._budget = account_budget
        self._counts = counts if counts is not None else GateCounts()
        #: The connection's account (None: anonymous); set by its actor.
        self.account = account
        #: True once the gate has said CLOSE.
        self.closed = False

    def check(self, data: bytes | str, binary: bool, now_s: float) -> GateVerdict:
        """The verdict on one complete data frame arriving at ``now_s``."""
        if self.closed:
            return _DROP
        counts = self._counts
        verdict = self._limiter.check(now_s)
        if verdict is Verdict.CLOSE:
            self.closed = True
            counts.closed += 1
            return _CLOSE
        account = self.account
        if verdict is Verdict.REFUSE:
            counts.by_connection += 1
            return GateVerdict(Admit.REFUSE, peek_command(data, binary=binary)[1],
                               CONNECTION_REFUSAL)
        if account is not None and self._budget is not None:
            action, rid = peek_command(data, binary=binary)
            if action in ACCOUNT_ACTIONS and not self._budget(account, now_s):
                counts.by_account += 1
                return GateVerdict(Admit.REFUSE, rid, ACCOUNT_REFUSAL.format(account=account))
        counts.passed += 1
        return _PASS

