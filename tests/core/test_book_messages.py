"""BOOK_UPDATE and MARKET_UPDATE's book fields as a client reads them, their
conflation keys, and the hub's book subscriptions (apart from the ticker ones)."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from engine.config import ConfigError, load_config_text
from engine.errors import BadRequest
from engine.market.quote_book import BookView
from engine.messages import MarketSnapshot
from engine.outbox import Outbox
from engine.protocol import server_messages as sm
from engine.protocol.commands import SymbolArgs, decode_command
from engine.protocol.enums import Action, MessageType
from engine.server.hub import Hub

D = Decimal
BOOK = BookView("BTCUSDT", ((D("86352.24"), D("0.5")), (D("86352.20"), D("1.25"))),
                ((D("86352.26"), D("0.00072")),), 7, 1)


def test_book_update_wire_shape() -> None:
    out = sm.book_update(BOOK, 99)
    assert orjson.loads(out.payload) == {
        "type": "BOOK_UPDATE", "symbol": "BTCUSDT",
        "bids": [[86352.24, 0.5], [86352.2, 1.25]], "asks": [[86352.26, 0.00072]],
        "seq": 7, "timestamp": 99,
    }  # fmt: skip
    assert out.frame.endswith(out.payload)
    assert MessageType.BOOK_UPDATE == "BOOK_UPDATE"
    assert {Action.SUBSCRIBE_BOOK, Action.UNSUBSCRIBE_BOOK} == {"subscribe_book",
                                                                "unsubscribe_book"}


def test_market_update_has_the_book_quantities() -> None:
    snap = MarketSnapshot("BTCUSDT", D("86352.25"), None, None, None, None, None,
                          D("86352.24"), D("86352.26"), 5, 3, D("0.5"), D("0.00072"))
    msg = orjson.loads(sm.market_update(snap, 9).payload)
    assert (msg["bid"], msg["bidQty"], msg["ask"], msg["askQty"]) == (
        86352.24, 0.5, 86352.26, 0.00072)


def test_book_and_market_updates_conflate_apart() -> None:
    snap = MarketSnapshot("BTCUSDT", D(1), None, None, None, None, None, None, None, 5, 3)
    market = sm.market_update(snap, 1)
    book = sm.book_update(BOOK, 1)
    assert book.conflate_key == "book:BTCUSDT" != market.conflate_key
    box = Outbox(1 << 20)
    for out in (market, book, market, book):
        assert box.push(out.frame, out.conflate_key)
    assert len(box) == 2 and box.conflated == 2  # one slot each, latest kept


class _Ch:
    closed = False

    def __init__(self, conn_id: int) -> None:
        self.conn_id = conn_id
        self.got: list[sm.Outgoing] = []

    def deliver(self, out: sm.Outgoing) -> None:
        self.got.append(out)

    def close(self, code: int, reason: str) -> None:
        pass


def test_hub_keeps_book_subscribers_apart_and_forgets_them_on_disconnect() -> None:
    hub = Hub()
    a, b = _Ch(1), _Ch(2)
    hub.add(a)
    hub.add(b)
    assert hub.subscribe_book(a, "BTCUSDT") and not hub.subscribe_book(a, "BTCUSDT")
    hub.subscribe(b, "BTCUSDT")
    book = sm.book_update(BOOK, 1)
    assert hub.publish_book("BTCUSDT", book) == 1 and a.got == [book] and b.got == []
    assert hub.book_subscriber_count("BTCUSDT") == 1
    assert hub.publish("BTCUSDT", book) == 1 and b.got == [book]  # the ticker subscriber
    hub.remove(a)
    assert hub.publish_book("BTCUSDT", book) == 0
    hub.add(a)
    hub.subscribe_book(a, "ETHUSDT")
    assert hub.unsubscribe_book(a, "ETHUSDT") and not hub.unsubscribe_book(a, "ETHUSDT")
    assert hub.book_subscriber_count("ETHUSDT") == 0


def test_book_commands_need_a_symbol() -> None:
    cmd = decode_command('{"action":"subscribe_book","symbol":"btcusdt"}')
    assert isinstance(cmd.args, SymbolArgs) and cmd.args.symbol == "BTCUSDT"
    with pytest.raises(BadRequest, match="symbol"):
        decode_command('{"action":"unsubscribe_book"}')


@pytest.mark.parametrize("levels", [5, 10, 20, 0])
def test_depth_levels_accepts_binance_sizes(levels: int) -> None:
    cfg = load_config_text(f"[feed.binance]\ndepth_levels = {levels}\n")
    assert cfg.feed.binance.depth_levels == levels


@pytest.mark.parametrize("value", ["7", "-5", "5.0", "true", '"5"'])
def test_depth_levels_refuses_other_values(value: str) -> None:
    with pytest.raises(ConfigError, match="depth_levels"):
        load_config_text(f"[feed.binance]\ndepth_levels = {value}\n")


def test_binance_symbols_must_fit_one_connection_at_four_streams_each() -> None:
    def toml(n: int, depth: int) -> str:
        symbols = ", ".join(f'"S{i}USDT"' for i in range(n))
        return (f'[feed]\nsource = "binance"\nsymbols = [{symbols}]\n'
                f"[feed.binance]\ndepth_levels = {depth}\n")
    assert len(load_config_text(toml(256, 5)).feed.symbols) == 256
    assert len(load_config_text(toml(341, 0)).feed.symbols) == 341
    with pytest.raises(ConfigError, match="at most 256 symbols"):
        load_config_text(toml(257, 20))
    with pytest.raises(ConfigError, match="at most 341 symbols"):
        load_config_text(toml(342, 0))


def test_a_book_subscription_counts_as_interest_in_the_symbol() -> None:
    # a live-added symbol is withdrawn once nobody watches it: its book counts
    hub = Hub()
    seen: list[tuple[str, bool]] = []
    hub.on_interest = lambda symbol, watched: seen.append((symbol, watched))
    a = _Ch(1)
    hub.add(a)
    hub.subscribe_book(a, "XUSDT")
    hub.subscribe(a, "XUSDT")
    hub.unsubscribe(a, "XUSDT")
    assert seen == [("XUSDT", True)] and hub.watched_symbols() == {"XUSDT"}
    hub.unsubscribe_book(a, "XUSDT")
    assert seen == [("XUSDT", True), ("XUSDT", False)]
    hub.subscribe(a, "YUSDT")
    hub.subscribe_book(a, "YUSDT")
    hub.remove(a)
    assert seen[2:] == [("YUSDT", True), ("YUSDT", False)] and hub.watched_symbols() == set()
