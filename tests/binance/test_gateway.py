"""The REST gateway on its own: answers matched by id, broadcasts ignored, every
wait bounded (-1007), the number of waiting calls bounded (-1008), close wakes all."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import orjson
import pytest

from actors.messages import ClientFrame, ClientGone
from engine.binance.errors import BinanceError
from engine.protocol.server_messages import Outgoing
from tests.conftest import timeout, wait_until
from tickdesk import binance_gateway
from tickdesk.binance_gateway import EngineGateway


class _FakeActor:
    """Stands for a ConnectionActor: records frames; the test answers on the channel."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.channel: Any = None
        self.gone = False

    def tell(self, msg: object) -> None:
        if isinstance(msg, ClientGone):
            self.gone = True
            return
        assert isinstance(msg, ClientFrame)
        self.frames.append(orjson.loads(msg.data))

    def answer(self, **msg: Any) -> None:
        payload = orjson.dumps(msg)
        self.channel.deliver(Outgoing(payload, b""))


def _gateway() -> tuple[EngineGateway, _FakeActor]:
    actor = _FakeActor()

    def start(channel: Any, account: str | None) -> Any:
        actor.channel = channel
        return actor

    return EngineGateway(start, itertools.count(1)), actor


def test_answers_are_collected_by_id_until_the_last_commands_answer() -> None:
    gw, actor = _gateway()
    result: list[list[dict[str, Any]]] = []
    t = threading.Thread(target=lambda: result.append(gw.call(
        "alice", [{"action": "place_order", "id": "a"}, {"action": "get_orders", "id": "a.end"}],
        timeout(5))))
    t.start()
    wait_until(lambda: len(actor.frames) == 2, 5, "both commands sent")
    actor.answer(type="POSITION_UPDATE", positions=[])            # a broadcast: no id
    actor.answer(type="ORDER_UPDATE", id="a", order={"price": 1.5})
    actor.answer(type="ORDER_UPDATE", id="other", order={})       # someone else's
    actor.answer(type="ORDERS", id="a.end", orders=[])
    t.join(timeout(5))
    from decimal import Decimal
    assert [m["type"] for m in result[0]] == ["ORDER_UPDATE", "ORDERS"]
    assert result[0][0]["order"]["price"] == Decimal("1.5")      # numbers parsed exactly
    assert [f["id"] for f in actor.frames] == ["a", "a.end"]


def test_a_call_waits_at_most_its_timeout() -> None:
    gw, _actor = _gateway()
    with pytest.raises(BinanceError) as info:
        gw.call("alice", [{"action": "ping", "id": "p"}], 0.05)
    assert info.value.code == -1007 and info.value.status == 503


def test_waiting_calls_are_bounded_and_close_wakes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binance_gateway, "MAX_WAITING", 2)
    gw, actor = _gateway()
    errors: list[int] = []

    def waiting(i: int) -> None:
        try:
            gw.call("alice", [{"action": "ping", "id": f"w{i}"}], timeout(10))
        except BinanceError as exc:
            errors.append(exc.code)

    threads = [threading.Thread(target=waiting, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    wait_until(lambda: len(actor.frames) == 2, 5, "two calls waiting")
    with pytest.raises(BinanceError) as info:
        gw.call("alice", [{"action": "ping", "id": "x"}], timeout(5))
    assert info.value.code == -1008
    assert len(actor.frames) == 2  # the refused call sent nothing
    gw.close()
    for t in threads:
        t.join(timeout(5))
    assert errors == [-1008, -1008]
    assert actor.gone  # the session's actor was told to end
