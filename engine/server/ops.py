"""Operations endpoints: ``GET /healthz`` and ``GET /metrics`` on the server's port.

Edge module. :class:`TransportStats` is told when each WebSocket transport
opens and closes, keeps the live channels and adds the counters of closed
ones to running totals, so a scrape sees every channel exactly once.

* ``/healthz``: JSON ``{"status": "ok"|"degraded"|"failing", "reasons": [...],
  "feed": {...FEED_STATUS}, "actors": {name: {...}}, "store": {...},
  "connections": n, "uptimeS": s}``. HTTP **503** with ``status = "failing"``
  while :func:`engine.health.reasons` gives any reason (the feed is ``DOWN``,
  an actor is crash-looping or escalated, the store cannot write); otherwise
  200, ``ok`` while the feed is ``UP`` and ``degraded`` while it reconnects.
* ``/metrics``: Prometheus text exposition (``prometheus-client``), from a
  registry of this engine only (several engines in one process never clash):
  the snapshot's gauges and counters (``tickdesk_healthy`` among them); every
  ``statistics()`` the engine lists, read at scrape time by
  :class:`StatisticsCollector` (each declared field of those dataclasses is
  one metric, see :mod:`engine.stats`: actor restarts by actor and store
  errors by kind among them); and what :class:`EngineMetrics` counts as it
  happens (ORDER_UPDATEs by execution type, the tick fan-out latency).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from engine.health import ActorHealth, reasons
from engine.protocol.enums import CloseCode, ExecutionType
from engine.server.channel import SocketChannel
from engine.server.http import HttpResponse, Route
from engine.stats import samples
from engine.store_health import StoreHealthSnapshot

__all__ = [
    "FEED_STATES",
    "TICK_LATENCY_BUCKETS",
    "EngineMetrics",
    "OpsSnapshot",
    "StatisticsCollector",
    "StatisticsSource",
    "TransportStats",
    "healthz_route",
    "metrics_route",
]

FEED_STATES = ("UP", "RECONNECTING", "DOWN")

#: Seconds; a loopback fan-out to a handful of clients takes tens of µs.
TICK_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                        0.1, 0.25, 0.5, 1.0, 2.5)


class EngineMetrics:
    """The metrics counted as events happen, in this engine's own registry.

    :meth:`order_event` and :meth:`tick_latency` are thread-safe and cheap
    (one lock each, inside prometheus-client)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._orders = Counter(
            "tickdesk_order_updates", "ORDER_UPDATEs announced, by execution type.",
            ["execution_type"], registry=self.registry)
        for kind in ExecutionType:  # every series present from the start, at 0
            self._orders.labels(kind.value)
        self._latency = Histogram(
            "tickdesk_tick_fanout_seconds",
            "Per published trade: from its receipt by the engine to the end of its fan-out "
            "(MARKET_UPDATE to every subscriber, tick to the order monitor and portfolio).",
            buckets=TICK_LATENCY_BUCKETS, registry=self.registry)

    def order_event(self, execution_type: str) -> None:
        self._orders.labels(execution_type).inc()

    def tick_latency(self, seconds: float) -> None:
        self._latency.observe(max(0.0, seconds))


class TransportStats:
    """Live socket channels plus totals of the closed ones (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, SocketChannel] = {}
        self._sent = 0
        self._conflated = 0
        self._evictions: dict[int, int] = {CloseCode.SLOW_CONSUMER: 0, CloseCode.WRITE_TIMEOUT: 0}
        self._closed = 0

    def opened(self, ch: SocketChannel) -> None:
        with self._lock:
            self._live[ch.conn_id] = ch

    def closed(self, ch: SocketChannel) -> None:
        with self._lock:
            if self._live.pop(ch.conn_id, None) is None:
                return
            self._closed += 1
            self._sent += ch.frames_sent
            self._conflated += ch.conflated
            if ch.close_code in self._evictions:
                self._evictions[ch.close_code] += 1

    def totals(self) -> tuple[int, int, int, dict[int, int], int]:
        """(live, frames sent, conflated, evictions by close code, closed) so far."""
        with self._lock:
            live = list(self._live.values())
            sent = self._sent + sum(ch.frames_sent for ch in live)
            conflated = self._conflated + sum(ch.conflated for ch in live)
            return len(live), sent, conflated, dict(self._evictions), self._closed


@dataclass(frozen=True, slots=True)
class OpsSnapshot:
    """Everything the two endpoints show, read at one moment."""

    feed: Mapping[str, Any]
    connections: int
    sessions: int
    messages_sent: int
    conflated: int
    evictions: Mapping[int, int]
    refused: int
    uptime_s: float
    #: Each supervised actor, judged by :func:`engine.health.assess`.
    actors: Mapping[str, ActorHealth] = field(default_factory=dict)
    store: StoreHealthSnapshot = field(default_factory=lambda: StoreHealthSnapshot(True))
    #: ``supervisor.restart_window_s``, quoted in the reasons.
    restart_window_s: float = 300.0

    def reasons(self) -> list[str]:
        """Why the engine is unhealthy; empty when it is healthy."""
        return reasons(self.actors, self.feed, self.store.writable, self.store.last_error,
                       self.restart_window_s)


def healthz_route(snapshot: Callable[[], OpsSnapshot]) -> Route:
    def healthz(_headers: Mapping[str, str], _query: Mapping[str, list[str]]) -> HttpResponse:
        snap = snapshot()
        why = snap.reasons()
        status = "failing" if why else "ok" if snap.feed.get("status") == "UP" else "degraded"
        body = {
            "status": status,
            "reasons": why,
            "feed": dict(snap.feed),
            "actors": {
                name: {"restarts": a.restarts, "recentFailures": a.recent_failures,
                       "crashLooping": a.crash_looping, "escalated": a.escalated,
                       "lastFailure": a.last_reason}
                for name, a in sorted(snap.actors.items())
            },
            "store": {"writable": snap.store.writable, "lastError": snap.store.last_error,
                      "errors": dict(snap.store.errors)},
            "connections": snap.connections,
            "uptimeS": round(snap.uptime_s, 3),
        }
        return HttpResponse(503 if why else 200, "application/json", orjson.dumps(body))

    return healthz


class _Collector:
    def __init__(self, snapshot: Callable[[], OpsSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        snap = self._snapshot()
        yield GaugeMetricFamily("tickdesk_connections", "Live WebSocket connections.",
                                value=snap.connections)
        yield GaugeMetricFamily("tickdesk_sessions",
                                "Live sessions (WebSocket and in-process).", value=snap.sessions)
        yield CounterMetricFamily("tickdesk_messages_sent",
                                  "Frames written to WebSocket clients.",
                                  value=snap.messages_sent)
        yield CounterMetricFamily("tickdesk_market_updates_conflated",
                                  "MARKET_UPDATEs replaced by a newer one for a slow client.",
                                  value=snap.conflated)
        ev = CounterMetricFamily("tickdesk_evictions",
                                 "Slow clients closed (4001 queue limit, 4002 write timeout).",
                                 labels=["code"])
        for code, n in sorted(snap.evictions.items()):
            ev.add_metric([str(code)], n)
        yield ev
        yield CounterMetricFamily("tickdesk_handshakes_refused",
                                  "Handshakes refused by the connection limits (HTTP 503).",
                                  value=snap.refused)
        feed = GaugeMetricFamily("tickdesk_feed_status",
                                 "1 for the feed's current status, 0 for the others.",
                                 labels=["feed", "status"])
        name = str(snap.feed.get("feed", ""))
        for state in FEED_STATES:
            feed.add_metric([name, state], 1 if snap.feed.get("status") == state else 0)
        yield feed
        yield GaugeMetricFamily("tickdesk_uptime_seconds", "Seconds since the engine started.",
                                value=snap.uptime_s)
        yield GaugeMetricFamily("tickdesk_healthy", "1 while /healthz answers 200, else 0.",
                                value=0 if snap.reasons() else 1)


#: ``(prefix, labels, statistics)``: one object's ``statistics()`` dataclass, exported
#: as ``tickdesk_<prefix>_<field>{labels}``; several sources may share a prefix
#: (one family per field name, a sample per source).
StatisticsSource = tuple[str, Mapping[str, str], object]


class StatisticsCollector:
    """Turns the statistics dataclasses of :mod:`engine.stats` into metric families.

    ``read`` is called once per scrape (on the HTTP handler thread) and returns
    the sources to export; a source that has none now (an actor down) is simply
    left out of the list."""

    def __init__(self, read: Callable[[], Iterable[StatisticsSource]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for prefix, labels, stats in self._read():
            for name, kind, help_text, label, value in samples(stats):
                full = f"tickdesk_{prefix}_{name}"
                names = [*labels, *([label] if label else [])]
                family = families.get(full)
                if family is None:
                    make = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                    family = families[full] = make(full, help_text, labels=names)
                if isinstance(value, Mapping):
                    for key, v in sorted(value.items()):
                        family.add_metric([*labels.values(), key], v)
                else:
                    family.add_metric(list(labels.values()), value)
        yield from families.values()


def metrics_route(snapshot: Callable[[], OpsSnapshot],
                  counted: EngineMetrics | None = None,
                  statistics: Callable[[], Iterable[StatisticsSource]] | None = None) -> Route:
    registry = counted.registry if counted is not None else CollectorRegistry(auto_describe=False)
    registry.register(_Collector(snapshot))
    if statistics is not None:
        registry.register(StatisticsCollector(statistics))

    def metrics(_headers: Mapping[str, str], _query: Mapping[str, list[str]]) -> HttpResponse:
        return HttpResponse(200, CONTENT_TYPE_LATEST, generate_latest(registry))

    return metrics
