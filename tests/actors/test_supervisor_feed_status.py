"""FEED_STATUS from the Supervisor: UP on start or when the child says so, never stale."""

from __future__ import annotations

import queue
from typing import Any

import pykka

import tickdesk.app  # noqa: F401  (first: importing actors.* first hits a pre-existing import cycle)
from actors.base import ActorSlot, TickdeskActor
from actors.supervisor import ChildSpec, FeedStatusReport, Supervisor, SupervisorLink
from engine.backoff import BackoffPolicy
from engine.clock import SystemClock
from tests.feeds.helpers import wait_until


class _Child(TickdeskActor):
    pass


def _run(up_on_start: bool) -> tuple[pykka.ActorRef[Any], queue.Queue[FeedStatusReport],
                                     list[SupervisorLink]]:
    reports: queue.Queue[FeedStatusReport] = queue.Queue()
    links: list[SupervisorLink] = []

    def factory(link: SupervisorLink, gen: int) -> pykka.ActorRef[Any]:
        links.append(link)
        return _Child.start("feed", link, gen)

    policy = BackoffPolicy(min_s=0.01, max_s=0.02, jitter=0.0)
    sup = Supervisor.start([ChildSpec("feed", ActorSlot("feed"), factory, up_on_start)],
                           policy, SystemClock(), on_feed_status=reports.put)
    return sup, reports, links


def test_up_on_start_reports_up_at_once() -> None:
    sup, reports, _ = _run(up_on_start=True)
    try:
        assert reports.get(timeout=5).status == "UP"
    finally:
        sup.stop()


def test_child_reported_up_and_stale_generations_ignored() -> None:
    sup, reports, links = _run(up_on_start=False)
    try:
        first = reports.get(timeout=5)
        assert (first.status, first.attempt, first.reason) == ("RECONNECTING", 0, "connecting")
        link = links[0]
        link.up("feed", 0)
        assert reports.get(timeout=5).status == "UP"
        link("feed", 0, "upstream closed (1006)")
        failed = reports.get(timeout=5)
        assert (failed.status, failed.attempt, failed.reason) == (
            "RECONNECTING", 1, "upstream closed (1006)")
        assert failed.retry_in_ms == 10
        wait_until(lambda: len(links) == 2, what="the restart")
        link.up("feed", 0)  # the dead generation: ignored
        link.up("feed", 1)  # the restarted child
        up = reports.get(timeout=5)
        assert up.status == "UP"
        assert reports.empty()
    finally:
        sup.stop()
