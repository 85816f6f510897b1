"""Import every file of the real data set, then check what verify reports against the README facts."""

from __future__ import annotations

import csv
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from engine.data.candle_store import CandleKind, CandleStore
from engine.data.funding_store import FundingStore
from engine.data.ingest import ImportReport, import_paths
from engine.data.verify import Report, verify_db

# One database directory per venue (the documented layout): the same base symbol exists on several.
GROUPS = {
    "hyperliquid": ["hyperliquid"],
    "binance-futures": ["binance/futures", "binance/futures-1m"],
    "binance-spot": ["binance/spot"],
    "freqtrade": ["fixtures/freqtrade"],
    "hl-sdk": ["fixtures/hyperliquid-python-sdk"],
    "nautilus": ["fixtures/nautilus-hyperliquid"],
}

# Files that hold no candles or funding: they must be reported as skipped, with a reason.
EXPECTED_SKIPPED = {
    "fixtures/hyperliquid-python-sdk/cassettes/test_get_all_mids.yaml",
    "fixtures/hyperliquid-python-sdk/cassettes/test_get_info.yaml",
    "fixtures/hyperliquid-python-sdk/cassettes/test_get_l2_snapshot.yaml",
    "fixtures/nautilus-hyperliquid/http_l2_book_btc.json",
    "fixtures/nautilus-hyperliquid/ws_all_dexs_asset_ctxs.json",
}

# The 14 zero-volume 5m instants common to every Hyperliquid coin (shared/data README).
HL_COMMON_ZERO_VOLUME = [
    "2025-05-25 14:25",
    *[f"2025-06-08 {hm}" for hm in ("09:45", "09:50", "09:55", "10:00", "10:05", "10:10", "10:15", "10:20")],
    "2025-06-28 08:20",
    *[f"2025-07-19 {hm}" for hm in ("09:55", "10:00", "10:05", "10:10")],
]


@dataclass
class Imported:
    data: Path
    dirs: dict[str, Path]
    reports: dict[str, ImportReport]
    verify: dict[str, Report]


@pytest.fixture(scope="module")
def imported(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Imported:
    base = tmp_path_factory.mktemp("real")
    dirs = {name: base / name for name in GROUPS}
    # The import's speed is a benchmark (tools/bench_import.py), not an assertion here.
    reports = {
        name: import_paths([shared_data / sub for sub in subs], dirs[name]) for name, subs in GROUPS.items()
    }
    verify = {name: verify_db(d) for name, d in dirs.items() if name != "nautilus"}
    return Imported(shared_data, dirs, reports, verify)


def manifest(data: Path) -> dict[str, dict[str, str]]:
    with (data / "MANIFEST.csv").open() as fh:
        return {row["path"]: row for row in csv.DictReader(fh)}


def ms(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value // 1_000_000)


def test_every_data_file_imports(imported: Imported) -> None:
    results = {
        str(f.path.relative_to(imported.data)): f
        for report in imported.reports.values()
        for f in report.files
    }
    entries = manifest(imported.data)
    assert set(entries) <= set(results), "every MANIFEST file was seen"
    for path, entry in entries.items():
        res = results[path]
        if path in EXPECTED_SKIPPED:
            assert res.status == "skipped" and res.message, path
            continue
        assert res.status == "ok", "\n".join(res.lines())
        assert not res.findings
        if entry["rows"]:
            assert res.rows == int(entry["rows"]), path
    assert not any(r.failed for r in imported.reports.values())
    # The sizes the README documents.
    assert imported.reports["hyperliquid"].total("candles").inserted == 691_874
    assert imported.reports["binance-futures"].total("candles").inserted == 518_808 + 146_590


def test_metadata_matches_manifest(imported: Imported) -> None:
    entries = manifest(imported.data)
    with CandleStore(imported.dirs["hyperliquid"]) as store:
        meta = store.meta("BTC", "5m")
        assert meta is not None
        entry = entries["hyperliquid/futures/BTC_USDC_USDC-5m-futures.feather"]
        assert (meta.first_t, meta.last_t, meta.rows, meta.source) == (
            ms(entry["first"]),
            ms(entry["last"]),
            38_531,
            "hyperliquid",
        )
        frame = store.read("BTC", "5m").to_frame()
        assert (frame.t_close == frame.t + 300_000 - 1).all()
    with CandleStore(imported.dirs["binance-spot"]) as store:
        spot = store.meta("BTC", "1h")
        assert spot is not None and spot.source == "binance-spot" and spot.rows == 58_419


def test_mark_files_go_to_mark_candles(imported: Imported) -> None:
    with CandleStore(imported.dirs["binance-futures"]) as store:
        assert store.count("1h", "BTC", CandleKind.MARK) == 9_981
        assert store.count("1h", "BTC", CandleKind.TRADE) == 9_978
        mark = store.read("BTC", "1h", kind=CandleKind.MARK)
        trade = store.read("BTC", "1h")
        assert not (mark.c[: len(trade)] == trade.c).all(), "mark prices are not trade prices"
    with CandleStore(imported.dirs["freqtrade"]) as store:
        xrp = store.read("XRP", "1h", kind=CandleKind.MARK)
        assert len(xrp) == 100 and pd.isna(xrp.v).all(), "freqtrade mark volume (NaN) is stored as NULL"


def test_funding_period_and_hour_flooring(imported: Imported) -> None:
    with FundingStore(imported.dirs["hyperliquid"]) as store:
        meta = store.meta("BTC")
        assert meta is not None and (meta.source, meta.period_hours, meta.rows) == ("hyperliquid", 1, 18_778)
        btc = store.read("BTC")
        assert (btc.time % 3_600_000 == 0).all()
        raw = pd.read_feather(imported.data / "hyperliquid/futures/BTC_USDC_USDC-1h-funding_rate.feather")
        assert raw.date.iloc[0] == pd.Timestamp("2023-05-12 00:00:00.048", tz="UTC")
        assert btc.time[0] == ms("2023-05-12 00:00")
        assert (btc.rate == raw.open.to_numpy()).all(), "rates are stored unconverted"
    with FundingStore(imported.dirs["binance-futures"]) as store:
        meta = store.meta("BTC")
        assert meta is not None and (meta.source, meta.period_hours) == ("binance-futures", 8)


def test_unittest_1m_has_538_gaps(imported: Imported) -> None:
    report = imported.verify["freqtrade"]
    gaps = report.of("gap", "UNITTEST")
    assert len([g for g in gaps if g.interval == "1m"]) == 538
    assert sum(g.count for g in gaps if g.interval == "1m") == 717
    assert (
        gaps[0].line() == "gap (UNITTEST, 1m) 2017-11-04T23:08:00Z .. 2017-11-04T23:13:00Z: 6 missing bar(s)"
    )
    assert report.failed() and not report.failed(allow={"gap"})


def test_hyperliquid_zero_volume_and_no_gaps(imported: Imported) -> None:
    report = imported.verify["hyperliquid"]
    assert report.of("gap") == []
    assert set(report.counts()) == {"zero_volume", "funding_gap"}
    btc = [f for f in report.of("zero_volume", "BTC") if f.interval == "5m"]
    assert sum(f.count for f in btc) == 15
    instants: set[int] = set()
    for f in btc:
        assert f.t_end is not None
        instants.update(range(f.t, f.t_end + 1, 300_000))
    assert len(instants) == 15
    assert {ms(x) for x in HL_COMMON_ZERO_VOLUME} <= instants
    assert (
        btc[0].line()
        == "zero_volume (BTC, 5m) 2025-05-25T14:25:00Z .. 2025-05-25T14:30:00Z: 2 bar(s) with v = 0"
    )
    for coin in ("BTC", "ETH", "SOL", "HYPE", "XRP", "DOGE", "SUI", "BNB", "ENA", "kPEPE"):
        n = sum(f.count for f in report.of("zero_volume", coin) if f.interval == "5m")
        assert 14 <= n <= 20, (coin, n)
    assert not report.failed(allow={"zero_volume", "funding_gap"})


def test_binance_5m_no_gaps_five_zero_volume_bars(imported: Imported) -> None:
    report = imported.verify["binance-futures"]
    assert report.of("gap") == [] and report.of("funding_gap") == []
    for sym in ("BTC", "ETH", "SOL", "XRP"):
        assert sum(f.count for f in report.of("zero_volume", sym) if f.interval == "5m") == 5
    assert set(report.counts()) == {"zero_volume"}


def test_binance_spot_has_28_real_gaps(imported: Imported) -> None:
    assert len(imported.verify["binance-spot"].of("gap", "BTC")) == 28


def test_reimport_changes_nothing(imported: Imported) -> None:
    db = imported.dirs["hyperliquid"]
    query = "SELECT COUNT(*), MAX(updated_at), SUM(LENGTH(updated_at)) FROM candles"
    before = sqlite3.connect(db / "candles_5m.db").execute(query).fetchone()
    meta_before = sqlite3.connect(db / "candles_5m.db").execute("SELECT * FROM candle_meta").fetchall()
    again = import_paths([imported.data / "hyperliquid/futures"], db)
    assert not again.failed
    for kind in ("candles", "funding"):
        total = again.total(kind)
        assert (total.inserted, total.updated) == (0, 0)
    assert again.total("candles").unchanged == 691_874
    assert sqlite3.connect(db / "candles_5m.db").execute(query).fetchone() == before
    assert (
        sqlite3.connect(db / "candles_5m.db").execute("SELECT * FROM candle_meta").fetchall() == meta_before
    )
