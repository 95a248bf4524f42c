"""The Binance-compatible REST API: routing, signing, weights and the answers.

Edge module; :meth:`BinanceApi.handle` runs on the edge's API workers
(``tickdesk-api-N``, :class:`~engine.server.http.ApiSite`), never on the I/O
thread: an order waits for the engine. What it does per request:

1. finds the endpoint in :data:`engine.binance.endpoints.ENDPOINTS` (404 /
   405 otherwise; HEAD is GET);
2. takes its weight from the caller's IP budget (429, -1003, ``Retry-After``
   beyond ``server.api_weight_per_minute``); every answer carries
   ``X-MBX-USED-WEIGHT-1M``;
3. refuses a browser's request from another site (an ``Origin`` that is not
   one of the server's: 403, -1002), then checks the API key and, for SIGNED
   endpoints, ``timestamp``/``recvWindow`` and the HMAC signature
   (:mod:`engine.binance.signing`);
4. runs the endpoint: market data from the :class:`MarketView`, account
   commands through the :class:`Gateway`, i.e. the same ConnectionActor ->
   OrderMonitorActor / PortfolioActor path as a WebSocket client, so REST
   orders are the orders the dashboard and the WebSocket clients see.

Open mode (no accounts): every request acts on ``default``; keys and
signatures are not checked (there is no secret to check them against), the
timestamp window still is.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import orjson

from engine.binance import openapi
from engine.binance import translate as tr
from engine.binance.endpoints import ENDPOINTS, Endpoint, Security, by_route
from engine.binance.errors import (
    DISCONNECTED,
    INVALID_LISTEN_KEY,
    BinanceError,
    bad_param,
    mandatory,
)
from engine.binance.listen_keys import ListenKeyLimit
from engine.binance.signing import ApiKey, check_timestamp, verify_key, verify_signature
from engine.binance.weights import WeightBook
from engine.market.recent_trades import RecentTrade, TradesQuery
from engine.market.symbol_info import SymbolCatalog
from engine.protocol import server_messages as sm
from engine.server.http import ApiRequest, HttpResponse, Route
from engine.server.limits import peer_ip
from engine.server.shared_keys import ListenKeyStore, ListenKeysUnavailable
from engine.version import __version__

__all__ = ["API_PREFIX", "BinanceApi", "Gateway", "MarketView", "busy_response",
           "openapi_route"]

log = logging.getLogger("tickdesk.binance")

API_PREFIX = "/api/v3/"
_JSON = "application/json"


class Gateway(Protocol):
    """Sends commands as one client of ``account`` and collects their answers."""

    def call(self, account: str, commands: Sequence[Mapping[str, Any]],
             timeout: float) -> list[dict[str, Any]]:
        """Send ``commands`` in order (each has a unique ``id``); return every
        message carrying one of their ids, in arrival order, once the last
        command's first answer arrived. Numbers are Decimals. Raises
        :class:`BinanceError` (-1007) when that takes longer than ``timeout``."""
        ...


class MarketView(Protocol):
    """The latest MARKET_UPDATE / BOOK_UPDATE of served symbols (Decimals)."""

    def tickers(self, symbols: Sequence[str]) -> Mapping[str, Mapping[str, Any]]:
        """The symbols' MARKET_UPDATEs (a symbol without a price yet is absent)."""
        ...

    def book(self, symbol: str) -> Mapping[str, Any] | None: ...

    def trades(self, query: TradesQuery) -> list[RecentTrade]:
        """The recent trades ``query`` selects, oldest first (the FeedActor's ring)."""
        ...


@dataclass(frozen=True, slots=True)
class ApiContext:
    keys: Mapping[str, ApiKey]
    open_mode: bool
    gateway: Gateway
    market: MarketView
    catalog: SymbolCatalog
    served: Callable[[], list[str]]
    #: In memory (role all) or in Redis (a gateway: valid on every gateway).
    listen_keys: ListenKeyStore
    now_ms: Callable[[], int]
    fee_bps: Decimal
    weight_per_minute: int
    #: Seconds a REST request waits for the engine's answer.
    timeout_s: float = 10.0
    klines: Callable[[str, str, int | None, int | None, int], list[list[Any]]] | None = None
    #: A browser's ``Origin`` (bots send none): one of ours, else 403 (a page on
    #: another site must not place orders with a form post, in open mode above all).
    origin_allowed: Callable[[str], bool] = lambda _origin: False


def _limit(params: Mapping[str, str], default: int, most: int) -> int:
    """``limit``: ``default`` when absent, -1100 outside 1..``most``."""
    v = tr.int_param(params, "limit", lo=1, hi=most)
    return default if v is None else v


def _json(status: int, body: Any, headers: tuple[tuple[str, str], ...] = ()) -> HttpResponse:
    return HttpResponse(status, _JSON, orjson.dumps(body), headers)


def openapi_route() -> Route:
    """``GET /openapi.json``: the document of the endpoints the router serves."""
    body = orjson.dumps(openapi.document(__version__), option=orjson.OPT_INDENT_2)
    resp = HttpResponse(200, _JSON, body)

    def route(_headers: Mapping[str, str], _query: Mapping[str, list[str]]) -> HttpResponse:
        return resp

    return route


def busy_response() -> HttpResponse:
    """What a request gets when the API workers' queue is full (503, -1008)."""
    return _json(503, {"code": -1008, "msg": "Server is currently overloaded with other "
                                             "requests. Please try again in a few minutes."})


class BinanceApi:
    """See the module docstring. ``handle`` is thread-safe."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx
        self._routes = by_route()
        self._paths = {e.path for e in ENDPOINTS}
        self._weights = WeightBook(ctx.weight_per_minute)
        self._weights_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._handlers: dict[str, Callable[[str | None, dict[str, str]], Any]] = {
            e.name: getattr(self, f"_{e.name}") for e in ENDPOINTS}

    # -- the request --------------------------------------------------------

    def handle(self, req: ApiRequest) -> HttpResponse:
        method = "GET" if req.method == "HEAD" else req.method
        endpoint = self._routes.get((method, req.path))
        if endpoint is None:
            if req.path in self._paths:
                return _json(405, {"code": -1000, "msg": f"{req.method} is not allowed on "
                                                         f"{req.path}."})
            return _json(404, {"code": -1000, "msg": f"Unknown endpoint {req.path}."})
        ctx = self._ctx
        origin = req.headers.get("origin")
        if origin is not None and not ctx.origin_allowed(origin):
            return _json(403, {"code": -1002, "msg": "You are not authorized to execute this "
                                                     "request (origin not allowed)."})
        with self._weights_lock:
            verdict = self._weights.take(peer_ip(req.peer), endpoint.weight, ctx.now_ms())
        used = (("X-MBX-USED-WEIGHT-1M", str(verdict.used)),
                ("X-MBX-USED-WEIGHT", str(verdict.used)))
        if not verdict.allowed:
            return _json(429, {"code": -1003, "msg": (
                f"Too much request weight used; current limit is {self._weights.limit} "
                "request weight per 1 MINUTE. Please use WebSocket Streams for live "
                "updates to avoid polling the API.")},
                (*used, ("Retry-After", str(verdict.retry_after_s))))
        try:
            params = tr.parse_params(req.query, req.body)
            account = self._authorize(endpoint, req, params)
            body = self._handlers[endpoint.name](account, params)
        except ListenKeysUnavailable as exc:
            log.warning("%s %s: %s", req.method, req.path, exc)
            err = BinanceError(DISCONNECTED, "Internal error; unable to process your request. "
                                             "Please try again.")
            return _json(err.status, err.body(), used)
        except BinanceError as exc:
            if exc.status >= 500:
                log.warning("%s %s: %d %s", req.method, req.path, exc.code, exc.msg)
            return _json(exc.status, exc.body(), used)
        except Exception:
            log.exception("%s %s failed", req.method, req.path)
            return _json(500, {"code": -1000, "msg": "An unknown error occurred while "
                                                     "processing the request."}, used)
        return _json(200, body, used)

    def _authorize(self, endpoint: Endpoint, req: ApiRequest,
                   params: Mapping[str, str]) -> str | None:
        if endpoint.security is Security.NONE:
            return None
        ctx = self._ctx
        if endpoint.security is Security.SIGNED:
            check_timestamp(params.get("timestamp"), params.get("recvWindow"), ctx.now_ms())
        if ctx.open_mode:
            return "default"
        key = verify_key(req.headers.get("x-mbx-apikey"), ctx.keys)
        if endpoint.security is Security.SIGNED:
            body = req.body.decode("utf-8", "replace")
            verify_signature(key.secret, req.query, body)
        return key.account

    def _call(self, account: str | None, commands: Sequence[Mapping[str, Any]]
              ) -> list[dict[str, Any]]:
        assert account is not None
        return self._ctx.gateway.call(account, commands, self._ctx.timeout_s)

    def _rid(self) -> str:
        return f"rest-{next(self._ids)}"

    @staticmethod
    def _fence(rid: str) -> dict[str, Any]:
        """A command the OrderMonitorActor answers after every event of the
        command before it (its answer ends the wait)."""
        return {"action": "get_orders", "status": "open", "id": f"{rid}.end"}

    @staticmethod
    def _raise_error(messages: Sequence[Mapping[str, Any]], rid: str) -> None:
        for m in messages:
            if m.get("type") == "ERROR" and m.get("id") == rid:
                raise tr.error_from_message(m)

    def _orders(self, account: str | None, status: str) -> list[dict[str, Any]]:
        rid = self._rid()
        msgs = self._call(account, [{"action": "get_orders", "status": status, "id": rid}])
        self._raise_error(msgs, rid)
        for m in msgs:
            if m.get("type") == "ORDERS":
                return list(m["orders"])
        raise BinanceError(-1000, "no answer to get_orders")

    def _quote_asset(self, symbol: str) -> str:
        info = self._ctx.catalog.get(symbol)
        return info.quote_asset if info is not None and info.quote_asset else ""

    # -- market data --------------------------------------------------------

    def _ping(self, _a: str | None, _p: dict[str, str]) -> Any:
        return {}

    def _time(self, _a: str | None, _p: dict[str, str]) -> Any:
        return {"serverTime": self._ctx.now_ms()}

    def _symbols_param(self, params: Mapping[str, str]) -> list[str] | None:
        """``symbol`` or ``symbols`` (a JSON list); None: every served symbol."""
        one = tr.symbol_param(params, required=False)
        many = params.get("symbols")
        if one is not None and many:
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
        served = set(self._ctx.served())
        if one is not None:
            wanted = [one]
        elif many:
            try:
                parsed = json.loads(many)
            except ValueError:
                raise bad_param("symbols") from None
            if not isinstance(parsed, list) or not all(isinstance(s, str) for s in parsed):
                raise bad_param("symbols")
            wanted = list(parsed)
        else:
            return None
        for s in wanted:
            if s not in served:
                raise BinanceError(-1121, "Invalid symbol.")
        return wanted

    def _exchange_info(self, _a: str | None, params: dict[str, str]) -> Any:
        ctx = self._ctx
        wanted = self._symbols_param(params) or ctx.served()
        symbols = []
        for s in wanted:
            info = ctx.catalog.get(s)
            if info is None:
                continue
            obj = orjson.loads(sm.symbol_info(info, 0).payload)
            symbols.append({
                "symbol": s, "status": obj["status"], "baseAsset": obj["baseAsset"],
                "baseAssetPrecision": obj["baseAssetPrecision"], "quoteAsset": obj["quoteAsset"],
                "quotePrecision": obj["quoteAssetPrecision"],
                "quoteAssetPrecision": obj["quoteAssetPrecision"],
                "baseCommissionPrecision": obj["baseAssetPrecision"],
                "quoteCommissionPrecision": obj["quoteAssetPrecision"],
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                               "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True,
                "quoteOrderQtyMarketAllowed": False, "allowTrailingStop": True,
                "cancelReplaceAllowed": True, "amendAllowed": False,
                "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
                "filters": obj["filters"], "permissions": [], "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "NONE",
                "allowedSelfTradePreventionModes": ["NONE"],
            })
        return {"timezone": "UTC", "serverTime": ctx.now_ms(),
                "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                                "intervalNum": 1, "limit": ctx.weight_per_minute}],
                "exchangeFilters": [], "symbols": symbols}

    def _each(self, params: Mapping[str, str],
              one: Callable[[str, Mapping[str, Any] | None], dict[str, Any] | None]) -> Any:
        """One object for ``symbol`` (-1121 without data), else a list for
        ``symbols`` or every served symbol."""
        wanted = self._symbols_param(params)
        names = wanted or self._ctx.served()
        tickers = self._ctx.market.tickers(names)
        if wanted is not None and "symbol" in params:
            found = one(wanted[0], tickers.get(wanted[0]))
            if found is None:
                raise BinanceError(-1121, "Invalid symbol.")
            return found
        out = [one(s, tickers.get(s)) for s in names]
        return [o for o in out if o is not None]

    def _ticker_price(self, _a: str | None, params: dict[str, str]) -> Any:
        def one(s: str, t: Mapping[str, Any] | None) -> dict[str, Any] | None:
            if t is None or t.get("price") is None:
                return None
            return {"symbol": s, "price": tr.fmt(t["price"])}
        return self._each(params, one)

    def _book_ticker(self, _a: str | None, params: dict[str, str]) -> Any:
        def one(s: str, t: Mapping[str, Any] | None) -> dict[str, Any] | None:
            if t is None:
                return None
            return {"symbol": s, "bidPrice": tr.fmt(t.get("bid")),
                    "bidQty": tr.fmt(t.get("bidQty")), "askPrice": tr.fmt(t.get("ask")),
                    "askQty": tr.fmt(t.get("askQty"))}
        return self._each(params, one)

    def _ticker_24hr(self, _a: str | None, params: dict[str, str]) -> Any:
        now = self._ctx.now_ms()

        def one(s: str, t: Mapping[str, Any] | None) -> dict[str, Any] | None:
            if t is None or t.get("price") is None:
                return None
            last = t["price"]
            change = t.get("priceChange")
            open_price = last - change if change is not None else last
            return {
                "symbol": s, "priceChange": tr.fmt(change), "priceChangePercent":
                format((t.get("priceChangePercent") or Decimal(0)).quantize(Decimal("0.001")),
                       "f"),
                "weightedAvgPrice": tr.fmt(last), "prevClosePrice": tr.fmt(open_price),
                "lastPrice": tr.fmt(last), "lastQty": tr.fmt(None),
                "bidPrice": tr.fmt(t.get("bid")), "bidQty": tr.fmt(t.get("bidQty")),
                "askPrice": tr.fmt(t.get("ask")), "askQty": tr.fmt(t.get("askQty")),
                "openPrice": tr.fmt(open_price), "highPrice": tr.fmt(t.get("high") or last),
                "lowPrice": tr.fmt(t.get("low") or last), "volume": tr.fmt(t.get("volume")),
                "quoteVolume": tr.fmt(None), "openTime": now - 86_400_000, "closeTime": now,
                "firstId": -1, "lastId": -1, "count": 0,
            }
        return self._each(params, one)

    def _known_symbol(self, params: Mapping[str, str]) -> str:
        symbol = tr.symbol_param(params)
        assert symbol is not None
        if symbol not in set(self._ctx.served()):
            raise BinanceError(-1121, "Invalid symbol.")
        return symbol

    def _depth(self, _a: str | None, params: dict[str, str]) -> Any:
        symbol = self._known_symbol(params)
        limit = tr.int_param(params, "limit", lo=1, hi=5000) or 100
        book = self._ctx.market.book(symbol) or {}
        return {"lastUpdateId": book.get("seq", 0),
                "bids": [[tr.fmt(p), tr.fmt(q)] for p, q in book.get("bids", [])[:limit]],
                "asks": [[tr.fmt(p), tr.fmt(q)] for p, q in book.get("asks", [])[:limit]]}

    def _trades(self, _a: str | None, params: dict[str, str]) -> Any:
        symbol = self._known_symbol(params)
        limit = _limit(params, 500, 1000)
        return [tr.trade_row(t) for t in self._ctx.market.trades(TradesQuery(symbol, limit))]

    def _historical_trades(self, _a: str | None, params: dict[str, str]) -> Any:
        symbol = self._known_symbol(params)
        limit = _limit(params, 500, 1000)
        from_id = tr.int_param(params, "fromId", lo=0)
        got = self._ctx.market.trades(TradesQuery(symbol, limit, from_id=from_id))
        return [tr.trade_row(t) for t in got]

    def _agg_trades(self, _a: str | None, params: dict[str, str]) -> Any:
        symbol = self._known_symbol(params)
        limit = _limit(params, 500, 1000)
        from_id = tr.int_param(params, "fromId", lo=0)
        start = tr.int_param(params, "startTime", lo=0)
        end = tr.int_param(params, "endTime", lo=0)
        if start is not None and end is not None and start > end:
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
        got = self._ctx.market.trades(TradesQuery(symbol, limit, from_id=from_id,
                                                  start_ms=start, end_ms=end))
        return [tr.agg_trade_row(t) for t in got]

    def _klines(self, _a: str | None, params: dict[str, str]) -> Any:
        symbol = self._known_symbol(params)
        interval = params.get("interval")
        if not interval:
            raise mandatory("interval")
        if interval not in ("1m", "5m", "15m", "1h", "4h", "1d"):
            raise BinanceError(-1120, "Invalid interval.")
        start = tr.int_param(params, "startTime", lo=0)
        end = tr.int_param(params, "endTime", lo=0)
        limit = tr.int_param(params, "limit", lo=1, hi=1000) or 500
        source = self._ctx.klines
        return [] if source is None else source(symbol, interval, start, end, limit)

    # -- listen keys --------------------------------------------------------

    def _listen_key_create(self, account: str | None, _p: dict[str, str]) -> Any:
        assert account is not None
        try:
            key = self._ctx.listen_keys.create(account, self._ctx.now_ms(),
                                               secrets.token_hex(32))
        except ListenKeyLimit:
            raise BinanceError(-1008, "Server is currently overloaded with other requests. "
                                      "Please try again in a few minutes.") from None
        return {"listenKey": key}

    def _own_key(self, account: str | None, params: Mapping[str, str]) -> str:
        key = params.get("listenKey")
        if not key:
            raise mandatory("listenKey")
        if self._ctx.listen_keys.owner_of(key) != account:
            raise BinanceError(INVALID_LISTEN_KEY, "This listenKey does not exist.")
        return key

    def _listen_key_keepalive(self, account: str | None, params: dict[str, str]) -> Any:
        key = self._own_key(account, params)
        if not self._ctx.listen_keys.keepalive(key, self._ctx.now_ms()):
            raise BinanceError(INVALID_LISTEN_KEY, "This listenKey does not exist.")
        return {}

    def _listen_key_close(self, account: str | None, params: dict[str, str]) -> Any:
        key = self._own_key(account, params)
        self._ctx.listen_keys.close(key)
        return {}

    # -- orders ---------------------------------------------------------------

    def _place(self, account: str | None, params: Mapping[str, str]) -> dict[str, Any]:
        """Place one order; its Binance answer (or raise its error)."""
        rid = self._rid()
        cmd = tr.order_command(params, rid)
        resp_type = tr.response_type(params, str(cmd["type"]))
        msgs = self._call(account, [cmd, self._fence(rid)])
        self._raise_error(msgs, rid)
        events = [m for m in msgs if m.get("type") == "ORDER_UPDATE" and m.get("id") == rid]
        if not events:
            raise BinanceError(-1000, "the engine gave no answer to the order")
        first = events[0]
        if first.get("executionType") == "REJECTED":
            raise tr.reject_error(first["order"].get("rejectReason"))
        order = events[-1]["order"]
        fills: list[dict[str, Any]] = []
        if resp_type == "FULL" and any(e.get("executionType") == "TRADE" for e in events):
            fills = self._order_fills(account, order)
        return tr.order_response(order, resp_type, int(first["order"]["createTime"]), fills)

    def _order_fills(self, account: str | None, order: Mapping[str, Any]) -> list[dict[str, Any]]:
        rid = self._rid()
        msgs = self._call(account, [{"action": "get_fills", "symbol": order["symbol"],
                                     "limit": 1000, "id": rid}])
        self._raise_error(msgs, rid)
        asset = self._quote_asset(str(order["symbol"]))
        for m in msgs:
            if m.get("type") == "FILLS":
                mine = [f for f in m["fills"] if f["orderId"] == order["orderId"]]
                return [tr.fill_json(f, asset) for f in reversed(mine)]
        return []

    def _order_new(self, account: str | None, params: dict[str, str]) -> Any:
        return self._place(account, params)

    def _order_test(self, _account: str | None, params: dict[str, str]) -> Any:
        tr.order_command(params, "test")
        symbol = str(params.get("symbol"))
        if symbol not in set(self._ctx.served()):
            raise BinanceError(-1121, "Invalid symbol.")
        return {}

    def _find(self, account: str | None, params: Mapping[str, str],
              status: str = "all") -> dict[str, Any]:
        symbol = self._known_symbol(params)
        order_id = tr.int_param(params, "orderId")
        client_id = params.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, "
                                      "but both were empty/null!")
        found = None
        for o in self._orders(account, status):
            if o["symbol"] != symbol:
                continue
            if order_id is not None and o["orderId"] != order_id:
                continue
            if client_id is not None and o["clientOrderId"] != client_id:
                continue
            found = o  # the newest one holding the client id
        if found is None:
            raise BinanceError(-2013, "Order does not exist.")
        return found

    def _order_get(self, account: str | None, params: dict[str, str]) -> Any:
        return tr.order_json(self._find(account, params))

    def _cancel(self, account: str | None, target: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Cancel one order (by id; a list leg cancels its list); the orders' final
        objects (CANCELED / EXPIRED), in event order."""
        rid = self._rid()
        msgs = self._call(account, [{"action": "cancel_order", "orderId": target["orderId"],
                                     "id": rid}, self._fence(rid)])
        for m in msgs:
            if m.get("type") == "ERROR" and m.get("id") == rid:
                if m.get("code") == "UNKNOWN_ORDER":
                    raise tr.cancel_error()
                raise tr.error_from_message(m)
        latest: dict[int, dict[str, Any]] = {}
        for m in msgs:
            if m.get("type") == "ORDER_UPDATE" and m.get("id") == rid:
                latest[int(m["order"]["orderId"])] = m["order"]
        return list(latest.values())

    def _order_cancel(self, account: str | None, params: dict[str, str]) -> Any:
        try:
            target = self._find(account, params, "open")
        except BinanceError as exc:
            if exc.code == -2013:
                raise tr.cancel_error() from None
            raise
        done = self._cancel(account, target)
        mine = next((o for o in done if o["orderId"] == target["orderId"]), None)
        if mine is None:
            raise tr.cancel_error()
        out = tr.order_json(mine)
        out["origClientOrderId"] = mine["clientOrderId"]
        out["transactTime"] = mine.get("updateTime", self._ctx.now_ms())
        return out

    def _cancel_open_orders(self, account: str | None, params: dict[str, str]) -> Any:
        symbol = self._known_symbol(params)
        out: list[dict[str, Any]] = []
        seen_lists: set[int] = set()
        for o in self._orders(account, "open"):
            if o["symbol"] != symbol:
                continue
            if o.get("listId"):
                if o["listId"] in seen_lists:
                    continue
                seen_lists.add(int(o["listId"]))
            try:
                done = self._cancel(account, o)
            except BinanceError as exc:
                if exc.code == -2011:
                    continue  # filled or cancelled meanwhile
                raise
            for d in done:
                j = tr.order_json(d)
                j["origClientOrderId"] = d["clientOrderId"]
                out.append(j)
        return out

    def _open_orders(self, account: str | None, params: dict[str, str]) -> Any:
        symbol = self._known_symbol(params) if params.get("symbol") else None
        return [tr.order_json(o) for o in self._orders(account, "open")
                if symbol is None or o["symbol"] == symbol]

    def _all_orders(self, account: str | None, params: dict[str, str]) -> Any:
        symbol = self._known_symbol(params)
        from_id = tr.int_param(params, "orderId")
        start = tr.int_param(params, "startTime")
        end = tr.int_param(params, "endTime")
        limit = tr.int_param(params, "limit", lo=1, hi=1000) or 500
        found = [o for o in self._orders(account, "all") if o["symbol"] == symbol
                 and (from_id is None or o["orderId"] >= from_id)
                 and (start is None or o["createTime"] >= start)
                 and (end is None or o["createTime"] <= end)]
        found.sort(key=lambda o: int(o["orderId"]))
        chosen = found[:limit] if from_id is not None else found[-limit:]
        return [tr.order_json(o) for o in chosen]

    def _cancel_replace(self, account: str | None, params: dict[str, str]) -> Any:
        mode = params.get("cancelReplaceMode")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise mandatory("cancelReplaceMode")
        tr.order_command(params, "check")  # the new order's parameters, before cancelling
        ref = dict(params)
        ref.pop("orderId", None)
        ref.pop("origClientOrderId", None)
        if params.get("cancelOrderId"):
            ref["orderId"] = params["cancelOrderId"]
        if params.get("cancelOrigClientOrderId"):
            ref["origClientOrderId"] = params["cancelOrigClientOrderId"]
        cancel_response: dict[str, Any]
        cancelled = True
        try:
            cancel_response = self._order_cancel(account, ref)
        except BinanceError as exc:
            cancelled = False
            cancel_response = exc.body()
            if mode == "STOP_ON_FAILURE":
                raise BinanceError(-2022, "Order cancel-replace failed.", data={
                    "cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                    "cancelResponse": cancel_response, "newOrderResponse": None}) from None
        try:
            new = self._place(account, params)
        except BinanceError as exc:
            raise BinanceError(
                -2021 if cancelled else -2022,
                "Order cancel-replace partially failed." if cancelled
                else "Order cancel-replace failed.",
                data={"cancelResult": "SUCCESS" if cancelled else "FAILURE",
                      "newOrderResult": "FAILURE", "cancelResponse": cancel_response,
                      "newOrderResponse": exc.body()}) from None
        return {"cancelResult": "SUCCESS" if cancelled else "FAILURE",
                "newOrderResult": "SUCCESS", "cancelResponse": cancel_response,
                "newOrderResponse": new}

    # -- account ------------------------------------------------------------------

    def _assets_of(self, symbol: str) -> tuple[str, str] | None:
        info = self._ctx.catalog.get(symbol)
        if info is None or not info.base_asset or not info.quote_asset:
            return None
        return info.base_asset, info.quote_asset

    def _account(self, account: str | None, _p: dict[str, str]) -> Any:
        rid = self._rid()
        msgs = self._call(account, [{"action": "get_portfolio", "id": rid},
                                    {"action": "get_positions", "id": f"{rid}.pos"}])
        self._raise_error(msgs, rid)
        self._raise_error(msgs, f"{rid}.pos")
        portfolio = next((m["portfolio"] for m in msgs if m.get("type") == "PORTFOLIO_UPDATE"),
                         None)
        positions = next((m["positions"] for m in msgs if m.get("type") == "POSITION_UPDATE"),
                         None)
        if portfolio is None or positions is None:
            raise BinanceError(-1000, "no answer to get_portfolio")
        balances = tr.spot_balances(portfolio, positions, self._assets_of)
        return tr.account_json(balances, self._ctx.fee_bps, self._ctx.now_ms())

    def _my_trades(self, account: str | None, params: dict[str, str]) -> Any:
        symbol = self._known_symbol(params)
        order_id = tr.int_param(params, "orderId")
        start = tr.int_param(params, "startTime", lo=0)
        end = tr.int_param(params, "endTime", lo=0)
        from_id = tr.int_param(params, "fromId", lo=0)
        limit = tr.int_param(params, "limit", lo=1, hi=1000) or 500
        rid = self._rid()
        cmd: dict[str, Any] = {"action": "get_fills", "symbol": symbol, "limit": 1000, "id": rid}
        if start is not None:
            cmd["since"] = start
        msgs = self._call(account, [cmd])
        self._raise_error(msgs, rid)
        fills: list[dict[str, Any]] = []
        for m in msgs:
            if m.get("type") == "FILLS":
                fills = list(reversed(m["fills"]))  # oldest first, as Binance
        fills = [f for f in fills if (order_id is None or f["orderId"] == order_id)
                 and (end is None or f["time"] <= end)
                 and (from_id is None or f["fillId"] >= from_id)]
        fills = fills[:limit] if from_id is not None else fills[-limit:]
        asset = self._quote_asset(symbol)
        lists: dict[int, int | None] = {}
        if fills:
            lists = {int(o["orderId"]): o.get("listId") for o in self._orders(account, "all")}
        return [tr.trade_json(f, lists.get(int(f["orderId"])), asset) for f in fills]

    # -- order lists ----------------------------------------------------------------

    def _place_list(self, account: str | None, cmd: dict[str, Any], rid: str,
                    params: Mapping[str, str]) -> Any:
        msgs = self._call(account, [cmd, self._fence(rid)])
        self._raise_error(msgs, rid)
        lists = [m for m in msgs if m.get("type") == "ORDER_LIST_UPDATE" and m.get("id") == rid]
        orders: dict[int, dict[str, Any]] = {}
        for m in msgs:
            if m.get("type") == "ORDER_UPDATE" and m.get("id") == rid:
                orders[int(m["order"]["orderId"])] = m["order"]
        if not lists:
            raise BinanceError(-1000, "the engine gave no answer to the order list")
        first = lists[0]["list"]
        if first.get("status") == "REJECTED":
            reasons = [o.get("rejectReason") for o in orders.values() if o.get("rejectReason")]
            raise tr.reject_error(first.get("rejectReason") or (reasons[0] if reasons else None))
        legs = [orders[i] for i in first["orderIds"] if i in orders]
        out = tr.list_json(lists[-1]["list"], legs, self._ctx.now_ms(), str(cmd["symbol"]),
                           with_reports=True)
        if params.get("listClientOrderId"):
            out["listClientOrderId"] = params["listClientOrderId"]
        return out

    def _order_list_oco(self, account: str | None, params: dict[str, str]) -> Any:
        rid = self._rid()
        return self._place_list(account, tr.oco_command(params, rid), rid, params)

    def _order_list_otoco(self, account: str | None, params: dict[str, str]) -> Any:
        rid = self._rid()
        return self._place_list(account, tr.otoco_command(params, rid), rid, params)

    def _open_order_lists(self, account: str | None, _p: dict[str, str]) -> Any:
        groups: dict[int, list[dict[str, Any]]] = {}
        for o in self._orders(account, "open"):
            if o.get("listId"):
                groups.setdefault(int(o["listId"]), []).append(o)
        now = self._ctx.now_ms()
        return [tr.list_json({"listId": lid, "status": "EXECUTING",
                              "listType": "OCO" if len(legs) == 2 else "BRACKET"},
                             legs, now, str(legs[0]["symbol"]), with_reports=False)
                for lid, legs in sorted(groups.items())]

    def _order_list_cancel(self, account: str | None, params: dict[str, str]) -> Any:
        symbol = self._known_symbol(params)
        list_id = tr.int_param(params, "orderListId")
        if list_id is None:
            raise mandatory("orderListId")
        legs = [o for o in self._orders(account, "open")
                if o.get("listId") == list_id and o["symbol"] == symbol]
        if not legs:
            raise BinanceError(-2011, "Unknown order list sent.")
        rid = self._rid()
        msgs = self._call(account, [{"action": "cancel_order", "listId": list_id, "id": rid},
                                    self._fence(rid)])
        for m in msgs:
            if m.get("type") == "ERROR" and m.get("id") == rid:
                if m.get("code") == "UNKNOWN_ORDER":
                    raise BinanceError(-2011, "Unknown order list sent.")
                raise tr.error_from_message(m)
        orders: dict[int, dict[str, Any]] = {}
        final: dict[str, Any] = {"listId": list_id, "status": "ALL_DONE",
                                 "listType": "OCO" if len(legs) == 2 else "BRACKET"}
        for m in msgs:
            if m.get("id") != rid:
                continue
            if m.get("type") == "ORDER_UPDATE":
                orders[int(m["order"]["orderId"])] = m["order"]
            elif m.get("type") == "ORDER_LIST_UPDATE":
                final = m["list"]
        out = tr.list_json(final, list(orders.values()), self._ctx.now_ms(), symbol,
                           with_reports=True)
        out["listStatusType"] = "ALL_DONE"
        out["listOrderStatus"] = "ALL_DONE"
        return out
