"""The book through the feeds: Binance (fake upstream, depth_levels=5), replay of real
recorded bookTicker frames, and the FeedActor's routing order (book before clients)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import engine.feeds.registry as registry
from actors.feed import FeedActor
from actors.messages import BookTick, TradeTick
from engine.clock import SystemClock
from engine.config import BinanceConfig, FeedConfig, ReplayConfig, SimulatedConfig
from engine.market.replay_format import records_from_bytes
from engine.messages import BookTicker, DepthSnapshot
from engine.protocol.server_messages import Outgoing
from engine.server.hub import Hub
from tests.fakes.binance_rest import entry, shared_rest
from tests.fakes.binance_upstream import FakeBinanceUpstream
from tests.feeds.helpers import RecordingSlot, data_file, engine_config, wait_until
from tickdesk.app import Engine, LocalSession

Msg = dict[str, Any]
PRICES = {"BTCUSDT": "50000.0", "ETHUSDT": "3000.0", "SOLUSDT": "150.0"}


@pytest.fixture
def upstream() -> Iterator[FakeBinanceUpstream]:
    with FakeBinanceUpstream(stream_prices=PRICES) as fake:
        yield fake


def _binance(url: str, depth: int = 5) -> Engine:
    rest = shared_rest()  # the symbols' filters (BTC, ETH and SOL are in the snapshot)
    rest.add(entry("XRPUSDT", "XRP", "USDT"))
    feed = FeedConfig(source="binance", symbols=("BTCUSDT", "ETHUSDT"),
                      binance=BinanceConfig(url=url, stall_timeout_s=1.0, depth_levels=depth,
                                            subscribe_timeout_s=1.0, rest_url=rest.base_url))
    return Engine(engine_config(feed), listen=False)


def _book(symbol: str) -> Any:
    return lambda m: m.get("type") == "BOOK_UPDATE" and m.get("symbol") == symbol


def _levels(price: float, sign: int, n: int, first_qty: float) -> list[list[float]]:
    return [[round(price + sign * 0.01 * (i + 1), 2), first_qty if i == 0 else float(i + 1)]
            for i in range(n)]


def _session(engine: Engine) -> LocalSession:
    wait_until(lambda: engine.feed_status()["status"] == "UP", what="feed UP")
    return engine.connect()


def test_depth5_book_streams_through_the_fake_upstream(upstream: FakeBinanceUpstream) -> None:
    with _binance(upstream.base_url) as engine:
        session = _session(engine)
        assert upstream.request_targets[0] == (
            "/stream?streams=btcusdt@aggTrade/btcusdt@ticker/btcusdt@bookTicker"
            "/btcusdt@depth5@100ms/ethusdt@aggTrade/ethusdt@ticker/ethusdt@bookTicker"
            "/ethusdt@depth5@100ms")
        session.send({"action": "subscribe_book", "symbol": "btcusdt", "id": "b1"})
        ok = session.wait_for(lambda m: m.get("id") == "b1", timeout=5)
        assert ok["type"] == "SUBSCRIBED" and ok["symbol"] == "BTCUSDT" and ok["stream"] == "book"
        first = session.wait_for(_book("BTCUSDT"), timeout=5)
        assert first["bids"][0] == [49999.99, 1.5]  # @bookTicker may come before @depth5
        book = session.wait_for(lambda m: _book("BTCUSDT")(m) and len(m["bids"]) == 5,
                                timeout=5) if len(first["bids"]) < 5 else first
        # the fake quotes 1 step of 0.01 around the price: 5 levels a side from @depth5
        assert book["bids"] == _levels(50000.0, -1, 5, 1.5)
        assert book["asks"] == _levels(50000.0, +1, 5, 2.5)
        assert isinstance(book["seq"], int) and book["seq"] >= 1
        session.send({"action": "subscribe_ticker", "symbol": "BTCUSDT"})
        upd = session.wait_for(lambda m: m.get("type") == "MARKET_UPDATE", timeout=5)
        assert (upd["bid"], upd["bidQty"], upd["ask"], upd["askQty"]) == (
            49999.99, 1.5, 50000.01, 2.5)
        upstream.set_price("BTCUSDT", "50100.0")
        # first the new @bookTicker leads the old depth, then the new @depth5 replaces it
        moved = session.wait_for(lambda m: _book("BTCUSDT")(m)
                                 and m["asks"] == _levels(50100.0, +1, 5, 2.5), timeout=5)
        assert moved["bids"] == _levels(50100.0, -1, 5, 1.5)
        assert moved["seq"] > book["seq"]
        assert engine.feed_shared.codec_snapshot()["decoded"]["depth"] > 0


def test_a_bad_book_frame_is_dropped_and_counted_and_the_feed_stays_up(
        upstream: FakeBinanceUpstream) -> None:
    with _binance(upstream.base_url) as engine:
        session = _session(engine)
        session.send({"action": "subscribe_book", "symbol": "ETHUSDT"})
        session.wait_for(_book("ETHUSDT"), timeout=5)
        upstream.push_raw('{"stream":"ethusdt@bookTicker","data":{"u":99999999,"s":"ETHUSDT",'
                          '"b":"3001","B":"1","a":"3000","A":"1"}}')
        upstream.push_raw('{"stream":"ethusdt@depth5@100ms","data":{"lastUpdateId":99999999,'
                          '"bids":[["1","1"],["2","1"]],"asks":[]}}')
        wait_until(lambda: engine.feed_shared.codec_snapshot()["dropped"]
                   == {"crossed_book": 1, "bad_value": 1}, what="two drops counted")
        upstream.set_price("ETHUSDT", "3001.0")  # the book still streams
        book = session.wait_for(lambda m: _book("ETHUSDT")(m) and m["bids"][0][0] == 3000.99,
                                timeout=5)
        assert book["asks"][0][0] == 3001.01
        assert engine.feed_status()["status"] == "UP"


def test_a_symbol_added_live_subscribes_its_book_streams_too(
        upstream: FakeBinanceUpstream) -> None:
    with _binance(upstream.base_url, depth=10) as engine:
        session = _session(engine)
        session.send({"action": "subscribe_ticker", "symbol": "SOLUSDT", "id": "s"})
        assert session.wait_for(lambda m: m.get("id") == "s", timeout=5)["type"] == "SUBSCRIBED"
        assert upstream.control_requests[0]["params"] == [
            "solusdt@aggTrade", "solusdt@ticker", "solusdt@bookTicker", "solusdt@depth10@100ms"]
        session.send({"action": "subscribe_book", "symbol": "SOLUSDT"})
        book = session.wait_for(lambda m: _book("SOLUSDT")(m) and len(m["bids"]) > 1,
                                timeout=5)
        assert len(book["bids"]) == len(book["asks"]) == 10


def test_live_admission_counts_four_streams_a_symbol_with_depth(
        upstream: FakeBinanceUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    # 2 configured symbols x 4 streams = 8; a limit of 12 leaves room for one more
    monkeypatch.setattr(registry, "MAX_STREAMS_PER_CONNECTION", 12)
    with _binance(upstream.base_url) as engine:
        session = _session(engine)
        session.send({"action": "subscribe_ticker", "symbol": "SOLUSDT", "id": "a"})
        assert session.wait_for(lambda m: m.get("id") == "a", timeout=5)["type"] == "SUBSCRIBED"
        upstream.set_price("XRPUSDT", "0.5")
        session.send({"action": "subscribe_ticker", "symbol": "XRPUSDT", "id": "b"})
        refused = session.wait_for(lambda m: m.get("id") == "b", timeout=5)
        assert refused["type"] == "ERROR" and refused["code"] == "UNKNOWN_SYMBOL"
        assert "stream limit" in refused["message"]


def test_replay_plays_the_recorded_book_tickers() -> None:
    path = data_file("cryptofeed/BINANCE.ws.1.0")
    records = records_from_bytes(path.read_bytes())
    nkn = [r for r in records if r.frame.startswith('{"stream":"nknusdt@bookTicker"')]
    assert len(nkn) == 74
    feed = FeedConfig(source="replay", symbols=("NKNUSDT",),
                      replay=ReplayConfig(path=str(path), speed=0.0))
    with Engine(engine_config(feed), listen=False) as engine:
        wait_until(lambda: engine.feed_shared.codec_snapshot()["decoded"].get("book_ticker")
                   == 84, what="every bookTicker decoded")
        session = engine.connect()
        session.send({"action": "subscribe_book", "symbol": "NKNUSDT"})
        book = session.wait_for(_book("NKNUSDT"), timeout=5)
        # the last recorded NKNUSDT bookTicker: u=499870151 b=0.3527/9602 a=0.3531/152
        assert '"u":499870151' in nkn[-1].frame
        assert book["bids"] == [[0.3527, 9602.0]] and book["asks"] == [[0.3531, 152.0]]
        # 74 recorded, and each one changed the book (no two equal in a row)
        assert book["seq"] == 74
        session.send({"action": "subscribe_ticker", "symbol": "NKNUSDT"})
        upd = session.wait_for(lambda m: m.get("type") == "MARKET_UPDATE", timeout=5)
        assert (upd["bid"], upd["bidQty"], upd["ask"], upd["askQty"]) == (
            0.3527, 9602.0, 0.3531, 152.0)


def test_replay_plays_recorded_partial_depth() -> None:
    # gocryptotrader's capture: one @depth5 and one newer @depth10@100ms of BTCUSDT
    path = data_file("gocryptotrader/wsSpot.json")
    feed = FeedConfig(source="replay", symbols=("BTCUSDT",),
                      replay=ReplayConfig(path=str(path), speed=0.0))
    with Engine(engine_config(feed), listen=False) as engine:
        wait_until(lambda: engine.feed_shared.codec_snapshot()["decoded"].get("depth") == 2,
                   what="both partial books decoded")
        session = engine.connect()
        session.send({"action": "subscribe_book", "symbol": "BTCUSDT"})
        book = session.wait_for(_book("BTCUSDT"), timeout=5)
        assert book["seq"] == 2
        assert book["bids"] == [[86104.01, 7.31528], [86104.0, 0.02997]]
        assert book["asks"] == [[86104.02, 5.48779], [86104.03, 0.00072]]
        session.send({"action": "subscribe_ticker", "symbol": "BTCUSDT"})
        upd = session.wait_for(lambda m: m.get("type") == "MARKET_UPDATE", timeout=5)
        assert (upd["bidQty"], upd["askQty"]) == (7.31528, 5.48779)


# -- the FeedActor's order: BookTick to the order monitor before any client -------


class _Channel:
    conn_id = 1
    closed = False

    def __init__(self, log: list[tuple[str, Any]], lock: threading.Lock) -> None:
        self._log, self._lock = log, lock

    def deliver(self, out: Outgoing) -> None:
        with self._lock:
            self._log.append(("client", out))

    def close(self, code: int, reason: str) -> None:
        pass


def test_simulated_feed_routes_each_book_before_clients_and_trades_inside_it() -> None:
    log: list[tuple[str, Any]] = []
    lock = threading.Lock()
    hub = Hub()
    ch = _Channel(log, lock)
    hub.add(ch)
    hub.subscribe(ch, "BTCUSDT")
    hub.subscribe_book(ch, "BTCUSDT")
    cfg = FeedConfig(symbols=("BTCUSDT",), simulated=SimulatedConfig(seed=3,
                                                                     ticks_per_second=500))
    ref = FeedActor.start(cfg, hub, RecordingSlot("orders", log, lock),
                          RecordingSlot("portfolio", log, lock), SystemClock())
    try:
        def trades() -> int:
            with lock:
                return sum(1 for who, m in log if who == "orders" and isinstance(m, TradeTick))
        wait_until(lambda: trades() >= 200, timeout=10, what="200 simulated trades")
    finally:
        ref.stop(timeout=5)
    with lock:
        events = list(log)
    book: DepthSnapshot | BookTicker | None = None
    client_saw_book = True
    checked = 0
    for who, msg in events:
        if who == "orders" and isinstance(msg, BookTick):
            assert client_saw_book, "a book reached the order monitor twice before any client"
            book, client_saw_book = msg.book, False
        elif who == "client" and b'"BOOK_UPDATE"' in msg.payload:
            assert book is not None  # the order monitor heard of it first
            client_saw_book = True
        elif who == "orders" and isinstance(msg, TradeTick):
            assert isinstance(book, DepthSnapshot)
            bid, ask = book.bids[0][0], book.asks[0][0]
            assert bid <= msg.trade.price <= ask, (bid, msg.trade, ask)
            checked += 1
    assert checked >= 200
