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
  with commands waiting. The OrderMonitorActor calls
  :meth:`CommandDesk.take_batch` instead: up to ``limit`` commands in that
  same round-robin order, which it settles in one store transaction (group
  commit, see its docstring).

Drains and batches: every queued command has one Drain told for it. A batch
of *k* commands is taken by one Drain, so *k - 1* Drains still to come have
no command of their own: the desk counts them (``stale``) and the next
``take_batch`` calls, one per such Drain, take nothing and only spend one
each. A batch is therefore only taken when no stale Drain is outstanding, so
at most ``limit - 1`` are at any time: the invariant is *Drains in the
target's mailbox = commands waiting + stale*, and every waiting command
still has a Drain coming.

Bound and overflow policy: at most ``per_account`` commands of one account
wait (``server.account_queue_limit``); ``submit`` of one more returns False
and the caller answers ``ERROR BUSY`` (not executed). The target's mailbox
then holds at most one :class:`Drain` per waiting command plus fewer than
one batch of stale ones, so it is bounded by ``per_account`` times the
number of accounts plus the batch limit (plus the market data the feed sends
it, which has its own policy).

Every submitted command gets exactly one answer: the target runs it, or,
if the target is down when told, one waiting command is answered ``ERROR
INTERNAL`` at once; if it fails with Drains in its mailbox, :meth:`fail_one`
spends one stale Drain or else answers one waiting command ``ERROR
INTERNAL`` per lost Drain, keeping the invariant above. (Commands the
target had already taken in a batch are its own to answer.) (A Drain pykka drops while the
actor is stopping is not seen: its command is then run at the next Drain.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from actors.base import ActorSlot
from actors.messages import AccountRequest
from actors.trade_relay import TradeRelay
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
                 now_ms: Callable[[], int], relay: TradeRelay | None = None) -> None:
        """``relay``: the FeedActor's :class:`~actors.trade_relay.TradeRelay`; a
        trade it holds is told to the engine actors before any command queued here."""
        self.target = target
        self._now_ms = now_ms
        self._relay = relay
        self._lock = threading.Lock()
        self._queue: FairQueue[str, AccountRequest] = FairQueue(per_account)
        self._busy = 0
        #: Drains still to come whose command was already taken in a batch.
        self._stale = 0

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
        if self._relay is not None:
            self._relay.flush()  # a trade in its fan-out reaches the target first
        with self._lock:
            if not self._queue.push(req.account, req):
                self._busy += 1
                return False
        if not self.target.tell(Drain(self)):
            self._fail_waiting()  # the target is down: one waiting command gets its answer now
        return True

    def take(self) -> AccountRequest | None:
        """The next command to run, round-robin over the accounts (the target's
        thread, on a Drain). None when a stale Drain was spent or nothing waits."""
        batch = self.take_batch(1)
        return batch[0] if batch else None

    def take_batch(self, limit: int) -> list[AccountRequest]:
        """Up to ``limit`` commands to run, round-robin over the accounts (the
        target's thread, on a Drain); empty when this Drain was a stale one
        (see the module docstring) or nothing waits."""
        with self._lock:
            if self._stale:
                self._stale -= 1
                return []
            batch = self._queue.pop_many(limit)
            if batch:
                self._stale += len(batch) - 1
            return batch

    def fail_one(self) -> None:
        """A Drain was lost (the target failed with it in its mailbox): spend a
        stale Drain, or else answer one waiting command ``ERROR INTERNAL`` (not
        executed)."""
        with self._lock:
            if self._stale:
                self._stale -= 1
                return
        self._fail_waiting()

    def _fail_waiting(self) -> None:
        """Answer one waiting command ``ERROR INTERNAL`` (not executed)."""
        with self._lock:
            req = self._queue.pop()
        if req is None:
            return
        err = InternalError(req.request_id)
        req.channel.deliver(sm.error(err.code, err.message, self._now_ms(), req.request_id))

    def statistics(self) -> DeskStatistics:
        with self._lock:
            return DeskStatistics(self._busy, len(self._queue))
