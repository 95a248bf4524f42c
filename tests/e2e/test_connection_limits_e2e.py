"""Connection limits: extra handshakes get HTTP 503 before the upgrade."""

from __future__ import annotations

import pytest
import websocket

from engine.config import ServerConfig
from engine.server.http import Refusal
from engine.server.limits import ConnectionLimits, peer_ip
from tests.conftest import make_config, wait_until
from tests.e2e.wsclient import WsClient
from tickdesk import Engine


def _refused_status(url: str) -> int:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(url, timeout=5)
    return int(info.value.status_code)


@pytest.mark.parametrize(
    "server",
    [ServerConfig(port=0, max_connections=2), ServerConfig(port=0, max_connections_per_ip=2)],
    ids=["total", "per-ip"],
)
def test_handshakes_over_the_limit_get_503_until_a_slot_is_released(
        server: ServerConfig) -> None:
    with Engine(make_config(server=server)) as eng:
        first, second = WsClient(eng.url), WsClient(eng.url)
        try:
            assert first.recv()["type"] == "CONNECTED"
            assert second.recv()["type"] == "CONNECTED"
            assert _refused_status(eng.url) == 503
            assert eng.limits.refused == 1
            # the refused handshake did not cost a slot; the two clients still work
            second.send({"action": "ping", "id": 1})
            assert second.reply(1)["type"] == "PONG"
            first.close()
            wait_until(lambda: eng.limits.live == 1, what="the slot to be released")
            third = WsClient(eng.url)
            assert third.recv()["type"] == "CONNECTED"
            third.close()
        finally:
            first.close()
            second.close()


def test_refused_handshakes_leave_no_threads_or_slots() -> None:
    import threading

    with Engine(make_config(server=ServerConfig(port=0, max_connections=1))) as eng:
        only = WsClient(eng.url)
        try:
            only.recv()
            # CONNECTED is sent before the client's ConnectionActor (a thread)
            # starts; its PONG comes from that actor, so it runs by then
            only.send({"action": "ping", "id": 1})
            assert only.reply(1)["type"] == "PONG"
            baseline = threading.active_count()
            for _ in range(20):
                assert _refused_status(eng.url) == 503
            assert eng.limits.live == 1 and eng.limits.refused == 20
            wait_until(lambda: threading.active_count() <= baseline,
                       what="handler threads to end")
        finally:
            only.close()


@pytest.mark.parametrize(
    ("peer", "ip"),
    [("127.0.0.1:5000", "127.0.0.1"), ("::1:5000", "::1"), ("[::1]:80", "[::1]"),
     ("nohost", "nohost")],
)
def test_peer_ip(peer: str, ip: str) -> None:
    assert peer_ip(peer) == ip


def test_limits_count_per_ip_and_in_total() -> None:
    lim = ConnectionLimits(max_total=3, max_per_ip=2)
    lim.admit("a")
    lim.admit("a")
    with pytest.raises(Refusal) as info:
        lim.admit("a")
    assert info.value.status == 503
    lim.admit("b")
    with pytest.raises(Refusal):
        lim.admit("c")  # total reached
    lim.release("a")
    lim.admit("c")
    assert (lim.live, lim.live_from("a"), lim.refused) == (3, 1, 2)
    lim.release("zzz")  # unknown: ignored, never negative
    assert lim.live == 3
