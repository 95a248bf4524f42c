"""Text for people: order updates, order tables and the ``tickdesk watch`` view.

Pure: no threads, sockets or clocks (times come in as arguments). The
command-line module decides where the text goes; everything here returns
strings, so the formats are tested directly.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = [
    "FILL_CSV_COLUMNS",
    "WatchModel",
    "csv_num",
    "fills_csv",
    "fills_table",
    "fmt_num",
    "order_line",
    "orders_table",
    "update_line",
]

Message = Mapping[str, Any]

RESET = "\x1b[0m"
GREEN = "\x1b[32m"
RED = "\x1b[31m"
BOLD = "\x1b[1m"
DIM = "\x1b[2m"


def fmt_num(value: Any, signed: bool = False) -> str:
    """A wire number for people: no exponent, no trailing zeros; ``-`` for null."""
    if value is None:
        return "-"
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


def _pct(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    return f"{value:+.2f}%"


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


@dataclass
class WatchModel:
    """What ``tickdesk watch`` shows, fed with server messages (:meth:`apply`)."""

    symbols: tuple[str, ...]
    url: str = ""
    color: bool = True
    ticks: dict[str, dict[str, Any]] = field(default_factory=dict)
    positions: list[dict[str, Any]] | None = None
    portfolio: dict[str, Any] | None = None
    feed: dict[str, Any] | None = None
    account: str | None = None
    connection: str = "CONNECTING"
    last_order: str | None = None
    _printed: dict[str, str] = field(default_factory=dict)

    def apply(self, msg: Message) -> None:
        kind = msg.get("type")
        if kind == "MARKET_UPDATE":
            sym = str(msg.get("symbol"))
            if sym in self.symbols:
                self.ticks[sym] = dict(msg)
        elif kind == "POSITION_UPDATE":
            self.positions = list(msg.get("positions") or [])
        elif kind == "PORTFOLIO_UPDATE":
            self.portfolio = dict(msg.get("portfolio") or {})
        elif kind == "FEED_STATUS":
            self.feed = {k: v for k, v in msg.items() if k not in ("type", "timestamp")}
        elif kind == "CONNECTED":
            feed = msg.get("feed")
            self.feed = dict(feed) if isinstance(feed, Mapping) else self.feed
            self.account = msg.get("account")
        elif kind == "AUTHENTICATED":
            self.account = msg.get("account")
        elif kind in ("ORDER_UPDATE", "ORDER_LIST_UPDATE"):
            self.last_order = update_line(msg)

    # -- pieces ------------------------------------------------------------------

    def _paint(self, text: str, code: str) -> str:
        return f"{code}{text}{RESET}" if self.color else text

    def feed_text(self) -> str:
        if not self.feed:
            return "feed ?"
        text = f"feed {self.feed.get('feed', '?')} {self.feed.get('status', '?')}"
        if self.feed.get("status") != "UP" and self.feed.get("reason"):
            text += f" ({self.feed['reason']})"
        return text

    def price_rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for sym in self.symbols:
            t = self.ticks.get(sym)
            if t is None:
                rows.append((sym, "…", "", "", "", "", "", ""))
                continue
            rows.append((sym, fmt_num(t.get("price")), fmt_num(t.get("priceChange"), True),
                         _pct(t.get("priceChangePercent")), fmt_num(t.get("bid")),
                         fmt_num(t.get("ask")), fmt_num(t.get("high")), fmt_num(t.get("low"))))
        return rows

    def position_rows(self) -> list[tuple[str, ...]]:
        return [(str(p.get("symbol")), str(p.get("side")), fmt_num(p.get("quantity")),
                 fmt_num(p.get("entryPrice")), fmt_num(p.get("markPrice")),
                 fmt_num(p.get("unrealizedPnl"), True), fmt_num(p.get("realizedPnl"), True))
                for p in self.positions or ()]

    def portfolio_text(self) -> str:
        pf = self.portfolio
        if pf is None:
            return "portfolio: -" if self.account else "portfolio: (not authenticated)"
        return (f"portfolio: balance {fmt_num(pf.get('balance'))}  equity "
                f"{fmt_num(pf.get('equity'))}  uPnL {fmt_num(pf.get('unrealizedPnl'), True)}  "
                f"rPnL {fmt_num(pf.get('realizedPnl'), True)}  fees {fmt_num(pf.get('fees'))}  "
                f"open orders {pf.get('openOrdersCount', '-')}")

    # -- the full screen ------------------------------------------------------------

    def screen(self, clock: str) -> list[str]:
        """The whole view, one string per line (ANSI colors if ``color``)."""
        conn = self.connection
        conn_text = self._paint(conn, GREEN if conn == "OPEN" else RED)
        lines = [self._paint("tickdesk watch", BOLD) + f"  {self.url}  {clock}",
                 f"connection {conn_text}  {self.feed_text()}  account {self.account or '-'}",
                 ""]
        price_lines = _table(("SYMBOL", "PRICE", "CHANGE", "CHG%", "BID", "ASK", "HIGH", "LOW"),
                             self.price_rows())
        lines.append(self._paint(price_lines[0], DIM))
        for row, text in zip(self.price_rows(), price_lines[1:], strict=True):
            change = row[2]
            color = GREEN if change.startswith("+") else RED if change.startswith("-") else ""
            lines.append(self._paint(text, color) if color else text)
        lines.append("")
        if self.positions is None:
            lines.append("positions: -" if self.account else "positions: (not authenticated)")
        elif not self.positions:
            lines.append("positions: none")
        else:
            pos_lines = _table(("POSITION", "SIDE", "QTY", "ENTRY", "MARK", "UNREALIZED",
                                "REALIZED"), self.position_rows())
            lines.append(self._paint(pos_lines[0], DIM))
            lines.extend(pos_lines[1:])
        lines.append("")
        lines.append(self.portfolio_text())
        if self.last_order:
            lines.append(f"last order: {self.last_order}")
        lines.append(self._paint("Ctrl-C to quit", DIM))
        return lines

    def changes(self, clock: str) -> list[str]:
        """Plain lines for what changed since the last call (for a pipe, not a TTY)."""
        current: dict[str, str] = {"connection": f"connection {self.connection}",
                                   "feed": self.feed_text()}
        for row in self.price_rows():
            if row[1] != "…":
                current[f"price:{row[0]}"] = f"{row[0]} {row[1]} {row[2]} ({row[3]})"
        if self.positions is not None:
            current["positions"] = "positions: " + ("; ".join(
                f"{r[0]} {r[1]} {r[2]} @ {r[3]} mark {r[4]} uPnL {r[5]}"
                for r in self.position_rows()) or "none")
        if self.portfolio is not None:
            current["portfolio"] = self.portfolio_text()
        if self.last_order:
            current["order"] = f"order: {self.last_order}"
        out = [f"{clock} {text}" for key, text in current.items()
               if self._printed.get(key) != text]
        self._printed.update(current)
        return out
