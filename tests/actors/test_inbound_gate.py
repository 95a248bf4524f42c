"""The inbound gate bounds a client's unprocessed frames and never deadlocks on close."""

from __future__ import annotations

import threading

from actors.connection import InboundGate
from tests.conftest import timeout


def test_the_reader_waits_when_the_limit_is_reached_and_resumes_on_leave() -> None:
    gate = InboundGate(limit=3)
    for _ in range(3):
        assert gate.enter(lambda: True)
    entered = threading.Event()

    def reader() -> None:
        if gate.enter(lambda: True, poll_s=0.01):
            entered.set()

    t = threading.Thread(target=reader)
    t.start()
    assert not entered.wait(0.05)  # the fourth frame waits
    gate.leave()
    assert entered.wait(timeout(2))
    t.join(timeout(2))


def test_a_waiting_reader_gives_up_when_the_connection_closes() -> None:
    gate = InboundGate(limit=1)
    assert gate.enter(lambda: True)
    closed = threading.Event()
    result: list[bool] = []
    t = threading.Thread(
        target=lambda: result.append(gate.enter(lambda: not closed.is_set(), poll_s=0.01)))
    t.start()
    closed.set()
    t.join(timeout(2))
    assert result == [False]
