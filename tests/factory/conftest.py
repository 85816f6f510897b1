"""Shared fixtures: the bundled real Hyperliquid data imported once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from strategy.factory.backtester import DataScope, find_binary
from strategy.factory.pipeline import PROFILES, default_data_src, import_data

HL5 = ("BTC", "ETH", "SOL", "DOGE", "XRP")


@pytest.fixture(scope="session")
def hl_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5m candles + hourly funding of five HL perps (the smoke profile's symbols)."""
    try:
        find_binary()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    src = default_data_src()
    if not (src / "hyperliquid" / "futures").is_dir():
        pytest.skip("bundled data not found (AI_QUANT_SHARED_DATA)")
    d = tmp_path_factory.mktemp("hl_db")
    import_data(PROFILES["smoke"], src, d)
    return d


def scope_of(db: Path, start: str, end: str, symbols: tuple[str, ...] = HL5) -> DataScope:
    return DataScope(db / "candles_5m.db", db / "funding_rates.db", "5m", symbols, start, end)
