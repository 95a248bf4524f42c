"""``python -m tickdesk.bench.binance_streams`` on a small workload: both
setups run and every stream client sees every trade of its window, in order.
Completeness only, never timing."""

from __future__ import annotations

import pytest

from tests.cluster.redis_server import need_redis_server
from tickdesk.bench.binance_streams import run_setup


@need_redis_server
@pytest.mark.timeout(120)
@pytest.mark.parametrize("setup", ["all", "gateway"])
def test_the_stream_bench_sees_every_trade_on_every_client(setup: str) -> None:
    row = run_setup(setup, clients=4, rate=20, seconds=1.5, gateways=2)
    assert row.complete == row.clients == 4
    assert row.trades_per_s > 0 and row.deliveries_per_s >= row.trades_per_s
