"""The dashboard: the static page (HTML, CSS, JavaScript) the daemon serves at ``/``.

Edge module. The files live in ``engine/static/`` (shipped as package data)
and are read once, when the routes are built. Only the files of
:data:`STATIC_FILES` are served, each on its one exact path, so no request
path ever reaches the file system (no traversal, no directory listing).

``index.html`` carries the symbol rule (:data:`engine.protocol.symbols.SYMBOL_PATTERN`)
in a ``<meta name="tickdesk-symbol-pattern">`` the daemon fills in when it
reads the file, so the page checks symbols by the server's one rule and keeps
no copy of it.

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
from importlib import resources

from engine.protocol.symbols import SYMBOL_PATTERN
from engine.server.http import HttpResponse, Route

__all__ = ["SECURITY_HEADERS", "STATIC_FILES", "dashboard_routes"]

log = logging.getLogger("tickdesk.dashboard")

#: URL path -> (file in ``engine/static``, content type).
STATIC_FILES: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
    "/static/favicon.svg": ("favicon.svg", "image/svg+xml"),
}

#: Sent with every dashboard file: nothing but our own files and our own WebSocket.
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
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


def _fill(body: bytes) -> bytes:
    for placeholder, value in _VALUES.items():
        body = body.replace(placeholder, value)
    return body


def _serve(body: bytes, content_type: str) -> Route:
    response = HttpResponse(200, content_type, body, SECURITY_HEADERS)

    def route(_headers: Mapping[str, str], _query: Mapping[str, list[str]]) -> HttpResponse:
        return response

    return route


def dashboard_routes() -> dict[str, Route]:
    """The routes of the dashboard's files (a missing file is logged and not served)."""
    static = resources.files("engine").joinpath("static")
    routes: dict[str, Route] = {}
    for path, (name, content_type) in STATIC_FILES.items():
        try:
            body = static.joinpath(name).read_bytes()
        except OSError:
            log.warning("dashboard file %s is missing; %s is not served", name, path)
            continue
        routes[path] = _serve(_fill(body), content_type)
    return routes
