"""Number formatting the way the venue prints decimals on the wire."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal

ZERO = Decimal(0)
# What ``float_to_wire`` sends (protocol section 5): digits with an optional fraction. Python's
# Decimal() would also take "5e4", " 50000", "50_000", "+5", "NaN".
WIRE_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
USD_Q = Decimal("0.000001")


def fmt(value: Decimal) -> str:
    """Format like the venue: shortest form, integers keep one ``.0`` (``30135.0``, ``0.0``)."""
    if value == 0:
        return "0.0"
    text = format(value.normalize(), "f")
    if "." not in text:
        text += ".0"
    return text


def fmt_usd(value: Decimal) -> str:
    """USD amounts: at most 6 decimals (the venue's USDC precision)."""
    return fmt(value.quantize(USD_Q, rounding=ROUND_HALF_EVEN))


def fmt_rate(value: Decimal) -> str:
    """Funding rates and premiums: at most 8 decimals, no trailing zeros."""
    return fmt(value.quantize(Decimal("0.00000001"), rounding=ROUND_HALF_EVEN))


def parse_decimal(text: object) -> Decimal | None:
    """Parse a wire decimal string (digits, optional fraction); ``None`` for anything else."""
    if not isinstance(text, str) or len(text) > 40 or not WIRE_DECIMAL.fullmatch(text):
        return None
    return Decimal(text)


def to_decimal(x: float) -> Decimal:
    """Float from a data file to Decimal via its shortest repr (``0.1`` stays ``0.1``)."""
    return Decimal(repr(float(x)))
