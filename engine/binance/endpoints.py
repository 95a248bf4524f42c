"""The table of Binance-compatible REST endpoints: one row per method and path.

Pure core. The router (:mod:`engine.server.binance_api`) dispatches by it,
checks security and request weight with it, and ``/openapi.json``
(:mod:`engine.binance.openapi`) is generated from it, so the two cannot
disagree. Weights are Binance's (``X-MBX-USED-WEIGHT-1M`` counts them).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["ENDPOINTS", "Endpoint", "Param", "Security", "by_route"]


class Security(Enum):
    #: Anyone.
    NONE = "NONE"
    #: ``X-MBX-APIKEY`` only (Binance's USER_STREAM / MARKET_DATA).
    API_KEY = "API_KEY"
    #: API key plus ``signature``, ``timestamp`` and optional ``recvWindow``.
    SIGNED = "SIGNED"


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    #: OpenAPI type: ``string``, ``integer``, ``number``, ``boolean``.
    type: str = "string"
    required: bool = False
    description: str = ""
    enum: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    #: The handler's name in the router.
    name: str
    summary: str
    weight: int = 1
    security: Security = Security.NONE
    params: tuple[Param, ...] = ()
    #: What differs from Binance (docs/binance-compat.md says the same).
    differs: str = ""


_SYMBOL = Param("symbol", required=True, description="e.g. BTCUSDT")
_SYMBOL_OPT = Param("symbol", description="e.g. BTCUSDT; all symbols when absent")
_SIDE = Param("side", required=True, enum=("BUY", "SELL"))
_TYPES = ("LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
          "TAKE_PROFIT_LIMIT", "LIMIT_MAKER")
_TIF = Param("timeInForce", enum=("GTC", "IOC", "FOK"))
_RESP = Param("newOrderRespType", enum=("ACK", "RESULT", "FULL"),
              description="default FULL for MARKET and LIMIT, else ACK")
_ORDER_PARAMS = (
    _SYMBOL, _SIDE, Param("type", required=True, enum=_TYPES), _TIF,
    Param("quantity", "number"), Param("quoteOrderQty", "number",
                                       description="MARKET only: spend/receive this much quote"),
    Param("price", "number"), Param("newClientOrderId", description="1-36 of [A-Za-z0-9_.:-]"),
    Param("stopPrice", "number"), Param("trailingDelta", "integer", description="basis points"),
    Param("icebergQty", "number"), _RESP,
)
_ORDER_REF = (_SYMBOL, Param("orderId", "integer"), Param("origClientOrderId"))
_LIST_LEG = tuple(Param(f"{side}{field}", kind, required=(field == "Type"))
                  for side in ("above", "below")
                  for field, kind in (("Type", "string"), ("Price", "number"),
                                      ("StopPrice", "number"), ("TrailingDelta", "integer"),
                                      ("TimeInForce", "string"), ("ClientOrderId", "string")))

_RECENT = ("the trades the engine routed since its feed started, at most 1000 per symbol "
           "(the oldest dropped); ids are the @trade/@aggTrade streams' ids")

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/v3/ping", "ping", "Test connectivity."),
    Endpoint("GET", "/api/v3/time", "time", "The server's time.",
             differs="the paper engine's clock"),
    Endpoint("GET", "/api/v3/exchangeInfo", "exchange_info",
             "The symbols served, with their filters.", weight=20,
             params=(_SYMBOL_OPT, Param("symbols", description='JSON list, e.g. ["BTCUSDT"]')),
             differs="only the symbols the feed serves; permissions and order types fixed"),
    Endpoint("GET", "/api/v3/ticker/price", "ticker_price", "Last price.", weight=2,
             params=(_SYMBOL_OPT, Param("symbols")), differs="weight 2 (4 for all)"),
    Endpoint("GET", "/api/v3/ticker/bookTicker", "book_ticker", "Best bid and ask.",
             weight=2, params=(_SYMBOL_OPT, Param("symbols"))),
    Endpoint("GET", "/api/v3/ticker/24hr", "ticker_24hr", "24 h statistics.", weight=2,
             params=(_SYMBOL_OPT, Param("symbols")),
             differs="counts (trades), first/last trade ids and weighted average are "
                     "not known: 0, -1 and the last price"),
    Endpoint("GET", "/api/v3/depth", "depth", "The order book.", weight=5,
             params=(_SYMBOL, Param("limit", "integer", description="default 100, max 5000")),
             differs="the levels the feed keeps (top 20 with the Binance feed); "
                     "lastUpdateId is the book's own sequence number"),
    Endpoint("GET", "/api/v3/trades", "trades", "Recent trades.", weight=25,
             params=(_SYMBOL, Param("limit", "integer", description="default 500, max 1000")),
             differs=_RECENT),
    Endpoint("GET", "/api/v3/historicalTrades", "historical_trades",
             "Older trades, from an id on.", weight=25, security=Security.API_KEY,
             params=(_SYMBOL, Param("limit", "integer", description="default 500, max 1000"),
                     Param("fromId", "integer", description="the first trade id; "
                                                           "the most recent when absent")),
             differs=_RECENT),
    Endpoint("GET", "/api/v3/aggTrades", "agg_trades", "Aggregate trades.", weight=4,
             params=(_SYMBOL, Param("fromId", "integer"), Param("startTime", "integer"),
                     Param("endTime", "integer"),
                     Param("limit", "integer", description="default 500, max 1000")),
             differs=_RECENT + "; each trade is an aggregate of itself (a = f = l); "
                     "no one-hour limit on startTime..endTime"),
    Endpoint("GET", "/api/v3/klines", "klines", "Candlesticks.", weight=2,
             params=(_SYMBOL, Param("interval", required=True,
                                    enum=("1m", "5m", "15m", "1h", "4h", "1d")),
                     Param("startTime", "integer"), Param("endTime", "integer"),
                     Param("limit", "integer", description="default 500, max 1000")),
             differs="built from the trades the engine saw; intervals 1m 5m 15m 1h 4h 1d; "
                     "no bar for an interval without trades; taker volumes 0"),
    Endpoint("POST", "/api/v3/userDataStream", "listen_key_create",
             "Start a user data stream (listenKey).", weight=2, security=Security.API_KEY),
    Endpoint("PUT", "/api/v3/userDataStream", "listen_key_keepalive",
             "Keep a listenKey alive for 60 more minutes.", weight=2,
             security=Security.API_KEY, params=(Param("listenKey", required=True),)),
    Endpoint("DELETE", "/api/v3/userDataStream", "listen_key_close", "Close a listenKey.",
             weight=2, security=Security.API_KEY, params=(Param("listenKey", required=True),)),
    Endpoint("POST", "/api/v3/order", "order_new", "Place an order.", weight=1,
             security=Security.SIGNED, params=_ORDER_PARAMS,
             differs="paper fills at the feed's book; no self-trade prevention"),
    Endpoint("POST", "/api/v3/order/test", "order_test",
             "Check an order's parameters without placing it.", weight=1,
             security=Security.SIGNED, params=_ORDER_PARAMS,
             differs="checks shape and parameters only (filters and balance are checked "
                     "when the order is placed)"),
    Endpoint("GET", "/api/v3/order", "order_get", "One order.", weight=4,
             security=Security.SIGNED, params=_ORDER_REF),
    Endpoint("DELETE", "/api/v3/order", "order_cancel", "Cancel an order.", weight=1,
             security=Security.SIGNED, params=_ORDER_REF),
    Endpoint("POST", "/api/v3/order/cancelReplace", "cancel_replace",
             "Cancel an order and place a new one.", weight=1, security=Security.SIGNED,
             params=(*_ORDER_PARAMS, Param("cancelReplaceMode", required=True,
                                           enum=("STOP_ON_FAILURE", "ALLOW_FAILURE")),
                     Param("cancelOrderId", "integer"), Param("cancelOrigClientOrderId"))),
    Endpoint("GET", "/api/v3/openOrders", "open_orders", "Open orders.", weight=6,
             security=Security.SIGNED, params=(_SYMBOL_OPT,),
             differs="weight 6 (80 without symbol)"),
    Endpoint("DELETE", "/api/v3/openOrders", "cancel_open_orders",
             "Cancel every open order of a symbol.", weight=1, security=Security.SIGNED,
             params=(_SYMBOL,)),
    Endpoint("GET", "/api/v3/allOrders", "all_orders", "Every order of a symbol.", weight=20,
             security=Security.SIGNED,
             params=(_SYMBOL, Param("orderId", "integer"), Param("startTime", "integer"),
                     Param("endTime", "integer"), Param("limit", "integer"))),
    Endpoint("GET", "/api/v3/account", "account", "Balances.", weight=20,
             security=Security.SIGNED,
             differs="commission rates are the engine's fee; permissions fixed to SPOT"),
    Endpoint("GET", "/api/v3/myTrades", "my_trades", "The account's fills.", weight=20,
             security=Security.SIGNED,
             params=(_SYMBOL, Param("orderId", "integer"), Param("startTime", "integer"),
                     Param("endTime", "integer"), Param("fromId", "integer"),
                     Param("limit", "integer", description="default 500, max 1000")),
             differs="isMaker is false (the history does not keep it)"),
    Endpoint("POST", "/api/v3/orderList/oco", "order_list_oco", "Place an OCO.", weight=1,
             security=Security.SIGNED,
             params=(_SYMBOL, _SIDE, Param("quantity", "number", required=True),
                     Param("listClientOrderId"), *_LIST_LEG, _RESP)),
    Endpoint("POST", "/api/v3/orderList/otoco", "order_list_otoco",
             "Place a working order with an OCO of exits.", weight=1, security=Security.SIGNED,
             params=(_SYMBOL, Param("workingType", required=True, enum=("LIMIT", "MARKET")),
                     Param("workingSide", required=True), Param("workingPrice", "number"),
                     Param("workingQuantity", "number", required=True),
                     Param("pendingQuantity", "number", required=True),
                     *(Param(f"pending{p[0].upper()}{p[1:]}", p2, required=False)
                       for p, p2 in (("aboveType", "string"), ("abovePrice", "number"),
                                     ("belowType", "string"), ("belowPrice", "number"),
                                     ("belowStopPrice", "number"),
                                     ("belowTrailingDelta", "integer"))), _RESP),
             differs="a bracket: working LIMIT or MARKET, above a LIMIT_MAKER take-profit, "
                     "below a STOP_LOSS or STOP_LOSS_LIMIT, same quantity"),
    Endpoint("GET", "/api/v3/openOrderList", "open_order_lists", "Open order lists.",
             weight=6, security=Security.SIGNED),
    Endpoint("DELETE", "/api/v3/orderList", "order_list_cancel", "Cancel an order list.",
             weight=1, security=Security.SIGNED,
             params=(_SYMBOL, Param("orderListId", "integer"), Param("listClientOrderId"))),
)


def by_route() -> dict[tuple[str, str], Endpoint]:
    """``{(method, path): endpoint}``; HEAD is routed as GET."""
    return {(e.method, e.path): e for e in ENDPOINTS}
