"""Hyperliquid perp metadata and exact order rounding in ``Decimal`` (the one place it lives: the
paper trader and the live executor both round here).

Rules (perps): a size has at most ``szDecimals`` decimals (rounded down, never up); a price has at
most 5 significant figures and at most ``6 - szDecimals`` decimals, except that an integer price is
always valid whatever its number of digits. The venue also refuses orders under 10 USD notional.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

PRICE_SIG_FIGS = 5
PERP_MAX_DECIMALS = 6
MIN_ORDER_NOTIONAL_USD = Decimal("10")


def to_decimal(x: float | int | str | Decimal) -> Decimal:
    """Exact decimal of a float's shortest repr (``0.1`` -> ``Decimal('0.1')``)."""
    return x if isinstance(x, Decimal) else Decimal(repr(x) if isinstance(x, float) else str(x))


def round_size(sz: float | str | Decimal, sz_decimals: int) -> Decimal:
    """Size rounded down to ``sz_decimals`` decimals (never more than asked)."""
    return to_decimal(sz).quantize(Decimal(1).scaleb(-sz_decimals), rounding=ROUND_DOWN)


def price_decimals(px: Decimal, sz_decimals: int, max_decimals: int = PERP_MAX_DECIMALS) -> int:
    sig = PRICE_SIG_FIGS - 1 - px.adjusted()
    return max(0, min(sig, max_decimals - sz_decimals))


def round_price(
    px: float | str | Decimal,
    sz_decimals: int,
    rounding: str = ROUND_HALF_EVEN,
    max_decimals: int = PERP_MAX_DECIMALS,
) -> Decimal:
    """A price the venue accepts. Integers are kept as they are; otherwise 5 significant figures
    and at most ``max_decimals - sz_decimals`` decimals."""
    d = to_decimal(px)
    if d <= 0:
        raise ValueError(f"price must be > 0, got {px}")
    if d == d.to_integral_value():
        return d.quantize(Decimal(1))
    out = d.quantize(Decimal(1).scaleb(-price_decimals(d, sz_decimals, max_decimals)), rounding=rounding)
    # Rounding up across a power of ten (9.99995 -> 10.000) leaves one digit too many.
    return out.quantize(Decimal(1).scaleb(-price_decimals(out, sz_decimals, max_decimals)), rounding=rounding)


def round_price_for_side(px: float | str | Decimal, sz_decimals: int, is_buy: bool) -> Decimal:
    """Round against the taker: a buy rounds up, a sell rounds down (never a better price)."""
    return round_price(px, sz_decimals, ROUND_CEILING if is_buy else ROUND_FLOOR)


def is_valid_price(px: Decimal, sz_decimals: int, max_decimals: int = PERP_MAX_DECIMALS) -> bool:
    return px > 0 and round_price(px, sz_decimals, ROUND_HALF_EVEN, max_decimals) == px


def slippage_price(
    ref_px: float | str | Decimal, is_buy: bool, slippage: Decimal, sz_decimals: int
) -> Decimal:
    """Limit price of an IOC "market" order: ``ref * (1 +- slippage)`` rounded *inward*, so the order
    never pays more (buy) or receives less (sell) than the bound."""
    ref = to_decimal(ref_px)
    raw = ref * (1 + slippage) if is_buy else ref * (1 - slippage)
    return round_price(raw, sz_decimals, ROUND_FLOOR if is_buy else ROUND_CEILING)


@dataclass(frozen=True)
class AssetMeta:
    name: str
    sz_decimals: int
    max_leverage: int
    index: int = 0

    @property
    def asset(self) -> int:
        """The venue's asset id (position in the perp universe), as order wires carry it."""
        return self.index

    def round_size(self, sz: float | str | Decimal) -> Decimal:
        return round_size(sz, self.sz_decimals)

    def round_price(self, px: float | str | Decimal, is_buy: bool | None = None) -> Decimal:
        if is_buy is None:
            return round_price(px, self.sz_decimals)
        return round_price_for_side(px, self.sz_decimals, is_buy)


class Meta:
    """Assets of the perp universe, by name."""

    def __init__(self, assets: Iterable[AssetMeta]) -> None:
        self.assets: dict[str, AssetMeta] = {a.name: a for a in assets}

    @classmethod
    def from_wire(cls, meta: Mapping[str, Any]) -> Meta:
        """From the ``meta`` info response (``{"universe": [{name, szDecimals, maxLeverage}, ...]}``)."""
        out = []
        for i, a in enumerate(meta.get("universe", [])):
            if a.get("isDelisted"):
                continue
            out.append(AssetMeta(str(a["name"]), int(a["szDecimals"]), int(a.get("maxLeverage", 1)), i))
        return cls(out)

    @classmethod
    def fetch(cls, info: Any) -> Meta:
        """``info`` is a ``hyperliquid.info.Info``."""
        return cls.from_wire(info.meta())

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.assets

    def __getitem__(self, symbol: str) -> AssetMeta:
        try:
            return self.assets[symbol]
        except KeyError:
            raise KeyError(f"{symbol} is not listed in the venue's meta") from None

    def names(self) -> list[str]:
        return list(self.assets)


__all__ = [
    "MIN_ORDER_NOTIONAL_USD",
    "AssetMeta",
    "Meta",
    "is_valid_price",
    "round_price",
    "round_price_for_side",
    "round_size",
    "slippage_price",
    "to_decimal",
]
