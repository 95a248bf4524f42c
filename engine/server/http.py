"""The HTTP listener: plain routes and WebSocket upgrades on one port.

Edge module. A ``ThreadingTCPServer`` accepts connections; each request is
parsed by a short-lived handler thread. A WebSocket upgrade on a WebSocket
path is checked (origin, token: :class:`UpgradePolicy`) and refused with a
plain HTTP status before any upgrade (401, 403, 404, 503); an accepted one
is handed to ``on_upgrade`` with its socket, which then belongs to the
WebSocket layer (the TCP server does not close it when the handler returns).
Other paths are served from ``routes`` or answered 404.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from engine.errors import TickdeskError

__all__ = ["HttpResponse", "HttpServer", "Refusal", "Route", "UpgradeRequest"]

log = logging.getLogger("tickdesk.http")


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


#: A plain route: takes the request headers and query, returns a response.
Route = Callable[[Mapping[str, str], Mapping[str, list[str]]], HttpResponse]


@dataclass(frozen=True, slots=True)
class UpgradeRequest:
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    peer: str
    environ: dict[str, Any]


class Refusal(TickdeskError):
    """Raised by an upgrade handler to refuse the handshake with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


#: ``on_upgrade(sock, request)``: accept the WebSocket (or raise Refusal).
UpgradeHandler = Callable[[socket.socket, UpgradeRequest], None]


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 owner: HttpServer) -> None:
        self.owner = owner
        self.detached: set[socket.socket] = set()
        self.detached_lock = threading.Lock()
        super().__init__(addr, handler)

    def shutdown_request(self, request: Any) -> None:
        with self.detached_lock:
            if request in self.detached:
                self.detached.discard(request)
                return  # the WebSocket layer owns it now
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _TCPServer

    def log_message(self, format: str, *args: Any) -> None:
        # The request line may carry ?token=...: never log a query string.
        text = (format % args).replace(self.path, urlsplit(self.path).path)
        log.debug("%s %s", self.address_string(), text)

    def do_GET(self) -> None:
        owner = self.server.owner
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        if parts.path in owner.ws_paths:
            if headers.get("upgrade", "").lower() != "websocket":
                self._send(HttpResponse(426, "text/plain", b"WebSocket upgrade required\n",
                                        (("Upgrade", "websocket"),)))
                return
            self._upgrade(parts.path, query, headers)
            return
        route = owner.routes.get(parts.path)
        if route is None:
            self._send(HttpResponse(404, "text/plain", b"not found\n"))
            return
        try:
            resp = route(headers, query)
        except Exception:
            log.exception("route %s failed", parts.path)
            resp = HttpResponse(500, "text/plain", b"internal error\n")
        self._send(resp)

    def _upgrade(self, path: str, query: Mapping[str, list[str]],
                 headers: Mapping[str, str]) -> None:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": urlsplit(self.path).query,
        }
        for name, value in self.headers.items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        peer = f"{self.client_address[0]}:{self.client_address[1]}"
        req = UpgradeRequest(path, query, headers, peer, environ)
        sock: socket.socket = self.request
        self.wfile.flush()
        with self.server.detached_lock:
            self.server.detached.add(sock)
        try:
            self.server.owner.on_upgrade(sock, req)
        except Refusal as refusal:
            with self.server.detached_lock:
                self.server.detached.discard(sock)
            self._send(HttpResponse(refusal.status, "text/plain",
                                    refusal.message.encode() + b"\n"))
            self.close_connection = True
            return
        except Exception:
            with self.server.detached_lock:
                self.server.detached.discard(sock)
            log.exception("WebSocket upgrade failed")
            self.close_connection = True
            return
        self.close_connection = True

    def _send(self, resp: HttpResponse) -> None:
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in resp.headers:
                self.send_header(k, v)
            if resp.status >= 400:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(resp.body)
        except OSError:
            self.close_connection = True


class HttpServer:
    """Listens on ``host:port`` (0 picks a free port; see :attr:`port`)."""

    def __init__(self, host: str, port: int, ws_paths: tuple[str, ...],
                 on_upgrade: UpgradeHandler, routes: Mapping[str, Route] | None = None) -> None:
        self.ws_paths = ws_paths
        self.on_upgrade = on_upgrade
        self.routes: dict[str, Route] = dict(routes or {})
        self._server = _TCPServer((host, port), _Handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name="tickdesk-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting; established WebSockets are closed by their owner."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=2.0)
        self._server.server_close()
