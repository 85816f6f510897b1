"""Schema, incremental and idempotent writes, formats (CSV header/no header, µs, JSON), venues, aggregation."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from engine.data.aggregate import AggregationError, aggregate
from engine.data.candle_store import CandleBatch, CandleStore
from engine.data.importers import ParsedCandles, Skipped, parse_file
from engine.data.ingest import ImportOptions, SymbolMapping, import_paths
from engine.data.schema import open_candle_db, open_funding_db

T0 = 1_704_067_200_000
M1 = 60_000
M5 = 300_000


def csv_rows(start: int, count: int, step: int = M5, bump: dict[int, float] | None = None) -> list[str]:
    out = []
    for i in range(count):
        t = start + i * step
        c = 100.0 + i + (bump or {}).get(i, 0.0)
        out.append(f"{t},{100.0 + i},{c + 1},{99.0 + i},{c},{1.0 + i},{t + step - 1},0,{i + 1},0,0,0")
    return out


def test_schema_tables_and_migrations(tmp_path: Path) -> None:
    conn = open_candle_db(tmp_path, "5m")
    cols = [r[1] for r in conn.execute("PRAGMA table_info(candles)")]
    assert cols == ["symbol", "interval", "t", "t_close", "o", "h", "l", "c", "v", "n", "updated_at"]
    pk = [r[1] for r in sorted(conn.execute("PRAGMA table_info(candles)"), key=lambda r: r[5]) if r[5]]
    assert pk == ["symbol", "interval", "t"]
    meta = [r[1] for r in conn.execute("PRAGMA table_info(candle_meta)")]
    assert meta == ["symbol", "interval", "first_t", "last_t", "rows", "source", "updated_at"]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [(1,)]
    conn.close()
    open_candle_db(tmp_path, "5m").close()  # re-opening applies nothing new
    again = sqlite3.connect(tmp_path / "candles_5m.db")
    assert again.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == 1
    fconn = open_funding_db(tmp_path)
    assert [r[1] for r in fconn.execute("PRAGMA table_info(funding_rates)")] == [
        "symbol",
        "time",
        "funding_rate",
        "premium",
    ]
    assert (tmp_path / "funding_rates.db").exists()


def test_incremental_import_counts_and_no_updated_at_churn(tmp_path: Path) -> None:
    db = tmp_path / "db"
    first = tmp_path / "a" / "BTCUSDT-5m-2024-01-01.csv"
    first.parent.mkdir()
    first.write_text("\n".join(csv_rows(T0, 10)) + "\n")
    r1 = import_paths([first], db)
    assert str(r1.files[0].result) == "10 inserted, 0 updated, 0 unchanged"
    conn = sqlite3.connect(db / "candles_5m.db")
    stamps = dict(conn.execute("SELECT t, updated_at FROM candles"))
    # Overlapping newer file: bars 5..14, bar 9 (index 4 here) revised.
    second = tmp_path / "b" / "BTCUSDT-5m-2024-01-01.csv"
    second.parent.mkdir()
    rows = csv_rows(T0, 15)[5:]
    rows[4] = csv_rows(T0, 10, bump={9: 0.25})[9]
    second.write_text("\n".join(rows) + "\n")
    r2 = import_paths([second], db)
    assert str(r2.files[0].result) == "5 inserted, 1 updated, 4 unchanged"
    after = dict(conn.execute("SELECT t, updated_at FROM candles"))
    for i in range(10):
        t = T0 + i * M5
        assert (after[t] == stamps[t]) == (i != 9), i
    meta = conn.execute("SELECT first_t, last_t, rows, source FROM candle_meta").fetchone()
    assert meta == (T0, T0 + 14 * M5, 15, "binance-futures")
    r3 = import_paths([first, second], db)
    assert [str(f.result) for f in r3.files] == [
        "0 inserted, 1 updated, 9 unchanged",  # the first file still has the old bar 9 ...
        "0 inserted, 1 updated, 9 unchanged",  # ... and the second puts the revision back
    ]


def test_csv_with_and_without_header_and_microseconds(tmp_path: Path) -> None:
    header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"
    plain = tmp_path / "x" / "ETHUSDT-1m-2025-01-01.csv"
    plain.parent.mkdir()
    plain.write_text("\n".join(csv_rows(T0, 3, M1)) + "\n")
    with_header = tmp_path / "y" / "ETHUSDT-1m-2025-01-01.csv"
    with_header.parent.mkdir()
    with_header.write_text(header + "\n" + "\n".join(csv_rows(T0, 3, M1)) + "\n")
    micro = tmp_path / "z" / "spot" / "ETHUSDT-1m-2025-01-01.csv"
    micro.parent.mkdir(parents=True)
    micro.write_text(
        "\n".join(
            f"{t * 1000},{o},{h},{lo},{c},{v},{tc * 1000 + 999},{q},{n},0,0,0"
            for t, o, h, lo, c, v, tc, q, n, *_ in (r.split(",") for r in csv_rows(T0, 3, M1))
            for t, tc in [(int(t), int(tc))]
        )
        + "\n"
    )
    parsed = [parse_file(p)[0] for p in (plain, with_header, micro)]
    assert all(isinstance(p, ParsedCandles) and not p.findings for p in parsed)
    batches = [p.batch for p in parsed if isinstance(p, ParsedCandles)]
    for b in batches:
        assert b.symbol == "ETH" and b.interval == "1m"
        assert b.t.tolist() == [T0, T0 + M1, T0 + 2 * M1]
        assert b.n.tolist() == [1.0, 2.0, 3.0]
        assert (b.c == batches[0].c).all()
    assert isinstance(parsed[2], ParsedCandles) and parsed[2].source == "binance-spot"


def test_hyperliquid_candle_snapshot_json(shared_data: Path, tmp_path: Path) -> None:
    import yaml

    doc = yaml.safe_load(
        (shared_data / "fixtures/hyperliquid-python-sdk/cassettes/test_get_candles_snapshot.yaml").read_text()
    )
    body = next(
        i["response"]["body"]["string"]
        for i in doc["interactions"]
        if "candleSnapshot" in i["request"]["body"]
    )
    path = tmp_path / "kpepe_1h.json"
    path.write_text(body)
    report = import_paths([path], tmp_path / "db")
    assert [f.lines(tmp_path)[0] for f in report.files] == [
        "OK       kpepe_1h.json: candles kPEPE 1h [hyperliquid] 24 rows: 24 inserted, 0 updated, 0 unchanged"
    ]
    first = json.loads(body)[0]
    with CandleStore(tmp_path / "db") as store:
        frame = store.read("kPEPE", "1h").to_frame()
    assert int(frame.t.iloc[0]) == first["t"] and int(frame.t_close.iloc[0]) == first["T"]
    assert float(frame.o.iloc[0]) == float(first["o"]) and int(frame.n.iloc[0]) == first["n"]


def test_unrelated_files_are_skipped_with_reason(shared_data: Path) -> None:
    for name in ("README.md", "MANIFEST.csv"):
        (item,) = parse_file(shared_data / name)
        assert isinstance(item, Skipped) and item.reason


def test_venues_conflict_unless_prefixed(tmp_path: Path) -> None:
    spot = tmp_path / "spot" / "BTCUSDT-5m-2024-01-01.csv"
    fut = tmp_path / "futures" / "BTCUSDT-5m-2024-01-01.csv"
    for p in (spot, fut):
        p.parent.mkdir()
        p.write_text("\n".join(csv_rows(T0, 4)) + "\n")
    db = tmp_path / "db"
    assert not import_paths([spot], db).failed
    clash = import_paths([fut], db)
    assert clash.failed
    assert clash.files[0].message.startswith(
        "candles BTC 5m already holds source 'binance-spot', refusing 'binance-futures'"
    )
    prefixed = import_paths(
        [spot, fut], tmp_path / "db2", ImportOptions(symbols=SymbolMapping(source_prefix=True))
    )
    assert not prefixed.failed
    mapped = import_paths([fut], db, ImportOptions(symbols=SymbolMapping.parse("BTC=BTC-PERP")))
    assert not mapped.failed
    with CandleStore(tmp_path / "db2") as store:
        assert store.symbols("5m") == ["binance-futures:BTC", "binance-spot:BTC"]
    with CandleStore(db) as store:
        assert store.symbols("5m") == ["BTC", "BTC-PERP"]


def batch_1m(ts: list[int], n: list[float] | None = None) -> CandleBatch:
    k = len(ts)
    t = np.array(ts, dtype=np.int64)
    base = np.arange(k, dtype=np.float64)
    return CandleBatch(
        "X", "1m", t, 10 + base, 12 + base, 9 + base, 11 + base, 1 + base, np.array(n if n else [1.0] * k)
    )


def test_aggregate_exact_and_reports_incomplete() -> None:
    ts = [T0 + i * M1 for i in range(5)] + [T0 + M5 + i * M1 for i in (0, 1, 3, 4)]
    res = aggregate(batch_1m(ts, [1, 2, 3, 4, 5, 1, 1, 1, 1]), "5m")
    b = res.batch
    assert b.t.tolist() == [T0]
    assert (b.o[0], b.h[0], b.l[0], b.c[0], b.v[0], b.n[0]) == (10.0, 16.0, 9.0, 15.0, 15.0, 15.0)
    assert [(x.t, x.have, x.need) for x in res.incomplete] == [(T0 + M5, 4, 5)]
    null_n = aggregate(batch_1m(ts[:5], [1, 2, float("nan"), 4, 5]), "5m").batch
    assert np.isnan(null_n.n[0])
    with pytest.raises(AggregationError):
        aggregate(batch_1m(ts[:5]), "1m")


def test_upserts_sort_and_refuse_duplicate_times(tmp_path: Path) -> None:
    """Both stores write a batch in time order whatever order it came in, and refuse one with two rows
    at one time before writing anything (the one in_time_order step)."""
    from engine.data.funding_store import FundingBatch, FundingStore

    H = 3_600_000
    with CandleStore(tmp_path) as store:
        assert store.upsert(batch_1m([T0 + 2 * M1, T0, T0 + M1]), "test").inserted == 3
        assert list(store.read("X", "1m").t) == [T0, T0 + M1, T0 + 2 * M1]
        with pytest.raises(ValueError, match="duplicate bar times in batch for X 1m"):
            store.upsert(batch_1m([T0 + 5 * M1, T0 + 4 * M1, T0 + 5 * M1]), "test")
        assert len(store.read("X", "1m")) == 3
    rates = np.array([1e-4, 2e-4, 3e-4])
    with FundingStore(tmp_path) as fstore:
        fstore.upsert(FundingBatch("X", np.array([2 * H, 0, H], dtype=np.int64), rates, rates), "test", 1)
        assert list(fstore.read("X").time) == [0, H, 2 * H]
        with pytest.raises(ValueError, match="duplicate funding times in batch for X"):
            fstore.upsert(
                FundingBatch("X", np.array([3 * H, 3 * H, 4 * H], dtype=np.int64), rates, rates), "test", 1
            )
        assert len(fstore.read("X").time) == 3
