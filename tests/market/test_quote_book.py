"""The book the board keeps per symbol: merging best bid/ask with depth, and what a
book change publishes (BOOK_UPDATE always, MARKET_UPDATE when the best levels move)."""

from __future__ import annotations

import itertools
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.market.board import MarketBoard
from engine.market.quote_book import QuoteBook
from engine.messages import BookTicker, DepthSnapshot, Ticker24h, Trade

D = Decimal


def bt(bid: str, bq: str, ask: str, aq: str, uid: int, t: int = 1) -> BookTicker:
    return BookTicker("BTCUSDT", D(bid), D(bq), D(ask), D(aq), uid, t)


def depth(bids: list[tuple[str, str]], asks: list[tuple[str, str]], uid: int) -> DepthSnapshot:
    return DepthSnapshot("BTCUSDT", tuple((D(p), D(q)) for p, q in bids),
                         tuple((D(p), D(q)) for p, q in asks), uid, 1)


LEVELS = depth([("100", "1"), ("99", "2"), ("98", "3")], [("101", "1"), ("102", "2")], 10)


def test_best_bid_ask_alone_is_a_one_level_book() -> None:
    book = QuoteBook()
    assert book.apply(bt("100", "1", "101", "2", 5))
    assert book.bids == ((D(100), D(1)),) and book.asks == ((D(101), D(2)),)
    assert not book.apply(bt("100", "1", "101", "2", 6))  # same book: no change


def test_a_newer_depth_snapshot_is_shown_as_it_is() -> None:
    book = QuoteBook()
    book.apply(bt("100", "5", "101", "5", 9))
    assert book.apply(LEVELS)
    assert (book.bids, book.asks) == (LEVELS.bids, LEVELS.asks)


def test_a_newer_best_bid_ask_leads_the_depth_levels_behind_it() -> None:
    book = QuoteBook()
    book.apply(LEVELS)
    # the bid moved down to 99 (100 is gone): 99 shows the new quantity, 98 stays
    assert book.apply(bt("99", "7", "101", "4", 11))
    assert book.bids == ((D(99), D(7)), (D(98), D(3)))
    assert book.asks == ((D(101), D(4)), (D(102), D(2)))
    # an older depth snapshot arriving later does not bring 100 back
    book.apply(depth([("100", "1"), ("99", "2")], [("101", "1")], 10))
    assert book.bids[0] == (D(99), D(7))
    # a newer one does
    book.apply(depth([("100", "9")], [("101", "9")], 12))
    assert book.bids == ((D(100), D(9)),)


def test_the_book_never_grows_beyond_the_depth_plus_one_level() -> None:
    book = QuoteBook()
    book.apply(LEVELS)
    for i in range(20):  # the bid climbs tick by tick without a new depth snapshot
        book.apply(bt(str(100 + D(i + 1) / 100), "1", "101", "1", 11 + i))
        assert len(book.bids) <= len(LEVELS.bids) + 1


def test_board_market_update_carries_the_book_not_the_ticker() -> None:
    board = MarketBoard()
    # before any price a book change gives a book but no MARKET_UPDATE state
    first = board.apply_book(bt("100", "1", "101", "2", 5))
    assert first is not None and first.market is None and first.book.seq == 1
    snap = board.apply_trade(Trade("BTCUSDT", D("100.5"), D(1), 2, 2, 1))
    assert (snap.bid, snap.bid_qty, snap.ask, snap.ask_qty) == (D(100), D(1), D(101), D(2))
    ticker = Ticker24h("BTCUSDT", 3, D(1), D(1), D(110), D(90), D(5), D("100.5"),
                       bid=D(50), ask=D(150))
    tsnap = board.apply_ticker(ticker)
    assert tsnap is not None and (tsnap.bid, tsnap.ask) == (D(100), D(101))  # not 50/150
    moved = board.apply_book(bt("100", "3", "101", "2", 6))
    assert moved is not None and moved.market is not None
    assert moved.market.seq == tsnap.seq + 1 and moved.market.bid_qty == D(3)
    assert moved.book.seq == 2
    # a deeper level changing is a book change but not a market state
    deeper = board.apply_book(depth([("100", "3"), ("99", "1")], [("101", "2")], 7))
    assert deeper is not None and deeper.market is None and deeper.book.seq == 3
    assert board.apply_book(depth([("100", "3"), ("99", "1")], [("101", "2")], 8)) is None
    view = board.book("BTCUSDT")
    assert view is not None and view.seq == 3 and view.best_bid == (D(100), D(3))


_price = st.integers(90, 110)


@st.composite
def _inputs(draw: st.DrawFn) -> BookTicker | DepthSnapshot:
    uid = draw(st.integers(1, 50))
    if draw(st.booleans()):
        bid = draw(_price)
        ask = bid + draw(st.integers(1, 3))
        return bt(str(bid), str(draw(st.integers(1, 9))), str(ask), "1", uid)
    mid = draw(_price)
    n = draw(st.integers(0, 5))
    return depth([(str(mid - i), "1") for i in range(n)],
                 [(str(mid + 1 + i), "2") for i in range(draw(st.integers(0, 5)))], uid)


@settings(max_examples=300)
@given(st.lists(_inputs(), min_size=1, max_size=30))
def test_any_sequence_gives_an_ordered_bounded_book_led_by_the_newest_input(
        items: list[BookTicker | DepthSnapshot]) -> None:
    book = QuoteBook()
    top: BookTicker | None = None
    snap: DepthSnapshot | None = None
    for item in items:
        book.apply(item)
        if isinstance(item, BookTicker):
            top = item
        else:
            snap = item
        assert all(a[0] > b[0] for a, b in itertools.pairwise(book.bids))
        assert all(a[0] < b[0] for a, b in itertools.pairwise(book.asks))
        depth_n = 0 if snap is None else max(len(snap.bids), len(snap.asks))
        assert len(book.bids) <= depth_n + 1 and len(book.asks) <= depth_n + 1
        if top is not None and (snap is None or top.update_id > snap.last_update_id):
            assert book.bids[0] == (top.bid, top.bid_qty)
            assert book.asks[0] == (top.ask, top.ask_qty)
        else:
            assert snap is not None and (book.bids, book.asks) == (snap.bids, snap.asks)
