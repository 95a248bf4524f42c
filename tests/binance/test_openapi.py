"""/openapi.json is generated from the table the router serves: every documented
operation is routed, every routed one documented, with its weight and security."""

from __future__ import annotations

import requests

from engine.binance.endpoints import ENDPOINTS, Security
from tests.binance.helpers import accounts_config
from tickdesk import Engine


def test_openapi_lists_exactly_what_the_router_serves() -> None:
    eng = Engine(accounts_config()).start()
    try:
        base = f"http://127.0.0.1:{eng.port}"
        doc = requests.get(base + "/openapi.json", timeout=10).json()
        assert doc["openapi"] == "3.1.0"
        assert doc["components"]["securitySchemes"]["ApiKey"]["name"] == "X-MBX-APIKEY"
        documented = {(m.upper(), path) for path, ops in doc["paths"].items() for m in ops}
        assert documented == {(e.method, e.path) for e in ENDPOINTS}
        session = requests.Session()
        for method, path in sorted(documented):
            resp = session.request(method, base + path, timeout=10)
            # routed: Binance's JSON answer (a parameter or key error at worst), never 404/405
            assert resp.status_code not in (404, 405), (method, path, resp.text)
            assert "code" in resp.json() or resp.status_code == 200, (method, path)
            op = doc["paths"][path][method.lower()]
            assert int(resp.headers["X-MBX-USED-WEIGHT-1M"]) > 0
            assert op["x-weight"] >= 1
        for e in ENDPOINTS:
            op = doc["paths"][e.path][e.method.lower()]
            assert op["x-weight"] == e.weight
            assert (op["security"] == []) == (e.security is Security.NONE)
            names = {p["name"] for p in op.get("parameters", [])} | set(
                op.get("requestBody", {}).get("content", {})
                .get("application/x-www-form-urlencoded", {}).get("schema", {})
                .get("properties", {}))
            assert {p.name for p in e.params} <= names
            if e.security is Security.SIGNED:
                assert {"timestamp", "signature"} <= names
        # an undocumented path is not served
        assert session.get(base + "/api/v3/margin/account", timeout=10).status_code == 404
    finally:
        eng.stop()
