"""What the actors, the hub, the writer and the feed count reaches /metrics
through their ``statistics()`` (engine.stats, one collector in engine.server.ops)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.config import FeedConfig
from engine.server.ops import StatisticsCollector
from engine.stats import counter, gauge, samples
from tests.conftest import make_config, wait_until
from tests.e2e.test_ops_e2e import _metrics
from tests.e2e.wsclient import WsClient
from tests.fakes.binance_rest import binance_config
from tests.fakes.binance_upstream import FakeBinanceUpstream
from tickdesk import Engine

ROOT = Path(__file__).resolve().parents[2]
Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def upstream() -> Iterator[FakeBinanceUpstream]:
    with FakeBinanceUpstream(known_symbols={"BTCUSDT"}) as fake:
        yield fake


def _one(m: Metrics, name: str, **labels: str) -> float:
    return m[(name, tuple(sorted(labels.items())))]


def test_statistics_reach_metrics(upstream: FakeBinanceUpstream) -> None:
    feed = FeedConfig(source="binance", symbols=("BTCUSDT",),
                      binance=binance_config(upstream.base_url, stall_timeout_s=60))
    with Engine(make_config(feed=feed)) as engine:
        client = WsClient(engine.url)
        try:
            client.send({"action": "subscribe_ticker", "symbol": "BTCUSDT", "id": "s"})
            client.reply("s")
            assert upstream.wait_until(lambda: upstream.subscribers("btcusdt@aggTrade") == 1)

            def push_and_see(price: int) -> None:
                upstream.push_trade("BTCUSDT", str(price), "0.5")
                client.wait_for(lambda m: m["type"] == "MARKET_UPDATE"
                                and m["price"] == float(price))

            # the first trade since the start waits for the next one to vouch for it
            upstream.push_trade("BTCUSDT", "40000", "0.5")
            for i in range(7):
                push_and_see(40000 + i)
            upstream.push_raw("not json at all")
            wait_until(lambda: _metrics(engine).get(
                ("tickdesk_feed_frames_dropped_total", (("reason", "not_json"),))) == 1,
                what="the dropped frame counted")
            m = _metrics(engine)
            assert _one(m, "tickdesk_feed_trades_total") == 8
            assert _one(m, "tickdesk_feed_frames_decoded_total", kind="trade") == 8
            assert _one(m, "tickdesk_feed_rotations_total") == 0
            assert _one(m, "tickdesk_hub_subscriptions") == 1
            assert _one(m, "tickdesk_hub_symbols_watched") == 1
            assert _one(m, "tickdesk_hub_accounts_connected") == 1  # open mode: "default"
            assert _one(m, "tickdesk_edge_write_timeouts_total") == 0
            assert _one(m, "tickdesk_edge_pending") == 1  # this scrape itself, not upgraded
            assert _one(m, "tickdesk_auth_failures_total") == 0
            assert _one(m, "tickdesk_supervisor_restarts_total", child="feed") == 0
            for actor in ("portfolio", "order_monitor", "feed", "timer-positions"):
                assert _one(m, "tickdesk_actor_messages_dropped_total", actor=actor) == 0
            # the positions timer (every 0.2 s here) keeps firing at the portfolio
            fired = _one(m, "tickdesk_timer_fired_total", timer="positions")
            wait_until(lambda: _one(_metrics(engine), "tickdesk_timer_fired_total",
                                    timer="positions") > fired, what="the timer to fire again")

            # A lost upstream restarts the feed: the Supervisor counts it, and the
            # new FeedActor generation counts its trades from 0.
            assert upstream.drop_all() == 1
            wait_until(lambda: _one(_metrics(engine), "tickdesk_supervisor_restarts_total",
                                    child="feed") == 1, what="the feed restart counted")
            assert upstream.wait_until(lambda: upstream.subscribers("btcusdt@aggTrade") == 1)
            for i in range(3):  # they continue the last trusted trade: routed at once
                push_and_see(41000 + i)
            wait_until(lambda: engine.feed_status()["status"] == "UP", what="the feed UP")
            m = _metrics(engine)
            assert _one(m, "tickdesk_feed_trades_total") == 3
            assert _one(m, "tickdesk_feed_frames_decoded_total", kind="trade") == 11
            assert _one(m, "tickdesk_supervisor_restarts_total", child="portfolio") == 0

            # Every declared field of every source is exported under its own name,
            # and documented.
            documented = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
            for prefix, labels, stats in engine.statistics():
                for name, kind, _help, label, value in samples(stats):
                    full = f"tickdesk_{prefix}_{name}" + ("_total" if kind == "counter" else "")
                    assert f"`{full}" in documented, f"{full} is not in docs/security.md"
                    if label is None:
                        assert (full, tuple(sorted(labels.items()))) in m, full
                    else:
                        assert isinstance(value, dict)
                        assert all((full, tuple(sorted({**labels, label: k}.items()))) in m
                                   for k in value), full
        finally:
            client.close()


@dataclass(frozen=True, slots=True)
class _Toy:
    seen: int = counter("Things seen.")
    by_colour: dict[str, int] = counter("Things by colour.", label="colour")
    level: float = gauge("A level.")


def test_the_collector_makes_one_family_per_field_and_a_sample_per_source() -> None:
    sources = [("toy", {"which": "a"}, _Toy(3, {"red": 1, "blue": 2}, 0.5)),
               ("toy", {"which": "b"}, _Toy(4, {}, 1.5))]
    families = {f.name: f for f in StatisticsCollector(lambda: sources).collect()}
    assert sorted(families) == ["tickdesk_toy_by_colour", "tickdesk_toy_level", "tickdesk_toy_seen"]
    assert families["tickdesk_toy_seen"].type == "counter"
    assert families["tickdesk_toy_level"].type == "gauge"
    got = {(s.name, tuple(sorted(s.labels.items())), s.value)
           for f in families.values() for s in f.samples}
    assert got == {
        ("tickdesk_toy_seen_total", (("which", "a"),), 3),
        ("tickdesk_toy_seen_total", (("which", "b"),), 4),
        ("tickdesk_toy_by_colour_total", (("colour", "blue"), ("which", "a")), 2),
        ("tickdesk_toy_by_colour_total", (("colour", "red"), ("which", "a")), 1),
        ("tickdesk_toy_level", (("which", "a"),), 0.5),
        ("tickdesk_toy_level", (("which", "b"),), 1.5),
    }
    with pytest.raises(TypeError):
        list(samples(_Toy))
