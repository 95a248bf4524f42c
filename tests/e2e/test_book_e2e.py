"""subscribe_book over a real WebSocket on 127.0.0.1: a snapshot, then updates; and
MARKET_UPDATE's bid/ask with their quantities from the same (simulated) book."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from engine.market.simulated import BOOK_LEVELS
from tests.e2e.wsclient import WsClient
from tickdesk import Engine


@pytest.fixture
def client(engine: Engine) -> Iterator[WsClient]:
    c = WsClient(engine.url)
    assert c.recv()["type"] == "CONNECTED"
    yield c
    c.close()


def _is_book(m: dict[str, Any]) -> bool:
    return m["type"] == "BOOK_UPDATE"


def test_subscribe_book_gets_a_snapshot_then_updates(client: WsClient) -> None:
    client.send({"action": "subscribe_book", "symbol": "btcusdt", "id": "b"})
    ok = client.reply("b")  # the reply comes first, then the snapshot
    assert ok == {"type": "SUBSCRIBED", "symbol": "BTCUSDT", "stream": "book", "id": "b",
                  "timestamp": ok["timestamp"]}
    snapshot = client.recv()
    assert _is_book(snapshot) and snapshot["symbol"] == "BTCUSDT"
    assert set(snapshot) == {"type", "symbol", "bids", "asks", "seq", "timestamp"}
    books = [snapshot] + [client.wait_for(_is_book) for _ in range(5)]
    for book in books:
        bids, asks = book["bids"], book["asks"]
        assert len(bids) == len(asks) == BOOK_LEVELS
        assert all(len(lv) == 2 and lv[1] > 0 for lv in bids + asks)
        assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
        assert [p for p, _ in asks] == sorted(p for p, _ in asks)
        assert bids[0][0] < asks[0][0]
    seqs = [b["seq"] for b in books]
    # the snapshot may repeat the seq of the first live update; then +1 per book
    assert all(b - a in (0, 1) for a, b in itertools.pairwise(seqs)) and seqs[-1] > seqs[0]
    # the two subscriptions are apart: no MARKET_UPDATE came with the books
    assert all(b["type"] == "BOOK_UPDATE" for b in books)
    client.send({"action": "unsubscribe_book", "symbol": "BTCUSDT", "id": "u"})
    client.send({"action": "subscribe_ticker", "symbol": "BTCUSDT", "id": "t"})
    seen = [client.recv()]
    while seen[-1].get("id") != "u":
        seen.append(client.recv())
    assert seen[-1]["type"] == "UNSUBSCRIBED" and seen[-1]["stream"] == "book"
    # every pulse publishes a book: over 4 pulses' MARKET_UPDATEs at most one
    # BOOK_UPDATE that was on its way when the unsubscription landed
    later = [client.wait_for(lambda m: m["type"] in ("BOOK_UPDATE", "MARKET_UPDATE"))
             for _ in range(9)]
    assert sum(1 for m in later if _is_book(m)) <= 1


def test_market_update_carries_the_best_levels_of_the_book(client: WsClient) -> None:
    client.send({"action": "subscribe_book", "symbol": "ETHUSDT"})
    client.send({"action": "subscribe_ticker", "symbol": "ETHUSDT"})
    last_book: dict[str, Any] | None = None
    matched = 0
    for _ in range(60):
        m = client.wait_for(lambda m: m["type"] in ("BOOK_UPDATE", "MARKET_UPDATE"))
        if _is_book(m):
            last_book = m
            continue
        assert {"bid", "bidQty", "ask", "askQty"} <= m.keys()
        if last_book is not None and m["seq"] > 1:
            (bid, bid_qty), (ask, ask_qty) = last_book["bids"][0], last_book["asks"][0]
            if (m["bid"], m["bidQty"], m["ask"], m["askQty"]) == (bid, bid_qty, ask, ask_qty):
                matched += 1
    # every book is published before its trade: the MARKET_UPDATEs that follow a
    # BOOK_UPDATE show that book's best levels (a snapshot may briefly lag)
    assert matched >= 10


def test_subscribe_book_of_an_unknown_symbol_is_refused(client: WsClient) -> None:
    client.send({"action": "subscribe_book", "symbol": "NOPEUSDT", "id": 1})
    err = client.reply(1)
    assert err["type"] == "ERROR" and err["code"] == "UNKNOWN_SYMBOL"
    client.send({"action": "subscribe_book", "id": 2})
    err = client.reply(2)
    assert err["type"] == "ERROR" and err["code"] == "BAD_REQUEST"
