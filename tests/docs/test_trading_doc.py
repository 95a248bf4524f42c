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
    ledger = Ledger("a", Decimal(10000), Decimal(10))
    for side, qty, price in ((Side.BUY, 1, 100), (Side.BUY, 1, 110), (Side.SELL, 3, 120)):
        ledger.apply_fill("X", side, Decimal(qty), Decimal(price))
    marks = {"X": Decimal(118)}
    assert ledger.fees == Decimal("0.57")
    assert ledger.realized_pnl == 30
    assert ledger.balance == Decimal("10029.43")
    assert ledger.unrealized_pnl(marks) == 2
    assert ledger.equity(marks) == Decimal("10031.43")
    pos = ledger.position("X")
    assert (pos.quantity, pos.entry_price) == (Decimal(-1), Decimal(120))
    text = _section("Account")
    for shown in ("10,029.43", "10,031.43", "31.43", "−1 @ 120", "+2 @ 105"):
        assert shown in text
