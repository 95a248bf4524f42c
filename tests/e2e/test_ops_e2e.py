"""GET /healthz and GET /metrics over loopback HTTP (urllib)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from actors.supervisor import FeedStatusReport
from engine.server.ops import OpsSnapshot, healthz_route
from tests.conftest import timeout, wait_until
from tests.e2e.wsclient import WsClient
from tickdesk import Engine


def _get(engine: Engine, path: str) -> tuple[int, str, bytes]:
    url = f"http://127.0.0.1:{engine.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout(5)) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers["Content-Type"], err.read()


def _metrics(engine: Engine) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, ctype, body = _get(engine, "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_healthz_ok_while_the_feed_is_up(engine: Engine) -> None:
    wait_until(lambda: engine.feed_status()["status"] == "UP", what="feed UP")
    c = WsClient(engine.url)
    try:
        c.recv()
        status, ctype, body = _get(engine, "/healthz")
        assert status == 200 and ctype == "application/json"
        health = json.loads(body)
        assert health["status"] == "ok"
        assert health["feed"]["status"] == "UP" and health["feed"]["feed"] == "simulated"
        assert health["connections"] == 1
        assert isinstance(health["uptimeS"], float) and health["uptimeS"] >= 0
    finally:
        c.close()


def test_healthz_is_503_while_the_feed_is_down(engine: Engine) -> None:
    wait_until(lambda: engine.feed_status()["status"] == "UP", what="feed UP")
    # What the supervisor reports when the feed's restarts escalate.
    engine._feed_status_changed(FeedStatusReport("DOWN", 11, 30000, "upstream refused"))
    status, _, body = _get(engine, "/healthz")
    health = json.loads(body)
    assert status == 503
    assert health["status"] == "failing" and health["feed"]["reason"] == "upstream refused"
    assert health["reasons"] == ["feed is DOWN: upstream refused"]


@pytest.mark.parametrize(("feed_status", "http", "shown"),
                         [("UP", 200, "ok"), ("RECONNECTING", 200, "degraded"),
                          ("DOWN", 503, "failing")])
def test_healthz_table(feed_status: str, http: int, shown: str) -> None:
    snap = OpsSnapshot(feed={"feed": "x", "status": feed_status}, connections=3, sessions=3,
                       messages_sent=0, conflated=0, evictions={}, refused=0, uptime_s=1.23456)
    resp = healthz_route(lambda: snap)({}, {})
    body: dict[str, Any] = json.loads(resp.body)
    assert resp.status == http and body["status"] == shown
    assert body["connections"] == 3 and body["uptimeS"] == 1.235


def test_metrics_in_prometheus_text_format(engine: Engine) -> None:
    wait_until(lambda: engine.feed_status()["status"] == "UP", what="feed UP")
    c = WsClient(engine.url)
    try:
        c.recv()
        c.send({"action": "subscribe_ticker", "symbol": "BTCUSDT"})
        for _ in range(3):
            c.wait_for(lambda m: m["type"] == "MARKET_UPDATE")
        m = _metrics(engine)
        assert m[("tickdesk_connections", ())] == 1
        assert m[("tickdesk_messages_sent_total", ())] >= 4
        assert m[("tickdesk_market_updates_conflated_total", ())] >= 0
        assert m[("tickdesk_evictions_total", (("code", "4001"),))] == 0
        assert m[("tickdesk_evictions_total", (("code", "4002"),))] == 0
        assert m[("tickdesk_handshakes_refused_total", ())] == 0
        assert m[("tickdesk_feed_status", (("feed", "simulated"), ("status", "UP")))] == 1
        assert m[("tickdesk_feed_status", (("feed", "simulated"), ("status", "DOWN")))] == 0
        assert m[("tickdesk_uptime_seconds", ())] >= 0
        sent_while_open = m[("tickdesk_messages_sent_total", ())]
    finally:
        c.close()
    wait_until(lambda: engine.ops_snapshot().connections == 0, what="the client to go")
    m = _metrics(engine)
    assert m[("tickdesk_connections", ())] == 0
    assert m[("tickdesk_messages_sent_total", ())] >= sent_while_open  # closed ones still count


def test_unknown_plain_path_is_404(engine: Engine) -> None:
    assert _get(engine, "/nope")[0] == 404
