"""What ``tickdesk watch`` shows: its state (:class:`WatchModel`), its keys, and
the screen built from them for a terminal of a given size.

Pure: no threads, sockets, clocks or terminal I/O. The state is fed with
server messages (:meth:`WatchModel.apply`) and key presses
(:meth:`WatchModel.key`, which returns what the caller must do: quit, or
subscribe to a symbol); :func:`watch_view` lays the state out for ``width`` x
``height`` cells as rich ``Text`` lines (styles, no escape codes), and
:func:`screen_lines` renders them to plain strings for tests. The terminal
module (``tickdesk/client/terminal.py``) runs the loop on the main thread and
owns the screen and the keyboard.

Layout, top to bottom: a title line, the status line (connection, feed,
account), the quotes, the positions, the portfolio, then one panel chosen by
the keys (``o`` working orders, ``f`` the last fills), and a footer (the keys,
or the ``/`` prompt, and the last notice). Columns that do not fit the width
are left out, least important first; rows that do not fit the height are
counted in a ``… N more`` line, the panel's first, then the positions', then
the quotes'. Numbers are right-aligned on their decimal point.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from rich.console import Console, Group
from rich.text import Span, Text

from tickdesk.client.render import fmt_num, update_line

__all__ = [
    "MAX_FILLS",
    "MAX_SYMBOLS",
    "OPEN_STATUSES",
    "Column",
    "Intent",
    "WatchModel",
    "align_decimals",
    "layout_table",
    "screen_lines",
    "watch_view",
]

Message = Mapping[str, Any]
#: Epoch ms -> text for people (the caller passes one: this module reads no clock).
TimeText = Callable[[int], str]

#: The fills panel keeps this many, newest first (older ones are dropped).
MAX_FILLS = 50
#: At most this many symbols are watched; ``/`` refuses more with a notice.
MAX_SYMBOLS = 64
#: Working orders whose fee so far is remembered (beyond: the oldest is forgotten,
#: and its next fill's fee is shown as the order's whole fee).
MAX_TRACKED_ORDERS = 1000
#: Statuses of a working order (``PENDING_NEW``: a bracket's exit waiting for its entry).
OPEN_STATUSES = frozenset({"PENDING_NEW", "NEW", "PARTIALLY_FILLED"})

GAP = 2  # spaces between columns
UP_STYLE = "green"
DOWN_STYLE = "red"
WARN_STYLE = "bold yellow"
BAD_STYLE = "bold red"
HEAD_STYLE = "bold"
DIM_STYLE = "dim"


@dataclass(frozen=True, slots=True)
class Intent:
    """What a key press asks the caller to do: ``quit``, or ``add`` ``symbol``."""

    kind: Literal["quit", "add"]
    symbol: str = ""


# -- tables ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: numbers are right-aligned on the decimal point; the
    columns with the highest ``drop`` are left out first when the width is
    short (0: never)."""

    title: str
    numeric: bool = False
    drop: int = 0


Cell = tuple[str, str]  # (text, rich style; "" for none)


def align_decimals(texts: Sequence[str]) -> list[str]:
    """Pad numbers on the right so that, right-aligned, their units digits (and
    decimal points) line up: ``["86003.26", "3000.5", "150"]`` -> ``["86003.26",
    "3000.5 ", "150   "]``. A text without digits (``-``) sits where the units are."""
    def after_units(text: str) -> int:
        dot = text.find(".")
        if dot >= 0:
            return len(text) - dot
        digits = [i for i, ch in enumerate(text) if ch.isdigit()]
        return len(text) - digits[-1] - 1 if digits else 0

    tails = [after_units(t) for t in texts]
    widest = max(tails, default=0)
    return [text + " " * (widest - tail) for text, tail in zip(texts, tails, strict=True)]


def layout_table(columns: Sequence[Column], rows: Sequence[Sequence[Cell]],
                 width: int) -> list[Text]:
    """A header line and one line per row, fitted to ``width`` (see :func:`_layout`)."""
    header, lines = _layout(columns, rows, width)
    return [header, *(make() for make in lines)]


def _layout(columns: Sequence[Column], rows: Sequence[Sequence[Cell]],
            width: int) -> tuple[Text, list[Callable[[], Text]]]:
    """A header line and one line per row, fitted to ``width``: numeric columns
    aligned on their decimal point; columns dropped (highest ``drop`` first)
    until the rest fits; a line still too long is cut with an ellipsis."""
    cols = list(range(len(columns)))
    texts: list[list[str]] = [[r[i][0] for r in rows] for i in cols]
    for i in cols:
        if columns[i].numeric:
            texts[i] = align_decimals(texts[i])
    widths = [max(len(columns[i].title), *(len(t) for t in texts[i])) if rows
              else len(columns[i].title) for i in cols]

    def total(keep: list[int]) -> int:
        return sum(widths[i] for i in keep) + GAP * max(0, len(keep) - 1)

    keep = cols[:]
    for level in sorted({c.drop for c in columns if c.drop > 0}, reverse=True):
        if total(keep) <= width:
            break
        keep = [i for i in keep if columns[i].drop != level]

    gap = " " * GAP

    def line(cells: list[tuple[str, str]]) -> Text:
        # One string and its spans (not Text.append per cell: a frame has many rows).
        parts: list[str] = []
        spans: list[Span] = []
        at = 0
        for n, (i, (text, style)) in enumerate(zip(keep, cells, strict=True)):
            if n:
                parts.append(gap)
                at += GAP
            cell = text.rjust(widths[i]) if columns[i].numeric else text.ljust(widths[i])
            if style:
                spans.append(Span(at, at + len(cell), style))
            parts.append(cell)
            at += len(cell)
        plain = "".join(parts).rstrip()
        end = len(plain)
        spans = [Span(sp.start, min(sp.end, end), sp.style) for sp in spans if sp.start < end]
        out = Text(plain, no_wrap=True, overflow="ellipsis", spans=spans)
        if len(out) > width:
            out.truncate(width, overflow="ellipsis")
        return out

    header = line([(columns[i].title.rjust(widths[i]) if columns[i].numeric
                    else columns[i].title, HEAD_STYLE) for i in keep])
    # Rows are built when shown (a frame may cut most of them).
    return header, [functools.partial(lambda r: line([(texts[i][r], rows[r][i][1])
                                                       for i in keep]), r)
                    for r in range(len(rows))]


def _signed_style(text: str) -> str:
    return UP_STYLE if text.startswith("+") else DOWN_STYLE if text.startswith("-") else ""


def _pct(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    return f"{value:+.2f}%"


QUOTE_COLUMNS = (Column("SYMBOL"), Column("PRICE", True), Column("CHG%", True),
                 Column("BID", True, 2), Column("ASK", True, 2), Column("CHANGE", True, 3),
                 Column("HIGH", True, 4), Column("LOW", True, 4), Column("VOLUME", True, 5))
POSITION_COLUMNS = (Column("POSITION"), Column("SIDE"), Column("QTY", True),
                    Column("UNREALIZED", True), Column("ENTRY", True, 2),
                    Column("MARK", True, 2), Column("REALIZED", True, 3))
ORDER_COLUMNS = (Column("ORDER", True), Column("SYMBOL"), Column("SIDE"), Column("TYPE", False, 2),
                 Column("QTY", True), Column("PRICE", True), Column("STOP", True, 3),
                 Column("FILLED", True, 4), Column("STATUS", False, 5),
                 Column("CLIENT_ID", False, 6), Column("LIST", True, 6))
FILL_COLUMNS = (Column("TIME"), Column("SYMBOL"), Column("SIDE"), Column("PRICE", True),
                Column("QTY", True), Column("FEE", True, 3), Column("ORDER", True, 4),
                Column("REALIZED", True, 5))


# -- the model -----------------------------------------------------------------------------


@dataclass
class WatchModel:
    """Everything ``tickdesk watch`` shows, fed with server messages, the
    client's connection state and key presses. Runs on the watch loop's thread."""

    symbols: list[str]
    url: str = ""
    ticks: dict[str, dict[str, Any]] = field(default_factory=dict)
    positions: list[dict[str, Any]] | None = None
    portfolio: dict[str, Any] | None = None
    feed: dict[str, Any] | None = None
    account: str | None = None
    #: The client's state: ``CONNECTING``, ``OPEN``, ``RECONNECTING``, ``CLOSED``.
    connection: str = "CONNECTING"
    retry_in_s: float | None = None
    reconnects: int = 0
    #: Working orders by id (None: not fetched yet).
    orders: dict[int, dict[str, Any]] | None = None
    #: The last fills, newest first (at most MAX_FILLS).
    fills: list[dict[str, Any]] = field(default_factory=list)
    panel: Literal["orders", "fills"] = "orders"
    #: The ``/`` prompt's text while it is open, else None.
    prompt: str | None = None
    notice: str | None = None
    last_order: str | None = None
    _unclaimed: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    #: Fee charged so far per working order (a TRADE's own fee is the increase).
    _fees: dict[int, Any] = field(default_factory=dict)
    _printed: dict[str, str] = field(default_factory=dict)

    # -- input -------------------------------------------------------------------

    def apply(self, msg: Message) -> None:
        """Take one server message into the state (others are ignored)."""
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
        elif kind in ("CONNECTED", "AUTHENTICATED"):
            feed = msg.get("feed")
            if isinstance(feed, Mapping):
                self.feed = dict(feed)
            self.account = msg.get("account")
        elif kind == "ORDERS":
            self.orders = {int(o["orderId"]): dict(o) for o in msg.get("orders") or ()
                           if o.get("status") in OPEN_STATUSES}
            self._fees = {oid: o.get("fee") or 0 for oid, o in self.orders.items()}
        elif kind == "FILLS":
            self.fills = [dict(f) for f in (msg.get("fills") or ())][:MAX_FILLS]
            self._unclaimed = Counter(_fill_key(f) for f in self.fills)
        elif kind == "ORDER_UPDATE":
            self._order_update(msg)
        elif kind == "ORDER_LIST_UPDATE":
            self.last_order = update_line(msg)

    def _order_update(self, msg: Message) -> None:
        self.last_order = update_line(msg)
        order = msg.get("order")
        if not isinstance(order, Mapping) or order.get("orderId") is None:
            return
        oid = int(order["orderId"])
        if self.orders is not None:
            if order.get("status") in OPEN_STATUSES:
                self.orders[oid] = dict(order)
            else:
                self.orders.pop(oid, None)
        fee_before = self._fees.pop(oid, 0)
        if order.get("status") in OPEN_STATUSES:
            self._fees[oid] = order.get("fee") or 0
            while len(self._fees) > MAX_TRACKED_ORDERS:
                del self._fees[next(iter(self._fees))]
        if msg.get("executionType") == "TRADE":
            fee = _difference(order.get("fee"), fee_before)  # the order's fee is cumulative
            fill = {"time": msg.get("timestamp"), "orderId": oid,
                    "clientOrderId": order.get("clientOrderId"), "symbol": order.get("symbol"),
                    "side": order.get("side"), "price": msg.get("lastPrice"),
                    "quantity": msg.get("lastQty"), "fee": fee, "realizedPnl": None}
            key = _fill_key(fill)
            if self._unclaimed[key] > 0:  # already in the FILLS snapshot
                self._unclaimed[key] -= 1
                return
            self.fills.insert(0, fill)
            del self.fills[MAX_FILLS:]

    def set_connection(self, state: str, retry_in_s: float | None = None,
                       reconnects: int = 0) -> None:
        self.connection = state
        self.retry_in_s = retry_in_s
        self.reconnects = reconnects

    def add_symbol(self, symbol: str) -> None:
        if symbol not in self.symbols:
            self.symbols.append(symbol)

    def key(self, key: str) -> Intent | None:
        """One key press. Outside the prompt: ``q`` quits, ``o`` shows the
        working orders, ``f`` the last fills, ``/`` opens the prompt. In the
        prompt: letters and digits type a symbol, Backspace deletes, Enter
        asks to add it, Escape closes the prompt."""
        if self.prompt is not None:
            if key in ("\r", "\n"):
                symbol, self.prompt = self.prompt, None
                if not symbol:
                    return None
                if symbol in self.symbols:
                    self.notice = f"{symbol} is already watched"
                    return None
                if len(self.symbols) >= MAX_SYMBOLS:
                    self.notice = f"at most {MAX_SYMBOLS} symbols"
                    return None
                return Intent("add", symbol)
            if key == "\x1b":
                self.prompt = None
            elif key in ("\x7f", "\x08"):
                self.prompt = self.prompt[:-1]
            elif len(key) == 1 and key.isascii() and key.isalnum() and len(self.prompt) < 20:
                self.prompt += key.upper()
            return None
        if key in ("q", "Q"):
            return Intent("quit")
        if key in ("o", "O"):
            self.panel = "orders"
        elif key in ("f", "F"):
            self.panel = "fills"
        elif key == "/":
            self.prompt = ""
            self.notice = None
        return None

    # -- pieces --------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.connection == "OPEN"

    def connection_text(self) -> tuple[str, str]:
        if self.connection == "OPEN":
            return "OPEN", UP_STYLE
        if self.connection == "RECONNECTING":
            text = "RECONNECTING"
            if self.retry_in_s is not None:
                text += f" (retry in {self.retry_in_s:.1f} s)"
            return text, BAD_STYLE
        return self.connection, WARN_STYLE

    def feed_text(self) -> tuple[str, str]:
        """The feed's status as the server last said it; while the client is
        not connected, only what it was (the server may have changed it)."""
        if not self.feed:
            return "feed ?", DIM_STYLE
        status = str(self.feed.get("status", "?"))
        if not self.is_open:
            return f"feed unknown (was {status})", DIM_STYLE
        text = f"feed {self.feed.get('feed', '?')} {status}"
        if status != "UP" and self.feed.get("reason"):
            text += f" ({self.feed['reason']})"
        return text, UP_STYLE if status == "UP" else WARN_STYLE

    def quote_rows(self) -> list[list[Cell]]:
        rows: list[list[Cell]] = []
        for sym in self.symbols:
            t = self.ticks.get(sym)
            if t is None:
                rows.append([(sym, "")] + [("…" if i == 0 else "", DIM_STYLE)
                                           for i in range(len(QUOTE_COLUMNS) - 1)])
                continue
            change = fmt_num(t.get("priceChange"), True)
            pct = _pct(t.get("priceChangePercent"))
            style = _signed_style(change) if self.is_open else DIM_STYLE
            rows.append([(sym, HEAD_STYLE), (fmt_num(t.get("price")), style),
                         (pct, style), (fmt_num(t.get("bid")), ""),
                         (fmt_num(t.get("ask")), ""), (change, style),
                         (fmt_num(t.get("high")), ""), (fmt_num(t.get("low")), ""),
                         (fmt_num(t.get("volume")), "")])
        return rows

    def position_rows(self) -> list[list[Cell]]:
        rows = []
        for p in self.positions or ():
            upnl = fmt_num(p.get("unrealizedPnl"), True)
            rpnl = fmt_num(p.get("realizedPnl"), True)
            rows.append([(str(p.get("symbol")), ""), (str(p.get("side")), ""),
                         (fmt_num(p.get("quantity")), ""), (upnl, _signed_style(upnl)),
                         (fmt_num(p.get("entryPrice")), ""), (fmt_num(p.get("markPrice")), ""),
                         (rpnl, _signed_style(rpnl))])
        return rows

    def order_rows(self) -> list[list[Cell]]:
        rows = []
        for oid in sorted(self.orders or {}, reverse=True):
            o = (self.orders or {})[oid]
            side = str(o.get("side"))
            stop = o.get("currentStopPrice") or o.get("stopPrice")
            rows.append([(str(oid), ""), (str(o.get("symbol")), ""),
                         (side, UP_STYLE if side == "BUY" else DOWN_STYLE),
                         (str(o.get("type")), ""), (fmt_num(o.get("quantity")), ""),
                         (fmt_num(o.get("price")), ""), (fmt_num(stop), ""),
                         (fmt_num(o.get("filledQuantity")), ""), (str(o.get("status")), ""),
                         (str(o.get("clientOrderId")), DIM_STYLE),
                         (fmt_num(o.get("listId")), "")])
        return rows

    def fill_rows(self, time_text: TimeText) -> list[list[Cell]]:
        rows = []
        for f in self.fills:
            when = f.get("time")
            side = str(f.get("side"))
            rpnl = fmt_num(f.get("realizedPnl"), True) if f.get("realizedPnl") is not None \
                else "-"
            rows.append([(time_text(when) if isinstance(when, int) else "-", DIM_STYLE),
                         (str(f.get("symbol")), ""),
                         (side, UP_STYLE if side == "BUY" else DOWN_STYLE),
                         (fmt_num(f.get("price")), ""), (fmt_num(f.get("quantity")), ""),
                         (fmt_num(f.get("fee")), ""), (str(f.get("orderId")), ""),
                         (rpnl, _signed_style(rpnl))])
        return rows

    def portfolio_items(self) -> list[str]:
        pf = self.portfolio
        if pf is None:
            return ["portfolio: -" if self.account else "portfolio: (not authenticated)"]
        return [f"equity {fmt_num(pf.get('equity'))}",
                f"balance {fmt_num(pf.get('balance'))}",
                f"uPnL {fmt_num(pf.get('unrealizedPnl'), True)}",
                f"rPnL {fmt_num(pf.get('realizedPnl'), True)}",
                f"fees {fmt_num(pf.get('fees'))}",
                f"open orders {pf.get('openOrdersCount', '-')}"]

    # -- plain lines (stdout is not a terminal) ------------------------------------

    def changes(self, clock: str) -> list[str]:
        """Plain lines for what changed since the last call (for a pipe)."""
        current: dict[str, str] = {"connection": f"connection {self.connection}",
                                   "feed": self.feed_text()[0]}
        for row in self.quote_rows():
            if row[1][0] != "…":
                current[f"price:{row[0][0]}"] = \
                    f"{row[0][0]} {row[1][0]} {row[5][0]} ({row[2][0]})"
        if self.positions is not None:
            current["positions"] = "positions: " + ("; ".join(
                f"{r[0][0]} {r[1][0]} {r[2][0]} @ {r[4][0]} mark {r[5][0]} uPnL {r[3][0]}"
                for r in self.position_rows()) or "none")
        if self.portfolio is not None:
            pf = self.portfolio
            current["portfolio"] = (
                f"portfolio: balance {fmt_num(pf.get('balance'))}  equity "
                f"{fmt_num(pf.get('equity'))}  uPnL {fmt_num(pf.get('unrealizedPnl'), True)}  "
                f"rPnL {fmt_num(pf.get('realizedPnl'), True)}  fees {fmt_num(pf.get('fees'))}  "
                f"open orders {pf.get('openOrdersCount', '-')}")
        if self.last_order:
            current["order"] = f"order: {self.last_order}"
        out = [f"{clock} {text}" for key, text in current.items()
               if self._printed.get(key) != text]
        self._printed.update(current)
        return out


def _difference(after: Any, before: Any) -> Decimal | None:
    """``after - before`` of two wire numbers, exactly (as the digits read)."""
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (after, before)):
        return None
    return Decimal(repr(after)) - Decimal(repr(before))


def _fill_key(fill: Mapping[str, Any]) -> tuple[Any, ...]:
    return (fill.get("orderId"), fill.get("price"), fill.get("quantity"))


# -- the screen ---------------------------------------------------------------------------


@dataclass
class _Section:
    """Lines of one part of the screen; ``body`` rows (built when shown) may be
    cut to fit."""

    head: list[Text]
    body: list[Callable[[], Text]] = field(default_factory=list)
    shown: int = -1  # rows of ``body`` shown (-1: all)

    def lines(self, width: int) -> list[Text]:
        if self.shown < 0 or self.shown >= len(self.body):
            return self.head + [make() for make in self.body]
        hidden = len(self.body) - self.shown
        more = Text(f"… {hidden} more", style=DIM_STYLE, no_wrap=True)
        more.truncate(width)
        return self.head + [make() for make in self.body[:self.shown]] + [more]

    def height(self) -> int:
        if self.shown < 0 or self.shown >= len(self.body):
            return len(self.head) + len(self.body)
        return len(self.head) + self.shown + 1


def _fit(width: int, *parts: tuple[str, str]) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    for n, (text, style) in enumerate(p for p in parts if p[0]):
        if n:
            out.append("  ")
        out.append(text, style or None)
    out.truncate(width, overflow="ellipsis")
    return out


def _pack(items: Sequence[str], width: int) -> list[Text]:
    """Items on as few lines as fit ``width``, two spaces apart."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + 2 + len(item) <= width:
            lines[-1] += "  " + item
        else:
            lines.append(item)
    out = []
    for text in lines:
        t = Text(text, no_wrap=True, overflow="ellipsis")
        t.truncate(width, overflow="ellipsis")
        out.append(t)
    return out


def watch_view(model: WatchModel, width: int, height: int, clock: str,
               time_text: TimeText) -> Group:
    """The whole screen for a ``width`` x ``height`` terminal: at most
    ``height`` lines, none wider than ``width``."""
    width = max(1, width)
    height = max(1, height)
    conn, conn_style = model.connection_text()
    feed, feed_style = model.feed_text()
    title = _fit(width, ("tickdesk watch", HEAD_STYLE), (clock, ""), (model.url, DIM_STYLE))
    status = _fit(width, ("connection", ""), (conn, conn_style), (feed, feed_style),
                  (f"account {model.account or '-'}", ""))
    top = _Section([title, status])

    quote_head, quote_rows = _layout(QUOTE_COLUMNS, model.quote_rows(), width)
    quote_sec = _Section([Text(""), quote_head], quote_rows)
    if not model.is_open and model.ticks:
        quote_sec.head.insert(1, _fit(width, ("prices are stale: not connected", WARN_STYLE)))

    if model.positions is None:
        pos_sec = _Section([Text(""), _fit(width, ("positions: -" if model.account else
                                                    "positions: (not authenticated)", ""))])
    elif not model.positions:
        pos_sec = _Section([Text(""), _fit(width, ("positions: none", ""))])
    else:
        pos_head, pos_rows = _layout(POSITION_COLUMNS, model.position_rows(), width)
        pos_sec = _Section([Text(""), pos_head], pos_rows)
    pf_sec = _Section(_pack(model.portfolio_items(), width))

    if model.panel == "orders":
        if model.orders is None:
            panel_sec = _Section([Text(""), _fit(width, ("WORKING ORDERS", HEAD_STYLE),
                                                 ("-", DIM_STYLE))])
        else:
            rows = model.order_rows()
            title_t = _fit(width, (f"WORKING ORDERS ({len(rows)})", HEAD_STYLE),
                           ("[f] fills", DIM_STYLE))
            if rows:
                head, body = _layout(ORDER_COLUMNS, rows, width)
                panel_sec = _Section([Text(""), title_t, head], body)
            else:
                panel_sec = _Section([Text(""), title_t, _fit(width, ("none", DIM_STYLE))])
    else:
        rows = model.fill_rows(time_text)
        title_t = _fit(width, (f"LAST FILLS ({len(rows)})", HEAD_STYLE),
                       ("[o] orders", DIM_STYLE))
        if rows:
            head, body = _layout(FILL_COLUMNS, rows, width)
            panel_sec = _Section([Text(""), title_t, head], body)
        else:
            panel_sec = _Section([Text(""), title_t, _fit(width, ("none", DIM_STYLE))])

    if model.prompt is not None:
        foot = _fit(width, ("add symbol:", HEAD_STYLE), (model.prompt + "_", ""),
                    ("Enter adds, Esc cancels", DIM_STYLE))
    else:
        foot = _fit(width, ("q quit  o orders  f fills  / add symbol", DIM_STYLE))
    foot_sec = _Section([_fit(width, (model.notice, WARN_STYLE)), foot] if model.notice
                        else [foot])

    sections = [top, quote_sec, pos_sec, pf_sec, panel_sec, foot_sec]
    # Cut rows where it costs least: the panel, then the positions, then the quotes.
    for sec in (panel_sec, pos_sec, quote_sec):
        over = sum(s.height() for s in sections) - height
        if over <= 0:
            break
        if sec.body:
            # ``shown`` rows plus one "… N more" line replace the whole body.
            shown = max(0, len(sec.body) - over - 1)
            sec.shown = shown if shown < len(sec.body) else -1
    lines = [line for s in sections[:-1] for line in s.lines(width)]
    foot_lines = foot_sec.lines(width)
    room = height - len(foot_lines)
    if room < 0:  # not even the footer fits: its last lines (the keys)
        return Group(*foot_lines[-height:])
    # The footer sits on the terminal's last lines; the rest is cut to fit above it.
    lines = lines[:room] + [Text("")] * (room - len(lines))
    return Group(*lines, *foot_lines)


def screen_lines(model: WatchModel, width: int, height: int, clock: str,
                 time_text: TimeText) -> list[str]:
    """The screen as plain strings (no styles), as a terminal of that size shows it."""
    console = Console(width=width, height=height, color_system=None, force_terminal=False,
                      record=False, legacy_windows=False, highlight=False)
    with console.capture() as capture:
        console.print(watch_view(model, width, height, clock, time_text), crop=True,
                      soft_wrap=False)
    return capture.get().rstrip("\n").split("\n")
