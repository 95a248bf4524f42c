"""The dashboard: the static page (HTML, CSS, JavaScript) the daemon serves at ``/``.

Edge module. The files live in ``engine/static/`` (shipped as package data)
and are read once, when the routes are built. Only the files of
:data:`STATIC_FILES` are served, each on its one exact path, so no request
path ever reaches the file system (no traversal, no directory listing).

``index.html`` carries the symbol rule (:data:`engine.protocol.symbols.SYMBOL_PATTERN`)
in a ``<meta name="tickdesk-symbol-pattern">`` the daemon fills in when it
reads the file, so the page checks symbols by the server's one rule and keeps
no copy of it; likewise the fee rate (``trading.fee_bps``) in
``<meta name="tickdesk-fee-bps">``, for the order ticket's fee estimate.

The chart is TradingView's lightweight-charts, vendored unmodified in
``engine/static/vendor/`` with its licence (Apache-2.0) and served from here
like our own files (no CDN). Its attribution logo adds one inline ``<style>``
element; the Content-Security-Policy allows exactly that element by its hash
(:data:`CHART_STYLE_HASH`) and no other inline style.

Every response carries ``Connection: close``: a stopped engine then keeps no
idle keep-alive connection (and no handler thread) of a browser alive, and a
browser always reaches the engine that listens now.
The page is a client of the WebSocket endpoint like any other; see
``docs/dashboard.md``.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from decimal import Decimal
from importlib import resources

from engine.protocol.symbols import SYMBOL_PATTERN
from engine.server.http import HttpResponse, Route

__all__ = ["CHART_LIBRARY", "CHART_STYLE_HASH", "SECURITY_HEADERS", "STATIC_FILES",
           "dashboard_routes"]

log = logging.getLogger("tickdesk.dashboard")

#: URL path -> (file in ``engine/static``, content type).
STATIC_FILES: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
    "/static/favicon.svg": ("favicon.svg", "image/svg+xml"),
    # -- the desk (issue 17): the chart library, vendored, and the panels' scripts --
    "/static/vendor/lightweight-charts.standalone.production.js": (
        "vendor/lightweight-charts.standalone.production.js", "text/javascript; charset=utf-8"),
    "/static/vendor/lightweight-charts.LICENSE.txt": (
        "vendor/lightweight-charts.LICENSE.txt", "text/plain; charset=utf-8"),
    "/static/desk.js": ("desk.js", "text/javascript; charset=utf-8"),
}

#: The vendored chart library: npm package and version (README, docs/dashboard.md).
CHART_LIBRARY = ("lightweight-charts", "5.2.1")

#: CSP hash of the one inline ``<style>`` lightweight-charts 5.2.1 adds (the
#: position of its attribution logo); a test recomputes it from the vendored file.
CHART_STYLE_HASH = "sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY="

#: Sent with every dashboard file: nothing but our own files and our own WebSocket.
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy",
     "default-src 'none'; script-src 'self'; "
     f"style-src 'self' '{CHART_STYLE_HASH}'; img-src 'self'; "
     "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Connection", "close"),
)


#: Placeholders in the dashboard's files -> what the daemon writes in their place.
_VALUES: dict[bytes, bytes] = {
    b"{{symbol_pattern}}": html.escape(SYMBOL_PATTERN).encode(),
}


def _fill(body: bytes, fee_bps: Decimal) -> bytes:
    values = {**_VALUES, b"{{fee_bps}}": html.escape(str(fee_bps)).encode()}
    for placeholder, value in values.items():
        body = body.replace(placeholder, value)
    return body


def _serve(body: bytes, content_type: str) -> Route:
    response = HttpResponse(200, content_type, body, SECURITY_HEADERS)

    def route(_headers: Mapping[str, str], _query: Mapping[str, list[str]]) -> HttpResponse:
        return response

    return route


def dashboard_routes(fee_bps: Decimal = Decimal(10)) -> dict[str, Route]:
    """The routes of the dashboard's files (a missing file is logged and not served);
    ``fee_bps``: the engine's ``trading.fee_bps``, written into the page."""
    static = resources.files("engine").joinpath("static")
    routes: dict[str, Route] = {}
    for path, (name, content_type) in STATIC_FILES.items():
        try:
            body = static.joinpath(name).read_bytes()
        except OSError:
            log.warning("dashboard file %s is missing; %s is not served", name, path)
            continue
        routes[path] = _serve(_fill(body, fee_bps) if name == "index.html" else body,
                              content_type)
    return routes
