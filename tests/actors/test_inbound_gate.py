"""The inbound gate bounds a client's unprocessed frames without ever blocking the I/O thread."""

from __future__ import annotations

from actors.connection import InboundGate


def test_the_reader_is_told_to_pause_at_the_limit_and_resumed_at_half() -> None:
    resumed: list[int] = []
    gate = InboundGate(limit=4, on_room=lambda: resumed.append(gate.waiting))
    assert [gate.enter() for _ in range(4)] == [True, True, True, False]
    gate.leave()
    assert resumed == []  # 3 waiting: still above half the limit
    gate.leave()
    assert resumed == [2]  # down to half: read again, once
    gate.leave()
    gate.leave()
    assert resumed == [2] and gate.waiting == 0


def test_no_resume_without_a_pause() -> None:
    resumed: list[int] = []
    gate = InboundGate(limit=3, on_room=lambda: resumed.append(1))
    assert gate.enter() and gate.enter()
    gate.leave()
    gate.leave()
    assert resumed == []
