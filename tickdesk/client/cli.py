"""The client commands of the ``tickdesk`` command line: ``watch``, ``order``, ``orders``.

Edge module. :func:`register` adds them to ``tickdesk``'s subcommands; each
one talks to a running daemon through :class:`~tickdesk.client.TickdeskClient`.
Every command takes ``--url`` (default ``ws://127.0.0.1:8000/api/ws/realtime``)
and ``--token`` (default: the ``TICKDESK_TOKEN`` environment variable).

Exit status: 0 success; 1 the order was rejected or the server answered
``ERROR``; 2 usage error; 3 cannot connect (or the connection was lost, or the
server did not answer in time). ``docs/clients.md`` is the user's guide.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from types import FrameType
from typing import Any, TextIO

import orjson

from engine.errors import TickdeskError
from tickdesk.client.connection import DEFAULT_URL, TickdeskClient
from tickdesk.client.errors import ClientError, CommandError, ConnectError
from tickdesk.client.render import WatchModel, orders_table, update_line

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_UNREACHABLE", "EXIT_USAGE", "register"]

EXIT_OK = 0
EXIT_ERROR = 1        # REJECTED, or ERROR from the server
EXIT_USAGE = 2        # argparse's own status for bad arguments
EXIT_UNREACHABLE = 3  # cannot connect / connection lost / no answer in time

ORDER_TYPES = ("MARKET", "LIMIT", "LIMIT_MAKER", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
               "TAKE_PROFIT_LIMIT", "TRAILING_STOP")


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


def _client_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=DEFAULT_URL,
                        help=f"the daemon's WebSocket URL (default {DEFAULT_URL})")
    common.add_argument("--token", default=os.environ.get("TICKDESK_TOKEN"),
                        help="account token (default: $TICKDESK_TOKEN)")
    common.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="how long to wait to connect and for each reply (default 10)")
    return common


def register(subparsers: Any) -> None:
    """Add ``watch``, ``order`` and ``orders`` to ``tickdesk``'s subcommands
    (``subparsers`` is what ``ArgumentParser.add_subparsers()`` returned)."""
    common = _client_options()
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true",
                        help="print one JSON object per line instead of text")

    watch = subparsers.add_parser(
        "watch", parents=[common], help="live view of prices, positions and portfolio",
        description="Live view: prices with change, positions, portfolio and feed status, "
                    "redrawn in place (plain lines when stdout is not a terminal). "
                    "Ctrl-C quits.")
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

    orders = subparsers.add_parser("orders", parents=[common, output],
                                   help="list open orders (--all: every order)")
    orders.add_argument("--all", action="store_true", help="every order, not only open ones")
    orders.set_defaults(func=cmd_orders)


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


# -- watch -----------------------------------------------------------------------------------


class _Screen:
    """Redraws the view in place on a terminal (ANSI), or prints changes as plain lines."""

    def __init__(self, out: TextIO, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self._started = False

    def draw(self, model: WatchModel) -> None:
        clock = time.strftime("%H:%M:%S")
        if not self.tty:
            lines = model.changes(clock)
            if lines:
                self.out.write("\n".join(lines) + "\n")
                self.out.flush()
            return
        head = "" if self._started else "\x1b[?25l\x1b[2J"  # hide the cursor, clear once
        self._started = True
        body = "\x1b[K\n".join(model.screen(clock))
        self.out.write(f"{head}\x1b[H{body}\x1b[K\n\x1b[J")
        self.out.flush()

    def finish(self) -> None:
        if self.tty and self._started:
            self.out.write("\x1b[?25h\n")  # show the cursor again
            self.out.flush()


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
    tty = sys.stdout.isatty()
    symbols = tuple(dict.fromkeys(s.upper() for s in args.symbols))
    model = WatchModel(symbols, url=args.url, color=tty and "NO_COLOR" not in os.environ)
    for sym in symbols:
        client.subscribe(sym)
    if client.account is not None:  # a snapshot now rather than at the next broadcast
        client.request("get_positions")
        client.request("get_portfolio")
    screen = _Screen(sys.stdout, tty)
    interval = max(0.05, args.interval)
    next_draw = 0.0
    try:
        while not stop.is_set():
            try:
                msg: dict[str, Any] | None = client.get(timeout=0.1)
            except TimeoutError:
                msg = None
            if msg is not None:
                model.apply(msg)
            model.connection = client.state.value
            now = time.monotonic()
            if now >= next_draw:
                screen.draw(model)
                next_draw = now + interval
    finally:
        screen.finish()
    return EXIT_OK

