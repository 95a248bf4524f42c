"""Field validators for command bodies decoded from JSON.

Pure core: no threads, sockets, clocks or pykka. Each validator takes the
field's name (dotted for nested objects, e.g. ``stopLoss.stopPrice``) and its
raw value, and returns a typed value or raises
:class:`~engine.trading.errors.RequestError` naming the field (except a
string that is not a symbol: :func:`symbol_field` raises
:class:`~engine.errors.UnknownSymbol`).

Numbers may be JSON numbers or numeric strings. Floats become Decimal through
``str()`` (the shortest repr, so ``0.1`` is ``Decimal("0.1")``, not the binary
expansion). Booleans are not numbers. NaN and infinities are refused, and so
are values beyond the sanity bounds :data:`MAX_VALUE` and
:data:`MAX_DECIMAL_PLACES`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.errors import UnknownSymbol
from engine.money import MONEY, Side
from engine.protocol.symbols import SYMBOL_PATTERN, normalize_symbol
from engine.trading.errors import RequestError

__all__ = [
    "MAX_DECIMAL_PLACES",
    "MAX_TRAILING_DELTA",
    "MAX_VALUE",
    "MIN_TRAILING_DELTA",
    "client_order_id",
    "decimal_field",
    "field_path",
    "int_field",
    "optional_positive_decimal",
    "positive_decimal",
    "require_object",
    "side_field",
    "symbol_field",
    "trailing_delta",
]

#: Largest accepted quantity or price.
MAX_VALUE = Decimal("1e15")
#: Most fractional digits accepted in a quantity or price.
MAX_DECIMAL_PLACES = 18
#: ``trailingDelta`` bounds in basis points (1 = 0.01 %, 10000 = 100 %).
MIN_TRAILING_DELTA = 1
MAX_TRAILING_DELTA = 10000

_QUANTUM = Decimal(1).scaleb(-MAX_DECIMAL_PLACES)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_CLIENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,36}")


def field_path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def require_object(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RequestError(name, "must be an object")
    return value


def decimal_field(name: str, value: Any) -> Decimal:
    """A finite Decimal from a JSON number or numeric string."""
    if isinstance(value, bool):
        raise RequestError(name, "must be a number")
    if isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(str(value))
    elif isinstance(value, str):
        if not _NUMBER.fullmatch(value):
            raise RequestError(name, "must be a number")
        try:
            result = Decimal(value)
        except InvalidOperation:  # pragma: no cover - the regex admits only valid text
            raise RequestError(name, "must be a number") from None
    else:
        raise RequestError(name, "must be a number")
    if not result.is_finite():
        raise RequestError(name, "must be finite")
    if abs(result) > MAX_VALUE:
        raise RequestError(name, f"must be at most {MAX_VALUE}")
    if result != result.quantize(_QUANTUM, context=MONEY):
        raise RequestError(name, f"must have at most {MAX_DECIMAL_PLACES} decimal places")
    return result


def positive_decimal(name: str, value: Any) -> Decimal:
    if value is None:
        raise RequestError(name, "is required")
    result = decimal_field(name, value)
    if result <= 0:
        raise RequestError(name, "must be > 0")
    return result


def optional_positive_decimal(name: str, value: Any) -> Decimal | None:
    return None if value is None else positive_decimal(name, value)


def int_field(name: str, value: Any) -> int:
    """An integer from a JSON integer, an integral float or a string of digits."""
    if isinstance(value, bool):
        raise RequestError(name, "must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,18}", value):
        return int(value)
    raise RequestError(name, "must be an integer")


def trailing_delta(name: str, value: Any) -> int | None:
    """Basis points, ``MIN_TRAILING_DELTA..MAX_TRAILING_DELTA`` inclusive."""
    if value is None:
        return None
    delta = int_field(name, value)
    if not MIN_TRAILING_DELTA <= delta <= MAX_TRAILING_DELTA:
        raise RequestError(
            name, f"must be between {MIN_TRAILING_DELTA} and {MAX_TRAILING_DELTA} basis points"
        )
    return delta


def side_field(name: str, value: Any) -> Side:
    if value is None:
        raise RequestError(name, "is required")
    if value not in ("BUY", "SELL"):
        raise RequestError(name, 'must be "BUY" or "SELL"')
    return Side(value)


def symbol_field(name: str, value: Any) -> str:
    """An upper-case symbol (lower case is upper-cased; see :mod:`engine.protocol.symbols`).

    A missing or non-string value is a :class:`RequestError` (``BAD_REQUEST``);
    a string that is not a symbol raises :class:`~engine.errors.UnknownSymbol`
    (``UNKNOWN_SYMBOL``, as for a symbol the feed does not serve).
    """
    if value is None:
        raise RequestError(name, "is required")
    if not isinstance(value, str):
        raise RequestError(name, "must be a string")
    symbol = normalize_symbol(value)
    if symbol is None:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise UnknownSymbol(f"{shown!r} is not a symbol: field '{name}' must match "
                            f"{SYMBOL_PATTERN}")
    return symbol


def client_order_id(name: str, value: Any) -> str | None:
    """Optional; 1..36 characters of ``[A-Za-z0-9_.:-]``."""
    if value is None:
        return None
    if not isinstance(value, str) or not _CLIENT_ID.fullmatch(value):
        raise RequestError(name, "must be 1-36 characters of [A-Za-z0-9_.:-]")
    return value
