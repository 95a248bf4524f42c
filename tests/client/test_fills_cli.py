"""``tickdesk fills`` and the client's history calls against a live Engine,
and the CSV / table formats."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

from tests.client.test_cli_client import live, tickdesk
from tickdesk import Engine
from tickdesk.client import TickdeskClient
from tickdesk.client.cli import iso_time
from tickdesk.client.render import FILL_CSV_COLUMNS, csv_num, fills_csv, fills_table

__all__ = ["live"]  # the fixture, re-used


def _trades(engine: Engine) -> list[dict[str, object]]:
    """Three MARKET orders through the CLI; their TRADE updates, in order."""
    trades = []
    for side, symbol in (("buy", "BTCUSDT"), ("buy", "ETHUSDT"), ("sell", "BTCUSDT")):
        out = tickdesk("order", side, symbol, "0.01", "--url", engine.url, "--json")
        assert out.returncode == 0, out.stderr
        msgs = [json.loads(line) for line in out.stdout.splitlines()]
        trades.append(next(m for m in msgs if m["executionType"] == "TRADE"))
    return trades


def test_fills_csv_is_every_fill_oldest_first(live: Engine) -> None:
    trades = _trades(live)
    out = tickdesk("fills", "--csv", "--url", live.url)
    assert out.returncode == 0, out.stderr
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert tuple(rows[0]) == FILL_CSV_COLUMNS
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert [int(r["orderId"]) for r in body] == [t["order"]["orderId"] for t in trades]  # type: ignore[index]
    for row, trade in zip(body, trades, strict=True):
        order = trade["order"]
        assert row["symbol"] == order["symbol"] and row["side"] == order["side"]  # type: ignore[index]
        assert Decimal(row["price"]) == Decimal(repr(order["avgPrice"]))  # type: ignore[index]
        assert Decimal(row["quantity"]) == Decimal("0.01")
        assert Decimal(row["fee"]) == Decimal(repr(order["fee"]))  # type: ignore[index]
        assert row["feeAsset"] == "USDT"
        assert row["timeUtc"] == iso_time(int(row["time"]))
    assert Decimal(body[0]["realizedPnl"]) == 0 == Decimal(body[1]["realizedPnl"])
    # the SELL closed the BTC long: (sell − buy) × 0.01, to the double's precision
    expected = (Decimal(body[2]["price"]) - Decimal(body[0]["price"])) * Decimal("0.01")
    assert abs(Decimal(body[2]["realizedPnl"]) - expected) <= abs(expected) * Decimal("1e-12")

    only_eth = tickdesk("fills", "--csv", "--symbol", "ethusdt", "--url", live.url)
    assert [r[5] for r in list(csv.reader(io.StringIO(only_eth.stdout)))[1:]] == ["ETHUSDT"]
    later = tickdesk("fills", "--csv", "--since", "2999-01-01", "--url", live.url)
    assert later.returncode == 0 and list(csv.reader(io.StringIO(later.stdout))) == [
        list(FILL_CSV_COLUMNS)]
    table = tickdesk("fills", "--url", live.url)
    assert table.stdout.splitlines()[0].split()[:2] == ["FILL", "TIME"]
    assert len(table.stdout.splitlines()) == 4
    lines = tickdesk("fills", "--json", "--url", live.url).stdout.splitlines()
    assert [json.loads(x)["orderId"] for x in lines] == [int(r["orderId"]) for r in body]


def test_client_pages_through_every_fill(live: Engine) -> None:
    _trades(live)
    with TickdeskClient(live.url) as c:
        page, nxt = c.get_fills(limit=2)
        assert len(page) == 2 and nxt == page[-1]["fillId"]
        rest, end = c.get_fills(limit=2, before=nxt)
        assert len(rest) == 1 and end is None
        assert list(c.iter_fills(page_size=1)) == page + rest
        assert [f["symbol"] for f in c.iter_fills("ETHUSDT")] == ["ETHUSDT"]
        assert c.get_equity_history() == []  # the first sample comes after 60 s


def test_bad_since_is_a_usage_error() -> None:
    out = tickdesk("fills", "--since", "last tuesday")
    assert out.returncode == 2 and "ISO 8601" in out.stderr
    out = tickdesk("fills", "--csv", "--json")
    assert out.returncode == 2


def test_csv_numbers_are_exact_and_plain() -> None:
    assert csv_num(None) == ""
    assert csv_num(1e-05) == "0.00001"
    assert csv_num(0.1) == "0.1"
    assert csv_num(40000.0) == "40000"
    assert csv_num(123456789.123456) == "123456789.123456"
    assert csv_num(7) == "7"
    fill = {"fillId": 3, "time": 1767225600123, "orderId": 9, "clientOrderId": "a,b",
            "symbol": "LRCBTC", "side": "BUY", "price": 4.1e-06, "quantity": 100.0,
            "fee": 4.1e-07, "feeAsset": "BTC", "realizedPnl": None}
    text = fills_csv([fill], iso_time)
    assert text.splitlines()[1] == (
        '3,1767225600123,2026-01-01T00:00:00.123Z,9,"a,b",LRCBTC,BUY,0.0000041,100,'
        "0.00000041,BTC,")
    assert "\r\n" in text
    assert fills_table([], iso_time) == ["no fills"]
