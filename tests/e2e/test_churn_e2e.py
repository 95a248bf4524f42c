"""Connection churn: 1,000 connect/disconnect cycles leave nothing behind
(thread count back to the baseline, resident memory within a generous bound)."""

from __future__ import annotations

import gc
import os
import threading
import time

from tests.conftest import wait_until
from tests.e2e.wsclient import WsClient
from tickdesk import Engine

CYCLES = 1000
#: Resident-set growth allowed over the whole run (allocator high-water marks,
#: caches warmed by the first connections); a leak of a few KiB per connection
#: would pass it.
RSS_BOUND_MIB = 20.0


def rss_mib() -> float:
    """This process's resident set size, from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


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
    gc.collect()
    rss_before = rss_mib()
    t0 = time.monotonic()
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
    elapsed = time.monotonic() - t0
    assert engine.hub.statistics().subscriptions == 0
    assert engine.limits.live == 0
    gc.collect()
    rss_after = rss_mib()
    print(f"churn: {CYCLES} cycles in {elapsed:.1f} s, threads baseline {baseline}, "
          f"peak {peak}, after {threading.active_count()}; RSS {rss_before:.1f} MiB -> "
          f"{rss_after:.1f} MiB ({rss_after - rss_before:+.1f} MiB)")
    assert rss_after - rss_before < RSS_BOUND_MIB
