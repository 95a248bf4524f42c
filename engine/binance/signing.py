"""Request signing, as Binance checks it: API key, HMAC-SHA256 signature, timestamp window.

Pure core: the caller passes the raw query string and body, the accounts'
keys and the server's time. Binance's rules:

* the key is sent in the ``X-MBX-APIKEY`` header (-2014 when malformed,
  -2015 when unknown);
* ``signature`` is the hex HMAC-SHA256, keyed by the account's secret, of
  *totalParams*: the query string directly followed by the body, both as sent
  (percent-encoded), without the ``signature`` parameter itself (-1022 when it
  does not match; -1102 when absent);
* ``timestamp`` (ms) must satisfy ``timestamp < server + 1000`` and
  ``server - timestamp <= recvWindow``; ``recvWindow`` defaults to 5000 and
  is at most 60000 (-1021 otherwise).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from engine.binance.errors import (
    BAD_API_KEY_FORMAT,
    INVALID_SIGNATURE,
    INVALID_TIMESTAMP,
    REJECTED_API_KEY,
    BinanceError,
    bad_param,
    mandatory,
)

__all__ = [
    "AHEAD_MS",
    "DEFAULT_RECV_WINDOW_MS",
    "MAX_RECV_WINDOW_MS",
    "ApiKey",
    "check_timestamp",
    "sign",
    "signed_payload",
    "verify_key",
    "verify_signature",
]

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
#: A timestamp may be at most this far ahead of the server's clock.
AHEAD_MS = 1000
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_HEX_RE = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One configured key: whose it is and the secret that signs for it."""

    account: str
    secret: str


def sign(secret: str, payload: str) -> str:
    """The hex HMAC-SHA256 of ``payload`` (what a client puts in ``signature``)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _without_signature(raw: str) -> tuple[str, list[str]]:
    kept: list[str] = []
    found: list[str] = []
    for part in raw.split("&") if raw else []:
        if part.startswith("signature="):
            found.append(part[len("signature="):])
        else:
            kept.append(part)
    return "&".join(kept), found


def signed_payload(query: str, body: str) -> tuple[str, str | None]:
    """``(totalParams without signature, the signature)``; the signature is
    None when absent; given twice is -1101-like: refused as malformed."""
    q, sq = _without_signature(query)
    b, sb = _without_signature(body)
    sigs = sq + sb
    if len(sigs) > 1:
        raise BinanceError(-1101, "Duplicate values for a parameter detected.")
    return q + b, (sigs[0] if sigs else None)


def verify_key(header: str | None, keys: Mapping[str, ApiKey]) -> ApiKey:
    """The configured key named by ``X-MBX-APIKEY`` (constant-time compare)."""
    if header is None or not _KEY_RE.match(header):
        raise BinanceError(BAD_API_KEY_FORMAT, "API-key format invalid.")
    found: ApiKey | None = None
    given = header.encode()
    for known, key in keys.items():
        if hmac.compare_digest(known.encode(), given):
            found = key
    if found is None:
        raise BinanceError(REJECTED_API_KEY, "Invalid API-key, IP, or permissions for action.")
    return found


def verify_signature(secret: str, query: str, body: str) -> None:
    """Raise unless the request carries the right ``signature`` (module docstring)."""
    payload, signature = signed_payload(query, body)
    if signature is None or signature == "":
        raise mandatory("signature")
    if not _HEX_RE.match(signature) or not hmac.compare_digest(
            sign(secret, payload), signature.lower()):
        raise BinanceError(INVALID_SIGNATURE, "Signature for this request is not valid.")


def check_timestamp(timestamp: str | None, recv_window: str | None, server_ms: int) -> None:
    """Raise -1021 when the request is outside its window (module docstring)."""
    if timestamp is None or timestamp == "":
        raise mandatory("timestamp")
    try:
        ts = int(timestamp)
    except ValueError:
        raise bad_param("timestamp") from None
    window = DEFAULT_RECV_WINDOW_MS
    if recv_window not in (None, ""):
        try:
            window = int(float(recv_window))  # Binance takes decimals (microseconds)
        except ValueError:
            raise bad_param("recvWindow") from None
        if not 0 < window <= MAX_RECV_WINDOW_MS:
            raise BinanceError(-1131, "recvWindow must be less than 60000")
    if ts >= server_ms + AHEAD_MS:
        raise BinanceError(INVALID_TIMESTAMP, "Timestamp for this request was 1000ms ahead "
                                              "of the server's time.")
    if server_ms - ts > window:
        raise BinanceError(INVALID_TIMESTAMP, "Timestamp for this request is outside of the "
                                              "recvWindow.")
