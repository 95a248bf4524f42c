"""The symbol rule: what a market symbol looks like, in one place.

Pure core. A symbol is 2 to 20 upper-case ASCII letters or digits
(:data:`SYMBOL_PATTERN`); input is case-insensitive and upper-cased
(``btcusdt`` is ``BTCUSDT``). The configuration, the command decoder and the
order parsers use :func:`normalize_symbol`; the dashboard receives
:data:`SYMBOL_PATTERN` from the daemon with its page (``engine.dashboard``)
instead of keeping a copy.
"""

from __future__ import annotations

import re

__all__ = ["SYMBOL_PATTERN", "is_symbol", "normalize_symbol"]

#: A symbol, as a regular expression to match in full (Python and JavaScript alike).
SYMBOL_PATTERN = "[A-Z0-9]{2,20}"

_SYMBOL = re.compile(SYMBOL_PATTERN)


def is_symbol(text: str) -> bool:
    """True if ``text`` is a symbol as it is written on the wire (upper case)."""
    return _SYMBOL.fullmatch(text) is not None


def normalize_symbol(text: str) -> str | None:
    """``text`` upper-cased if it is a symbol in any case, else None.

    Only ASCII is upper-cased, so no non-ASCII letter can turn into one that
    matches (``"ı".upper()`` is ``"I"``).
    """
    if not text.isascii():
        return None
    upper = text.upper()
    return upper if is_symbol(upper) else None
