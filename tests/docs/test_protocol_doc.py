"""docs/protocol.md stays the complete, true reference of the wire protocol.

Every builder of :mod:`engine.protocol.server_messages` is called with sample
inputs (:func:`samples`); the keys of what it produces, nested objects
included, must be rows of the field table in the message's (or object's)
section of docs/protocol.md, and those tables may list no field the builders
do not produce. Every ``MessageType``, ``Action`` and ``ExecutionType`` has its place
in the page; the error-code and close-code tables list exactly the members of
``ErrorCode`` and ``CloseCode``, and every member is used by the server's code
(by member or by literal value). The client library's TypedDicts have exactly
the builders' keys.

A new builder must get a sample here (a test fails until it has one): that is
how a new wire message cannot go undocumented.
"""

from __future__ import annotations

import ast
import re
import types
import typing
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from wsproto.frame_protocol import CloseReason

import tickdesk.client.types as client_types
from engine.market.klines import Kline
from engine.market.quote_book import BookView
from engine.market.symbol_info import SymbolInfo, parse_symbol
from engine.messages import MarketSnapshot
from engine.money import Side
from engine.protocol import server_messages as sm
from engine.protocol.enums import Action, CloseCode, ErrorCode, ExecutionType, MessageType
from engine.server.bus import with_seq
from engine.server.redelivery import answer_from_orders
from engine.trading.events import ListEvent, OrderEvent
from engine.trading.history import EquitySample, FillRecord, FillsPage
from engine.trading.ledger import Ledger
from engine.trading.order import (
    LegRole,
    ListStatus,
    ListType,
    Order,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from engine.trading.order_list import OrderList

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")

TS = 1796163219189
RID = "r1"

# ----------------------------------------------------------------- the page


def _sections(text: str, level: int) -> dict[str, str]:
    """Heading text -> body, for headings of exactly ``level`` (a body ends at
    the next heading of that level or above)."""
    out: dict[str, str] = {}
    title: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        m = re.match(r"(#+) (.*)", line)
        if m and len(m.group(1)) <= level:
            if title is not None:
                out[title] = "\n".join(body)
            title = m.group(2).strip() if len(m.group(1)) == level else None
            body = []
        elif title is not None:
            body.append(line)
    if title is not None:
        out[title] = "\n".join(body)
    return out


TOP = _sections(DOC, 2)
SUB = _sections(DOC, 3)


def _ticked(text: str) -> set[str]:
    return set(re.findall(r"`([^`\n]+)`", text))


def _tables(text: str) -> list[list[str]]:
    """The markdown tables of ``text``, each as its row lines (the rule excluded)."""
    tables: list[list[str]] = []
    rows: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            if not set(line) <= set("|-: "):
                rows.append(line)
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def _first_column(text: str, table: int = 0) -> set[str]:
    """Backticked names in the first cell of each row of the ``table``-th table of
    ``text`` (the header row has none)."""
    tables = _tables(text)
    assert len(tables) > table, "no such table"
    return set().union(*(_ticked(row.split("|")[1]) for row in tables[table][1:]))


def _section(title: str) -> str:
    assert title in SUB, f"docs/protocol.md has no section '### {title}'"
    return SUB[title]


#: Message keys whose value is a nested object (or a list of them), and the
#: section of docs/protocol.md that documents the object.
OBJECTS = {
    "order": "`order` object",
    "orders": "`order` object",
    "list": "`list` object",
    "positions": "`position` object",
    "portfolio": "`portfolio` object",
    "balances": "`balance` object",
    "feed": "`feed` object",
    "filters": "`filter` object",
    "fills": "`fill` object",
    "samples": "`sample` object",
    "subscriptions": "`subscriptions` object",
}
#: Keys every message may carry, documented once under "Transport".
ENVELOPE = {"type", "timestamp", "id"}
#: Messages whose fields are documented as an object's (FEED_STATUS is the
#: ``feed`` object at top level).
FIELDS_OF = {MessageType.FEED_STATUS.value: "`feed` object"}

# ------------------------------------------------------------------ samples


def _order(**changes: Any) -> Order:
    base = Order(
        order_id=7, client_order_id="dip", account="alice", symbol="BTCUSDT",
        side=Side.SELL, type=OrderType.STOP_LOSS_LIMIT, status=OrderStatus.NEW,
        quantity=Decimal("0.5"), create_time=TS, update_time=TS, price=Decimal("39000"),
        stop_price=Decimal("39500"), trailing_delta=100,
        current_stop_price=Decimal("39105"), trailing_extreme=Decimal("39500"),
        list_id=3, list_type=ListType.OCO, leg=LegRole.BELOW,
    )
    return base.evolve(**changes)


def _order_list() -> OrderList:
    return OrderList(list_id=3, list_type=ListType.OCO, account="alice", symbol="BTCUSDT",
                     status=ListStatus.EXECUTING, order_ids=(6, 7), create_time=TS,
                     update_time=TS)


def _ledger() -> tuple[Ledger, dict[str, Decimal]]:
    ledger = Ledger("alice", {"USDT": Decimal(10000), "XYZ": Decimal(5)}, Decimal(10))
    ledger.apply_fill("BTCUSDT", Side.BUY, Decimal("0.1"), Decimal("40000"))
    ledger.apply_fill("ETHUSDT", Side.SELL, Decimal("1"), Decimal("3000"))
    # ETHUSDT has no mark yet; XYZ has no rate (unvalued)
    return ledger, {"BTCUSDT": Decimal("41000")}


def _fills_page() -> FillsPage:
    fill = FillRecord(fill_id=42, account="alice", order_id=7, client_order_id="dip",
                      symbol="BTCUSDT", side=Side.SELL, quantity=Decimal("0.5"),
                      price=Decimal("41000"), fee=Decimal("20.5"), fee_asset="USDT",
                      realized_pnl=Decimal("500"), time=TS)
    return FillsPage((fill,), 42)


def _feed() -> dict[str, Any]:
    # The feed object exactly as the Engine keeps it (CONNECTED, FEED_STATUS).
    from tickdesk.app import _FeedStatus

    return _FeedStatus("binance").get()


def _snapshot(**changes: Any) -> MarketSnapshot:
    values: dict[str, Any] = dict(
        symbol="BTCUSDT", price=Decimal("85948.88"), price_change=Decimal("-51.12"),
        price_change_percent=Decimal("-0.0594"), high=Decimal("86000"), low=Decimal("85900"),
        volume=Decimal("12.5"), bid=Decimal("85948.87"), ask=Decimal("85948.89"),
        event_time=TS, seq=2, bid_qty=Decimal("0.5"), ask_qty=Decimal("1.25"),
    )
    values.update(changes)
    return MarketSnapshot(**values)


def _symbol_info() -> SymbolInfo:
    """Every filter type Binance has sent (both generations) and two it passes on."""
    def lot(kind: str) -> dict[str, Any]:
        return {"filterType": kind, "minQty": "0.00001", "maxQty": "9000", "stepSize": "0.00001"}

    return parse_symbol({
        "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "baseAssetPrecision": 8,
        "quoteAsset": "USDT", "quoteAssetPrecision": 8,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000",
             "tickSize": "0.01"},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "5", "multiplierDown": "0.2",
             "avgPriceMins": 5},
            {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5",
             "bidMultiplierDown": "0.2", "askMultiplierUp": "5", "askMultiplierDown": "0.2",
             "avgPriceMins": 5},
            lot("LOT_SIZE"), lot("MARKET_LOT_SIZE"),
            {"filterType": "MIN_NOTIONAL", "minNotional": "10", "applyToMarket": True,
             "avgPriceMins": 5},
            {"filterType": "NOTIONAL", "minNotional": "5", "applyMinToMarket": True,
             "maxNotional": "9000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10,
             "maxTrailingAboveDelta": 2000, "minTrailingBelowDelta": 10,
             "maxTrailingBelowDelta": 2000},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ],
    }, source="snapshot")
def _fill_event() -> OrderEvent:
    """A partial fill of an iceberg order (carries lastQty / lastPrice / executedQty)."""
    order = _order(status=OrderStatus.PARTIALLY_FILLED, filled_quantity=Decimal("0.2"),
                   avg_price=Decimal("39000"), fee=Decimal("7.8"),
                   time_in_force=TimeInForce.GTC, iceberg_qty=Decimal("0.25"))
    return OrderEvent(ExecutionType.TRADE, order, Decimal("0.2"), Decimal("39000"))


def _wire(order: Order) -> list[dict[str, Any]]:
    """``order`` as ``get_orders`` shows it."""
    return list(orjson.loads(sm.orders([order], TS).payload)["orders"])


#: Builder name -> what it sends, called as the server's code calls it.
SAMPLES: dict[str, Callable[[], list[sm.Outgoing]]] = {
    "connected": lambda: [sm.connected("0.1.0", "alice", _feed(), TS, "3f9c2a7d1e5b8c40",
                                       "9b1f0c4e7a2d4c1b8e5f3a6d0c9b7e21"),
                          sm.connected("0.1.0", None, _feed(), TS)],
    "error": lambda: [sm.error(ErrorCode.BAD_REQUEST.value, "field 'symbol' is required",
                               TS, RID)],
    "feed_status": lambda: [sm.feed_status(_feed(), TS)],
    "market_update": lambda: [sm.market_update(_snapshot(), TS),
                              sm.market_update(_snapshot(price_change=None, bid=None), TS)],
    "book_update": lambda: [sm.book_update(BookView(
        "BTCUSDT", ((Decimal("85948.87"), Decimal("0.5")),),
        ((Decimal("85948.89"), Decimal("1.25")),), 41, TS), TS)],
    "order_update": lambda: [
        *(sm.order_update(OrderEvent(ExecutionType.NEW, o), TS, RID)
          for o in (_order(), _order(list_id=None, list_type=None, leg=None))),
        sm.order_update(_fill_event(), TS),
        # a command redelivered to a restarted engine (engine.server.redelivery)
        *answer_from_orders(Action.PLACE_ORDER, {"clientOrderId": "dip"},
                            _wire(_order(list_id=None, list_type=None, leg=None)),
                            RID, TS)],
    # account events reach clients through the bus, which numbers them (seq)
    "resumed": lambda: [sm.resumed(True, TS, RID), sm.resumed(False, TS),
                        sm.resumed(True, TS, RID, restored=True, symbols=["BTCUSDT"],
                                   books=["BTCUSDT"]),
                        sm.resumed(False, TS, RID, restored=False)],
    "order_list_update": lambda: [with_seq(sm.order_list_update(ListEvent(_order_list()), TS,
                                                                RID), 7),
                                  *answer_from_orders(
                                      Action.PLACE_OCO, {"above": {"clientOrderId": "dip"}},
                                      _wire(_order()), RID, TS)[:1]],
    "order_event": lambda: [with_seq(sm.order_event(OrderEvent(ExecutionType.TRADE, _order()),
                                                    TS, RID), 8),
                            with_seq(sm.order_event(ListEvent(_order_list()), TS), 9)],
    "orders": lambda: [sm.orders([_order()], TS, RID)],
    "fills": lambda: [sm.fills(_fills_page(), TS, RID)],
    "equity_history": lambda: [sm.equity_history(
        [EquitySample(TS - 60_000, Decimal("10000")), EquitySample(TS, Decimal("10012.5"))],
        TS, RID)],
    "klines": lambda: [sm.klines("BTCUSDT", "1m", [Kline(
        "BTCUSDT", "1m", 1796163180000, 1796163239999, Decimal("86104.02"), Decimal("86110.5"),
        Decimal("86100"), Decimal("86108.01"), Decimal("0.01205"), Decimal("1037.57432015"),
        14)], TS, RID)],
    "portfolio_update": lambda: [sm.portfolio_update(*_ledger(), 2, TS, RID)],
    "position_update": lambda: [sm.position_update(*_ledger(), TS, RID)],
    "pong": lambda: [sm.pong(TS, RID)],
    "subscribed": lambda: [sm.subscribed("BTCUSDT", TS, RID),
                           sm.subscribed("BTCUSDT", TS, RID, stream="book")],
    "symbol_info": lambda: [sm.symbol_info(_symbol_info(), TS, RID)],
    "unsubscribed": lambda: [sm.unsubscribed("BTCUSDT", TS, RID),
                             sm.unsubscribed("BTCUSDT", TS, RID, stream="book")],
    "authenticated": lambda: [sm.authenticated("alice", TS, RID)],
    "symbols": lambda: [sm.symbols(["BTCUSDT", "ETHUSDT"], TS, RID)],
}
#: Public names of server_messages that build no message (or build the
#: nested objects the messages above carry).
NOT_BUILDERS = {"Outgoing", "PROTOCOL_VERSION", "RequestId", "order_object", "list_object",
                "fill_object", "kline_row"}


def _payloads() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for make in SAMPLES.values():
        for message in make():
            out.append(orjson.loads(message.payload))
    return out


PAYLOADS = _payloads()


def _by_type() -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for payload in PAYLOADS:
        grouped.setdefault(payload["type"], []).append(payload)
    return grouped


BY_TYPE = _by_type()


def _nested(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(key, object)`` for every object value (or item of a list value) of
    ``obj``, at any depth."""
    for key, value in obj.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                yield key, item
                yield from _nested(item)


def _object_keys() -> dict[str, set[str]]:
    """Object section -> every key the samples put in such an object."""
    keys: dict[str, set[str]] = {}
    for payload in PAYLOADS:
        for key, item in _nested(payload):
            assert key in OBJECTS, f"{payload['type']}.{key} is an object of no section"
            keys.setdefault(OBJECTS[key], set()).update(item)
    for mtype, section in FIELDS_OF.items():
        for payload in BY_TYPE.get(mtype, []):
            keys.setdefault(section, set()).update(set(payload) - ENVELOPE)
    return keys


OBJECT_KEYS = _object_keys()

# -------------------------------------------------------------------- tests


def test_every_builder_has_a_sample() -> None:
    builders = {name for name in sm.__all__ if name not in NOT_BUILDERS}
    assert builders - set(SAMPLES) == set(), "give the new builder a sample in SAMPLES"
    assert set(SAMPLES) - builders == set(), "a sample for a builder that is gone"


def test_every_list_sample_is_non_empty() -> None:
    for payload in PAYLOADS:
        for key, value in payload.items():
            if isinstance(value, list) and key in OBJECTS:
                assert value, f"{payload['type']}.{key}: sample an item, not an empty list"


def test_the_samples_cover_every_message_type() -> None:
    assert set(BY_TYPE) == {t.value for t in MessageType}


@pytest.mark.parametrize("mtype", [t.value for t in MessageType])
def test_every_message_type_has_a_section(mtype: str) -> None:
    body = _section(f"`{mtype}`")
    assert "```json" in body, f"{mtype}: give an example"
    assert f"`{mtype}`" in TOP["Server messages"].split("###")[0], f"{mtype}: not in the summary"


def test_the_envelope_is_documented() -> None:
    assert _ticked(TOP["Transport"]) >= ENVELOPE


@pytest.mark.parametrize("mtype", sorted(BY_TYPE))
def test_every_field_of_a_message_is_documented(mtype: str) -> None:
    keys = set().union(*(set(p) for p in BY_TYPE[mtype])) - ENVELOPE
    documented = _first_column(_section(FIELDS_OF.get(mtype, f"`{mtype}`")))
    assert keys - documented == set()


@pytest.mark.parametrize("section", sorted(set(OBJECTS.values())))
def test_every_field_of_an_object_is_documented(section: str) -> None:
    assert OBJECT_KEYS[section] - _first_column(_section(section)) == set()


@pytest.mark.parametrize("section", sorted(set(OBJECTS.values())))
def test_an_object_table_lists_only_real_fields(section: str) -> None:
    assert _first_column(_section(section)) - OBJECT_KEYS[section] == set()


@pytest.mark.parametrize("mtype", sorted(set(BY_TYPE) - set(FIELDS_OF)))
def test_a_message_table_lists_only_real_fields(mtype: str) -> None:
    keys = set().union(*(set(p) for p in BY_TYPE[mtype]))
    assert _first_column(_section(f"`{mtype}`")) - keys - ENVELOPE == set()


def test_every_action_is_documented() -> None:
    table = _first_column(TOP["Commands"])
    headed = set().union(*(_ticked(title) for title in SUB))
    for action in Action:
        assert action.value in table, f"{action.value} missing from the command table"
        assert action.value in headed, f"{action.value} has no section"


def test_every_execution_type_is_documented() -> None:
    assert _first_column(_section("`ORDER_UPDATE`"), 1) == {e.value for e in ExecutionType}


def test_the_error_code_table_is_the_enum() -> None:
    assert _first_column(TOP["Error codes"]) == {c.value for c in ErrorCode}


def _close_rows() -> list[tuple[int, str]]:
    rows = []
    for line in TOP["Close codes"].splitlines():
        m = re.match(r"\| (\d{4}) \| `(\w+)` \|", line)
        if m:
            rows.append((int(m.group(1)), m.group(2)))
    return rows


def test_the_close_code_table_is_the_enum() -> None:
    ours = {(code, name) for code, name in _close_rows() if name in CloseCode.__members__}
    assert ours == {(int(c), c.name) for c in CloseCode}


def test_close_codes_outside_the_enum_are_the_websocket_layers() -> None:
    """Codes documented beyond ``CloseCode`` are wsproto's own (RFC 6455
    protocol failures tickdesk does not decide), named as wsproto names them."""
    others = [(code, name) for code, name in _close_rows() if name not in CloseCode.__members__]
    assert others, "the table of the WebSocket layer's codes is gone"
    for code, name in others:
        assert name in CloseReason.__members__ and CloseReason[name] == code, (code, name)
        assert code not in {int(c) for c in CloseCode}, code


# ------------------------------------------------- codes used by the server

#: The server's code: what a client library or a benchmark says sends nothing.
SERVER_FILES = sorted(
    p for top in ("engine", "actors", "tickdesk") for p in (ROOT / top).rglob("*.py")
    if not p.relative_to(ROOT).as_posix().startswith(
        ("engine/protocol/enums.py", "tickdesk/client/", "tickdesk/bench/"))
)


def _callee(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _ints(node: ast.AST) -> Iterator[int]:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and type(sub.value) is int:
            yield sub.value


def _uses(tree: ast.AST) -> tuple[set[str], set[int]]:
    """(string constants and ``ErrorCode`` members, close codes) used in ``tree``.

    A close code is used as ``CloseCode.X`` (or wsproto's ``CloseReason.X``), or
    as a literal in a call of something named ``*close*``, assigned to a name
    containing ``close``, or as the default ``code`` of a ``*close*`` function."""
    strings: set[str] = set()
    closes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner, attr = node.value.id, node.attr
            if owner == "ErrorCode" and attr in ErrorCode.__members__:
                strings.add(ErrorCode[attr].value)
            elif owner == "CloseCode" and attr in CloseCode.__members__:
                closes.add(int(CloseCode[attr]))
            elif owner == "CloseReason" and attr in CloseReason.__members__:
                closes.add(int(CloseReason[attr]))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.add(node.value)
        elif isinstance(node, ast.Call) and "close" in _callee(node).lower():
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                closes.update(_ints(arg))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if any("close" in n.lower() for n in names):
                closes.update(_ints(node.value))
        elif isinstance(node, ast.FunctionDef) and "close" in node.name.lower():
            params = node.args.args[len(node.args.args) - len(node.args.defaults):]
            for param, default in zip(params, node.args.defaults, strict=True):
                if param.arg == "code":
                    closes.update(_ints(default))
    return strings, closes


def _server_uses() -> tuple[set[str], set[int]]:
    strings: set[str] = set()
    closes: set[int] = set()
    for path in SERVER_FILES:
        s, c = _uses(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        strings |= s
        closes |= c
    return strings, closes


USED_STRINGS, USED_CLOSES = _server_uses()


@pytest.mark.parametrize("code", [c.value for c in ErrorCode])
def test_every_error_code_is_used_by_the_server(code: str) -> None:
    assert code in USED_STRINGS


@pytest.mark.parametrize("code", [int(c) for c in CloseCode])
def test_every_close_code_is_used_by_the_server(code: int) -> None:
    assert code in USED_CLOSES


def test_the_usage_scan_sees_each_form() -> None:
    source = (
        "CLOSE_X = 4001\n"
        "ch.close(1011, 'internal')\n"
        "raise Gone(code or 1001) if False else ws.close(reason=CloseReason.MESSAGE_TOO_BIG)\n"
        "def close(self, code: int = 1000) -> None: ...\n"
        "f(CloseCode.POLICY, ErrorCode.RATE_LIMITED, 'UNKNOWN_ORDER')\n"
        "x = 1009 * 1000\n"
    )
    strings, closes = _uses(ast.parse(source))
    assert closes == {4001, 1011, 1009, 1000, 1008}
    assert {"RATE_LIMITED", "UNKNOWN_ORDER"} <= strings


# ------------------------------------------------- the client's TypedDicts

#: TypedDict of tickdesk.client.types -> the object section whose keys it types.
TYPED_OBJECTS = {
    "Order": "`order` object",
    "OrderList": "`list` object",
    "Position": "`position` object",
    "Portfolio": "`portfolio` object",
    "Balance": "`balance` object",
    "Feed": "`feed` object",
    "FeedStatus": "`feed` object",
    "Fill": "`fill` object",
    "EquitySample": "`sample` object",
}


def _typed_dicts() -> dict[str, type]:
    return {name: obj for name, obj in vars(client_types).items()
            if typing.is_typeddict(obj) and obj.__module__ == client_types.__name__}


def _expected_keys(name: str) -> set[str]:
    if name in TYPED_OBJECTS:
        return OBJECT_KEYS[TYPED_OBJECTS[name]]
    mtype = re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()  # MarketUpdate -> MARKET_UPDATE
    assert mtype in BY_TYPE, f"TypedDict {name}: map it in TYPED_OBJECTS"
    return set().union(*(set(p) for p in BY_TYPE[mtype]))


def _values(name: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    section = TYPED_OBJECTS.get(name)
    for payload in PAYLOADS:
        for key, item in _nested(payload):
            if section is not None and OBJECTS.get(key) == section:
                for k, v in item.items():
                    out.setdefault(k, []).append(v)
    return out


def test_the_client_has_typed_dicts() -> None:
    assert set(_typed_dicts()) >= {"Order", "OrderList", "Position", "Portfolio"}


@pytest.mark.parametrize("name", sorted(_typed_dicts()))
def test_client_typed_dict_keys_are_the_builders(name: str) -> None:
    typed = _typed_dicts()[name]
    assert set(typing.get_type_hints(typed)) == _expected_keys(name)


def _admits(annotation: Any, value: Any) -> bool:
    """Does ``annotation`` admit the JSON-decoded ``value``?"""
    if annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_admits(a, value) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(annotation)
        return isinstance(value, list) and all(_admits(item, v) for v in value)
    if annotation is float:
        return type(value) in (int, float)
    if typing.is_typeddict(annotation):
        hints = typing.get_type_hints(annotation)
        return (isinstance(value, dict) and set(value) == set(hints)
                and all(_admits(hints[k], v) for k, v in value.items()))
    if isinstance(annotation, type):
        return type(value) is annotation
    return True  # an annotation this check does not model


def _typing_gaps(name: str) -> list[str]:
    hints = typing.get_type_hints(_typed_dicts()[name])
    return [f"{name}.{k}: {hints[k]} does not admit {v!r}"
            for k, vs in _values(name).items() if k in hints
            for v in vs if not _admits(hints[k], v)]


@pytest.mark.parametrize("name", sorted(set(_typed_dicts()) & set(TYPED_OBJECTS) - {"Position"}))
def test_client_typed_dict_types_admit_the_builders_values(name: str) -> None:
    assert _typing_gaps(name) == []


def test_client_position_types_admit_the_builders_values() -> None:
    assert _typing_gaps("Position") == []
