"""Expected failures (a lost upstream) restart quietly; real bugs keep pykka's traceback."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pykka
import pytest

from actors.base import ExpectedFailure, TickdeskActor
from tests.conftest import timeout


class _Fails(TickdeskActor):
    def __init__(self, exc: Exception, reported: threading.Event) -> None:
        super().__init__("fails", lambda *_: reported.set())
        self.handlers = {str: self._boom}
        self._exc = exc

    def _boom(self, _msg: str) -> None:
        raise self._exc


@pytest.mark.parametrize(("exc", "traceback_logged"), [
    (ExpectedFailure("upstream closed (1006)"), False),
    (RuntimeError("a bug"), True),
])
def test_pykka_traceback_only_for_unexpected_failures(
        exc: Exception, traceback_logged: bool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="pykka")
    reported = threading.Event()
    ref: pykka.ActorRef[Any] = _Fails.start(exc, reported)
    ref.tell("go")
    assert reported.wait(timeout(5)), "the failure reaches the supervisor hook either way"
    logged = [r for r in caplog.records if r.name == "pykka" and r.exc_info]
    assert bool(logged) is traceback_logged
