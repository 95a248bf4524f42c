"""Helpers for the client tests."""

from __future__ import annotations

import socket
from typing import Any

from tests.conftest import wait_until
from tickdesk import Engine
from tickdesk.client import TickdeskClient


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


class SentCommands:
    """Every command a client sends (both of its send paths: the handshake's,
    which re-subscribes after a reconnect, and the requests')."""

    def __init__(self, client: TickdeskClient) -> None:
        self.commands: list[dict[str, Any]] = []
        handshake, request = client._handshake_send, client._send

        def on_handshake(ws: Any, command: Any) -> None:
            self.commands.append(dict(command))
            handshake(ws, command)

        def on_request(command: Any) -> None:
            self.commands.append(dict(command))
            request(command)

        client._handshake_send = on_handshake  # type: ignore[method-assign]
        client._send = on_request  # type: ignore[method-assign]

    def actions(self) -> list[str]:
        return [str(c.get("action")) for c in self.commands]

