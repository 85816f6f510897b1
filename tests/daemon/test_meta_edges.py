"""Edges of the exact order rounding and the venue meta that the mutation run found untested."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchange.meta import Meta, is_valid_price, round_price

D = Decimal


def test_a_non_positive_price_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"price must be > 0, got -1"):
        round_price("-1", 2)
    with pytest.raises(ValueError, match=r"price must be > 0, got 0"):
        round_price(0, 2)


@pytest.mark.parametrize("px", [D(0), D(-1), D("-0.5")])
def test_is_valid_price_is_false_not_an_error_for_non_positive(px: Decimal) -> None:
    assert is_valid_price(px, 2) is False


def test_max_decimals_is_honoured_spot_style() -> None:
    # 5 significant figures; perps allow 6 - szDecimals decimals, spot 8 - szDecimals.
    assert round_price("0.000123456", 0) == D("0.000123")
    assert round_price("0.000123456", 0, max_decimals=8) == D("0.00012346")
    assert is_valid_price(D("0.00012346"), 0, max_decimals=8) is True
    assert is_valid_price(D("0.00012346"), 0) is False


def test_from_wire_skips_delisted_assets_keeps_indices_and_defaults_leverage() -> None:
    meta = Meta.from_wire(
        {
            "universe": [
                {"name": "BTC", "szDecimals": 5, "maxLeverage": 40},
                {"name": "OLD", "szDecimals": 1, "maxLeverage": 3, "isDelisted": True},
                {"name": "ETH", "szDecimals": 4},
            ]
        }
    )
    assert meta.names() == ["BTC", "ETH"]
    assert "OLD" not in meta
    assert meta["ETH"].asset == 2 and meta["BTC"].asset == 0  # the venue's asset id is the position
    assert meta["ETH"].max_leverage == 1 and meta["BTC"].max_leverage == 40
    assert Meta.from_wire({}).names() == []
    with pytest.raises(KeyError, match="OLD is not listed"):
        meta["OLD"]
