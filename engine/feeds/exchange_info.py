"""Loads symbols' exchange information from Binance's REST API.

Edge module (HTTP): runs in the caller's thread — the Engine's at start, a
short-lived loader thread when the FeedActor adds a symbol live — never in
an actor's message loop. ``GET {rest_url}/api/v3/exchangeInfo?symbols=[...]``
is parsed by the pure :func:`engine.market.symbol_info.parse_exchange_info`.

Bounds: every request has ``timeout_s``; a request that fails for a reason
worth retrying (connection error, timeout, HTTP 429, 418 or 5xx, a body that
is not exchangeInfo) is tried at most ``attempts`` times in all, waiting
``backoff_s`` doubling between tries. Binance answers the whole request with
HTTP 400 when one of the symbols is unknown, so a 400 for a list is retried
once per symbol (at most :data:`MAX_SYMBOLS` symbols a call); a 400 for one
symbol means that symbol is unknown and is not retried. Symbols that could not
be loaded are simply absent from the result.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable

from engine.errors import TickdeskError
from engine.market.symbol_info import SymbolInfo, SymbolInfoError, parse_exchange_info

__all__ = ["MAX_SYMBOLS", "fetch_exchange_info"]

log = logging.getLogger("tickdesk.exchange_info")

#: Most symbols one call loads (Binance serves at most 1024 streams a connection).
MAX_SYMBOLS = 512
#: Largest response body read (a few symbols' filters are a few kB).
_MAX_BODY = 4 * 1024 * 1024


class _Retry(TickdeskError):
    """A failure worth another try."""


class _Refused(TickdeskError):
    """HTTP 400: Binance does not know (one of) the symbols."""


def _get(url: str, timeout_s: float) -> dict[str, SymbolInfo]:
    req = urllib.request.Request(url, headers={"Accept": "application/json",
                                               "User-Agent": "tickdesk"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            body = resp.read(_MAX_BODY + 1)
    except urllib.error.HTTPError as exc:
        if exc.code == 400:
            raise _Refused(str(exc)) from None
        if exc.code in (418, 429) or exc.code >= 500:
            raise _Retry(f"HTTP {exc.code}") from None
        raise _Refused(f"HTTP {exc.code}") from None
    except (OSError, ValueError) as exc:  # URLError, timeouts, resets, bad URLs
        raise _Retry(str(exc)) from None
    if len(body) > _MAX_BODY:
        raise _Retry("response too large")
    try:
        return parse_exchange_info(json.loads(body), source="exchange")
    except (ValueError, SymbolInfoError) as exc:
        raise _Retry(f"not an exchangeInfo document: {exc}") from None


def _url(rest_url: str, symbols: list[str]) -> str:
    query = urllib.parse.urlencode({"symbols": json.dumps(symbols, separators=(",", ":"))})
    return f"{rest_url.rstrip('/')}/api/v3/exchangeInfo?{query}"


def _with_retries(url: str, timeout_s: float, attempts: int, backoff_s: float,
                  sleep: Callable[[float], None]) -> dict[str, SymbolInfo] | None:
    """The parsed answer, None after ``attempts`` retryable failures; raises _Refused."""
    delay = backoff_s
    for attempt in range(1, attempts + 1):
        try:
            return _get(url, timeout_s)
        except _Retry as exc:
            log.warning("exchangeInfo: attempt %d/%d failed: %s", attempt, attempts, exc)
            if attempt < attempts:
                sleep(delay)
                delay *= 2
    return None


def fetch_exchange_info(
    rest_url: str,
    symbols: Iterable[str],
    *,
    timeout_s: float = 5.0,
    attempts: int = 3,
    backoff_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, SymbolInfo]:
    """The exchange info of those ``symbols`` Binance knows (see the module
    docstring for timeouts, retries and what is left out)."""
    wanted = sorted(set(symbols))[:MAX_SYMBOLS]
    if not wanted:
        return {}
    try:
        found = _with_retries(_url(rest_url, wanted), timeout_s, attempts, backoff_s, sleep)
    except _Refused:
        found = None
        if len(wanted) > 1:
            found = {}
            for symbol in wanted:
                try:
                    one = _with_retries(_url(rest_url, [symbol]), timeout_s, attempts,
                                        backoff_s, sleep)
                except _Refused:
                    log.warning("exchangeInfo: Binance does not know %s", symbol)
                    continue
                if one is not None:
                    found.update(one)
    if found is None:
        return {}
    return {s: found[s] for s in wanted if s in found}
