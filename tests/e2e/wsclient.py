"""A small blocking test client over websocket-client, with bounded waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import websocket

from tests.conftest import timeout


class WsClient:
    def __init__(self, url: str, **options: Any) -> None:
        self.ws = websocket.create_connection(url, timeout=timeout(5), skip_utf8_validation=True,
                                              **options)
        self.close_code: int | None = None

    def send(self, obj: Any) -> None:
        self.ws.send(orjson.dumps(obj).decode())

    def send_text(self, text: str) -> None:
        self.ws.send(text)

    def recv(self, seconds: float = 5.0) -> dict[str, Any]:
        self.ws.settimeout(timeout(seconds))
        while True:
            opcode, data = self.ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_TEXT:
                return dict(orjson.loads(data))
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self.close_code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
                raise ConnectionError(f"closed {self.close_code}")

    def wait_for(self, pred: Callable[[dict[str, Any]], bool],
                 seconds: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout(seconds)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no matching message in time")
            msg = self.recv(left)
            if pred(msg):
                return msg

    def reply(self, rid: Any, seconds: float = 5.0) -> dict[str, Any]:
        """The next message carrying request id ``rid``."""
        return self.wait_for(lambda m: m.get("id") == rid, seconds)

    def wait_closed(self, seconds: float = 5.0) -> int:
        deadline = time.monotonic() + timeout(seconds)
        while time.monotonic() < deadline:
            try:
                self.recv(deadline - time.monotonic())
            except ConnectionError:
                assert self.close_code is not None
                return self.close_code
            except websocket.WebSocketConnectionClosedException:
                return self.close_code or 1006
        raise AssertionError("connection not closed in time")

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        except Exception:
            self.ws.shutdown()
