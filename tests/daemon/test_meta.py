"""exchange.meta: size and price rounding rules in Decimal."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchange.meta import AssetMeta, Meta, is_valid_price, round_price, round_price_for_side, round_size


@pytest.mark.parametrize(
    ("px", "szd", "want"),
    [
        (97_123.456, 5, "97123"),  # 5 significant figures
        (123_456.0, 0, "123456"),  # an integer is always valid
        (3_456.789, 4, "3456.8"),
        (1.234567, 0, "1.2346"),
        (0.0123456789, 0, "0.012346"),  # 6 - 0 decimals
        (0.0123456789, 2, "0.0123"),  # 6 - 2 decimals
        (9.99996, 1, "10.000"),  # crossing a power of ten
    ],
)
def test_round_price(px: float, szd: int, want: str) -> None:
    got = round_price(px, szd)
    assert got == Decimal(want)
    assert is_valid_price(got, szd)


def test_round_price_against_the_taker() -> None:
    assert round_price_for_side(1.23451, 0, is_buy=True) == Decimal("1.2346")
    assert round_price_for_side(1.23459, 0, is_buy=False) == Decimal("1.2345")


def test_round_size_down() -> None:
    assert round_size(0.123456, 3) == Decimal("0.123")
    assert round_size(0.1239999, 3) == Decimal("0.123")
    assert round_size(12.9, 0) == Decimal("12")
    assert round_size(0.1 + 0.2, 1) == Decimal("0.3")  # float repr, not binary noise


def test_meta_from_wire() -> None:
    m = Meta.from_wire(
        {
            "universe": [
                {"name": "BTC", "szDecimals": 5, "maxLeverage": 40},
                {"name": "OLD", "szDecimals": 1, "maxLeverage": 3, "isDelisted": True},
            ]
        }
    )
    assert "BTC" in m and "OLD" not in m
    assert m["BTC"] == AssetMeta("BTC", 5, 40, 0)
    assert m["BTC"].round_size(0.0123456) == Decimal("0.01234")
    with pytest.raises(KeyError, match="not listed"):
        m["XYZ"]
    with pytest.raises(ValueError):
        round_price(0, 2)
