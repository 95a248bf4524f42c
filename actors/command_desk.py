"""CommandDesk: the bounded, per-account fair queue in front of one engine actor.

The only way an account command reaches the OrderMonitorActor or the
PortfolioActor (see docs/design.md, "How a command flows"):

* a ConnectionActor (any thread) calls :meth:`CommandDesk.submit` with the
  :class:`~actors.messages.AccountRequest`. The request waits in its
  account's queue (:class:`engine.fair_queue.FairQueue`) and the target
  actor is told one :class:`Drain` per request;
* the target actor, on each :class:`Drain` (its own thread), calls
  :meth:`CommandDesk.take` and runs the request it gets: the oldest command
  of the account whose turn it is. However long one account's backlog, another
  account's command is run after at most one command of each other account
  with commands waiting.

Bound and overflow policy: at most ``per_account`` commands of one account
wait (``server.account_queue_limit``); ``submit`` of one more returns False
and the caller answers ``ERROR BUSY`` (not executed). The target's mailbox
then holds at most one :class:`Drain` per waiting command, so it is bounded
by ``per_account`` times the number of accounts (plus the market data the
feed sends it, which has its own policy).

Every submitted command gets exactly one answer: the target runs it, or,
if the target is down when told (or fails with Drains in its mailbox),
:meth:`fail_one` answers one waiting command ``ERROR INTERNAL`` per lost
Drain, keeping one Drain per waiting command. (A Drain pykka drops while the
actor is stopping is not seen: its command is then run at the next Drain.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from actors.base import ActorSlot
from actors.messages import AccountRequest
from engine.errors import InternalError
from engine.fair_queue import FairQueue
from engine.protocol import server_messages as sm
from engine.stats import counter, gauge

__all__ = ["CommandDesk", "DeskStatistics", "Drain"]


@dataclass(frozen=True, slots=True, eq=False)
class Drain:
    """Told to the target actor once per submitted command: take and run one."""

    desk: CommandDesk


@dataclass(frozen=True, slots=True)
class DeskStatistics:
    """What a desk counts (``/metrics``: ``tickdesk_desk_*{actor}``)."""

    commands_busy: int = counter("Account commands refused with ERROR BUSY: their "
                                 "account already had server.account_queue_limit "
                                 "commands waiting for this actor.")
    commands_waiting: int = gauge("Account commands waiting for this actor (all accounts).")


class CommandDesk:
    """Thread-safe; see the module docstring."""

    def __init__(self, target: ActorSlot, per_account: int,
                 now_ms: Callable[[], int]) -> None:
        self.target = target
        self._now_ms = now_ms
        self._lock = threading.Lock()
        self._queue: FairQueue[str, AccountRequest] = FairQueue(per_account)
        self._busy = 0

    @property
    def per_account(self) -> int:
        return self._queue.per_key

    def waiting(self, account: str | None = None) -> int:
        """Commands waiting (of ``account``, or of all)."""
        with self._lock:
            return len(self._queue) if account is None else self._queue.waiting(account)

    def submit(self, req: AccountRequest) -> bool:
        """Queue ``req`` for the target (any thread). False: its account's queue
        is full, nothing was queued and the caller answers ``ERROR BUSY``."""
        with self._lock:
            if not self._queue.push(req.account, req):
                self._busy += 1
                return False
        if not self.target.tell(Drain(self)):
            self.fail_one()  # the target is down: one waiting command gets its answer now
        return True

    def take(self) -> AccountRequest | None:
        """The next command to run, round-robin over the accounts (the target's thread)."""
        with self._lock:
            return self._queue.pop()

    def fail_one(self) -> None:
        """A Drain was lost (the target down, or failed with it in its mailbox):
        answer one waiting command ``ERROR INTERNAL`` (not executed)."""
        req = self.take()
        if req is None:
            return
        err = InternalError(req.request_id)
        req.channel.deliver(sm.error(err.code, err.message, self._now_ms(), req.request_id))

    def statistics(self) -> DeskStatistics:
        with self._lock:
            return DeskStatistics(self._busy, len(self._queue))
