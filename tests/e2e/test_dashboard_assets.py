"""The desk's files over HTTP: the vendored chart library with its licence, the one
inline style the policy allows (by hash), and the fee rate written into the page."""

from __future__ import annotations

import base64
import hashlib
import re
from decimal import Decimal
from importlib import resources

from engine.config import TradingConfig
from engine.dashboard import CHART_LIBRARY, CHART_STYLE_HASH
from tests.conftest import make_config
from tests.e2e.test_dashboard_http import get
from tickdesk import Engine

LIB = "/static/vendor/lightweight-charts.standalone.production.js"


def _vendored() -> str:
    path = resources.files("engine").joinpath(
        "static/vendor/lightweight-charts.standalone.production.js")
    return path.read_text(encoding="utf-8")


def test_the_chart_library_is_served_with_its_licence(engine: Engine) -> None:
    status, headers, body = get(engine, LIB)
    assert status == 200 and headers["content-type"] == "text/javascript; charset=utf-8"
    name, version = CHART_LIBRARY
    head = body[:300].decode()
    assert f"Lightweight Charts™ v{version}" in head and "Apache License 2.0" in head
    assert name == "lightweight-charts"
    status, headers, licence = get(engine, "/static/vendor/lightweight-charts.LICENSE.txt")
    assert status == 200 and headers["content-type"] == "text/plain; charset=utf-8"
    assert b"Apache License" in licence and b"Version 2.0" in licence
    _, _, page = get(engine, "/")
    scripts = re.findall(rb'<script src="([^"]+)" defer></script>', page)
    assert scripts == [LIB.encode(), b"/static/desk.js", b"/static/app.js"]   # in this order


def test_the_policy_allows_exactly_the_librarys_one_inline_style(engine: Engine) -> None:
    styles = re.findall(r'createElement\("style"\),this\.\w+\.innerText="([^"]*)"', _vendored())
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert f"sha256-{digest}" == CHART_STYLE_HASH, f"update CHART_STYLE_HASH to sha256-{digest}"
    _, headers, _ = get(engine, "/")
    policy = headers["content-security-policy"]
    assert f"style-src 'self' '{CHART_STYLE_HASH}';" in policy
    assert "unsafe" not in policy


def test_the_page_carries_the_engines_fee_rate() -> None:
    with Engine(make_config(trading=TradingConfig(fee_bps=Decimal("7.5")))) as engine:
        _, _, page = get(engine, "/")
    assert re.findall(rb'<meta name="tickdesk-fee-bps" content="([^"]*)">', page) == [b"7.5"]
