"""``python -m tickdesk.bench.abuse --quick`` as a user runs it: a subprocess writing JSON.

Asserts what each attack must not achieve and what the victims must keep,
never timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("abuse") / "abuse.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tickdesk.bench.abuse", "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=200,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "### victims" in proc.stdout
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _phase(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (phase,) = [p for p in doc["phases"] if p["name"] == name]
    return phase


@pytest.mark.timeout(220)
def test_the_daemon_survives_every_phase_and_exits_0_on_sigterm(doc: dict[str, Any]) -> None:
    names = [p["name"] for p in doc["phases"]]
    assert names == ["baseline", "slowloris", "exhaustion", "rebinding", "guessing", "noisy",
                     "ping_flood"]
    assert all(p["alive"] for p in doc["phases"]) and doc["alive_at_end"]
    assert doc["exit_code"] == 0
    assert doc["tracebacks"] == 0


@pytest.mark.timeout(220)
def test_the_victims_receive_ticks_in_every_phase_and_are_never_dropped(
        doc: dict[str, Any]) -> None:
    for p in doc["phases"]:
        assert p["victims"]["ticks"] > 0, p["name"]
    assert doc["reader_counts"]["open"] == doc["plan"]["readers"]
    assert not any(k.startswith("closed_") for k in doc["reader_counts"]), doc["reader_counts"]
    assert doc["trader_counts"]["orders"] > 0
    assert set(doc["trader_counts"]) == {"orders"}, doc["trader_counts"]  # all NEW, CANCELED


@pytest.mark.timeout(220)
def test_slowloris_is_cut_at_accept_and_timed_out_408(doc: dict[str, Any]) -> None:
    o = _phase(doc, "slowloris")["outcome"]
    # beyond the per-IP pending cap: closed without a word (late, on a loaded machine)
    assert o.get("closed_at_accept", 0) + o.get("closed_silently", 0) > 0
    assert o["408"] > 0  # the head never completed within handshake_timeout_s


@pytest.mark.timeout(220)
def test_after_the_exhaustion_a_new_client_connects(doc: dict[str, Any]) -> None:
    o = _phase(doc, "exhaustion")["outcome"]
    assert o["ws_upgraded"] > 0 and o["idle_opened"] > 0
    assert o["new_client_after_leave_s"] is not None


@pytest.mark.timeout(220)
def test_every_rebinding_request_is_refused_and_places_no_order(doc: dict[str, Any]) -> None:
    o = _phase(doc, "rebinding")["outcome"]
    statuses = {row["request"]: row["status"] for row in o["requests"]}
    assert len(statuses) == 7
    for request, status in statuses.items():
        expected = "403" if "Host 127.0.0.1" in request else "421"
        assert status == expected, (request, status)
    assert o["orders_placed"] == 0
    assert not any(row["order_answered"] for row in o["requests"])


@pytest.mark.timeout(220)
def test_token_guesses_end_in_429_and_the_right_token_still_works(doc: dict[str, Any]) -> None:
    o = _phase(doc, "guessing")["outcome"]
    st = o["statuses"]
    burst, refill = 10, 0.2  # server.auth_failure_burst and _rate_per_s, per address
    # the burst of every address, plus what refilled while a slow machine guessed
    assert burst * o["processes"] <= st["401"] <= o["processes"] * (
        burst + 1 + refill * o["seconds"])
    assert st["429"] == o["guesses"] - st["401"]  # every guess past the burst, nothing else
    assert o["auth_failures_total"] == st["401"]
    # one line per 10 s interval, not one per guess
    assert 1 <= o["log_lines"] <= 1 + o["seconds"] // 10
    assert o["right_token_other_address"] is True
    assert o["right_token_same_address_after_s"] is not None  # once its bucket refilled


@pytest.mark.timeout(220)
def test_the_flood_is_answered_and_a_ping_flood_closes_1008_within_its_budget(
        doc: dict[str, Any]) -> None:
    answers = _phase(doc, "noisy")["outcome"]["answers"]
    assert answers["sent"] > 0 and "closed" not in answers
    ping = _phase(doc, "ping_flood")["outcome"]
    assert ping["close_code"] == 1008
    assert 0 < ping["pongs"] <= ping["budget"]
