"""Number formatting the way the venue prints decimals on the wire."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

ZERO = Decimal(0)
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
    """Parse a wire decimal string; ``None`` when it is not a finite decimal string."""
    if not isinstance(text, str) or not text or len(text) > 40:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    return value


def to_decimal(x: float) -> Decimal:
    """Float from a data file to Decimal via its shortest repr (``0.1`` stays ``0.1``)."""
    return Decimal(repr(float(x)))
