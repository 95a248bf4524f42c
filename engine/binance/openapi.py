"""``/openapi.json``: the OpenAPI 3.1 document of the Binance-compatible REST API.

Pure core: generated from :data:`engine.binance.endpoints.ENDPOINTS`, the
table the router dispatches by, so the document lists exactly what is served,
with each endpoint's parameters, request weight and security.
"""

from __future__ import annotations

from typing import Any

from engine.binance.endpoints import ENDPOINTS, Endpoint, Param, Security

__all__ = ["document"]

_SIGNED_PARAMS = (
    Param("timestamp", "integer", required=True, description="ms since the epoch"),
    Param("recvWindow", "integer", description="ms, default 5000, at most 60000"),
    Param("signature", required=True,
          description="hex HMAC-SHA256 of the query string followed by the body"),
)
_ERROR = {"type": "object", "required": ["code", "msg"],
          "properties": {"code": {"type": "integer"}, "msg": {"type": "string"},
                         "data": {"type": "object"}}}


def _schema(p: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": p.type}
    if p.enum:
        schema["enum"] = list(p.enum)
    return schema


def _operation(e: Endpoint) -> dict[str, Any]:
    params = list(e.params)
    if e.security is Security.SIGNED:
        params += _SIGNED_PARAMS
    in_body = e.method in ("POST", "PUT")
    op: dict[str, Any] = {
        "operationId": e.name,
        "summary": e.summary,
        "x-weight": e.weight,
        "responses": {
            "200": {"description": "Binance's answer",
                    "headers": {"X-MBX-USED-WEIGHT-1M": {
                        "description": "request weight used this minute",
                        "schema": {"type": "integer"}}},
                    "content": {"application/json": {"schema": {}}}},
            "4XX": {"description": "Binance's error", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "5XX": {"description": "-1007 / -1008: busy or no answer in time", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        },
    }
    if e.differs:
        op["description"] = f"Differs from Binance: {e.differs}."
    if e.security is Security.NONE:
        op["security"] = []
    else:
        op["security"] = [{"ApiKey": []}]
    if in_body and params:
        op["requestBody"] = {"required": any(p.required for p in params), "content": {
            "application/x-www-form-urlencoded": {"schema": {
                "type": "object",
                "properties": {p.name: {**_schema(p), "description": p.description}
                               for p in params},
                "required": [p.name for p in params if p.required]}}}}
        op["description"] = (op.get("description", "") + " Parameters may also be sent in "
                             "the query string.").strip()
    elif params:
        op["parameters"] = [{"name": p.name, "in": "query", "required": p.required,
                             "description": p.description, "schema": _schema(p)}
                            for p in params]
    return op


def document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document (``version``: tickdesk's)."""
    paths: dict[str, dict[str, Any]] = {}
    for e in ENDPOINTS:
        paths.setdefault(e.path, {})[e.method.lower()] = _operation(e)
    return {
        "openapi": "3.1.0",
        "info": {"title": "tickdesk Binance-compatible REST API", "version": version,
                 "description": "The subset of Binance Spot's REST API that tickdesk serves, "
                                "on paper money. SIGNED operations need the API key and a "
                                "timestamp and signature (see docs/binance-compat.md)."},
        "paths": paths,
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header",
                                           "name": "X-MBX-APIKEY"}},
            "schemas": {"Error": _ERROR},
        },
    }
