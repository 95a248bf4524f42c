"""HTTP vocabulary of the edge: responses, routes, the upgrade request, the Host and Origin rules.

Edge module, pure functions and data (the I/O thread in
:mod:`engine.server.edge` uses them; nothing here reads a socket).

* :class:`HttpResponse` / :data:`Route`: what a plain route returns.
* :class:`UpgradeRequest` / :class:`Refusal`: what an upgrade handler sees,
  and how it refuses with an HTTP status (401, 403, 429, 503...).
* :class:`HostPolicy`: the server's own names. A request whose ``Host`` is
  not one of them is answered 421 on every path (DNS rebinding: an attacker's
  page reaches the daemon under the attacker's name); a browser's ``Origin``
  must name one of them, on the server's port, or be listed in
  ``server.allowed_origins``. The request's own ``Host`` is never trusted
  for the Origin check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from engine.errors import TickdeskError

__all__ = [
    "LOOPBACK_NAMES",
    "ApiHandler",
    "ApiRequest",
    "ApiSite",
    "HostPolicy",
    "HttpResponse",
    "Refusal",
    "Route",
    "UpgradeRequest",
    "host_name",
    "raw_response",
    "reason_phrase",
]


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


#: A plain route: takes the request headers and query, returns a response.
Route = Callable[[Mapping[str, str], Mapping[str, list[str]]], HttpResponse]


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One request under an API prefix, with its raw query and body (signatures
    are computed over them as sent)."""

    method: str
    path: str
    #: The query string as sent (without ``?``), percent-encoded.
    query: str
    body: bytes
    #: Header names lower-cased; a repeated header keeps its last value.
    headers: Mapping[str, str]
    peer: str


#: An API handler: runs on the API workers (it may wait for the engine).
ApiHandler = Callable[[ApiRequest], HttpResponse]


@dataclass(frozen=True, slots=True)
class ApiSite:
    """Requests whose path starts with ``prefix`` (any of GET, HEAD, POST, PUT,
    DELETE) go to ``handler`` on ``workers`` threads, at most ``max_waiting``
    queued (beyond: ``busy``); a body larger than ``max_body_bytes`` is
    answered 413 and the connection closed."""

    prefix: str
    handler: ApiHandler
    busy: HttpResponse
    max_body_bytes: int = 65536
    workers: int = 4
    max_waiting: int = 64


@dataclass(frozen=True, slots=True)
class UpgradeRequest:
    path: str
    query: Mapping[str, list[str]]
    #: Header names lower-cased; a repeated header keeps its last value.
    headers: Mapping[str, str]
    peer: str


class Refusal(TickdeskError):
    """Raised by an upgrade handler to refuse the handshake with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_REASONS = {
    101: "Switching Protocols", 200: "OK", 204: "No Content", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 413: "Content Too Large", 414: "URI Too Long",
    421: "Misdirected Request", 426: "Upgrade Required", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 503: "Service Unavailable", 505: "HTTP Version Not Supported",
}


def reason_phrase(status: int) -> str:
    return _REASONS.get(status, "Error")


def raw_response(status: int, message: str) -> bytes:
    """A complete ``Connection: close`` error response, for when the request
    could not be parsed (so no HTTP state machine can frame the answer)."""
    body = (message + "\n").encode()
    head = (f"HTTP/1.1 {status} {reason_phrase(status)}\r\n"
            "Content-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n")
    return head.encode("latin-1") + body


#: Always the server's own names (clients on this machine).
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def host_name(value: str) -> str:
    """``Host`` header (or an origin's netloc) without its port, lower-cased;
    IPv6 literals keep their brackets (``[::1]``)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end > 0 else value
    name, sep, port = value.rpartition(":")
    if sep and port.isdigit():
        return name
    return value


class HostPolicy:
    """The server's names and the origins it accepts (see the module docstring).

    ``hosts`` may contain ``"*"``: any Host is then accepted (for a daemon
    behind a proxy that checks names itself; rebinding is then its job)."""

    def __init__(self, hosts: Iterable[str], origins: Iterable[str], port: int) -> None:
        hosts = tuple(hosts)
        names = {host_name(h) for h in hosts if h != "*"}
        self._any = "*" in hosts
        self.names = frozenset(n for n in names if n)
        self.origins = frozenset(o.lower().rstrip("/") for o in origins)
        #: The listening port (set once bound, when the configured port is 0).
        self.port = port

    @classmethod
    def for_server(cls, host: str, hosts: Iterable[str], origins: Iterable[str],
                   port: int) -> HostPolicy:
        """``hosts`` (``server.allowed_hosts``, by default :data:`LOOPBACK_NAMES`)
        plus the configured listening host unless it is a wildcard address."""
        own = [] if host in ("", "0.0.0.0", "::") else [f"[{host}]" if ":" in host else host]
        return cls((*hosts, *own), origins, port)

    def host_allowed(self, host_header: str | None) -> bool:
        if self._any:
            return True
        if not host_header:
            return False
        return host_name(host_header) in self.names

    def origin_allowed(self, origin: str) -> bool:
        """A browser's Origin: listed, or one of our names on our port."""
        origin = origin.strip().lower().rstrip("/")
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            return False
        try:
            port = parts.port
        except ValueError:
            return False
        if port is None:
            port = 443 if parts.scheme == "https" else 80
        name = host_name(parts.netloc)
        return port == self.port and name in self.names
