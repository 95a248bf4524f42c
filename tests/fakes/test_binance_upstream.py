"""The fake Binance upstream, driven by websocket-client over 127.0.0.1.

No sleeps: every wait is a socket timeout or :meth:`FakeBinanceUpstream.wait_until`.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import orjson
import pytest
import websocket

from engine.market.binance_codec import (
    ControlError,
    ControlReply,
    Dropped,
    DropReason,
    ServerShutdown,
    combined_url,
    decode_frame,
    list_subscriptions_request,
    stream_names,
    subscribe_request,
    unsubscribe_request,
)
from engine.messages import Ticker24h, Trade
from tests.fakes.binance_upstream import FakeBinanceUpstream

TIMEOUT = 5.0


@pytest.fixture
def upstream() -> Iterator[FakeBinanceUpstream]:
    with FakeBinanceUpstream(known_symbols=["BTCUSDT", "ETHUSDT"]) as fake:
        yield fake


def connect(url: str) -> websocket.WebSocket:
    return websocket.create_connection(url, timeout=TIMEOUT, skip_utf8_validation=True)


def abort(ws: websocket.WebSocket) -> None:
    """Shut the client socket down without a close handshake."""
    ws.abort()  # type: ignore[no-untyped-call]


def recv_text(ws: websocket.WebSocket) -> str:
    data = ws.recv()
    assert isinstance(data, str)
    return data


def test_combined_stream_trade_and_ticker(upstream: FakeBinanceUpstream) -> None:
    ws = connect(combined_url(upstream.base_url, stream_names("BTCUSDT")))
    try:
        assert upstream.wait_until(lambda: upstream.subscribers("btcusdt@aggtrade") == 1)
        assert upstream.push_trade("BTCUSDT", "86104.02", "0.00011", event_time_ms=5) == 1
        frame = orjson.loads(recv_text(ws))
        assert frame["stream"] == "btcusdt@aggTrade"
        assert decode_frame(orjson.dumps(frame)) == Trade(
            "BTCUSDT", Decimal("86104.02"), Decimal("0.00011"), 5, 5, 1000, False
        )
        upstream.push_trade("BTCUSDT", "1", "2", event_time_ms=6)
        got = decode_frame(recv_text(ws))
        assert isinstance(got, Trade) and got.trade_id == 1001
        upstream.push_ticker("BTCUSDT", "100.5", change="-1.5", high="110", low="90",
                             volume="12.5", bid="100.4", ask="100.6", event_time_ms=7)  # fmt: skip
        assert decode_frame(recv_text(ws)) == Ticker24h(
            "BTCUSDT", 7, Decimal("-1.5"), Decimal("0"), Decimal("110"), Decimal("90"),
            Decimal("12.5"), Decimal("100.5"), Decimal("100.4"), Decimal("100.6"),
        )  # fmt: skip
        # nobody subscribed to ETHUSDT
        assert upstream.push_trade("ETHUSDT", "1", "1") == 0
    finally:
        ws.close()


def test_raw_stream_sends_bare_events(upstream: FakeBinanceUpstream) -> None:
    ws = connect(upstream.raw_url("ethusdt@trade"))
    try:
        assert upstream.wait_until(lambda: upstream.subscribers("ethusdt@trade") == 1)
        assert upstream.push_trade("ETHUSDT", "2000", "1.5") == 1
        event = orjson.loads(recv_text(ws))
        assert event["e"] == "trade" and "stream" not in event
        assert isinstance(decode_frame(orjson.dumps(event)), Trade)
    finally:
        ws.close()


def test_live_subscribe_unsubscribe_list(upstream: FakeBinanceUpstream) -> None:
    ws = connect(upstream.combined_url())
    try:
        ws.send(subscribe_request(1, ["btcusdt@aggTrade", "ethusdt@ticker"]))
        assert decode_frame(recv_text(ws)) == ControlReply(1, None)
        ws.send(list_subscriptions_request(2))
        assert decode_frame(recv_text(ws)) == ControlReply(
            2, ["btcusdt@aggtrade", "ethusdt@ticker"]
        )
        ws.send(unsubscribe_request("three", ["ethusdt@ticker"]))
        assert decode_frame(recv_text(ws)) == ControlReply("three", None)
        ws.send(list_subscriptions_request(4))
        assert decode_frame(recv_text(ws)) == ControlReply(4, ["btcusdt@aggtrade"])
        assert upstream.control_messages == 4
    finally:
        ws.close()


@pytest.mark.parametrize(
    ("request_text", "code"),
    [
        (subscribe_request(9, ["dogeusdt@aggTrade"]), 2),  # unknown symbol
        (subscribe_request(9, ["btcusdt@nonsense"]), 2),
        (subscribe_request(9, ["BTCUSDT@aggTrade"]), 2),  # symbols must be lower-case
        ('{"method":"SUBSCRIBE","params":"btcusdt@ticker","id":9}', 1),
        ('{"method":"FLY","id":9}', 2),
        ('{"method":"SUBSCRIBE","params":[],"id":[9]}', 1),
        ("not json", 3),
    ],
)
def test_control_errors(upstream: FakeBinanceUpstream, request_text: str, code: int) -> None:
    ws = connect(upstream.combined_url())
    try:
        ws.send(request_text)
        got = decode_frame(recv_text(ws))
        assert isinstance(got, ControlError), got
        assert got.code == code
        assert got.id == (9 if code != 3 and '"id":[9]' not in request_text else None)
        assert upstream.subscriptions() == [[]]
    finally:
        ws.close()


def test_too_many_streams_is_an_error() -> None:
    with FakeBinanceUpstream(known_symbols=["BTCUSDT"], max_streams=2) as fake:
        ws = connect(fake.combined_url(["btcusdt@aggTrade"]))
        try:
            ws.send(subscribe_request(1, ["btcusdt@ticker", "btcusdt@trade"]))
            got = decode_frame(recv_text(ws))
            assert isinstance(got, ControlError) and got.code == 2
            ws.send(subscribe_request(2, ["btcusdt@ticker"]))
            assert decode_frame(recv_text(ws)) == ControlReply(2, None)
        finally:
            ws.close()


def test_control_rate_limit_disconnects(upstream: FakeBinanceUpstream) -> None:
    ws = connect(upstream.combined_url())
    try:
        for i in range(6):  # the sixth within one second breaks the limit
            ws.send(list_subscriptions_request(i))
        replies = []
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            for _ in range(7):
                replies.append(recv_text(ws))
        assert len(replies) == 5
        assert upstream.wait_until(lambda: upstream.open_connections() == 0)
    finally:
        ws.close()


def test_bad_urls_are_rejected(upstream: FakeBinanceUpstream) -> None:
    for url in (
        upstream.base_url + "/nope",
        upstream.combined_url(["dogeusdt@aggTrade"]),
        upstream.raw_url("btcusdt@bogus"),
    ):
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            connect(url)
        assert info.value.status_code in (400, 404)


def test_server_pings_and_pong_timeout() -> None:
    with FakeBinanceUpstream(ping_interval_s=0.1, pong_timeout_s=0.3) as fake:
        ws = connect(fake.combined_url())
        try:
            # recv_data_frame answers the ping itself, then returns it
            frame = ws.recv_data_frame(control_frame=True)[1]
            assert frame.opcode == websocket.ABNF.OPCODE_PING
            assert fake.wait_until(lambda: fake.pongs_received >= 1)
            # now stop reading, so no more pongs: the server gives up on us
            assert fake.wait_until(lambda: fake.open_connections() == 0, timeout=TIMEOUT)
        finally:
            ws.close()


def test_recv_answers_pings_keeps_connection() -> None:
    with FakeBinanceUpstream(
        known_symbols=["BTCUSDT"], ping_interval_s=0.05, pong_timeout_s=0.5
    ) as fake:
        ws = connect(fake.combined_url())
        try:
            # each ping is answered by websocket-client while it reads
            for _ in range(20):  # 20 pings = 1 s, twice the pong timeout
                opcode, _frame = ws.recv_data_frame(control_frame=True)
                assert opcode == websocket.ABNF.OPCODE_PING
            assert fake.wait_until(lambda: fake.pongs_received >= 20)
            assert fake.open_connections() == 1
        finally:
            ws.close()


def test_drop_all_kills_connections(upstream: FakeBinanceUpstream) -> None:
    ws = connect(upstream.combined_url(["btcusdt@aggTrade"]))
    try:
        assert upstream.wait_until(lambda: upstream.open_connections() == 1)
        assert upstream.drop_all() == 1
        with pytest.raises((websocket.WebSocketConnectionClosedException, OSError)):
            ws.recv()
        assert upstream.open_connections() == 0
    finally:
        abort(ws)


def test_refuse_count_then_accept(upstream: FakeBinanceUpstream) -> None:
    upstream.refuse(2)
    for _ in range(2):
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            connect(upstream.combined_url())
        assert info.value.status_code == 503
    ws = connect(upstream.combined_url())
    ws.close()
    assert upstream.connection_attempts == 3
    assert upstream.refused_connections == 2
    assert upstream.accepted_connections == 1


def test_refuse_until_told(upstream: FakeBinanceUpstream) -> None:
    upstream.refuse()
    with pytest.raises(websocket.WebSocketBadStatusException):
        connect(upstream.combined_url())
    upstream.accept_upgrades()
    connect(upstream.combined_url()).close()
    upstream.refuse(for_s=60.0)
    with pytest.raises(websocket.WebSocketBadStatusException):
        connect(upstream.combined_url())


def test_stall_sends_nothing_but_answers_pings(upstream: FakeBinanceUpstream) -> None:
    ws = connect(upstream.combined_url(["btcusdt@aggTrade"]))
    try:
        assert upstream.wait_until(lambda: upstream.open_connections() == 1)
        upstream.stall()
        assert upstream.push_trade("BTCUSDT", "1", "1") == 0
        ws.send(list_subscriptions_request(1))
        assert upstream.wait_until(lambda: upstream.control_messages == 1)
        ws.ping(b"hi")
        frame = ws.recv_data_frame(control_frame=True)[1]
        assert frame.opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"hi"
        upstream.unstall()
        assert upstream.push_trade("BTCUSDT", "2", "1") == 1
        got = decode_frame(recv_text(ws))  # the stalled reply was never sent
        assert isinstance(got, Trade) and got.price == Decimal("2")
    finally:
        ws.close()


def test_garbage_and_server_shutdown(upstream: FakeBinanceUpstream) -> None:
    ws = connect(upstream.raw_url("btcusdt@aggTrade"))
    try:
        assert upstream.wait_until(lambda: upstream.open_connections() == 1)
        assert upstream.send_garbage() == 1
        got = decode_frame(recv_text(ws))
        assert isinstance(got, Dropped) and got.reason is DropReason.NOT_JSON
        assert upstream.server_shutdown_event() == 1
        assert isinstance(decode_frame(recv_text(ws)), ServerShutdown)
        assert upstream.push_raw('{"result":null,"id":5}') == 1
        assert decode_frame(recv_text(ws)) == ControlReply(5, None)
    finally:
        ws.close()


def test_lifetime_closes_connection() -> None:
    with FakeBinanceUpstream(max_lifetime_s=0.2) as fake:
        ws = connect(fake.combined_url())
        try:
            opcode, frame = ws.recv_data_frame(control_frame=True)
            assert opcode == websocket.ABNF.OPCODE_CLOSE
            assert frame.data[:2] == (1000).to_bytes(2, "big")
            assert fake.wait_until(lambda: fake.open_connections() == 0)
        finally:
            abort(ws)


def test_client_that_never_reads_is_dropped() -> None:
    with FakeBinanceUpstream(known_symbols=["BTCUSDT"], send_timeout_s=0.2) as fake:
        ws = connect(fake.combined_url(["btcusdt@aggTrade"]))
        try:
            assert fake.wait_until(lambda: fake.open_connections() == 1)
            big = "x" * 65536
            for _ in range(2000):  # bounded: a few MB fill both socket buffers
                if fake.push_raw(big) == 0:
                    break
            assert fake.open_connections() == 0
        finally:
            abort(ws)


def test_close_with_connected_clients_joins_threads() -> None:
    fake = FakeBinanceUpstream().start()
    clients = [connect(fake.combined_url()) for _ in range(3)]
    assert fake.wait_until(lambda: fake.open_connections() == 3)
    fake.close()  # raises if any of its threads is still alive
    fake.close()  # idempotent
    for ws in clients:
        with pytest.raises((websocket.WebSocketConnectionClosedException, OSError)):
            ws.recv()
        abort(ws)


def test_replayed_recording_through_the_fake(upstream: FakeBinanceUpstream) -> None:
    """Every frame of a real recording pushed through the fake decodes the same."""
    from engine.market.binance_codec import CodecStats
    from engine.market.replay_format import records_from_bytes
    from tests.market.conftest import data_file

    records = records_from_bytes(data_file("cryptofeed/BINANCE.ws.1.0").read_bytes())
    ws = connect(upstream.combined_url())
    try:
        assert upstream.wait_until(lambda: upstream.open_connections() == 1)
        stats = CodecStats()
        for record in records:
            assert upstream.push_raw(record.frame) == 1
            stats.record(decode_frame(recv_text(ws)))
        assert stats.snapshot() == {
            "decoded": {"ignored": 263, "trade": 2},
            "ignored": {"depthUpdate": 177, "bookTicker": 84, "kline": 2},
            "dropped": {},
        }
    finally:
        ws.close()


def test_streaming_mode_pushes_the_set_price_with_consecutive_ids() -> None:
    with FakeBinanceUpstream(stream_prices={"BTCUSDT": "50000"}, ticker_every=2) as fake:
        assert "BTCUSDT" in fake.known_symbols
        ws = connect(combined_url(fake.base_url, stream_names("BTCUSDT")))
        try:
            seen = [decode_frame(recv_text(ws)) for _ in range(4)]  # 2 ticks at least
            assert any(isinstance(f, Trade) and f.price == Decimal("50000") for f in seen)
            fake.set_price("BTCUSDT", "50001.5")
            for _ in range(50):  # bounded: at most 2 frames per 10 ms tick
                seen.append(decode_frame(recv_text(ws)))
                got = seen[-1]
                if isinstance(got, Ticker24h) and got.last_price == Decimal("50001.5"):
                    break
            else:
                raise AssertionError(f"no ticker at the new price in {seen}")
            trades = [f for f in seen if isinstance(f, Trade)]
            assert trades[-1].price == Decimal("50001.5")
            ids = [t.trade_id for t in trades]
            assert ids == list(range(ids[0], ids[0] + len(ids)))  # one id per tick
        finally:
            ws.close()


def test_set_price_needs_streaming_mode(upstream: FakeBinanceUpstream) -> None:
    with pytest.raises(RuntimeError, match="streaming"):
        upstream.set_price("BTCUSDT", "1")


# -- the fault modes ----------------------------------------------------------------


def test_never_answer_holds_the_upgrade_unanswered(upstream: FakeBinanceUpstream) -> None:
    upstream.never_answer()
    with pytest.raises(websocket.WebSocketTimeoutException):
        websocket.create_connection(upstream.combined_url(["btcusdt@aggTrade"]), timeout=0.2)
    assert upstream.wait_until(lambda: upstream.unanswered_handshakes == 1)
    assert upstream.accepted_connections == 0
    upstream.never_answer(False)
    connect(upstream.combined_url(["btcusdt@aggTrade"])).close()


def test_close_at_once_accepts_then_closes_before_any_data(
        upstream: FakeBinanceUpstream) -> None:
    upstream.close_at_once()
    ws = connect(upstream.combined_url(["btcusdt@aggTrade"]))
    try:
        opcode, frame = ws.recv_data_frame(True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(frame.data[:2], "big") == 1000
        assert upstream.closed_at_once == 1
    finally:
        abort(ws)


def test_a_poison_trade_does_not_move_the_id_sequence(upstream: FakeBinanceUpstream) -> None:
    ws = connect(combined_url(upstream.base_url, ["btcusdt@aggTrade"]))
    try:
        assert upstream.wait_until(lambda: upstream.subscribers("btcusdt@aggtrade") == 1)
        upstream.push_trade("BTCUSDT", "100", "1")
        upstream.push_trade("BTCUSDT", "0.01", "1", agg_id=2**63 - 1, advance=False)
        upstream.push_trade("BTCUSDT", "101", "1")
        ids = [orjson.loads(recv_text(ws))["data"]["a"] for _ in range(3)]
        assert ids == [1000, 2**63 - 1, 1001]
    finally:
        ws.close()


def test_send_oversized_announces_the_length_and_streams_the_payload(
        upstream: FakeBinanceUpstream) -> None:
    ws = connect(combined_url(upstream.base_url, ["btcusdt@aggTrade"]))
    try:
        assert upstream.wait_until(lambda: upstream.open_connections() == 1)
        assert upstream.send_oversized(300_000) == 300_000  # small enough to fit in buffers
        opcode, frame = ws.recv_data_frame(True)
        assert opcode == websocket.ABNF.OPCODE_TEXT and len(frame.data) == 300_000
    finally:
        ws.close()
