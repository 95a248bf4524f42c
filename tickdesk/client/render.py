"""Text for people: order updates, tables of orders, fills, positions and the
portfolio (the ``tickdesk watch`` screen is ``watch_view.py``).

Pure: no threads, sockets or clocks (times come in as arguments). The
command-line module decides where the text goes; everything here returns
strings, so the formats are tested directly.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

__all__ = [
    "FILL_CSV_COLUMNS",
    "csv_num",
    "fills_csv",
    "fills_table",
    "fmt_num",
    "order_line",
    "orders_table",
    "portfolio_lines",
    "positions_table",
    "update_line",
]

Message = Mapping[str, Any]

def fmt_num(value: Any, signed: bool = False) -> str:
    """A wire number (or a Decimal) for people: no exponent, no trailing zeros;
    ``-`` for null."""
    if value is None:
        return "-"
    if isinstance(value, Decimal) and value.is_finite():
        text = format(value, "f")
        text = (text.rstrip("0").rstrip(".") if "." in text else text) or "0"
        text = "0" if text == "-0" else text
        return "+" + text if signed and not text.startswith("-") else text
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int):
        text = str(value)
    elif abs(value) >= 1e15:
        text = repr(value)
    else:
        text = f"{value:.10f}".rstrip("0").rstrip(".")
        if text in ("-0", ""):
            text = "0"
    if signed and not text.startswith("-"):
        text = "+" + text
    return text


def order_line(order: Message) -> str:
    """One order, e.g. ``#12 td-12 BUY LIMIT 0.01 BTCUSDT @ 80000 NEW``."""
    parts = [f"#{order.get('orderId')}", str(order.get("clientOrderId")),
             str(order.get("side")), str(order.get("type")), fmt_num(order.get("quantity")),
             str(order.get("symbol"))]
    if order.get("price") is not None:
        parts.append(f"@ {fmt_num(order['price'])}")
    if order.get("stopPrice") is not None:
        parts.append(f"stop {fmt_num(order['stopPrice'])}")
    if order.get("trailingDelta") is not None:
        parts.append(f"trail {order['trailingDelta']}bps")
    if order.get("currentStopPrice") is not None:
        parts.append(f"(stop now {fmt_num(order['currentStopPrice'])})")
    if order.get("listId") is not None:
        parts.append(f"list {order['listId']}")
    parts.append(str(order.get("status")))
    return " ".join(parts)


def update_line(msg: Message) -> str:
    """One ORDER_UPDATE / ORDER_LIST_UPDATE / ERROR message as a line of text."""
    kind = msg.get("type")
    if kind == "ORDER_UPDATE":
        order = msg.get("order") or {}
        line = f"{msg.get('executionType', '?'):<9} {order_line(order)}"
        filled = order.get("filledQuantity")
        if msg.get("executionType") == "TRADE" or (filled not in (None, 0, 0.0)):
            line += (f" filled {fmt_num(filled)} avg {fmt_num(order.get('avgPrice'))}"
                     f" fee {fmt_num(order.get('fee'))}")
        if order.get("rejectReason"):
            line += f" reason {order['rejectReason']}"
        return line
    if kind == "ORDER_LIST_UPDATE":
        lst = msg.get("list") or {}
        ids = ",".join(str(i) for i in lst.get("orderIds") or ())
        line = f"{'LIST':<9} {lst.get('listType')} list {lst.get('listId')} orders {ids} " \
               f"{lst.get('status')}"
        if lst.get("rejectReason"):
            line += f" reason {lst['rejectReason']}"
        return line
    if kind == "ERROR":
        return f"ERROR {msg.get('code')}: {msg.get('message')}"
    return str(dict(msg))


_ORDER_COLUMNS = ("ORDER", "CLIENT_ID", "SYMBOL", "SIDE", "TYPE", "STATUS", "QTY", "FILLED",
                  "PRICE", "STOP", "AVG")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    rows = [list(r) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]
    return out


def orders_table(orders: Sequence[Message]) -> list[str]:
    """The ``tickdesk orders`` table (header first), or one line saying there are none."""
    if not orders:
        return ["no orders"]
    return _table(_ORDER_COLUMNS, [
        (str(o.get("orderId")), str(o.get("clientOrderId")), str(o.get("symbol")),
         str(o.get("side")), str(o.get("type")), str(o.get("status")),
         fmt_num(o.get("quantity")), fmt_num(o.get("filledQuantity")),
         fmt_num(o.get("price")), fmt_num(o.get("currentStopPrice") or o.get("stopPrice")),
         fmt_num(o.get("avgPrice")))
        for o in orders])


#: The header row of ``tickdesk fills --csv`` (the wire names, plus ``timeUtc``).
FILL_CSV_COLUMNS = ("fillId", "time", "timeUtc", "orderId", "clientOrderId", "symbol", "side",
                    "price", "quantity", "fee", "feeAsset", "realizedPnl")
_FILL_COLUMNS = ("FILL", "TIME (UTC)", "ORDER", "SYMBOL", "SIDE", "PRICE", "QTY", "FEE",
                 "ASSET", "REALIZED")


def csv_num(value: Any) -> str:
    """A wire number for a spreadsheet: every digit the double holds (the
    shortest text that reads back as it), never an exponent; empty for null."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    text = format(Decimal(repr(value)), "f")
    return text[:-2] if text.endswith(".0") else text


#: Epoch ms -> text for people (the command line passes one in: this module
#: reads no clock and converts no time itself).
TimeText = Callable[[int], str]


def _when(fmt: TimeText, ms: Any) -> str:
    return fmt(ms) if isinstance(ms, int) and not isinstance(ms, bool) else ""


def fills_csv(fills: Iterable[Message], time_text: TimeText) -> str:
    """``tickdesk fills --csv``: a header row, then one row per fill (RFC 4180,
    ``\r\n`` line ends, as spreadsheets expect); ``timeUtc`` is
    ``time_text(time)``."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(FILL_CSV_COLUMNS)
    for f in fills:
        writer.writerow([
            f.get("fillId"), f.get("time"), _when(time_text, f.get("time")), f.get("orderId"),
            f.get("clientOrderId"), f.get("symbol"), f.get("side"), csv_num(f.get("price")),
            csv_num(f.get("quantity")), csv_num(f.get("fee")), f.get("feeAsset") or "",
            csv_num(f.get("realizedPnl")),
        ])
    return buf.getvalue()


def fills_table(fills: Sequence[Message], time_text: TimeText) -> list[str]:
    """The ``tickdesk fills`` table (header first), or one line saying there are none."""
    if not fills:
        return ["no fills"]
    return _table(_FILL_COLUMNS, [
        (str(f.get("fillId")), _when(time_text, f.get("time")), str(f.get("orderId")),
         str(f.get("symbol")), str(f.get("side")), fmt_num(f.get("price")),
         fmt_num(f.get("quantity")), fmt_num(f.get("fee")), str(f.get("feeAsset") or "-"),
         fmt_num(f.get("realizedPnl"), signed=True))
        for f in fills])


_POSITION_COLUMNS = ("SYMBOL", "SIDE", "QTY", "ENTRY", "MARK", "UNREALIZED", "REALIZED")


def positions_table(positions: Sequence[Message]) -> list[str]:
    """The ``tickdesk positions`` table (header first), or one line saying there are none."""
    if not positions:
        return ["no positions"]
    return _table(_POSITION_COLUMNS, [
        (str(p.get("symbol")), str(p.get("side")), fmt_num(p.get("quantity")),
         fmt_num(p.get("entryPrice")), fmt_num(p.get("markPrice")),
         fmt_num(p.get("unrealizedPnl"), signed=True), fmt_num(p.get("realizedPnl"), signed=True))
        for p in positions])


_PORTFOLIO_FIELDS = (("equity", "equity", False), ("balance", "balance", False),
                     ("unrealized P&L", "unrealizedPnl", True),
                     ("realized P&L", "realizedPnl", True), ("total P&L", "totalPnl", True),
                     ("fees", "fees", False))


def portfolio_lines(portfolio: Message) -> list[str]:
    """``tickdesk portfolio``: the totals in the home asset, one per line, then
    the balance of each asset (free, locked by open orders, total, value)."""
    home = str(portfolio.get("homeAsset") or "")
    label_w = max(len(label) for label, _, _ in _PORTFOLIO_FIELDS)
    out = [f"{label.ljust(label_w)}  {fmt_num(portfolio.get(key), signed)} {home}".rstrip()
           for label, key, signed in _PORTFOLIO_FIELDS if key in portfolio]
    out.append(f"{'positions'.ljust(label_w)}  {portfolio.get('positionsCount', '-')}")
    out.append(f"{'open orders'.ljust(label_w)}  {portfolio.get('openOrdersCount', '-')}")
    balances = portfolio.get("balances") or []
    if balances:
        out.append("")
        out += _table(("ASSET", "FREE", "LOCKED", "TOTAL", f"VALUE {home}".rstrip()), [
            (str(b.get("asset")), fmt_num(b.get("free")), fmt_num(b.get("locked")),
             fmt_num(b.get("total")), fmt_num(b.get("value"))) for b in balances])
    unvalued = portfolio.get("unvalued") or []
    if unvalued:
        out.append(f"not valued (no price): {', '.join(str(a) for a in unvalued)}")
    return out
