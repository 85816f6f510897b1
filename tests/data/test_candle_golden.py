"""Golden cross-checks from the shared/data README: 1m -> 5m aggregation and funding sources."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from engine.data.aggregate import aggregate
from engine.data.candle_store import CandleStore
from engine.data.funding_store import floor_to_hour
from engine.data.importers import ParsedCandles, ParsedFunding, parse_file
from engine.data.ingest import ImportOptions, import_paths


def candles_of(path: Path) -> ParsedCandles:
    (item,) = parse_file(path)
    assert isinstance(item, ParsedCandles) and not item.findings
    return item


@pytest.mark.parametrize(("symbol", "buckets"), [("BTC", 8_639), ("SOL", 8_639), ("ETH", 12_037)])
def test_binance_1m_aggregates_exactly_to_5m(shared_data: Path, symbol: str, buckets: int) -> None:
    fine = candles_of(shared_data / f"binance/futures-1m/{symbol}_USDT_USDT-1m-futures.feather").batch
    coarse = candles_of(shared_data / f"binance/futures/{symbol}_USDT_USDT-5m-futures.feather").batch
    result = aggregate(fine, "5m")
    agg = result.batch
    assert len(agg) == buckets
    assert len(result.incomplete) == 2  # the partial buckets at both ends of the 1m file
    pos = np.searchsorted(coarse.t, agg.t)
    assert (coarse.t[pos] == agg.t).all(), "every complete bucket exists in the 5m file"
    for col in ("o", "h", "l", "c"):
        assert np.abs(getattr(agg, col) - getattr(coarse, col)[pos]).max() == 0.0, col
    rel = np.abs(agg.v - coarse.v[pos]) / np.maximum(np.abs(coarse.v[pos]), 1e-300)
    assert rel.max() <= 1e-12
    assert np.isnan(agg.n).all(), "freqtrade files carry no trade counts, so neither do their aggregates"


def test_aggregate_via_import_tool(shared_data: Path, tmp_path: Path) -> None:
    """``--aggregate 5m,15m,1h`` builds the coarser intervals from the imported 1m bars."""
    report = import_paths(
        [shared_data / "binance/futures-1m/BTC_USDT_USDT-1m-futures.feather"],
        tmp_path,
        ImportOptions(aggregate=["5m", "15m", "1h"]),
    )
    assert not report.failed, report.render()
    by_target = {a.coarse: a for a in report.aggregations}
    assert by_target["5m"].bars == 8_639 and by_target["5m"].result.inserted == 8_639
    assert by_target["15m"].bars == 2_879 and by_target["1h"].bars == 719
    with CandleStore(tmp_path) as store:
        meta = store.meta("BTC", "5m")
        assert meta is not None and meta.source == "binance-futures/agg:1m"
        h1 = store.read("BTC", "1h")
        fine = store.read("BTC", "1m", int(h1.t[0]), int(h1.t[0]) + 3_599_999)
        assert (h1.o[0], h1.c[0], h1.h[0], h1.l[0]) == (fine.o[0], fine.c[-1], fine.h.max(), fine.l.min())
    again = import_paths(
        [shared_data / "binance/futures-1m/BTC_USDT_USDT-1m-futures.feather"],
        tmp_path,
        ImportOptions(aggregate=["5m", "15m", "1h"]),
    )
    assert all(a.result.inserted == a.result.updated == 0 for a in again.aggregations)


def test_sdk_funding_cassette_matches_feather(shared_data: Path) -> None:
    cassette = shared_data / "fixtures/hyperliquid-python-sdk/cassettes/test_get_funding_history[None].yaml"
    (item,) = parse_file(cassette)
    assert isinstance(item, ParsedFunding) and len(item.batch) == 1_038 and item.period_hours == 1
    (feather_item,) = parse_file(shared_data / "hyperliquid/futures/BTC_USDC_USDC-1h-funding_rate.feather")
    assert isinstance(feather_item, ParsedFunding)
    # Exact-ms timestamps agree before flooring ...
    doc = yaml.safe_load(cassette.read_text())
    rows = next(
        json.loads(i["response"]["body"]["string"])
        for i in doc["interactions"]
        if json.loads(i["request"]["body"])["type"] == "fundingHistory"
    )
    raw_cassette = np.array([r["time"] for r in rows], dtype=np.int64)
    frame = pd.read_feather(shared_data / "hyperliquid/futures/BTC_USDC_USDC-1h-funding_rate.feather")
    raw_feather = frame.date.astype("int64").to_numpy() // 1_000_000
    assert np.isin(raw_cassette, raw_feather).all()
    # ... and after flooring to the hour every rate matches within 5e-9.
    fb = feather_item.batch
    pos = np.searchsorted(fb.time, item.batch.time)
    assert (fb.time[pos] == item.batch.time).all()
    assert (floor_to_hour(raw_cassette) == item.batch.time).all()
    assert np.abs(fb.rate[pos] - item.batch.rate).max() <= 5e-9 + 1e-15  # cassette has 8 decimals
    assert not np.isnan(item.batch.premium).any(), "the SDK response carries the premium"


def test_binance_funding_overlap_identical(shared_data: Path) -> None:
    (a,) = parse_file(shared_data / "binance/futures/BTC_USDT_USDT-1h-funding_rate.feather")
    (b,) = parse_file(shared_data / "binance/futures-1m/BTC_USDT_USDT-8h-funding_rate.feather")
    assert isinstance(a, ParsedFunding) and isinstance(b, ParsedFunding)
    common, ia, ib = np.intersect1d(a.batch.time, b.batch.time, return_indices=True)
    assert len(common) > 100
    assert (a.batch.rate[ia] == b.batch.rate[ib]).all()
