"""/metrics after some activity: feed reconnects and aggregate-trade gaps, orders by
execution type, and the tick fan-out latency histogram."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.config import FeedConfig
from tests.conftest import make_config, wait_until
from tests.e2e.test_ops_e2e import _metrics
from tests.e2e.wsclient import WsClient
from tests.fakes.binance_rest import FakeBinanceRest, binance_config
from tests.fakes.binance_upstream import FakeBinanceUpstream
from tickdesk import Engine


@pytest.fixture
def upstream(binance_rest: FakeBinanceRest) -> Iterator[FakeBinanceUpstream]:
    with FakeBinanceUpstream(known_symbols={"BTCUSDT"}) as fake:
        yield fake


def test_feed_order_and_latency_metrics(upstream: FakeBinanceUpstream) -> None:
    feed = FeedConfig(source="binance", symbols=("BTCUSDT",),
                      binance=binance_config(upstream.base_url, stall_timeout_s=60))
    with Engine(make_config(feed=feed)) as engine:
        client = WsClient(engine.url)
        try:
            client.send({"action": "subscribe_ticker", "symbol": "BTCUSDT", "id": "s"})
            client.reply("s")
            assert upstream.wait_until(lambda: upstream.subscribers("btcusdt@aggTrade") == 1)
            # the upstream sees the subscription at the handshake, before the feed's
            # side has counted the connection as open (UP only comes with data)
            wait_until(lambda: engine.feed_shared.statistics().connections_opened == 1,
                       what="the connection counted as open")
            m = _metrics(engine)
            assert m[("tickdesk_feed_connection_attempts_total", ())] == 1
            assert m[("tickdesk_feed_connections_opened_total", ())] == 1
            assert m[("tickdesk_feed_reconnects_total", ())] == 0
            assert m[("tickdesk_feed_agg_trade_gaps_total", ())] == 0

            def push_and_see(price: str, agg_id: int | None = None) -> None:
                upstream.push_trade("BTCUSDT", price, "0.5", agg_id=agg_id)
                client.wait_for(lambda m: m["type"] == "MARKET_UPDATE"
                                and m["price"] == float(price))

            # the first trade since the start waits for the next one to vouch for it
            upstream.push_trade("BTCUSDT", "40000", "0.5", agg_id=999)
            push_and_see("40000", agg_id=1000)
            push_and_see("40001", agg_id=1010)  # ids 1001..1009 never arrived
            for i in range(8):
                push_and_see(f"{40002 + i}")

            # One upstream loss: the feed reconnects once.
            assert upstream.drop_all() == 1
            wait_until(lambda: engine.feed_shared.statistics().connections_opened == 2,
                       what="the feed to reconnect")
            assert upstream.wait_until(lambda: upstream.subscribers("btcusdt@aggTrade") == 1)
            push_and_see("41000")  # UP comes with the first data frame
            wait_until(lambda: engine.feed_status()["status"] == "UP", what="feed UP")

            client.send({"action": "place_order", "symbol": "BTCUSDT", "side": "BUY",
                         "type": "LIMIT", "quantity": 0.1, "price": 30000,
                         "clientOrderId": "cheap", "id": 1})
            assert client.reply(1)["executionType"] == "NEW"
            client.send({"action": "cancel_order", "clientOrderId": "cheap", "id": 2})
            assert client.reply(2)["executionType"] == "CANCELED"
            client.send({"action": "place_order", "symbol": "BTCUSDT", "side": "BUY",
                         "type": "MARKET", "quantity": 0.01, "id": 3})
            client.wait_for(lambda m: m["type"] == "ORDER_UPDATE"
                            and m["executionType"] == "TRADE")

            m = _metrics(engine)
        finally:
            client.close()
    print("\n" + "\n".join(f"{k[0]}{dict(k[1]) or ''} = {v}" for k, v in sorted(m.items())
                           if "feed_" in k[0] or "order" in k[0] or "fanout" in k[0]))
    assert m[("tickdesk_feed_connection_attempts_total", ())] == 2
    assert m[("tickdesk_feed_connections_opened_total", ())] == 2
    assert m[("tickdesk_feed_reconnects_total", ())] == 1
    assert m[("tickdesk_feed_agg_trade_gaps_total", ())] >= 1
    assert m[("tickdesk_feed_agg_trades_missed_total", ())] >= 9
    for reason in ("id_jump", "price_band", "unconfirmed"):  # exported at 0 as well
        assert ("tickdesk_feed_dropped_trades_total", (("reason", reason),)) in m

    def orders(kind: str) -> float:
        return m.get(("tickdesk_order_updates_total", (("execution_type", kind),)), 0.0)

    assert orders("NEW") == 2 and orders("CANCELED") == 1 and orders("TRADE") == 1
    assert ("tickdesk_order_updates_total", (("execution_type", "EXPIRED"),)) in m  # at 0
    assert orders("EXPIRED") == 0

    count = m[("tickdesk_tick_fanout_seconds_count", ())]
    total = m[("tickdesk_tick_fanout_seconds_sum", ())]
    assert count >= 11  # one observation per published trade, not per delivery
    assert total > 0  # durations were observed (their size is the benchmark's business)
    inf = m[("tickdesk_tick_fanout_seconds_bucket", (("le", "+Inf"),))]
    assert inf == count
