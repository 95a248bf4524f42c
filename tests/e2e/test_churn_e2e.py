"""Connection churn: 200 connect/disconnect cycles leave nothing behind."""

from __future__ import annotations

import threading

from engine import Engine
from tests.conftest import wait_until
from tests.e2e.wsclient import WsClient

CYCLES = 200


def test_churn_returns_to_the_baseline_thread_count(engine: Engine) -> None:
    # Warm up until every child actor runs (the timers start last): both broadcasts seen.
    warm = WsClient(engine.url)
    warm.wait_for(lambda m: m["type"] == "POSITION_UPDATE")
    warm.wait_for(lambda m: m["type"] == "PORTFOLIO_UPDATE")
    warm.close()
    wait_until(lambda: engine.ops_snapshot().connections == 0 and len(engine.hub) == 0,
               what="the warm-up client to go")
    baseline = threading.active_count()
    peak = baseline
    for i in range(CYCLES):
        c = WsClient(engine.url)
        assert c.recv()["type"] == "CONNECTED"
        if i % 2:
            c.send({"action": "subscribe_ticker", "symbol": "BTCUSDT", "id": i})
            assert c.reply(i)["type"] == "SUBSCRIBED"
        peak = max(peak, threading.active_count())
        if i % 4 == 3:
            c.ws.shutdown()  # abrupt: no close frame, the TCP connection just goes
        else:
            c.close()
    wait_until(lambda: engine.ops_snapshot().connections == 0, seconds=10,
               what="every transport to close")
    wait_until(lambda: len(engine.hub) == 0, what="every session to leave the hub")
    wait_until(lambda: threading.active_count() <= baseline, seconds=10,
               what=f"threads back to the baseline of {baseline}")
    assert engine.hub.subscriber_count("BTCUSDT") == 0
    assert engine.limits.live == 0
    print(f"churn: {CYCLES} cycles, threads baseline {baseline}, peak {peak}, "
          f"after {threading.active_count()}")
