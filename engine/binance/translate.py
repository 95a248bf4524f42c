"""Binance's parameters to tickdesk's commands, and tickdesk's messages to Binance's JSON.

Pure core. Values arrive from tickdesk messages as :class:`~decimal.Decimal`
(the caller parses the wire's numbers with ``parse_float=Decimal``) and leave
as Binance writes them: decimal strings with 8 places (``"0.01000000"``).
A REST request's parameters are the union of its query and its
form-urlencoded body; a name given twice is -1101.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from engine.binance.errors import (
    BAD_SYMBOL,
    CANCEL_REJECTED,
    DUPLICATE_PARAM,
    FILTER_FAILURE,
    INSUFFICIENT_BALANCE_MSG,
    NEW_ORDER_REJECTED,
    NO_SUCH_ORDER,
    PARAM_NOT_REQUIRED,
    REJECTED_API_KEY,
    SERVER_BUSY,
    TOO_MANY_REQUESTS,
    UNKNOWN,
    BinanceError,
    bad_param,
    mandatory,
)
from engine.market.recent_trades import RecentTrade

__all__ = [
    "EIGHT",
    "account_json",
    "agg_trade_row",
    "cancel_error",
    "decimal_param",
    "error_from_message",
    "fmt",
    "int_param",
    "kline_row",
    "list_json",
    "oco_command",
    "order_command",
    "order_json",
    "order_response",
    "otoco_command",
    "parse_params",
    "reject_error",
    "spot_balances",
    "trade_json",
    "trade_row",
]

EIGHT = Decimal("0.00000001")
_ZERO = Decimal(0)
_TYPES = frozenset({"LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
                    "TAKE_PROFIT_LIMIT", "LIMIT_MAKER"})
_TIF_TYPES = frozenset({"LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})
_STOP_TYPES = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT",
                         "TRAILING_STOP"})
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,36}$")
_SYMBOL = re.compile(r"^[A-Z0-9_.-]{1,20}$")


def parse_params(query: str, body: bytes) -> dict[str, str]:
    """The request's parameters (query and form body); -1101 for a repeated name."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BinanceError(-1100, "Illegal characters found in the request body.") from None
    out: dict[str, str] = {}
    for name, value in (*parse_qsl(query, keep_blank_values=True),
                        *parse_qsl(text, keep_blank_values=True)):
        if name in out:
            raise BinanceError(DUPLICATE_PARAM, "Duplicate values for a parameter detected.")
        out[name] = value
    return out


def fmt(value: Decimal | None) -> str:
    """Binance's decimal string: 8 places (more only if the value needs them)."""
    if value is None:
        value = _ZERO
    q = value.quantize(EIGHT) if value == value.quantize(EIGHT) else value
    return format(q, "f")


def decimal_param(params: Mapping[str, str], name: str, *,
                  required: bool = False) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise mandatory(name)
        return None
    try:
        d = Decimal(raw)
    except InvalidOperation:
        raise bad_param(name) from None
    if not d.is_finite():
        raise bad_param(name)
    return d


def int_param(params: Mapping[str, str], name: str, *, required: bool = False,
              lo: int | None = None, hi: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise mandatory(name)
        return None
    if not re.fullmatch(r"-?[0-9]{1,19}", raw):
        raise bad_param(name)
    v = int(raw)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise bad_param(name)
    return v


def symbol_param(params: Mapping[str, str], *, required: bool = True) -> str | None:
    raw = params.get("symbol")
    if raw is None or raw == "":
        if required:
            raise mandatory("symbol")
        return None
    if not _SYMBOL.match(raw):
        raise BinanceError(-1100, f"Illegal characters found in parameter 'symbol'; legal "
                                  f"range is '{_SYMBOL.pattern}'.")
    return raw


def client_id_param(params: Mapping[str, str], name: str) -> str | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _CLIENT_ID.match(raw):
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal "
                                  f"range is '{_CLIENT_ID.pattern}'.")
    return raw


def _num(value: Decimal) -> str:
    return format(value, "f")


def order_command(params: Mapping[str, str], request_id: str) -> dict[str, Any]:
    """``POST /api/v3/order`` parameters → a ``place_order`` command."""
    symbol = symbol_param(params)
    side = params.get("side")
    if not side:
        raise mandatory("side")
    if side not in ("BUY", "SELL"):
        raise BinanceError(-1117, "Invalid side.")
    typ = params.get("type")
    if not typ:
        raise mandatory("type")
    if typ not in _TYPES:
        raise BinanceError(-1116, "Invalid orderType.")
    if params.get("quoteOrderQty"):
        raise BinanceError(PARAM_NOT_REQUIRED, "Parameter 'quoteOrderQty' sent when not "
                                               "required. (tickdesk takes quantity only)")
    cmd: dict[str, Any] = {"action": "place_order", "id": request_id, "symbol": symbol,
                           "side": side, "type": typ}
    qty = decimal_param(params, "quantity", required=True)
    assert qty is not None
    cmd["quantity"] = _num(qty)
    for name in ("price", "stopPrice", "icebergQty"):
        d = decimal_param(params, name)
        if d is not None and d != 0:
            cmd[name] = _num(d)
    delta = int_param(params, "trailingDelta")
    if delta is not None:
        cmd["trailingDelta"] = delta
    tif = params.get("timeInForce")
    if tif:
        if typ not in _TIF_TYPES:
            raise BinanceError(PARAM_NOT_REQUIRED,
                               "Parameter 'timeInForce' sent when not required.")
        if tif not in ("GTC", "IOC", "FOK"):
            raise bad_param("timeInForce")
        cmd["timeInForce"] = tif
    elif typ in _TIF_TYPES:
        raise mandatory("timeInForce")
    coid = client_id_param(params, "newClientOrderId")
    if coid is not None:
        cmd["clientOrderId"] = coid
    resp = params.get("newOrderRespType")
    if resp not in (None, "", "ACK", "RESULT", "FULL"):
        raise bad_param("newOrderRespType")
    return cmd


def response_type(params: Mapping[str, str], order_type: str) -> str:
    """``newOrderRespType``, defaulting as Binance does (FULL for MARKET and LIMIT)."""
    resp = params.get("newOrderRespType") or ""
    if resp:
        return resp
    return "FULL" if order_type in ("MARKET", "LIMIT") else "ACK"


def _leg(params: Mapping[str, str], side: str) -> dict[str, Any]:
    typ = params.get(f"{side}Type")
    if not typ:
        raise mandatory(f"{side}Type")
    leg: dict[str, Any] = {"type": typ}
    for field in ("Price", "StopPrice"):
        d = decimal_param(params, f"{side}{field}")
        if d is not None:
            leg[field[0].lower() + field[1:]] = _num(d)
    delta = int_param(params, f"{side}TrailingDelta")
    if delta is not None:
        leg["trailingDelta"] = delta
    coid = client_id_param(params, f"{side}ClientOrderId")
    if coid is not None:
        leg["clientOrderId"] = coid
    return leg


def oco_command(params: Mapping[str, str], request_id: str) -> dict[str, Any]:
    """``POST /api/v3/orderList/oco`` parameters → a ``place_oco`` command."""
    symbol = symbol_param(params)
    side = params.get("side")
    if side not in ("BUY", "SELL"):
        raise mandatory("side") if not side else BinanceError(-1117, "Invalid side.")
    qty = decimal_param(params, "quantity", required=True)
    assert qty is not None
    return {"action": "place_oco", "id": request_id, "symbol": symbol, "side": side,
            "quantity": _num(qty), "above": _leg(params, "above"),
            "below": _leg(params, "below")}


def otoco_command(params: Mapping[str, str], request_id: str) -> dict[str, Any]:
    """``POST /api/v3/orderList/otoco`` → a ``place_bracket`` command: the working
    order is the entry; the pending OCO's LIMIT_MAKER leg the take-profit, its
    STOP_LOSS(_LIMIT) leg the stop-loss (the side that protects the entry)."""
    symbol = symbol_param(params)
    side = params.get("workingSide")
    if side not in ("BUY", "SELL"):
        raise mandatory("workingSide")
    wtype = params.get("workingType")
    if wtype not in ("LIMIT", "MARKET"):
        raise mandatory("workingType") if not wtype else bad_param("workingType")
    wqty = decimal_param(params, "workingQuantity", required=True)
    pqty = decimal_param(params, "pendingQuantity", required=True)
    if wqty != pqty:
        raise BinanceError(-1130, "pendingQuantity must equal workingQuantity here "
                                  "(tickdesk brackets exit the whole entry).")
    assert wqty is not None
    entry: dict[str, Any] = {"type": wtype}
    wprice = decimal_param(params, "workingPrice")
    if wtype == "LIMIT":
        if wprice is None:
            raise mandatory("workingPrice")
        entry["price"] = _num(wprice)
    coid = client_id_param(params, "workingClientOrderId")
    if coid is not None:
        entry["clientOrderId"] = coid
    take: dict[str, Any] | None = None
    stop: dict[str, Any] | None = None
    for leg in ("Above", "Below"):
        typ = params.get(f"pending{leg}Type")
        if not typ:
            raise mandatory(f"pending{leg}Type")
        price = decimal_param(params, f"pending{leg}Price")
        stop_price = decimal_param(params, f"pending{leg}StopPrice")
        delta = int_param(params, f"pending{leg}TrailingDelta")
        leg_id = client_id_param(params, f"pending{leg}ClientOrderId")
        if typ == "LIMIT_MAKER":
            if price is None:
                raise mandatory(f"pending{leg}Price")
            take = {"price": _num(price)}
            if leg_id:
                take["clientOrderId"] = leg_id
        elif typ in ("STOP_LOSS", "STOP_LOSS_LIMIT"):
            if stop_price is None:
                raise mandatory(f"pending{leg}StopPrice")
            stop = {"stopPrice": _num(stop_price)}
            if typ == "STOP_LOSS_LIMIT":
                if price is None:
                    raise mandatory(f"pending{leg}Price")
                stop["price"] = _num(price)
            if delta is not None:
                stop["trailingDelta"] = delta
            if leg_id:
                stop["clientOrderId"] = leg_id
        else:
            raise BinanceError(-1116, "Invalid orderType. (tickdesk's OTOCO takes a "
                                      "LIMIT_MAKER and a STOP_LOSS or STOP_LOSS_LIMIT leg)")
    if take is None or stop is None:
        raise BinanceError(-1116, "Invalid orderType. (tickdesk's OTOCO takes a LIMIT_MAKER "
                                  "and a STOP_LOSS or STOP_LOSS_LIMIT leg)")
    return {"action": "place_bracket", "id": request_id, "symbol": symbol, "side": side,
            "quantity": _num(wqty), "entry": entry, "takeProfit": take, "stopLoss": stop}


# -- tickdesk → Binance -----------------------------------------------------------

_REJECTS: dict[str, tuple[int, str]] = {
    "INSUFFICIENT_BALANCE": (NEW_ORDER_REJECTED, INSUFFICIENT_BALANCE_MSG),
    "SHORT_NOT_ALLOWED": (NEW_ORDER_REJECTED, INSUFFICIENT_BALANCE_MSG),
    "STOP_PRICE_WOULD_TRIGGER_IMMEDIATELY": (NEW_ORDER_REJECTED,
                                             "Stop price would trigger immediately."),
    "ORDER_WOULD_MATCH_IMMEDIATELY": (NEW_ORDER_REJECTED,
                                      "Order would immediately match and take."),
    "DUPLICATE_CLIENT_ORDER_ID": (NEW_ORDER_REJECTED, "Duplicate order sent."),
    "TOO_MANY_OPEN_ORDERS": (FILTER_FAILURE, "Filter failure: MAX_NUM_ORDERS"),
    "NO_MARKET_PRICE": (NEW_ORDER_REJECTED, "Market is closed."),
    "OCO_BAD_PRICES": (NEW_ORDER_REJECTED,
                       "The relationship of the prices for the orders is not correct."),
    "BRACKET_BAD_PRICES": (NEW_ORDER_REJECTED,
                           "The relationship of the prices for the orders is not correct."),
}


def reject_error(reason: str | None) -> BinanceError:
    """A REJECTED order's ``rejectReason`` → Binance's error (-1013 for a filter)."""
    text = reason or ""
    if text.startswith("Filter failure:"):
        return BinanceError(FILTER_FAILURE, text)
    code = text.split(":", 1)[0].strip()
    found = _REJECTS.get(code)
    if found is not None:
        return BinanceError(*found)
    return BinanceError(NEW_ORDER_REJECTED, text or "Order rejected.")


_ERRORS: dict[str, tuple[int, str | None]] = {
    "UNKNOWN_SYMBOL": (BAD_SYMBOL, "Invalid symbol."),
    "UNKNOWN_ORDER": (NO_SUCH_ORDER, "Order does not exist."),
    "RATE_LIMITED": (TOO_MANY_REQUESTS, None),
    "STORE_UNAVAILABLE": (SERVER_BUSY, "The store cannot write; try again later."),
    "UNAUTHORIZED": (REJECTED_API_KEY, "Invalid API-key, IP, or permissions for action."),
    "INTERNAL": (UNKNOWN, "An unknown error occurred while processing the request."),
    "BUSY": (SERVER_BUSY, "Server is currently overloaded with other requests. Please try "
                          "again in a few minutes."),
}


def error_from_message(msg: Mapping[str, Any]) -> BinanceError:
    """A tickdesk ``ERROR`` message → Binance's error (BAD_REQUEST: -1130 with the
    field named)."""
    code = str(msg.get("code", ""))
    text = str(msg.get("message", ""))
    found = _ERRORS.get(code)
    if found is None:
        return BinanceError(-1130, f"Invalid data sent for a parameter: {text}")
    num, fixed = found
    return BinanceError(num, fixed or text)


def cancel_error() -> BinanceError:
    return BinanceError(CANCEL_REJECTED, "Unknown order sent.")


def _d(value: Any) -> Decimal:
    if value is None:
        return _ZERO
    return value if isinstance(value, Decimal) else Decimal(str(value))


def binance_type(order: Mapping[str, Any]) -> str:
    typ = str(order["type"])
    return "STOP_LOSS" if typ == "TRAILING_STOP" else typ


def order_json(order: Mapping[str, Any]) -> dict[str, Any]:
    """A tickdesk ``order`` object → Binance's order (``GET /api/v3/order``)."""
    filled = _d(order.get("filledQuantity"))
    avg = order.get("avgPrice")
    typ = binance_type(order)
    out: dict[str, Any] = {
        "symbol": order["symbol"],
        "orderId": order["orderId"],
        "orderListId": order.get("listId") or -1,
        "clientOrderId": order["clientOrderId"],
        "price": fmt(_d(order.get("price"))),
        "origQty": fmt(_d(order.get("quantity"))),
        "executedQty": fmt(filled),
        "cummulativeQuoteQty": fmt((filled * _d(avg)).quantize(EIGHT) if avg else _ZERO),
        "status": order["status"],
        "timeInForce": order.get("timeInForce") or "GTC",
        "type": typ,
        "side": order["side"],
        "stopPrice": fmt(_d(order.get("stopPrice"))),
        "icebergQty": fmt(_d(order.get("icebergQty"))),
        "time": order.get("createTime", 0),
        "updateTime": order.get("updateTime", 0),
        "isWorking": order["status"] in ("NEW", "PARTIALLY_FILLED")
        and typ in ("LIMIT", "LIMIT_MAKER", "MARKET"),
        "workingTime": order.get("createTime", 0),
        "origQuoteOrderQty": fmt(_ZERO),
        "selfTradePreventionMode": "NONE",
    }
    if order.get("trailingDelta") is not None:
        out["trailingDelta"] = order["trailingDelta"]
    return out


def order_response(order: Mapping[str, Any], resp_type: str, transact_ms: int,
                   fills: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The answer of ``POST /api/v3/order`` (ACK, RESULT or FULL)."""
    ack = {"symbol": order["symbol"], "orderId": order["orderId"],
           "orderListId": order.get("listId") or -1,
           "clientOrderId": order["clientOrderId"], "transactTime": transact_ms}
    if resp_type == "ACK":
        return ack
    full = order_json(order)
    result = dict(ack)
    for key in ("price", "origQty", "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty",
                "status", "timeInForce", "type", "side"):
        result[key] = full[key]
    if str(order["type"]) in _STOP_TYPES:
        result["stopPrice"] = full["stopPrice"]
    if "trailingDelta" in full:
        result["trailingDelta"] = full["trailingDelta"]
    result["workingTime"] = full["workingTime"]
    result["selfTradePreventionMode"] = "NONE"
    if resp_type == "FULL":
        result["fills"] = [dict(f) for f in fills]
    return result


def fill_json(fill: Mapping[str, Any], fee_asset: str) -> dict[str, Any]:
    """One entry of a FULL response's ``fills``, from a tickdesk ``fill`` object."""
    return {"price": fmt(_d(fill.get("price"))), "qty": fmt(_d(fill.get("quantity"))),
            "commission": fmt(_d(fill.get("fee"))),
            "commissionAsset": fill.get("feeAsset") or fee_asset,
            "tradeId": fill.get("fillId", -1)}


def trade_json(fill: Mapping[str, Any], list_id: int | None, fee_asset: str) -> dict[str, Any]:
    """One entry of ``GET /api/v3/myTrades``, from a tickdesk ``fill`` object."""
    price, qty = _d(fill.get("price")), _d(fill.get("quantity"))
    return {"symbol": fill["symbol"], "id": fill["fillId"], "orderId": fill["orderId"],
            "orderListId": list_id if list_id else -1, "price": fmt(price), "qty": fmt(qty),
            "quoteQty": fmt((price * qty).quantize(EIGHT)),
            "commission": fmt(_d(fill.get("fee"))),
            "commissionAsset": fill.get("feeAsset") or fee_asset, "time": fill["time"],
            "isBuyer": fill["side"] == "BUY", "isMaker": False, "isBestMatch": True}


def spot_balances(portfolio: Mapping[str, Any], positions: Iterable[Mapping[str, Any]],
                  assets_of: Callable[[str], tuple[str, str] | None]
                  ) -> dict[str, tuple[Decimal, Decimal]]:
    """The netted account seen as a spot wallet: ``{asset: (free, locked)}``.

    tickdesk keeps a position per symbol and books only P&L and fees in the
    quote asset (docs/trading.md); a spot bot expects the base asset to grow
    by what it bought and the quote asset to shrink by what it paid. So each
    asset's amount is its ``total``, plus the open positions that have it as
    base asset (signed quantity), minus their cost (quantity x entry price)
    in their quote asset; ``locked`` is what open orders reserve."""
    total: dict[str, Decimal] = {}
    locked: dict[str, Decimal] = {}
    for b in portfolio.get("balances", []):
        total[b["asset"]] = _d(b.get("total"))
        locked[b["asset"]] = _d(b.get("locked"))
    for p in positions:
        pair = assets_of(str(p["symbol"]))
        if pair is None:
            continue
        base, quote = pair
        qty = _d(p.get("quantity"))
        signed = qty if p.get("side") == "LONG" else -qty
        total[base] = total.get(base, _ZERO) + signed
        total[quote] = total.get(quote, _ZERO) - signed * _d(p.get("entryPrice"))
    return {a: (total[a] - locked.get(a, _ZERO), locked.get(a, _ZERO)) for a in total}


def account_json(balances: Mapping[str, tuple[Decimal, Decimal]], fee_bps: Decimal,
                 now_ms: int) -> dict[str, Any]:
    """``GET /api/v3/account`` from :func:`spot_balances`."""
    rate = fee_bps / Decimal(10000)
    bps = int(fee_bps)
    return {
        "makerCommission": bps, "takerCommission": bps, "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {"maker": fmt(rate), "taker": fmt(rate), "buyer": fmt(_ZERO),
                            "seller": fmt(_ZERO)},
        "canTrade": True, "canWithdraw": False, "canDeposit": False, "brokered": False,
        "requireSelfTradePrevention": False, "preventSor": False, "updateTime": now_ms,
        "accountType": "SPOT",
        "balances": [{"asset": a, "free": fmt(balances[a][0].quantize(EIGHT)),
                      "locked": fmt(balances[a][1].quantize(EIGHT))} for a in sorted(balances)],
        "permissions": ["SPOT"], "uid": 0,
    }


def kline_row(k: Any) -> list[Any]:
    """One candle as ``GET /api/v3/klines`` writes it, from a
    :class:`~engine.market.klines.Kline` (taker volumes are not known: "0")."""
    return [k.open_time, fmt(k.open), fmt(k.high), fmt(k.low), fmt(k.close), fmt(k.volume),
            k.close_time, fmt(k.quote_volume), k.trades, "0", "0", "0"]


def list_json(order_list: Mapping[str, Any], orders: Sequence[Mapping[str, Any]],
              transact_ms: int, symbol: str, with_reports: bool) -> dict[str, Any]:
    """An order list (OCO, bracket) as Binance's ``orderList`` answer."""
    status = str(order_list.get("status", "EXECUTING"))
    list_status = {"EXECUTING": "EXEC_STARTED", "ALL_DONE": "ALL_DONE",
                   "REJECTED": "REJECT"}.get(status, "EXEC_STARTED")
    order_status = {"EXECUTING": "EXECUTING", "ALL_DONE": "ALL_DONE",
                    "REJECTED": "REJECT"}.get(status, "EXECUTING")
    list_id = order_list["listId"]
    out: dict[str, Any] = {
        "orderListId": list_id,
        "contingencyType": "OCO" if order_list.get("listType") == "OCO" else "OTO",
        "listStatusType": list_status, "listOrderStatus": order_status,
        "listClientOrderId": f"td-list-{list_id}", "transactionTime": transact_ms,
        "symbol": symbol,
        "orders": [{"symbol": o["symbol"], "orderId": o["orderId"],
                    "clientOrderId": o["clientOrderId"]} for o in orders],
    }
    if with_reports:
        out["orderReports"] = [order_json(o) for o in orders]
    return out


def trade_row(t: RecentTrade) -> dict[str, Any]:
    """One trade in ``GET /api/v3/trades`` / ``historicalTrades`` shape."""
    return {"id": t.trade_id, "price": fmt(t.price), "qty": fmt(t.quantity),
            "quoteQty": fmt((t.price * t.quantity).quantize(EIGHT)), "time": t.time,
            "isBuyerMaker": t.buyer_is_maker, "isBestMatch": True}


def agg_trade_row(t: RecentTrade) -> dict[str, Any]:
    """One trade in ``GET /api/v3/aggTrades`` shape (an aggregate of itself:
    ``a``, ``f`` and ``l`` are its id, as the ``@aggTrade`` stream sends)."""
    return {"a": t.trade_id, "p": fmt(t.price), "q": fmt(t.quantity), "f": t.trade_id,
            "l": t.trade_id, "T": t.time, "m": t.buyer_is_maker, "M": True}
