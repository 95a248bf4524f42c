"""docs/trading.md stays the complete, true reference of order and account rules.

The tables of docs/trading.md list every order type and every reject reason
the order book produces (and no reason the code never sends); the trailing
examples are the ones the trailing tests run; the account example's numbers
are what the ledger computes.
"""

from __future__ import annotations

import ast
import re
from decimal import Decimal
from pathlib import Path

import orjson

from engine.money import Side
from engine.trading.book import RejectReason
from engine.trading.filters import FilterFailure
from engine.trading.ledger import Ledger
from engine.trading.order import OrderType
from tests.trading.test_trailing import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "trading.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    m = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ |\Z)", DOC, re.M | re.S)
    assert m, f"docs/trading.md has no section {title!r}"
    return m.group(1)


def _first_column(text: str) -> list[str]:
    rows = [line for line in text.splitlines()
            if line.startswith("|") and not set(line) <= set("|-: ")]
    return [name for row in rows[1:] for name in re.findall(r"`([^`]+)`", row.split("|")[1])]


def _code_strings() -> set[str]:
    """String constants and ``RejectReason.X`` names in the engine and the actors."""
    found: set[str] = set()
    for top in ("engine", "actors"):
        for path in (ROOT / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found.add(node.value)
                elif isinstance(node, ast.Attribute):
                    found.add(node.attr)
    return found


def test_every_order_type_is_in_the_type_table() -> None:
    text = _section("`place_order`")
    table = text[text.index("| type | needs |"):text.index("Stop conditions")]
    assert set(_first_column(table)) == {t.value for t in OrderType}


def test_the_reject_reason_table_covers_the_book() -> None:
    documented = set(_first_column(_section("Reject reasons")))
    book = {v for k, v in vars(RejectReason).items() if not k.startswith("_")}
    filters = {f.value for f in FilterFailure}  # the symbol filters' reasons, Binance's text
    assert book | filters == documented  # the risk checks' reasons are RejectReason members too


def test_every_documented_reject_reason_is_produced_by_the_code() -> None:
    assert set(_first_column(_section("Reject reasons"))) - _code_strings() == set()


def test_the_trailing_examples_are_the_tested_ones() -> None:
    documented = re.findall(r"\*\*([\d,.]+) triggers\*\*", _section("Trailing (`trailingDelta`)"))
    assert [d.replace(",", "") for d in documented] == [e[-1] for e in EXAMPLES]


def test_the_account_example_is_what_the_ledger_computes() -> None:
    ledger = Ledger.single("a", Decimal(10000), Decimal(10))
    for side, qty, price in ((Side.BUY, 1, 100), (Side.BUY, 1, 110), (Side.SELL, 3, 120)):
        ledger.apply_fill("XUSDT", side, Decimal(qty), Decimal(price))
    marks = {"XUSDT": Decimal(118)}
    assert ledger.home_fees == Decimal("0.57")
    assert ledger.realized_pnl == 30
    assert ledger.balance == Decimal("10029.43")
    assert ledger.unrealized_in("USDT", marks) == 2
    assert ledger.equity_in("USDT", marks) == Decimal("10031.43")
    pos = ledger.position("XUSDT")
    assert (pos.quantity, pos.entry_price) == (Decimal(-1), Decimal(120))
    text = _section("Account")
    for shown in ("10,029.43", "10,031.43", "31.43", "−1 @ 120", "+2 @ 105"):
        assert shown in text


def test_the_multi_currency_example_is_what_the_account_computes() -> None:
    from engine.protocol import server_messages as sm
    from tests.trading.desk import Desk, reason

    def state() -> tuple[Decimal, Decimal, Decimal, float]:
        led = desk.ledger
        equity = orjson.loads(sm.portfolio_update(led, desk.marks, 0, 0).payload)
        return (led.balance_of("USDT"), led.balance_of("BTC"), led.locked("BTC"),
                equity["portfolio"]["equity"])

    desk = Desk({"USDT": 10000, "BTC": "0.5"}, fee_bps=10)
    for symbol, price in (("BTCUSDT", "40000"), ("NKNUSDT", "0.1"), ("LRCBTC", "0.000005")):
        desk.trade(symbol, price)
    rows = [state()]
    assert reason(desk.place(symbol="NKNUSDT", side="BUY", type="MARKET", quantity=1000)) is None
    rows.append(state())
    assert reason(desk.place(symbol="LRCBTC", side="BUY", type="MARKET", quantity=10000)) is None
    rows.append(state())
    limit = desk.place(symbol="LRCBTC", side="BUY", type="LIMIT", quantity=20000,
                       price="0.000004")
    assert reason(limit) is None
    rows.append(state())
    desk.trade("NKNUSDT", "0.11")
    desk.trade("LRCBTC", "0.0000055")
    rows.append(state())
    desk.trade("NKNUSDT", "0.12")
    desk.place(symbol="NKNUSDT", side="SELL", type="MARKET", quantity=1000)
    desk.trade("LRCBTC", "0.000006")
    desk.place(symbol="LRCBTC", side="SELL", type="MARKET", quantity=10000)
    desk.cancel(limit.order_events()[0].order.order_id)
    rows.append(state())
    D = Decimal
    assert rows == [
        (D(10000), D("0.5"), 0, 30000.0),
        (D("9999.9"), D("0.5"), 0, 29999.9),
        (D("9999.9"), D("0.49995"), 0, 29997.9),
        (D("9999.9"), D("0.49995"), D("0.08008"), 29997.9),
        (D("9999.9"), D("0.49995"), D("0.08008"), 30207.9),
        (D("10019.78"), D("0.50989"), 0, 30415.38),
    ]
    assert desk.ledger.realized == {"USDT": D(20), "BTC": D("0.01")}
    assert desk.ledger.fees == {"USDT": D("0.22"), "BTC": D("0.00011")}
    text = _section("Risk checks at placement")
    for shown in ("30,207.9", "0.08008", "10,019.78", "0.50989", "30,415.38", "29,997.9"):
        assert shown in text


def test_the_round_trip_of_the_issue_realizes_exactly_one() -> None:
    ledger = Ledger.single("a", Decimal(0), Decimal(0))
    for side, qty, price in ((Side.BUY, 1, 1), (Side.BUY, 2, 2), (Side.SELL, 3, 2)):
        ledger.apply_fill("XUSDT", side, Decimal(qty), Decimal(price))
    assert ledger.realized_pnl == Decimal(1) and ledger.position("XUSDT").cost == 0
    assert "BUY 1 @ 1, BUY 2 @ 2, SELL 3 @ 2 realizes exactly 1" in _section("Account")
