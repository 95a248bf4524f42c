"""Structured logs: one line per event, logfmt (``text``) or JSON lines (``json``).

Edge module. :func:`setup_logging` configures the root logger from
``log.level`` and ``log.format``; every record becomes exactly one line on
stderr, whatever its message or traceback holds:

* ``text`` (logfmt)::

    ts=2026-11-26T03:04:12.345Z level=info logger=tickdesk msg="tickdesk 0.1 listening on ..."

  Values with spaces, quotes, ``=`` or control characters are double-quoted
  with ``\\"``, ``\\\\``, ``\\n``, ``\\r`` and ``\\t`` escaped; a traceback is an
  ``exc=`` field on the same line.
* ``json``: one object per line with the keys ``ts``, ``level``, ``logger``,
  ``msg`` and, when present, ``exc``.

Tokens never appear: the HTTP layer logs request paths without their query
string, and a :class:`Redactor` on the handler replaces every configured
account token, and any ``token=...`` value, with ``[REDACTED]`` in the final
line (message and traceback alike).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable
from typing import IO

import orjson

__all__ = ["FORMATS", "JsonFormatter", "LogfmtFormatter", "Redactor", "setup_logging"]

FORMATS = ("text", "json")
REDACTED = "[REDACTED]"
_TOKEN_PARAM = re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE)
_NEEDS_QUOTES = re.compile(r"[\s\"=\\]|[\x00-\x1f\x7f]")
_HANDLER_NAME = "tickdesk-structured"


def _ts(created: float) -> str:
    ms = int(created * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{ms:03d}Z"


def _logfmt_value(value: str) -> str:
    if value and not _NEEDS_QUOTES.search(value):
        return value
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t"))
    escaped = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]",
                     lambda m: f"\\u{ord(m.group()):04x}", escaped)
    return f'"{escaped}"'


class Redactor:
    """Replaces secrets in a finished log line."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a token containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, line: str) -> str:
        for secret in self._secrets:
            if secret in line:
                line = line.replace(secret, REDACTED)
        return _TOKEN_PARAM.sub(r"\1" + REDACTED, line)


class _Structured(logging.Formatter):
    def __init__(self, redact: Redactor | None = None) -> None:
        super().__init__()
        self._redact = redact or Redactor()

    def fields(self, record: logging.LogRecord) -> dict[str, str]:
        out = {
            "ts": _ts(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return out


class LogfmtFormatter(_Structured):
    """``key=value`` on one line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(f"{k}={_logfmt_value(v)}" for k, v in self.fields(record).items())
        return self._redact(line)


class JsonFormatter(_Structured):
    """One JSON object per line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: self._redact(v) for k, v in self.fields(record).items()}
        return orjson.dumps(fields).decode()


def make_formatter(fmt: str, secrets: Iterable[str] = ()) -> logging.Formatter:
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {FORMATS}")
    redact = Redactor(secrets)
    return JsonFormatter(redact) if fmt == "json" else LogfmtFormatter(redact)


def setup_logging(level: str = "INFO", fmt: str = "text", *, secrets: Iterable[str] = (),
                  stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as one structured line.

    Replaces a handler installed by an earlier call (idempotent); returns it."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(make_formatter(fmt, secrets))
    root.addHandler(handler)
    root.setLevel(getattr(logging, level))
    return handler
