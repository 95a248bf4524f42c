"""A client that never answers protocol pings is closed (1008); one that does stays."""

from __future__ import annotations

import base64
import os
import socket
import time

from engine.config import ServerConfig
from tests.conftest import make_config, timeout
from tickdesk import Engine
from tickdesk.client import TickdeskClient


def _raw_upgrade(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout(5))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /api/ws/realtime HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    return sock


def _frames_until_close(sock: socket.socket, seconds: float) -> tuple[list[int], int | None]:
    """Read raw server frames (never answering pings) until a close frame."""
    deadline = time.monotonic() + timeout(seconds)
    buf = b""
    opcodes: list[int] = []
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 2:
            n, start = buf[1] & 0x7F, 2
            if n == 126:
                n, start = int.from_bytes(buf[2:4], "big"), 4
            if len(buf) < start + n:
                break
            opcode, payload = buf[0] & 0x0F, buf[start:start + n]
            buf = buf[start + n:]
            opcodes.append(opcode)
            if opcode == 0x8:
                return opcodes, int.from_bytes(payload[:2], "big")
    return opcodes, None


def test_silent_client_is_closed_and_a_responsive_one_is_not() -> None:
    cfg = make_config(server=ServerConfig(port=0, ping_interval_s=0.2))
    with Engine(cfg) as engine:
        # The client library reads in its own thread, so it answers every ping.
        good = TickdeskClient(engine.url, reconnect=False)
        good.connect()
        good.subscribe("BTCUSDT")
        silent = _raw_upgrade(engine.port)
        try:
            opcodes, code = _frames_until_close(silent, 10)
            assert 0x9 in opcodes, "the server pinged"
            assert code == 1008
            # Meanwhile the reading client answered its pings and still streams.
            for _ in range(5):
                good.wait_for(lambda m: m["type"] == "MARKET_UPDATE", timeout=timeout(5))
            assert good.ping(timeout=timeout(5)) >= 0
        finally:
            silent.close()
            good.close()
