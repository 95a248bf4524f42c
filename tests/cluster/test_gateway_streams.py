"""Binance's stream paths served by gateways: one engine and two gateways as
real processes on a real redis-server (as in ``test_cluster_processes``).

What a bot would notice, checked here:

* a ``@trade`` client on gateway 1 and one on gateway 2 receive every trade
  of the symbol, in order, with the same ids and the same payload bytes (a
  combined client gets the same bytes wrapped);
* ``@kline_1m`` and ``@bookTicker`` work on a gateway;
* an order placed on gateway 2 (our protocol) produces its executionReports and
  outboundAccountPosition on a user data stream opened on gateway 1
  (``/ws-api/v3``, ``userDataStream.subscribe.signature``), in order, once each;
* ``kill -9`` a gateway: the interest it announced expires and the engine stops
  writing the streams only it wanted (the engine's ``/metrics``);
* a listen key made by REST on gateway 1 opens ``/ws/<listenKey>`` on gateway 2;
* python-binance's socket manager (market and user sockets) through the gateways.

Every wait is bounded; nothing sleeps and hopes.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import websocket

from tests.binance.helpers import signed
from tests.cluster.redis_server import RedisServer
from tests.cluster.test_cluster_processes import Proc
from tests.conftest import timeout, wait_until
from tickdesk.client import TickdeskClient

WAIT = 10.0
ALICE_KEY = "alice-api-key-0001"
ALICE_SECRET = "alice-secret-0001"

CONFIG = f"""
[server]
host = "127.0.0.1"
port = 0

[feed]
source = "simulated"
symbols = ["BTCUSDT", "ETHUSDT"]

[feed.simulated]
seed = 7
ticks_per_second = 20

[store]
path = {{db!r}}

[[accounts]]
name = "alice"
token = "alice-token-1"
api_key = "{ALICE_KEY}"
api_secret = "{ALICE_SECRET}"
balances = {{{{ USDT = 100000, BTC = 1 }}}}
"""


def _base(proc: Proc) -> str:
    found = re.match(r"ws://[^/]+", proc.url)
    assert found, proc.url
    return found.group(0)


class Stream:
    """A plain websocket-client on a Binance stream path: every text frame's
    bytes, in order."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=timeout(WAIT),
                                              skip_utf8_validation=True)

    def frames(self, n: int, seconds: float = WAIT) -> list[bytes]:
        """The next ``n`` text frames (bounded wait)."""
        got: list[bytes] = []
        deadline = time.monotonic() + timeout(seconds)
        while len(got) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{len(got)} of {n} frames in time")
            self.ws.settimeout(left)
            opcode, data = self.ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_TEXT:
                got.append(bytes(data))
        return got

    def send(self, obj: Any) -> None:
        self.ws.send(orjson.dumps(obj).decode())

    def until(self, pred: Any, seconds: float = WAIT) -> list[dict[str, Any]]:
        """Messages up to and including the first that satisfies ``pred``."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout(seconds)
        while not seen or not pred(seen[-1]):
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching message in time: {seen[-3:]}")
            seen.append(orjson.loads(self.frames(1, deadline - time.monotonic())[0]))
        return seen

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        except Exception:
            self.ws.shutdown()


class Cluster:
    def __init__(self, server: RedisServer, tmp: Path) -> None:
        self.config = tmp / "config.toml"
        self.config.write_text(CONFIG.format(db=str(tmp / "engine.db")))
        self.server, self.tmp = server, tmp
        self.procs: list[Proc] = []
        self.streams: list[Stream] = []
        self.clients: list[TickdeskClient] = []
        self.engine = self._start("engine")
        self.gateways = [self._start("gateway"), self._start("gateway")]

    def _start(self, role: str) -> Proc:
        proc = Proc(role, self.config, self.server.url, self.tmp)
        self.procs.append(proc)
        return proc

    def stream(self, on: int, path: str) -> Stream:
        s = Stream(_base(self.gateways[on]) + path)
        self.streams.append(s)
        return s

    def client(self, on: int) -> TickdeskClient:
        c = TickdeskClient(self.gateways[on].url, token="alice-token-1",
                           request_timeout_s=timeout(WAIT)).connect()
        self.clients.append(c)
        return c

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the engine's ``/metrics`` (0 when absent)."""
        url = _base(self.engine).replace("ws://", "http://", 1) + "/metrics"
        with urllib.request.urlopen(url, timeout=timeout(WAIT)) as resp:
            text = resp.read().decode()
        want = "".join(f'{k}="{v}"' for k, v in labels.items())
        for line in text.splitlines():
            head, _, value = line.rpartition(" ")
            if head == (f"{name}{{{want}}}" if want else name):
                return float(value)
        return 0.0

    def close(self) -> None:
        for s in self.streams:
            s.close()
        for c in self.clients:
            c.close()
        for proc in self.procs:
            proc.ensure_dead()


@pytest.fixture
def cluster(redis_server: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(redis_server, tmp_path)
    try:
        yield c
    finally:
        c.close()


def _trade_id(frame: bytes) -> int:
    return int(orjson.loads(frame)["t"])


def _from(frames: list[bytes], trade_id: int) -> list[bytes]:
    return [f for f in frames if _trade_id(f) >= trade_id]


def test_trade_streams_on_two_gateways_carry_the_same_events_and_bytes(
        cluster: Cluster) -> None:
    one = cluster.stream(0, "/ws/btcusdt@trade")
    two = cluster.stream(1, "/ws/btcusdt@trade")
    wrapped = cluster.stream(1, "/stream?streams=btcusdt@trade")
    first = [one.frames(1)[0], two.frames(1)[0], wrapped.frames(1)[0]]
    # from a trade every client has (each started on its first event)
    start = max(_trade_id(first[0]), _trade_id(first[1]),
                int(orjson.loads(first[2])["data"]["t"])) + 1
    a = _from(one.frames(40), start)[:30]
    b = _from(two.frames(40), start)[:30]
    c = wrapped.frames(40)
    assert len(a) == len(b) == 30
    assert a == b  # the engine's bytes, on both gateways
    ids = [_trade_id(f) for f in a]
    assert ids == list(range(ids[0], ids[0] + 30))  # every trade, in order
    assert orjson.loads(a[0])["e"] == "trade" and orjson.loads(a[0])["s"] == "BTCUSDT"
    prefix = b'{"stream":"btcusdt@trade","data":'
    assert all(f.startswith(prefix) and f.endswith(b"}") for f in c)
    inner = {_trade_id(f[len(prefix):-1]): f[len(prefix):-1] for f in c}
    assert all(inner[_trade_id(f)] == f for f in a if _trade_id(f) in inner)
    assert set(ids) & set(inner)  # the windows overlap: the bytes were compared


def test_kline_and_book_ticker_streams_on_a_gateway(cluster: Cluster) -> None:
    s = cluster.stream(0, "/stream?streams=btcusdt@kline_1m/ethusdt@bookTicker")
    seen: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout(WAIT)
    while len(seen) < 2 and time.monotonic() < deadline:
        msg = orjson.loads(s.frames(1)[0])
        seen[msg["stream"]] = msg["data"]
    kline = seen["btcusdt@kline_1m"]
    assert kline["e"] == "kline" and kline["s"] == "BTCUSDT" and kline["k"]["i"] == "1m"
    assert Decimal(kline["k"]["l"]) <= Decimal(kline["k"]["c"]) <= Decimal(kline["k"]["h"])
    top = seen["ethusdt@bookTicker"]
    assert top["s"] == "ETHUSDT" and Decimal(top["b"]) <= Decimal(top["a"])
    # a live SUBSCRIBE on the same connection is served through the engine too
    s.send({"method": "SUBSCRIBE", "params": ["ethusdt@aggTrade"], "id": 1})
    got = s.until(lambda m: m.get("stream") == "ethusdt@aggTrade")
    assert {"result": None, "id": 1} in got
    assert got[-1]["data"]["e"] == "aggTrade"



def test_an_order_on_gateway_2_reaches_a_user_data_stream_on_gateway_1(
        cluster: Cluster) -> None:
    user = cluster.stream(0, "/ws-api/v3")
    user.send({"id": "s", "method": "userDataStream.subscribe.signature",
               "params": signed(ALICE_SECRET, apiKey=ALICE_KEY,
                                 timestamp=int(time.time() * 1000))})
    assert user.until(lambda m: m.get("id") == "s")[-1]["result"] == {"subscriptionId": 0}
    # the engine writes user data events once a gateway announced the stream
    wait_until(lambda: cluster.metric("tickdesk_bus_user_streams_wanted") == 1, WAIT,
               "the engine to see the user data stream")
    trader = cluster.client(1)
    trader.subscribe("BTCUSDT")
    trader.wait_for(lambda m: m["type"] == "MARKET_UPDATE", timeout=timeout(WAIT))
    first = trader.place_order("BTCUSDT", "BUY", "MARKET", "0.001")
    assert first.accepted, first.update
    second = trader.place_order("BTCUSDT", "BUY", "MARKET", "0.002")
    assert second.accepted, second.update

    def done(m: dict[str, Any]) -> bool:
        ev = m.get("event", {})
        return ev.get("e") == "executionReport" and ev["i"] == second.order_id \
            and ev["X"] == "FILLED"

    got = user.until(done)
    got += user.until(lambda m: m.get("event", {}).get("e") == "outboundAccountPosition")
    events = [m["event"] for m in got if "event" in m]
    assert all(m["subscriptionId"] == 0 for m in got if "event" in m)
    reports = [(e["i"], e["x"]) for e in events if e["e"] == "executionReport"]
    assert reports == [(first.order_id, "NEW"), (first.order_id, "TRADE"),
                       (second.order_id, "NEW"), (second.order_id, "TRADE")]  # once each
    positions = [e for e in events if e["e"] == "outboundAccountPosition"]
    assert len(positions) == 2  # one per settle, after its reports
    assert [e["e"] for e in events].index("outboundAccountPosition") == 2


def test_a_killed_gateways_interest_expires_and_its_streams_stop(cluster: Cluster) -> None:
    stays = cluster.stream(0, "/ws/btcusdt@trade")
    cluster.stream(1, "/ws/btcusdt@aggTrade")  # only gateway 2 wants aggTrade
    wait_until(lambda: cluster.metric("tickdesk_bus_streams_wanted") == 2, WAIT,
               "both gateways' interest")
    before = cluster.metric("tickdesk_bus_stream_events_total", kind="aggTrade")
    wait_until(lambda: cluster.metric("tickdesk_bus_stream_events_total", kind="aggTrade")
               > before, WAIT, "aggTrade events written while gateway 2 wants them")
    assert cluster.metric("tickdesk_bus_gateways_interested") == 2

    cluster.gateways[1].kill9()  # no goodbye: its interest must expire on its own
    wait_until(lambda: cluster.metric("tickdesk_bus_streams_wanted") == 1, WAIT,
               "the killed gateway's interest to expire")
    assert cluster.metric("tickdesk_bus_gateways_interested") == 1
    def trades() -> float:
        return cluster.metric("tickdesk_bus_stream_events_total", kind="trade")

    expired_at = trades()
    # a trade routed after another one was written has had its aggTrade decided
    wait_until(lambda: trades() >= expired_at + 2, WAIT, "trades after the expiry")
    written = cluster.metric("tickdesk_bus_stream_events_total", kind="aggTrade")
    mark = trades()
    wait_until(lambda: trades() >= mark + 20, WAIT, "20 more trades routed")
    # ...and no aggTrade written for any of them; gateway 1 still gets its trades
    assert cluster.metric("tickdesk_bus_stream_events_total", kind="aggTrade") == written
    assert stays.frames(20)


def test_a_listen_key_made_on_gateway_1_streams_on_gateway_2(cluster: Cluster) -> None:
    """REST ``POST /api/v3/userDataStream`` on gateway 1, ``/ws/<listenKey>``
    on gateway 2 (raw events), the order placed on gateway 1."""
    http = _base(cluster.gateways[0]).replace("ws://", "http://", 1)
    req = urllib.request.Request(http + "/api/v3/userDataStream", method="POST",
                                 headers={"X-MBX-APIKEY": ALICE_KEY})
    with urllib.request.urlopen(req, timeout=timeout(WAIT)) as resp:
        key = orjson.loads(resp.read())["listenKey"]
    user = cluster.stream(1, f"/ws/{key}")
    wait_until(lambda: cluster.metric("tickdesk_bus_user_streams_wanted") == 1, WAIT,
               "the engine to see the user data stream")
    trader = cluster.client(0)
    trader.subscribe("BTCUSDT")
    trader.wait_for(lambda m: m["type"] == "MARKET_UPDATE", timeout=timeout(WAIT))
    placed = trader.place_order("BTCUSDT", "BUY", "MARKET", "0.001")
    assert placed.accepted, placed.update
    got = user.until(lambda m: m.get("e") == "outboundAccountPosition")
    assert [(m["e"], m.get("x")) for m in got] == [
        ("executionReport", "NEW"), ("executionReport", "TRADE"),
        ("outboundAccountPosition", None)]
    assert all(m["i"] == placed.order_id for m in got[:2])
    assert got[1]["X"] == "FILLED"


def test_python_binance_streams_through_the_gateways(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """python-binance, unchanged but for its URLs: its multiplex socket on
    gateway 2 gets trades and klines; its ``user_socket`` (the WebSocket API)
    on gateway 1 gets the executionReports of an order placed on gateway 2."""
    pytest.importorskip("binance", reason="python-binance is in the test extra")
    from binance import AsyncClient, BinanceSocketManager

    monkeypatch.setattr(AsyncClient, "WS_API_URL", _base(cluster.gateways[0]) + "/ws-api/v3")
    trader = cluster.client(1)
    trader.subscribe("BTCUSDT")
    trader.wait_for(lambda m: m["type"] == "MARKET_UPDATE", timeout=timeout(WAIT))

    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
        client = AsyncClient(ALICE_KEY, ALICE_SECRET)
        try:
            market = BinanceSocketManager(client)
            market.STREAM_URL = _base(cluster.gateways[1]) + "/"
            seen: list[dict[str, Any]] = []
            async with market.multiplex_socket(["btcusdt@trade", "btcusdt@kline_1m"]) as s:
                while {m["stream"] for m in seen} != {"btcusdt@trade", "btcusdt@kline_1m"}:
                    msg = await s.recv()
                    if msg:
                        seen.append(msg)
            got: list[dict[str, Any]] = []
            async with BinanceSocketManager(client).user_socket() as stream:
                await asyncio.to_thread(wait_until, lambda: cluster.metric(
                    "tickdesk_bus_user_streams_wanted") == 1, WAIT, "the user stream")
                placed = await asyncio.to_thread(trader.place_order, "BTCUSDT", "BUY",
                                                 "MARKET", "0.001")
                while not any(m.get("x") == "TRADE" for m in got):
                    msg = await stream.recv()
                    if msg:
                        got.append(msg)
            return seen, got, placed.order_id
        finally:
            await client.close_connection()

    seen, events, order_id = asyncio.run(asyncio.wait_for(main(), timeout(30)))
    trades = [m["data"] for m in seen if m["stream"] == "btcusdt@trade"]
    assert trades and all(t["e"] == "trade" and t["s"] == "BTCUSDT" for t in trades)
    kline = next(m["data"] for m in seen if m["stream"] == "btcusdt@kline_1m")
    assert kline["e"] == "kline" and kline["k"]["i"] == "1m"
    reports = [m for m in events if m.get("e") == "executionReport"]
    assert [(r["i"], r["x"]) for r in reports] == [(order_id, "NEW"), (order_id, "TRADE")]
    assert reports[-1]["X"] == "FILLED"
