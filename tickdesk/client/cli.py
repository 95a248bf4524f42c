"""The client commands of the ``tickdesk`` command line: ``watch``, ``order``
(``buy``/``sell``, ``oco``, ``bracket``, ``amend``, ``cancel``), ``cancel``,
``orders``, ``positions``, ``portfolio``, ``fills``.

Edge module, run on the command's main thread. :func:`register` adds them to
``tickdesk``'s subcommands; each one talks to a running daemon through
:class:`~tickdesk.client.TickdeskClient`. Every command takes ``--url``
(default: the ``TICKDESK_URL`` environment variable, else
``ws://127.0.0.1:8000/api/ws/realtime``) and ``--token`` (default: the
``TICKDESK_TOKEN`` environment variable): a flag beats the environment, which
beats the default.

Exit status: 0 success; 1 the order (or list) was rejected or the server
answered ``ERROR``; 2 usage error; 3 cannot connect (or the connection was
lost, or the server did not answer in time). ``docs/clients.md`` is the
user's guide.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from types import FrameType
from typing import Any, TextIO

import orjson

from engine.errors import TickdeskError
from tickdesk.client.connection import DEFAULT_URL, TickdeskClient
from tickdesk.client.errors import ClientError, CommandError, ConnectError
from tickdesk.client.render import (
    fills_csv,
    fills_table,
    orders_table,
    portfolio_lines,
    positions_table,
    update_line,
)
from tickdesk.client.terminal import run_plain, run_terminal
from tickdesk.client.watch_view import WatchModel

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_UNREACHABLE", "EXIT_USAGE", "register"]

EXIT_OK = 0
EXIT_ERROR = 1        # REJECTED, or ERROR from the server
EXIT_USAGE = 2        # argparse's own status for bad arguments
EXIT_UNREACHABLE = 3  # cannot connect / connection lost / no answer in time

ORDER_TYPES = ("MARKET", "LIMIT", "LIMIT_MAKER", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
               "TAKE_PROFIT_LIMIT", "TRAILING_STOP")


#: Types an OCO leg may have (which of them fits above or below depends on the side).
OCO_LEG_TYPES = ("LIMIT_MAKER", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "STOP_LOSS",
                 "STOP_LOSS_LIMIT")


class _Failed(TickdeskError):
    """End a command with an exit status (its message already printed)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _since(text: str) -> int:
    """``--since``: epoch milliseconds, or an ISO 8601 date or date-time (UTC
    unless it names a zone), e.g. ``2026-12-01`` or ``2026-12-01T09:30:00+01:00``."""
    if text.isdigit():
        return int(text)
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not epoch ms or an ISO 8601 date/time: {text!r}") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    ms = int(stamp.timestamp() * 1000)
    if ms < 0:
        raise argparse.ArgumentTypeError(f"before 1970: {text!r}")
    return ms


def iso_time(ms: int) -> str:
    """Epoch ms as ISO 8601 UTC with milliseconds (``2026-01-01T00:00:00.000Z``)."""
    stamp = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _client_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get("TICKDESK_URL") or DEFAULT_URL,
                        help=f"the daemon's WebSocket URL (default: $TICKDESK_URL, else "
                             f"{DEFAULT_URL})")
    common.add_argument("--token", default=os.environ.get("TICKDESK_TOKEN") or None,
                        help="account token (default: $TICKDESK_TOKEN)")
    common.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="how long to wait to connect and for each reply (default 10)")
    return common


def register(subparsers: Any) -> None:
    """Add the client commands to ``tickdesk``'s subcommands
    (``subparsers`` is what ``ArgumentParser.add_subparsers()`` returned)."""
    common = _client_options()
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true",
                        help="print one JSON object per line instead of text")

    watch = subparsers.add_parser(
        "watch", parents=[common],
        help="live full-screen view: quotes, positions, portfolio, orders, fills",
        description="Live full-screen view, fitted to the terminal: the connection and feed "
                    "status, quotes, positions, portfolio, and the working orders or the last "
                    "fills. Keys: q quits, o shows the working orders, f the last fills, / "
                    "adds a symbol (Enter adds, Esc cancels). Ctrl-C quits too. When stdout "
                    "is not a terminal: plain timestamped lines of what changed.")
    watch.add_argument("symbols", nargs="+", metavar="SYMBOL")
    watch.add_argument("--interval", type=float, default=0.5, metavar="SECONDS",
                       help="redraw at most this often (default 0.5)")
    watch.set_defaults(func=cmd_watch)

    order = subparsers.add_parser("order", help="place, amend or cancel an order",
                                  description="Place an order, amend or cancel one; prints "
                                              "the resulting ORDER_UPDATEs.")
    actions = order.add_subparsers(dest="order_action", metavar="ACTION", required=True)
    for side in ("buy", "sell"):
        p = actions.add_parser(side, parents=[common, output], help=f"place a {side} order")
        p.add_argument("symbol", metavar="SYMBOL")
        p.add_argument("quantity", type=_decimal, metavar="QUANTITY")
        p.add_argument("--type", default="MARKET", type=str.upper, choices=ORDER_TYPES,
                       help="order type (default MARKET)")
        p.add_argument("--price", type=_decimal, help="limit price")
        p.add_argument("--stop-price", type=_decimal, help="stop (trigger) price")
        p.add_argument("--trailing-delta", type=int, metavar="BPS",
                       help="trailing delta in basis points (1 = 0.01%%)")
        p.add_argument("--client-order-id", metavar="ID", help="your id for the order")
        p.add_argument("--time-in-force", type=str.upper, choices=("GTC", "IOC", "FOK"),
                       help="for LIMIT and *_LIMIT (default GTC)")
        p.add_argument("--iceberg-qty", type=_decimal, metavar="QTY",
                       help="show only this much at a time (LIMIT types)")
        p.set_defaults(func=cmd_order_place, side=side.upper())
    _add_oco(actions, [common, output])
    _add_bracket(actions, [common, output])
    amend = actions.add_parser("amend", parents=[common, output],
                               help="reduce an open order's quantity (keeps its priority)")
    amend.add_argument("order_id", type=int, nargs="?", metavar="ORDER_ID")
    amend.add_argument("new_qty", type=_decimal, metavar="NEW_QTY")
    amend.add_argument("--client-order-id", metavar="ID", help="amend by client order id")
    amend.set_defaults(func=cmd_order_amend)
    cancel = actions.add_parser("cancel", parents=[common, output], help="cancel an order")
    cancel.add_argument("order_id", type=int, nargs="?", metavar="ORDER_ID")
    cancel.add_argument("--client-order-id", metavar="ID", help="cancel by client order id")
    cancel.set_defaults(func=cmd_order_cancel)

    top_cancel = subparsers.add_parser(
        "cancel", parents=[common, output], help="cancel an order, a list, or every open order",
        description="Cancel one open order (ORDER_ID or --client-order-id), a whole OCO or "
                    "bracket (--list-id), or every open order (--all, optionally of one "
                    "--symbol); prints each CANCELED update.")
    top_cancel.add_argument("order_id", type=int, nargs="?", metavar="ORDER_ID")
    top_cancel.add_argument("--client-order-id", metavar="ID", help="cancel by client order id")
    top_cancel.add_argument("--list-id", type=int, metavar="ID",
                            help="cancel every open order of this OCO or bracket")
    top_cancel.add_argument("--all", action="store_true", help="cancel every open order")
    top_cancel.add_argument("--symbol", type=str.upper,
                            help="with --all: only this symbol's orders")
    top_cancel.set_defaults(func=cmd_cancel)

    positions = subparsers.add_parser("positions", parents=[common, output],
                                      help="the account's open positions")
    positions.set_defaults(func=cmd_positions)
    portfolio = subparsers.add_parser(
        "portfolio", parents=[common, output],
        help="the account's equity, P&L, fees and balances",
        description="Equity, balance, P&L and fees in the home asset, then each asset's "
                    "balance (free, locked by open orders, total, value).")
    portfolio.set_defaults(func=cmd_portfolio)

    orders = subparsers.add_parser("orders", parents=[common, output],
                                   help="list open orders (--all: every order)")
    orders.add_argument("--all", action="store_true", help="every order, not only open ones")
    orders.set_defaults(func=cmd_orders)

    fills = subparsers.add_parser(
        "fills", parents=[common, output], help="the account's fills (--csv for a spreadsheet)",
        description="Every fill of the account, oldest first: a table, CSV with a header "
                    "row (--csv), or one JSON object per line (--json).")
    fills.add_argument("--symbol", type=str.upper, help="only this symbol's fills")
    fills.add_argument("--since", type=_since, metavar="TIME",
                       help="only fills at or after TIME: epoch ms or ISO 8601 "
                            "(e.g. 2026-12-01 or 2026-12-01T09:30:00Z; UTC by default)")
    fills.add_argument("--csv", action="store_true", help="write CSV with a header row")
    fills.set_defaults(func=cmd_fills)


def _add_oco(actions: Any, parents: list[argparse.ArgumentParser]) -> None:
    oco = actions.add_parser(
        "oco", parents=parents, help="place an OCO: a limit leg and a stop leg, one cancels "
                                     "the other",
        description="Place an OCO (one-cancels-the-other) of QUANTITY: the leg above the "
                    "market and the leg below it. SELL: above is the take-profit "
                    "(LIMIT_MAKER at --above-price; TAKE_PROFIT / TAKE_PROFIT_LIMIT with "
                    "--above-type), below the stop (STOP_LOSS at --below-stop-price; "
                    "STOP_LOSS_LIMIT when --below-price is given too). BUY: the mirror "
                    "(above the stop, below the limit). Prints the list's and each leg's "
                    "update; a REJECTED list exits 1.",
        epilog="example: tickdesk order oco sell BTCUSDT 0.01 --above-price 90000 "
               "--below-stop-price 80000 --below-price 79900")
    oco.add_argument("side", type=str.upper, choices=("BUY", "SELL"), metavar="buy|sell")
    oco.add_argument("symbol", metavar="SYMBOL")
    oco.add_argument("quantity", type=_decimal, metavar="QUANTITY")
    for leg in ("above", "below"):
        oco.add_argument(f"--{leg}-type", type=str.upper, choices=OCO_LEG_TYPES, metavar="TYPE",
                         help=f"the {leg} leg's type (default: from the side and the prices "
                              f"given)")
        oco.add_argument(f"--{leg}-price", type=_decimal, metavar="P",
                         help=f"the {leg} leg's limit price")
        oco.add_argument(f"--{leg}-stop-price", type=_decimal, metavar="P",
                         help=f"the {leg} leg's stop (trigger) price")
        oco.add_argument(f"--{leg}-trailing-delta", type=int, metavar="BPS",
                         help=f"the {leg} leg trails by BPS basis points")
        oco.add_argument(f"--{leg}-client-order-id", metavar="ID",
                         help=f"your id for the {leg} leg")
    oco.set_defaults(func=cmd_order_oco)


def _add_bracket(actions: Any, parents: list[argparse.ArgumentParser]) -> None:
    bracket = actions.add_parser(
        "bracket", parents=parents, help="place a bracket: an entry with take-profit and "
                                         "stop-loss exits",
        description="Place a bracket: an entry of QUANTITY (MARKET, or LIMIT at "
                    "--entry-price) and, once it has filled, two exits on the other side "
                    "working as an OCO: a LIMIT_MAKER at --take-profit and a STOP_LOSS at "
                    "--stop-loss (STOP_LOSS_LIMIT with --stop-limit-price; trailing with "
                    "--trailing-delta). Prints the list's and each leg's update; a REJECTED "
                    "list exits 1.",
        epilog="example: tickdesk order bracket buy BTCUSDT 0.01 --entry-price 85000 "
               "--take-profit 88000 --stop-loss 83000")
    bracket.add_argument("side", type=str.upper, choices=("BUY", "SELL"), metavar="buy|sell")
    bracket.add_argument("symbol", metavar="SYMBOL")
    bracket.add_argument("quantity", type=_decimal, metavar="QUANTITY")
    bracket.add_argument("--entry-price", type=_decimal, metavar="P",
                         help="a LIMIT entry at P (default: a MARKET entry)")
    bracket.add_argument("--take-profit", type=_decimal, metavar="P", required=True,
                         help="the take-profit exit's limit price")
    bracket.add_argument("--stop-loss", type=_decimal, metavar="P", required=True,
                         help="the stop-loss exit's stop price")
    bracket.add_argument("--stop-limit-price", type=_decimal, metavar="P",
                         help="make the stop-loss a STOP_LOSS_LIMIT at P")
    bracket.add_argument("--trailing-delta", type=int, metavar="BPS",
                         help="the stop-loss trails by BPS basis points (from --stop-loss on)")
    for leg in ("entry", "take-profit", "stop-loss"):
        bracket.add_argument(f"--{leg}-client-order-id", metavar="ID",
                             help=f"your id for the {leg} order")
    bracket.set_defaults(func=cmd_order_bracket)


# -- plumbing ------------------------------------------------------------------------------


def _err(text: str) -> None:
    print(f"tickdesk: {text}", file=sys.stderr)


@contextmanager
def _session(args: argparse.Namespace, **options: Any) -> Iterator[TickdeskClient]:
    """A connected client; maps client errors to exit statuses (raises _Failed)."""
    client = TickdeskClient(args.url, args.token, connect_timeout_s=args.timeout,
                            request_timeout_s=args.timeout, **options)
    try:
        try:
            client.connect()
        except ConnectError as exc:
            _err(str(exc))
            raise _Failed(EXIT_UNREACHABLE) from None
        yield client
    except CommandError as exc:
        _err(f"{exc.code}: {exc.message}")
        if getattr(args, "json", False):
            _print_json({"type": "ERROR", "code": exc.code, "message": exc.message})
        raise _Failed(EXIT_ERROR) from None
    except ClientError as exc:  # ConnectionLost, RequestTimeout, ClientClosed
        _err(str(exc))
        raise _Failed(EXIT_UNREACHABLE) from None
    finally:
        client.close()


def _run(args: argparse.Namespace, body: Callable[[TickdeskClient], int],
         **options: Any) -> int:
    try:
        with _session(args, **options) as client:
            return body(client)
    except _Failed as failed:
        return failed.status


def _print_json(obj: Any, out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    stream.write(orjson.dumps(obj).decode() + "\n")
    stream.flush()


def _immediate_updates(client: TickdeskClient, request_id: str) -> list[dict[str, Any]]:
    """Every update the command ``request_id`` produced at once (e.g. NEW and the
    TRADE of a MARKET order), in order.

    ``get_orders`` is answered by the server's order actor, which handles one
    command at a time and announces all of a command's events before the next:
    so its reply comes after every event of ours, and the client delivers
    messages in arrival order. Then we take ours from the buffer.
    """
    client.get_orders()
    ours: list[dict[str, Any]] = []
    while True:
        try:
            msg = client.get(timeout=0)
        except (TimeoutError, ClientError):
            return ours
        if msg.get("id") == request_id and msg.get("type") in ("ORDER_UPDATE",
                                                               "ORDER_LIST_UPDATE"):
            ours.append(msg)


def _report(args: argparse.Namespace, updates: list[dict[str, Any]]) -> int:
    for msg in updates:
        if args.json:
            _print_json(msg)
        else:
            print(update_line(msg), flush=True)
    rejected = any(m.get("executionType") == "REJECTED" for m in updates)
    return EXIT_ERROR if rejected else EXIT_OK


# -- order / orders ------------------------------------------------------------------------


def cmd_order_place(args: argparse.Namespace) -> int:
    def body(client: TickdeskClient) -> int:
        extra: dict[str, Any] = {}
        if args.time_in_force is not None:
            extra["timeInForce"] = args.time_in_force
        if args.iceberg_qty is not None:
            extra["icebergQty"] = args.iceberg_qty
        result = client.place_order(
            args.symbol, args.side, args.type, args.quantity, price=args.price,
            stop_price=args.stop_price, trailing_delta=args.trailing_delta,
            client_order_id=args.client_order_id, **extra)
        updates = _immediate_updates(client, result.request_id) or [result.update]
        return _report(args, updates)

    return _run(args, body, reconnect=False)


def cmd_order_amend(args: argparse.Namespace) -> int:
    if (args.order_id is None) == (args.client_order_id is None):
        _err("order amend: give ORDER_ID or --client-order-id (one of them), then NEW_QTY")
        return EXIT_USAGE

    def body(client: TickdeskClient) -> int:
        result = client.amend_order(args.new_qty, args.order_id, args.client_order_id)
        return _report(args, [result.update])

    return _run(args, body, reconnect=False)


def cmd_order_cancel(args: argparse.Namespace) -> int:
    if (args.order_id is None) == (args.client_order_id is None):
        _err("order cancel: give ORDER_ID or --client-order-id (one of them)")
        return EXIT_USAGE

    def body(client: TickdeskClient) -> int:
        result = client.cancel_order(args.order_id, args.client_order_id)
        updates = _immediate_updates(client, result.request_id) or [result.update]
        return _report(args, updates)

    return _run(args, body, reconnect=False)


def _leg(args: argparse.Namespace, name: str, limit_side: bool) -> dict[str, Any]:
    """One OCO leg from ``--NAME-*``: the type defaults to LIMIT_MAKER for the
    limit leg, STOP_LOSS (STOP_LOSS_LIMIT with a price) for the stop leg."""
    price = getattr(args, f"{name}_price")
    kind = getattr(args, f"{name}_type")
    if kind is None:
        kind = "LIMIT_MAKER" if limit_side else (
            "STOP_LOSS_LIMIT" if price is not None else "STOP_LOSS")
    leg: dict[str, Any] = {"type": kind}
    for flag, wire in (("price", "price"), ("stop_price", "stopPrice"),
                       ("trailing_delta", "trailingDelta"),
                       ("client_order_id", "clientOrderId")):
        value = getattr(args, f"{name}_{flag}")
        if value is not None:
            leg[wire] = value
    return leg


def _report_list(args: argparse.Namespace, client: TickdeskClient, request_id: str,
                 fallback: list[dict[str, Any]]) -> int:
    updates = _immediate_updates(client, request_id) or fallback
    for msg in updates:
        if args.json:
            _print_json(msg)
        else:
            print(update_line(msg), flush=True)
    rejected = any(m.get("executionType") == "REJECTED" or
                   (m.get("type") == "ORDER_LIST_UPDATE" and
                    (m.get("list") or {}).get("status") == "REJECTED") for m in updates)
    return EXIT_ERROR if rejected else EXIT_OK


def cmd_order_oco(args: argparse.Namespace) -> int:
    # SELL: the limit (take-profit) is above the market; BUY: below.
    above = _leg(args, "above", limit_side=args.side == "SELL")
    below = _leg(args, "below", limit_side=args.side == "BUY")

    def body(client: TickdeskClient) -> int:
        result = client.place_oco(args.symbol, args.side, args.quantity, above, below)
        return _report_list(args, client, result.request_id,
                            [result.list_update, *(leg.update for leg in result.legs)])

    return _run(args, body, reconnect=False)


def cmd_order_bracket(args: argparse.Namespace) -> int:
    entry: dict[str, Any] = {"type": "MARKET" if args.entry_price is None else "LIMIT"}
    _put_opt(entry, "price", args.entry_price)
    _put_opt(entry, "clientOrderId", args.entry_client_order_id)
    take: dict[str, Any] = {"price": args.take_profit}
    _put_opt(take, "clientOrderId", args.take_profit_client_order_id)
    stop: dict[str, Any] = {"stopPrice": args.stop_loss}
    _put_opt(stop, "price", args.stop_limit_price)
    _put_opt(stop, "trailingDelta", args.trailing_delta)
    _put_opt(stop, "clientOrderId", args.stop_loss_client_order_id)

    def body(client: TickdeskClient) -> int:
        result = client.place_bracket(args.symbol, args.side, args.quantity, entry, take, stop)
        return _report_list(args, client, result.request_id,
                            [result.list_update, *(leg.update for leg in result.legs)])

    return _run(args, body, reconnect=False)


def _put_opt(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


def cmd_cancel(args: argparse.Namespace) -> int:
    """``tickdesk cancel``: one order, one list, or ``--all`` open orders."""
    chosen = sum(x is not None for x in (args.order_id, args.client_order_id, args.list_id))
    if args.all == (chosen == 1) or chosen > 1:
        _err("cancel: give ORDER_ID, --client-order-id, --list-id or --all (one of them)")
        return EXIT_USAGE
    if args.symbol is not None and not args.all:
        _err("cancel: --symbol goes with --all")
        return EXIT_USAGE
    if not args.all:
        def one(client: TickdeskClient) -> int:
            result = client.cancel_order(args.order_id, args.client_order_id,
                                         list_id=args.list_id)
            updates = _immediate_updates(client, result.request_id) or [result.update]
            return _report(args, updates)

        return _run(args, one, reconnect=False)

    def every(client: TickdeskClient) -> int:
        orders = [o for o in client.get_orders("open")
                  if args.symbol is None or o["symbol"] == args.symbol]
        done_lists: set[int] = set()
        canceled = 0
        for order in orders:
            list_id = order.get("listId")
            if list_id is not None and list_id in done_lists:
                continue  # cancelled with the first leg of its list
            try:
                if list_id is not None:
                    result = client.cancel_order(list_id=list_id)
                    done_lists.add(list_id)
                else:
                    result = client.cancel_order(order["orderId"])
            except CommandError as exc:
                if exc.code != "UNKNOWN_ORDER":
                    raise
                # Closed since the listing (filled, triggered and filled, expired):
                # it is no longer open, which is what --all asks for.
                if not args.json:
                    print(f"gone      #{order['orderId']} {order['clientOrderId']} "
                          f"(closed before the cancel)", flush=True)
                continue
            for msg in _immediate_updates(client, result.request_id) or [result.update]:
                if msg.get("executionType") == "CANCELED":
                    canceled += 1
                if args.json:
                    _print_json(msg)
                else:
                    print(update_line(msg), flush=True)
        if not args.json:
            print(f"canceled {canceled} order{'s' if canceled != 1 else ''}", flush=True)
        return EXIT_OK

    return _run(args, every, reconnect=False)


def cmd_positions(args: argparse.Namespace) -> int:
    def body(client: TickdeskClient) -> int:
        positions = client.get_positions()
        if args.json:
            for position in positions:
                _print_json(position)
        else:
            for line in positions_table([dict(p) for p in positions]):
                print(line)
            sys.stdout.flush()
        return EXIT_OK

    return _run(args, body, reconnect=False)


def cmd_portfolio(args: argparse.Namespace) -> int:
    def body(client: TickdeskClient) -> int:
        portfolio = client.get_portfolio()
        if args.json:
            _print_json(portfolio)
        else:
            for line in portfolio_lines(dict(portfolio)):
                print(line)
            sys.stdout.flush()
        return EXIT_OK

    return _run(args, body, reconnect=False)


def cmd_orders(args: argparse.Namespace) -> int:
    def body(client: TickdeskClient) -> int:
        orders = client.get_orders("all" if args.all else "open")
        if args.json:
            for order in orders:
                _print_json(order)
        else:
            for line in orders_table([dict(o) for o in orders]):
                print(line)
            sys.stdout.flush()
        return EXIT_OK

    return _run(args, body, reconnect=False)


def cmd_fills(args: argparse.Namespace) -> int:
    if args.csv and args.json:
        _err("fills: give --csv or --json, not both")
        return EXIT_USAGE

    def body(client: TickdeskClient) -> int:
        # The server pages newest first; people and spreadsheets read oldest first.
        found = list(client.iter_fills(args.symbol, since=args.since))
        found.reverse()
        if args.csv:
            sys.stdout.write(fills_csv(found, iso_time))
        elif args.json:
            for fill in found:
                _print_json(fill)
        else:
            for line in fills_table([dict(f) for f in found], iso_time):
                print(line)
        sys.stdout.flush()
        return EXIT_OK

    return _run(args, body, reconnect=False)


# -- watch -----------------------------------------------------------------------------------


def cmd_watch(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _run(args, lambda client: _watch(args, client, stop))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _watch(args: argparse.Namespace, client: TickdeskClient, stop: threading.Event) -> int:
    symbols = list(dict.fromkeys(s.upper() for s in args.symbols))
    model = WatchModel(symbols, url=args.url)
    for sym in symbols:
        client.subscribe(sym)
    interval = max(0.05, args.interval)
    if sys.stdout.isatty():
        run_terminal(client, model, interval=interval, stop=stop, request_timeout=args.timeout)
    else:
        def write(lines: list[str]) -> None:
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()

        run_plain(client, model, interval=interval, stop=stop, request_timeout=args.timeout,
                  write=write)
    return EXIT_OK
