"""``tickdesk positions / portfolio / cancel / order oco / order bracket`` and
``TICKDESK_URL``, run as a user runs them: subprocesses against a live engine
on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.client.helpers import free_port
from tests.client.test_cli_client import tickdesk
from tests.conftest import timeout
from tickdesk import Engine
from tickdesk.cli import main
from tickdesk.client import TickdeskClient


@pytest.fixture
def client(live: Engine) -> Iterator[TickdeskClient]:
    with TickdeskClient(live.url) as c:
        yield c


@pytest.fixture
def live(engine: Engine) -> Iterator[Engine]:
    from tests.client.helpers import wait_ready

    wait_ready(engine)
    yield engine


def last_price(client: TickdeskClient, symbol: str) -> Decimal:
    client.subscribe(symbol)
    tick = client.wait_for(lambda m: m["type"] == "MARKET_UPDATE" and m["symbol"] == symbol,
                           timeout(10))
    return Decimal(repr(tick["price"]))


def jsonl(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_positions_and_portfolio(live: Engine, client: TickdeskClient) -> None:
    out = tickdesk("positions", "--url", live.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "no positions"
    last_price(client, "BTCUSDT")
    client.place_order("BTCUSDT", "BUY", "MARKET", "0.01")
    trade = client.wait_for(lambda m: m.get("executionType") == "TRADE", timeout(10))
    entry, fee = trade["order"]["avgPrice"], trade["order"]["fee"]

    out = tickdesk("positions", "--url", live.url)
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.splitlines()
    assert header.split() == ["SYMBOL", "SIDE", "QTY", "ENTRY", "MARK", "UNREALIZED",
                              "REALIZED"]
    cells = row.split()
    assert cells[:3] == ["BTCUSDT", "LONG", "0.01"]
    assert Decimal(cells[3]) == Decimal(repr(entry))
    (position,) = jsonl(tickdesk("positions", "--json", "--url", live.url).stdout)
    assert (position["symbol"], position["quantity"]) == ("BTCUSDT", 0.01)

    out = tickdesk("portfolio", "--url", live.url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    fees = next(ln for ln in lines if ln.startswith("fees"))
    assert Decimal(fees.split()[1]) == Decimal(repr(fee)) and fees.endswith("USDT")
    assert next(ln for ln in lines if ln.startswith("positions")).split() == ["positions", "1"]
    usdt = next(ln for ln in lines[lines.index("") + 1:] if ln.startswith("USDT"))
    balance = next(ln for ln in lines if ln.startswith("balance")).split()[1]
    assert usdt.split()[3] == balance  # the USDT row's total
    (portfolio,) = jsonl(tickdesk("portfolio", "--json", "--url", live.url).stdout)
    # 10,000 USDT at the start; positions are netted, so the balance moved by the fee
    assert Decimal(repr(portfolio["balance"])) == Decimal(10000) - Decimal(repr(fee))
    assert Decimal(balance) == Decimal(repr(portfolio["balance"]))


def test_oco_and_bracket_from_the_command_line(live: Engine, client: TickdeskClient) -> None:
    price = last_price(client, "BTCUSDT")
    above, below = str((price * Decimal("1.05")).quantize(Decimal(1))), \
        str((price * Decimal("0.95")).quantize(Decimal(1)))
    # BUY OCO: the stop above the market, the limit below it
    out = tickdesk("order", "oco", "buy", "BTCUSDT", "0.01", "--above-stop-price", above,
                   "--below-price", below, "--below-client-order-id", "cheap",
                   "--url", live.url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("LIST      OCO list") and lines[0].endswith("EXECUTING")
    assert any(f"BUY STOP_LOSS 0.01 BTCUSDT stop {above}" in ln for ln in lines)
    assert any(f"cheap BUY LIMIT_MAKER 0.01 BTCUSDT @ {below}" in ln for ln in lines)
    # the prices the wrong way round: refused, exit 1
    out = tickdesk("order", "oco", "buy", "BTCUSDT", "0.01", "--above-stop-price", below,
                   "--below-price", above, "--url", live.url, "--json")
    assert out.returncode == 1
    msgs = jsonl(out.stdout)
    lst = next(m for m in msgs if m["type"] == "ORDER_LIST_UPDATE")
    assert lst["list"]["status"] == "REJECTED"  # type: ignore[index]

    out = tickdesk("order", "bracket", "buy", "BTCUSDT", "0.01", "--entry-price", below,
                   "--take-profit", above, "--stop-loss",
                   str((price * Decimal("0.9")).quantize(Decimal(1))), "--url", live.url,
                   "--json")
    assert out.returncode == 0, out.stderr
    legs = [m["order"] for m in jsonl(out.stdout) if m["type"] == "ORDER_UPDATE"]
    assert [(o["type"], o["status"]) for o in legs] == [  # type: ignore[index]
        ("LIMIT", "NEW"), ("LIMIT_MAKER", "PENDING_NEW"), ("STOP_LOSS", "PENDING_NEW")]
    open_orders = client.get_orders()
    assert len(open_orders) == 5  # two OCO legs, three bracket legs

    # a bracket without its exits is a usage error
    assert tickdesk("order", "bracket", "buy", "BTCUSDT", "0.01",
                    "--url", live.url).returncode == 2


def test_cancel_all_by_symbol_then_everything(live: Engine, client: TickdeskClient) -> None:
    price = last_price(client, "BTCUSDT")
    last_price(client, "ETHUSDT")
    low = str((price * Decimal("0.9")).quantize(Decimal(1)))
    high = str((price * Decimal("1.1")).quantize(Decimal(1)))
    client.place_order("ETHUSDT", "BUY", "LIMIT", "0.1", price="1000")
    client.place_order("ETHUSDT", "BUY", "LIMIT", "0.1", price="1001")
    client.place_order("BTCUSDT", "BUY", "LIMIT", "0.01", price=low, client_order_id="one")
    client.place_oco("BTCUSDT", "BUY", "0.01", {"type": "STOP_LOSS", "stopPrice": high},
                     {"type": "LIMIT_MAKER", "price": low})
    assert len(client.get_orders()) == 5

    out = tickdesk("cancel", "--all", "--symbol", "ethusdt", "--url", live.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "canceled 2 orders"
    assert {o["symbol"] for o in client.get_orders()} == {"BTCUSDT"}

    out = tickdesk("cancel", "--all", "--url", live.url, "--json")
    assert out.returncode == 0, out.stderr
    msgs = jsonl(out.stdout)
    canceled = [m for m in msgs if m.get("executionType") == "CANCELED"]
    assert len(canceled) == 3  # the LIMIT and both OCO legs (cancelled as one list)
    assert client.get_orders() == []
    out = tickdesk("cancel", "--all", "--url", live.url)
    assert out.returncode == 0 and out.stdout.strip() == "canceled 0 orders"


def test_cancel_by_id_and_its_errors(live: Engine, client: TickdeskClient) -> None:
    placed = client.place_order("ETHUSDT", "BUY", "LIMIT", "0.1", price="1000")
    out = tickdesk("cancel", str(placed.order_id), "--url", live.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("CANCELED") and f"#{placed.order_id}" in out.stdout
    out = tickdesk("cancel", str(placed.order_id), "--url", live.url)
    assert out.returncode == 1 and "UNKNOWN_ORDER" in out.stderr
    for args in (("cancel",), ("cancel", "1", "--all"), ("cancel", "--symbol", "BTCUSDT"),
                 ("cancel", "1", "--list-id", "2")):
        assert main([*args, "--url", live.url]) == 2, args


def test_the_url_comes_from_the_flag_then_the_environment(live: Engine) -> None:
    dead = f"ws://127.0.0.1:{free_port()}/api/ws/realtime"
    assert tickdesk("orders", TICKDESK_URL=live.url).returncode == 0
    out = tickdesk("orders", "--timeout", "2", TICKDESK_URL=dead)
    assert out.returncode == 3 and "cannot connect" in out.stderr
    assert tickdesk("orders", "--url", live.url, TICKDESK_URL=dead).returncode == 0
    assert tickdesk("positions", TICKDESK_URL=live.url).returncode == 0
