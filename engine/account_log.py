"""Account event numbering: a per-account ``seq`` and a capped history to resume from.

Pure core (no threads, no clock): called by whichever thread announces
account events (the bus's caller, under the bus's lock). Every account event
(ORDER_UPDATE, ORDER_LIST_UPDATE) gets the next ``seq`` of its account,
starting at 1 for each ``epoch``; the last ``cap`` events of each account are
kept so that a client that reconnects with ``resume {epoch, seq}`` receives
what it missed, in order (:func:`resume_from`). Overflow policy: the oldest
event of the account is forgotten; a resume that reaches back past it gets
``recovered: false`` (the client re-fetches).

:func:`stamp` adds ``"seq": N`` to an encoded JSON object without decoding it
(the payload is built by :mod:`engine.protocol.server_messages` and always
ends with ``}``), so an event is still encoded once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["AccountLog", "Resume", "resume_from", "stamp"]


def stamp(payload: bytes, seq: int) -> bytes:
    """``payload`` (a JSON object) with ``"seq": seq`` as its last field."""
    if not payload.endswith(b"}"):
        raise ValueError("an account event must be a JSON object")
    body = payload[:-1]
    sep = b"" if body.endswith(b"{") else b","
    return body + sep + b'"seq":' + str(seq).encode() + b"}"


@dataclass(frozen=True, slots=True)
class Resume:
    """What a ``resume {epoch, seq}`` gets: the missed events in order (when
    ``recovered``), else nothing (the client must re-fetch)."""

    recovered: bool
    events: tuple[bytes, ...] = ()


def resume_from(epoch: str, client_epoch: str, client_seq: int, last_seq: int,
                history: Sequence[tuple[int, bytes]]) -> Resume:
    """The rule of resume. ``history`` is the account's kept events (seq,
    payload), oldest first; ``last_seq`` the account's latest seq (0: none).

    Recovered when the epoch is the same and every event after ``client_seq``
    is still kept (or there is none to send). A client ahead of the server
    (``client_seq > last_seq``) is not recovered: it saw another history."""
    if client_epoch != epoch or client_seq < 0 or client_seq > last_seq:
        return Resume(False)
    if client_seq == last_seq:
        return Resume(True)
    missed = [(s, p) for s, p in history if s > client_seq]
    if not missed or missed[0][0] != client_seq + 1:
        return Resume(False)
    return Resume(True, tuple(p for _, p in missed))


class AccountLog:
    """Per-account ``seq`` counters and the last ``cap`` stamped events of each."""

    def __init__(self, cap: int = 1000) -> None:
        if cap < 1:
            raise ValueError("cap must be >= 1")
        self.cap = cap
        self._seq: dict[str, int] = {}
        self._kept: dict[str, deque[tuple[int, bytes]]] = {}

    def next(self, account: str) -> int:
        """Take the account's next ``seq``."""
        seq = self._seq.get(account, 0) + 1
        self._seq[account] = seq
        return seq

    def keep(self, account: str, seq: int, payload: bytes) -> None:
        kept = self._kept.get(account)
        if kept is None:
            kept = self._kept[account] = deque(maxlen=self.cap)
        kept.append((seq, payload))

    def last(self, account: str) -> int:
        return self._seq.get(account, 0)

    def history(self, account: str) -> tuple[tuple[int, bytes], ...]:
        return tuple(self._kept.get(account, ()))
