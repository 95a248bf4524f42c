"""Helpers for the client tests."""

from __future__ import annotations

import socket

from tests.conftest import wait_until
from tickdesk import Engine


def wait_ready(engine: Engine) -> Engine:
    """Wait until the engine's actors are up (the feed starts last, after the
    portfolio and the order monitor). ``Engine.start()`` returns before the
    Supervisor has started its children: an account command sent in that
    window gets ``ERROR INTERNAL``."""
    wait_until(lambda: engine.feed_status()["status"] == "UP", 10, "the feed to be UP")
    return engine


def free_port() -> int:
    """A port that was free a moment ago (bind 0, read it, release it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
