"""Tick and lot rules (protocol reference section 5). Pure functions."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

MAX_DECIMALS_PERP = 6
MAX_SIG_FIGS = 5
MIN_NOTIONAL = Decimal(10)

ERR_INVALID_PRICE = "Order has invalid price."
ERR_TICK = "Price must be divisible by tick size."
ERR_INVALID_SIZE = "Order has invalid size."
ERR_MIN_NOTIONAL = "Order must have minimum value of $10."


def decimals_of(value: Decimal) -> int:
    """Number of digits after the decimal point once trailing zeros are removed."""
    exp = value.normalize().as_tuple().exponent
    assert isinstance(exp, int)
    return max(0, -exp)


def sig_figs(value: Decimal) -> int:
    """Significant figures of a decimal, trailing zeros removed."""
    if value == 0:
        return 0
    return len(value.normalize().as_tuple().digits)


def is_integer(value: Decimal) -> bool:
    return value == value.to_integral_value()


def price_error(px: Decimal, sz_decimals: int) -> str | None:
    """``None`` when ``px`` is a valid perp price, else the venue's error text."""
    if px <= 0:
        return ERR_INVALID_PRICE
    if is_integer(px):
        return None
    if decimals_of(px) > MAX_DECIMALS_PERP - sz_decimals:
        return ERR_INVALID_PRICE
    if sig_figs(px) > MAX_SIG_FIGS:
        return ERR_TICK
    return None


def size_error(sz: Decimal, sz_decimals: int) -> str | None:
    if sz <= 0 or decimals_of(sz) > sz_decimals:
        return ERR_INVALID_SIZE
    return None


def tick_size(px: Decimal, sz_decimals: int) -> Decimal:
    """Smallest price increment valid around ``px`` (5 significant figures, capped decimals)."""
    if px <= 0:
        return Decimal(1).scaleb(-(MAX_DECIMALS_PERP - sz_decimals))
    magnitude = px.adjusted()  # exponent of the leading digit
    sig_tick = Decimal(1).scaleb(magnitude - (MAX_SIG_FIGS - 1))
    dec_tick = Decimal(1).scaleb(-(MAX_DECIMALS_PERP - sz_decimals))
    # Integer prices are always valid, so the tick never exceeds 1.
    return min(max(sig_tick, dec_tick), Decimal(1))


def round_price(px: Decimal, sz_decimals: int, mode: str = ROUND_HALF_EVEN) -> Decimal:
    """Round to a valid price: integers above 5 digits, else 5 significant figures and ``6 - szDecimals`` decimals."""
    if px <= 0:
        return px
    tick = tick_size(px, sz_decimals)
    out = (px / tick).to_integral_value(rounding=mode) * tick
    # Crossing a power of ten can change the tick; round again at the new magnitude.
    tick2 = tick_size(out, sz_decimals)
    if tick2 != tick and tick2 > tick:
        out = (out / tick2).to_integral_value(rounding=mode) * tick2
    return out.normalize()


def round_price_down(px: Decimal, sz_decimals: int) -> Decimal:
    return round_price(px, sz_decimals, ROUND_FLOOR)


def round_price_up(px: Decimal, sz_decimals: int) -> Decimal:
    return round_price(px, sz_decimals, ROUND_CEILING)
