"""Binance's stream paths keep every bound of our own endpoint (loopback): a
flood of live requests is refused then closed 1008, a message over
``server.max_message_bytes`` is closed 1009, and the connection limit per
address refuses the upgrade like ours."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import websocket

from engine.config import ServerConfig
from tests.conftest import make_config
from tests.e2e.wsclient import WsClient
from tickdesk import Engine

BURST = 10


@pytest.fixture
def limited() -> Iterator[Engine]:
    cfg = make_config(server=ServerConfig(port=0, rate_limit_per_s=2.0, rate_limit_burst=BURST,
                                          max_message_bytes=4096))
    eng = Engine(cfg).start()
    try:
        yield eng
    finally:
        eng.stop()


def _url(engine: Engine, path: str = "/ws") -> str:
    return f"ws://127.0.0.1:{engine.port}{path}"


def test_a_burst_is_refused_with_binance_errors_then_a_flood_is_closed_1008(
        limited: Engine) -> None:
    c = WsClient(_url(limited))
    try:
        for i in range(BURST + 3):
            c.send({"method": "LIST_SUBSCRIPTIONS", "id": i})
        answers = [c.wait_for(lambda m, i=i: m.get("id") == i) for i in range(BURST + 3)]
        assert all("result" in a for a in answers[:BURST])  # the bucket starts full
        refused = [a for a in answers if "error" in a]
        assert refused and all(a["error"]["code"] == 2 for a in refused)
        sent = 0
        try:
            for i in range(20 * BURST):
                c.send({"method": "LIST_SUBSCRIPTIONS", "id": 1000 + i})
                sent += 1
        except (OSError, websocket.WebSocketConnectionClosedException):
            pass  # closed while still flooding
        assert c.wait_closed() == 1008
    finally:
        c.close()


def test_a_message_over_the_size_limit_is_closed_1009(limited: Engine) -> None:
    c = WsClient(_url(limited, "/ws/btcusdt@trade"))
    try:
        c.send_text('{"method": "SUBSCRIBE", "params": ["' + "x" * 5000 + '"], "id": 1}')
        assert c.wait_closed() == 1009
    finally:
        c.close()


def test_the_per_address_connection_limit_applies() -> None:
    cfg = make_config(server=ServerConfig(port=0, max_connections_per_ip=2))
    with Engine(cfg) as engine:
        held = [WsClient(_url(engine, "/ws/btcusdt@trade")), WsClient(_url(engine))]
        try:
            with pytest.raises(websocket.WebSocketBadStatusException) as info:
                websocket.create_connection(_url(engine, "/stream?streams=btcusdt@trade"),
                                            timeout=5)
            assert info.value.status_code == 503
        finally:
            for c in held:
                c.close()
