"""docs/asyncapi.json is what ``python -m tickdesk.asyncapi`` generates, names
every Action and MessageType and Binance event, and the daemon serves it."""

from __future__ import annotations

import json
import urllib.request

from engine.protocol.enums import Action, MessageType
from tickdesk import Engine
from tickdesk.asyncapi import DOC_PATH, encoded, main


def test_committed_document_is_the_generated_one() -> None:
    assert DOC_PATH.read_bytes() == encoded(), "run: python -m tickdesk.asyncapi"
    assert main(["--check"]) == 0


def test_every_action_message_type_and_binance_event_is_in_it() -> None:
    doc = json.loads(DOC_PATH.read_text())
    assert doc["asyncapi"].startswith("3.")
    messages = doc["components"]["messages"]
    names = {m["name"] for m in messages.values()}
    assert {a.value for a in Action} <= names
    assert {t.value for t in MessageType} <= names
    assert {"trade", "aggTrade", "bookTicker", "executionReport", "listStatus",
            "outboundAccountPosition"} <= names
    report = messages["binance_executionReport"]["payload"]["properties"]
    assert {"e", "E", "s", "c", "x", "X", "i", "l", "z", "L", "n", "N", "Z"} <= set(report)
    # every reference resolves
    for channel in doc["channels"].values():
        for ref in channel["messages"].values():
            assert ref["$ref"].rsplit("/", 1)[1] in messages


def test_the_daemon_serves_it(engine: Engine) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{engine.port}/asyncapi.json",
                                timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.read() == encoded()
