"""TickdeskClient against a real Engine over 127.0.0.1 (and a silent fake server)."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from engine.backoff import BackoffPolicy
from engine.config import AccountConfig, ServerConfig
from tests.client.helpers import SentCommands, free_port, wait_ready
from tests.conftest import make_config, timeout, wait_until
from tickdesk import Engine
from tickdesk.client import (
    ClientClosed,
    CommandError,
    ConnectError,
    ConnectionLost,
    RequestTimeout,
    State,
    TickdeskClient,
)

FAST = BackoffPolicy(min_s=0.05, max_s=0.2, factor=2.0, jitter=0.2, reset_after_s=5.0)
ALICE = AccountConfig(name="alice", token="alice-token-123")


@pytest.fixture
def client(engine: Engine) -> Iterator[TickdeskClient]:
    wait_ready(engine)
    with TickdeskClient(engine.url, request_timeout_s=timeout(5)) as c:
        yield c


def is_tick(symbol: str) -> Any:
    return lambda m: m["type"] == "MARKET_UPDATE" and m["symbol"] == symbol


# -- connecting ----------------------------------------------------------------------------


def test_connect_reads_the_greeting(client: TickdeskClient) -> None:
    assert client.state is State.OPEN and client.connected
    assert client.account == "default"
    assert client.server is not None and client.server.startswith("tickdesk/")
    assert client.feed is not None and client.feed["feed"] == "simulated"
    hello = client.get(timeout(5))
    assert hello["type"] == "CONNECTED"
    assert client.ping() < timeout(5)


def test_cannot_connect_raises_connect_error_and_leaves_no_thread() -> None:
    c = TickdeskClient(f"ws://127.0.0.1:{free_port()}/api/ws/realtime", connect_timeout_s=2)
    with pytest.raises(ConnectError, match="cannot connect"):
        c.connect()
    assert c.state is State.IDLE
    c.close()
    assert c.state is State.CLOSED
    with pytest.raises(ClientClosed):
        c.connect()


def test_bad_token_is_a_command_error_and_good_token_selects_the_account() -> None:
    with Engine(make_config(accounts=(ALICE,))) as eng:
        wait_ready(eng)
        bad = TickdeskClient(eng.url, token="not-the-token")
        with pytest.raises(CommandError) as info:
            bad.connect()
        assert info.value.code == "UNAUTHORIZED"
        bad.close()
        with TickdeskClient(eng.url, token=ALICE.token) as good:
            assert good.account == "alice"
            assert good.get_portfolio()["balance"] == 10000
        with TickdeskClient(eng.url) as anonymous:
            assert anonymous.account is None
            with pytest.raises(CommandError) as info:
                anonymous.get_positions()
            assert info.value.code == "UNAUTHORIZED"


# -- market data ------------------------------------------------------------------------------


def test_subscribe_then_iterate_and_unsubscribe(client: TickdeskClient) -> None:
    client.subscribe("btcusdt")
    assert client.subscriptions == ("BTCUSDT",)
    seqs = [client.wait_for(is_tick("BTCUSDT"), timeout(5))["seq"] for _ in range(3)]
    assert seqs == sorted(seqs)
    client.unsubscribe("BTCUSDT")
    assert client.subscriptions == ()
    with pytest.raises(CommandError) as info:
        client.subscribe("DOGEBTC")
    assert info.value.code == "UNKNOWN_SYMBOL"
    assert client.subscriptions == ()


def test_messages_iterator_ends_after_a_quiet_timeout() -> None:
    # With accounts configured and no token there are no account broadcasts:
    # after CONNECTED the connection is quiet.
    with Engine(make_config(accounts=(ALICE,))) as eng:
        wait_ready(eng)
        c = TickdeskClient(eng.url).connect()
        t0 = time.monotonic()
        assert [m["type"] for m in c.messages(timeout=0.3)] == ["CONNECTED"]
        assert 0.3 <= time.monotonic() - t0 < timeout(3)
        c.close()


def test_messages_iterator_ends_on_close(engine: Engine) -> None:
    wait_ready(engine)
    c = TickdeskClient(engine.url).connect()
    c.subscribe("ETHUSDT")
    first = next(m for m in c.messages(timeout=timeout(5)) if m["type"] == "MARKET_UPDATE")
    assert first["symbol"] == "ETHUSDT"
    seen: list[str] = []
    stopper = threading.Timer(0.3, c.close)
    stopper.start()
    t0 = time.monotonic()
    for m in c.messages():  # no timeout: only close() ends it
        seen.append(m["type"])
    stopper.join()
    assert time.monotonic() - t0 < timeout(5)
    assert "MARKET_UPDATE" in seen


def test_callback_gets_every_message_and_cannot_block_the_reader(engine: Engine) -> None:
    got: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    ticked = threading.Event()
    holder: list[TickdeskClient] = []

    def on_message(msg: dict[str, Any]) -> None:
        got.append(msg)
        if msg["type"] == "MARKET_UPDATE" and not ticked.is_set():
            try:
                holder[0].ping()  # would deadlock: the reply needs this very thread
            except RuntimeError as exc:
                errors.append(exc)
            ticked.set()

    wait_ready(engine)
    c = TickdeskClient(engine.url, on_message=on_message, queue_size=0)
    holder.append(c)
    with c:
        c.subscribe("SOLUSDT")
        assert ticked.wait(timeout(5))
        with pytest.raises(RuntimeError, match="queue_size=0"):
            c.get(0.1)
    assert got[0]["type"] == "CONNECTED"
    assert any(m["type"] == "SUBSCRIBED" and m["symbol"] == "SOLUSDT" for m in got)
    assert len(errors) == 1 and "reader thread" in str(errors[0])


# -- orders -------------------------------------------------------------------------------------


def test_market_order_result_and_its_fill(client: TickdeskClient) -> None:
    client.subscribe("BTCUSDT")
    client.wait_for(is_tick("BTCUSDT"), timeout(5))  # a MARKET order needs a price
    result = client.place_order("btcusdt", "buy", "MARKET", "0.01")
    assert result.accepted and result.execution_type == "NEW"
    assert result.order["symbol"] == "BTCUSDT" and result.order["type"] == "MARKET"
    assert result.request_id.startswith("c")
    fill = client.wait_for(lambda m: m.get("executionType") == "TRADE", timeout(5))
    assert fill["id"] == result.request_id and fill["order"]["orderId"] == result.order_id
    assert fill["order"]["status"] == "FILLED"
    positions = client.get_positions()
    assert [(p["symbol"], p["side"], p["quantity"]) for p in positions] == [
        ("BTCUSDT", "LONG", 0.01)]
    assert client.get_portfolio()["positionsCount"] == 1
    assert [o["orderId"] for o in client.get_orders("all")] == [result.order_id]
    assert client.get_orders() == []


def test_rejection_is_a_result_and_bad_input_a_command_error(client: TickdeskClient) -> None:
    client.subscribe("BTCUSDT")
    client.wait_for(is_tick("BTCUSDT"), timeout(5))  # a MARKET order needs a price
    # 10 BTC (within the MARKET_LOT_SIZE maximum) is far more than 10000 USDT buys
    rejected = client.place_order("BTCUSDT", "BUY", "MARKET", 10)
    assert not rejected.accepted and rejected.execution_type == "REJECTED"
    assert rejected.reject_reason.startswith("INSUFFICIENT_BALANCE: USDT available ")
    assert rejected.status == "REJECTED"
    for kwargs, code in [
        ({"quantity": -1}, "BAD_REQUEST"),
        ({"symbol": "NOPEUSDT"}, "UNKNOWN_SYMBOL"),
        ({"type": "LIMIT"}, "BAD_REQUEST"),  # no price
    ]:
        args: dict[str, Any] = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                "quantity": "0.01", **kwargs}
        with pytest.raises(CommandError) as info:
            client.place_order(**args)
        assert info.value.code == code and info.value.message
        assert info.value.request_id is not None
    with pytest.raises(CommandError) as info:
        client.cancel_order(999_999)
    assert info.value.code == "UNKNOWN_ORDER"
    with pytest.raises(ValueError):
        client.cancel_order()
    with pytest.raises(CommandError) as info:
        client.request("teleport")
    assert info.value.code == "UNKNOWN_ACTION"
    assert client.state is State.OPEN


def test_symbol_info_and_a_filter_rejection(client: TickdeskClient) -> None:
    info = client.get_symbol_info("btcusdt")
    assert info["type"] == "SYMBOL_INFO" and info["baseAsset"] == "BTC"
    lot = next(f for f in info["filters"] if f["filterType"] == "LOT_SIZE")
    client.subscribe("BTCUSDT")
    client.wait_for(is_tick("BTCUSDT"), timeout(5))
    half_step = Decimal(lot["stepSize"]) / 2
    rejected = client.place_order("BTCUSDT", "BUY", "MARKET", Decimal("0.001") + half_step)
    assert not rejected.accepted and rejected.reject_reason == "Filter failure: LOT_SIZE"
    with pytest.raises(CommandError) as err:
        client.get_symbol_info("NOPEUSDT")
    assert err.value.code == "UNKNOWN_SYMBOL"


def test_limit_order_with_client_id_rests_then_cancels(client: TickdeskClient) -> None:
    result = client.place_order("ETHUSDT", "BUY", "LIMIT", "0.1", price=1000,
                                client_order_id="cheap")
    assert result.accepted and result.client_order_id == "cheap" and result.status == "NEW"
    assert [o["clientOrderId"] for o in client.get_orders()] == ["cheap"]
    canceled = client.cancel_order(client_order_id="cheap")
    assert canceled.execution_type == "CANCELED" and canceled.order_id == result.order_id


def test_amend_order_reduces_and_refuses_an_increase(client: TickdeskClient) -> None:
    result = client.place_order("ETHUSDT", "BUY", "LIMIT", "0.3", price=2000,
                                client_order_id="small", timeInForce="GTC")
    amended = client.amend_order("0.2", client_order_id="small")
    assert amended.execution_type == "AMENDED" and amended.order_id == result.order_id
    assert amended.order["quantity"] == 0.2 and amended.order["timeInForce"] == "GTC"
    with pytest.raises(CommandError) as info:
        client.amend_order("0.25", order_id=result.order_id)
    assert info.value.code == "BAD_REQUEST" and "newQty" in info.value.message
    with pytest.raises(ValueError):
        client.amend_order("0.1")


def test_oco_and_bracket_results(client: TickdeskClient) -> None:
    client.subscribe("BTCUSDT")
    last = client.wait_for(is_tick("BTCUSDT"), timeout(5))["price"]
    oco = client.place_oco("BTCUSDT", "SELL", "0.01",
                           above={"type": "LIMIT_MAKER", "price": round(last * 1.2, 2)},
                           below={"type": "STOP_LOSS", "stopPrice": round(last * 0.8, 2)})
    assert oco.accepted and oco.status == "EXECUTING" and oco.list["listType"] == "OCO"
    assert [leg.execution_type for leg in oco.legs] == ["NEW", "NEW"]
    assert [leg.order_id for leg in oco.legs] == oco.list["orderIds"]
    assert client.cancel_order(oco.legs[1].order_id).execution_type == "CANCELED"
    done = client.wait_for(lambda m: m["type"] == "ORDER_LIST_UPDATE"
                           and m["list"]["status"] == "ALL_DONE", timeout(5))
    assert done["list"]["listId"] == oco.list_id
    bad = client.place_oco("BTCUSDT", "SELL", "0.01",
                           above={"type": "LIMIT_MAKER", "price": round(last * 0.5, 2)},
                           below={"type": "STOP_LOSS", "stopPrice": round(last * 0.8, 2)})
    assert not bad.accepted and bad.reject_reason == "OCO_BAD_PRICES"
    assert [leg.execution_type for leg in bad.legs] == ["REJECTED", "REJECTED"]
    bracket = client.place_bracket("BTCUSDT", "BUY", "0.01",
                                   entry={"type": "LIMIT", "price": round(last * 0.5, 2)},
                                   take_profit={"price": round(last * 0.6, 2)},
                                   stop_loss={"stopPrice": round(last * 0.4, 2)})
    assert bracket.accepted and len(bracket.legs) == 3
    assert [leg.status for leg in bracket.legs] == ["NEW", "PENDING_NEW", "PENDING_NEW"]


@pytest.mark.parametrize(
    "config", [make_config(server=ServerConfig(port=0, rate_limit_per_s=1000,
                                               rate_limit_burst=1000))])
def test_concurrent_requests_from_many_threads(client: TickdeskClient) -> None:
    # 80 commands in a burst: above the default per-connection rate limit,
    # which has its own tests; here only thread-safety is under test.
    results: list[int] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        try:
            for i in range(5):
                r = client.place_order("ETHUSDT", "BUY", "LIMIT", "0.01", price=1000,
                                       client_order_id=f"t{n}-{i}")
                assert r.client_order_id == f"t{n}-{i}"
                client.ping()
                with lock:
                    results.append(r.order_id)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout(30))
    assert not failures
    assert len(results) == len(set(results)) == 40
    assert len(client.get_orders()) == 40


# -- reconnecting ---------------------------------------------------------------------------------


def test_reconnects_to_a_new_engine_and_restores_auth_and_subscriptions() -> None:
    port = free_port()
    cfg = make_config(server=ServerConfig(port=port), accounts=(ALICE,))
    first = wait_ready(Engine(cfg).start())
    c = TickdeskClient(first.url, token=ALICE.token, backoff=FAST,
                       request_timeout_s=timeout(5))
    try:
        c.connect()
        c.subscribe("BTCUSDT")
        c.wait_for(is_tick("BTCUSDT"), timeout(5))
        first.stop()
        wait_until(lambda: c.state is State.RECONNECTING, 5, "the client to notice the drop")
        assert c.last_close_code == 1001
        with pytest.raises(RequestTimeout):
            c.ping(timeout=0.2)  # requests wait for the connection, within their timeout
        with Engine(cfg) as second:
            wait_until(lambda: c.state is State.OPEN, 10, "the client to reconnect")
            assert c.reconnects == 1 and c.account == "alice"
            assert c.subscriptions == ("BTCUSDT",)
            # Drain to the new greeting: everything after it is from the new engine.
            c.wait_for(lambda m: m["type"] == "CONNECTED", timeout(5))
            c.wait_for(lambda m: m["type"] == "AUTHENTICATED", timeout(5))
            c.wait_for(lambda m: m["type"] == "SUBSCRIBED", timeout(5))
            c.wait_for(is_tick("BTCUSDT"), timeout(5))
            wait_ready(second)
            assert c.place_order("BTCUSDT", "BUY", "MARKET", "0.01").accepted
            assert second.port == port
    finally:
        c.close()
        first.stop()


class SilentServer:
    """Accepts WebSocket handshakes, greets with CONNECTED, then says nothing more
    (answers no ping, no command, no close frame): a hung server."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-server")
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/ws/realtime"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(2)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                request += chunk
            key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1(
                key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            hello = b'{"type":"CONNECTED","protocol":1,"account":null,"feed":null}'
            conn.sendall(bytes([0x81, len(hello)]) + hello)
            self.accepted.append(conn)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.listener.close()
        for conn in self.accepted:
            conn.close()


def test_stale_connection_is_dropped_and_reconnected_and_close_is_bounded() -> None:
    server = SilentServer()
    c = TickdeskClient(server.url, stale_after_s=0.4, backoff=FAST)
    try:
        c.connect()
        wait_until(lambda: c.reconnects >= 2, 10, "two stale reconnects")
        assert len(server.accepted) >= 3
        wait_until(lambda: c.state is State.OPEN, 5, "the client to be open again")
        t0 = time.monotonic()
        c.close(timeout=0.5)  # the server never answers the close frame
        assert time.monotonic() - t0 < timeout(2)
        assert c.state is State.CLOSED
    finally:
        c.close()
        server.stop()


def test_a_request_in_flight_fails_with_connection_lost_when_the_connection_drops() -> None:
    server = SilentServer()
    c = TickdeskClient(server.url, stale_after_s=0.5, backoff=FAST)
    try:
        c.connect()
        t0 = time.monotonic()
        with pytest.raises(ConnectionLost, match="stale"):
            c.get_orders(timeout=timeout(10))  # never answered; the watchdog drops it
        assert time.monotonic() - t0 < timeout(5)
    finally:
        c.close(timeout=0.5)
        server.stop()


def test_no_reconnect_closes_the_client_when_the_server_goes(config: Any) -> None:
    eng = wait_ready(Engine(config).start())
    c = TickdeskClient(eng.url, reconnect=False).connect()
    try:
        eng.stop()
        wait_until(lambda: c.state is State.CLOSED, 5, "the client to close")
        kinds = [m["type"] for m in c.messages(timeout=timeout(5))]
        assert kinds[0] == "CONNECTED"  # the buffer drains, then iteration ends
        with pytest.raises(ClientClosed):
            c.ping()
    finally:
        c.close()
        eng.stop()


def _drop_every_connection(engine: Engine) -> None:
    for ch in engine.hub.channels():
        ch.close(1001, "dropped by the test")


@pytest.mark.parametrize("token", [None, ALICE.token], ids=["anonymous", "alice"])
def test_a_reconnect_restores_the_subscriptions_without_subscribing_again(
        token: str | None) -> None:
    with Engine(make_config(accounts=(ALICE,))) as eng:
        wait_ready(eng)
        c = TickdeskClient(eng.url, token=token, backoff=FAST, request_timeout_s=timeout(5))
        try:
            c.connect()
            for sym in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
                c.subscribe(sym)
            c.unsubscribe("ETHUSDT")
            assert c.restored is None
            sent = SentCommands(c)
            _drop_every_connection(eng)
            wait_until(lambda: c.reconnects >= 1 and c.state is State.OPEN, 10,
                       "the client to reconnect")
            assert c.restored is True and c.resubscribed == ()
            assert "subscribe_ticker" not in sent.actions()
            resume = next(cmd for cmd in sent.commands if cmd["action"] == "resume")
            assert len(resume["session"]) == 32
            assert c.subscriptions == ("BTCUSDT", "SOLUSDT")
            done = c.wait_for(lambda m: m["type"] == "RESUMED", timeout(5))
            assert done["subscriptions"]["symbols"] == ["BTCUSDT", "SOLUSDT"]
            for sym in ("BTCUSDT", "SOLUSDT"):  # market data goes on for both
                c.wait_for(is_tick(sym), timeout(5))
        finally:
            c.close()


def test_a_session_the_server_does_not_know_falls_back_to_subscribing_again() -> None:
    port = free_port()
    cfg = make_config(server=ServerConfig(port=port))
    first = wait_ready(Engine(cfg).start())
    c = TickdeskClient(first.url, backoff=FAST, request_timeout_s=timeout(5))
    try:
        c.connect()
        c.subscribe("BTCUSDT")
        first.stop()  # a new process does not know the old session
        with Engine(cfg) as second:
            wait_ready(second)
            wait_until(lambda: c.reconnects >= 1 and c.state is State.OPEN, 10,
                       "the client to reconnect")
            assert c.restored is False and c.resubscribed == ("BTCUSDT",)
            c.wait_for(lambda m: m["type"] == "SUBSCRIBED" and "id" in m, timeout(5))
            c.wait_for(is_tick("BTCUSDT"), timeout(5))
    finally:
        c.close()
        first.stop()
