"""The dashboard's files over plain HTTP: an allow-list, exact content types, no traversal."""

from __future__ import annotations

import html
import http.client
import re

import pytest

from engine.dashboard import STATIC_FILES, dashboard_routes
from engine.protocol.symbols import SYMBOL_PATTERN
from tickdesk import Engine


def get(engine: Engine, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", engine.port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize(("path", "content_type"), [
    ("/", "text/html; charset=utf-8"),
    ("/?utm=x", "text/html; charset=utf-8"),
    ("/static/app.js", "text/javascript; charset=utf-8"),
    ("/static/app.css", "text/css; charset=utf-8"),
    ("/static/favicon.svg", "image/svg+xml"),
])
def test_serves_each_file_with_its_content_type(engine: Engine, path: str,
                                                content_type: str) -> None:
    status, headers, body = get(engine, path)
    assert status == 200
    assert headers["content-type"] == content_type
    assert int(headers["content-length"]) == len(body) > 0
    assert headers["x-content-type-options"] == "nosniff"
    assert "connect-src 'self'" in headers["content-security-policy"]
    assert headers["connection"] == "close"


def test_the_page_links_its_assets_and_derives_the_socket_url(engine: Engine) -> None:
    _, _, page = get(engine, "/")
    for asset in ("/static/app.js", "/static/app.css", "/static/favicon.svg"):
        assert asset.encode() in page
    _, _, js = get(engine, "/static/app.js")
    assert b"location.host}/api/ws/realtime" in js
    # No CDN, works offline: nothing outside this origin (the SVG namespace aside).
    assert b"http" not in page
    assert set(re.findall(rb"https?://[^\s\"'`]*", js)) == {b"http://www.w3.org/2000/svg"}


def test_the_page_carries_the_servers_symbol_rule_and_the_script_no_copy(
        engine: Engine) -> None:
    _, _, page = get(engine, "/")
    found = re.findall(rb'<meta name="tickdesk-symbol-pattern" content="([^"]*)">', page)
    assert found == [html.escape(SYMBOL_PATTERN).encode()]
    assert b"{{" not in page
    _, _, js = get(engine, "/static/app.js")
    assert b"tickdesk-symbol-pattern" in js
    assert b"A-Z0-9" not in js and b"{2,20}" not in js


@pytest.mark.parametrize("path", [
    "/static/", "/static", "/static/../pyproject.toml", "/static/%2e%2e/app.py",
    "/static/../../etc/passwd", "/index.html", "/static/index.html", "/tickdesk/app.py",
    "/static/app.js/", "/static//app.js", "/STATIC/APP.JS", "/favicon.ico",
])
def test_anything_else_is_404(engine: Engine, path: str) -> None:
    status, _, body = get(engine, path)
    assert status == 404 and body == b"not found\n"


def test_every_listed_file_ships() -> None:
    routes = dashboard_routes()
    assert set(routes) == set(STATIC_FILES)
    for path in STATIC_FILES:
        assert routes[path]({}, {}).status == 200
