"""Hand-made files: corrupt rows are refused and reported with their key; CLI exit codes and lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine.data.candle_store import CandleStore
from engine.data.ingest import ImportOptions, import_paths

REPO = Path(__file__).resolve().parents[2]
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
M5 = 300_000


def kline(
    t: int, o: float, h: float, lo: float, c: float, v: float, n: int = 10, close: int | None = None
) -> str:
    t_close = t + M5 - 1 if close is None else close
    return f"{t},{o},{h},{lo},{c},{v},{t_close},{v * c},{n},{v / 2},{v * c / 2},0"


HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
    "taker_buy_quote_volume,ignore"
)


def write_corrupt_csv(tmp_path: Path) -> Path:
    rows = [
        kline(T0, 100, 101, 99, 100.5, 3),
        kline(T0 + M5, 100, 99, 100, 99.5, 1),  # high < low
        kline(T0 + 2 * M5, 100, 101, 99, 100, -1.5),  # negative volume
        kline(T0 + 3 * M5, 100, 101, 99, 100, 2),  # duplicate key ...
        kline(T0 + 3 * M5, 100, 101, 99, 100, 2),  # ... same row again
        kline(T0 + 4 * M5, 100, 101, 99, 100, 2),
    ]
    path = tmp_path / "BTCUSDT-5m-2024-01.csv"
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    return path


EXPECTED_FINDINGS = [
    "ohlc (BTC, 5m, t=1704067500000 2024-01-01T00:05:00Z): high < low (h=99.0, l=100.0)",
    "ohlc (BTC, 5m, t=1704067500000 2024-01-01T00:05:00Z): open outside [low, high] (o=100.0, l=100.0, h=99.0)",
    "ohlc (BTC, 5m, t=1704067500000 2024-01-01T00:05:00Z): close outside [low, high] (c=99.5, l=100.0, h=99.0)",
    "negative_volume (BTC, 5m, t=1704067800000 2024-01-01T00:10:00Z): negative volume (v=-1.5)",
    "duplicate (BTC, 5m, t=1704068100000 2024-01-01T00:15:00Z): 2 rows with this key",
]


def test_import_refuses_corrupt_file_and_names_every_row(tmp_path: Path) -> None:
    path = write_corrupt_csv(tmp_path)
    report = import_paths([path], tmp_path / "db")
    assert report.failed
    (res,) = report.files
    assert res.lines(tmp_path) == [
        "REFUSED  BTCUSDT-5m-2024-01.csv: candles BTC 5m [binance-futures]: 4 corrupt row(s), nothing written",
        *[f"    {line}" for line in EXPECTED_FINDINGS],
    ]
    with CandleStore(tmp_path / "db") as store:
        assert store.count("5m") == 0 and store.meta("BTC", "5m") is None


def test_skip_corrupt_writes_only_valid_rows(tmp_path: Path) -> None:
    path = write_corrupt_csv(tmp_path)
    report = import_paths([path], tmp_path / "db", ImportOptions(skip_corrupt=True))
    (res,) = report.files
    assert res.status == "partial"
    assert res.lines(tmp_path)[0] == (
        "PARTIAL  BTCUSDT-5m-2024-01.csv: candles BTC 5m [binance-futures] 2 rows: "
        "2 inserted, 0 updated, 0 unchanged (4 corrupt row(s) not written)"
    )
    assert [line.strip() for line in res.lines(tmp_path)[1:]] == EXPECTED_FINDINGS
    with CandleStore(tmp_path / "db") as store:
        assert store.read("BTC", "5m").t.tolist() == [T0, T0 + 4 * M5]


def test_misaligned_and_close_time_rows(tmp_path: Path) -> None:
    path = tmp_path / "ETHUSDT-5m-2024-01-01.csv"
    path.write_text(
        "\n".join(
            [
                kline(T0, 10, 11, 9, 10, 1),
                kline(T0 + M5 + 1_000, 10, 11, 9, 10, 1),
                kline(T0 + 2 * M5, 10, 11, 9, 10, 1, close=T0 + 3 * M5),
                kline(T0 + 3 * M5, float("nan"), 11, 9, 10, 1),
            ]
        )
        + "\n"
    )
    (res,) = import_paths([path], tmp_path / "db").files
    assert [line.strip() for line in res.lines(tmp_path)[1:]] == [
        "misaligned (ETH, 5m, t=1704067501000 2024-01-01T00:05:01Z): t is not a multiple of 300000 ms (5m)",
        "t_close (ETH, 5m, t=1704067800000 2024-01-01T00:10:00Z): close time 1704068100000 != "
        "t + interval_ms - 1 = 1704068099999",
        "nonfinite (ETH, 5m, t=1704068100000 2024-01-01T00:15:00Z): non-finite value(s) o=nan",
    ]


def test_funding_csv_rows_colliding_on_the_hour(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-fundingRate-2024-01.csv"
    path.write_text(
        "calc_time,funding_interval_hours,last_funding_rate\n"
        f"{T0 + 7},8,0.0001\n{T0 + 8 * 3_600_000 + 3},8,0.00012\n{T0 + 8 * 3_600_000 + 900_000},8,0.0002\n"
    )
    (res,) = import_paths([path], tmp_path / "db").files
    assert res.lines(tmp_path) == [
        "REFUSED  BTCUSDT-fundingRate-2024-01.csv: funding BTC [binance-futures, rate per 8h]: "
        "2 corrupt row(s), nothing written",
        "    duplicate [funding_rates] (BTC, funding, t=1704096000000 2024-01-01T08:00:00Z): "
        "2 rows fall in this hour (source times 1704096000003, 1704096900000)",
    ]


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_import_and_verify_report_corrupt_rows(tmp_path: Path) -> None:
    path = write_corrupt_csv(tmp_path)
    imp = run_tool("tools/import_candles.py", str(path), "--db-dir", str(tmp_path / "db"))
    assert imp.returncode == 1, imp.stderr
    for line in EXPECTED_FINDINGS:
        assert f"    {line}\n" in imp.stdout
    ver = run_tool("tools/verify_candles.py", "--file", str(path))
    assert ver.returncode == 1, ver.stderr
    out = ver.stdout.splitlines()
    assert "ERROR ohlc: 3 finding(s), 3 row(s)/bar(s)" in out
    assert "ERROR negative_volume: 1 finding(s), 1 row(s)/bar(s)" in out
    assert "ERROR duplicate: 1 finding(s), 2 row(s)/bar(s)" in out
    for line in EXPECTED_FINDINGS:
        assert f"  {line}" in out
    assert out[-1] == "result: FAIL (5 error(s), 0 warning(s))"


def test_cli_verify_db_allow_downgrades(tmp_path: Path) -> None:
    path = tmp_path / "SOLUSDT-5m-2024-01.csv"
    path.write_text(
        "\n".join(
            [kline(T0, 1, 2, 1, 1.5, 0), kline(T0 + M5, 1, 2, 1, 1.5, 0), kline(T0 + 3 * M5, 1, 2, 1, 1.5, 4)]
        )
    )
    db = tmp_path / "db"
    assert run_tool("tools/import_candles.py", str(path), "--db-dir", str(db)).returncode == 0
    strict = run_tool("tools/verify_candles.py", "--db-dir", str(db))
    assert strict.returncode == 1
    assert "  gap (SOL, 5m) 2024-01-01T00:10:00Z .. 2024-01-01T00:10:00Z: 1 missing bar(s)" in strict.stdout
    assert (
        "  zero_volume (SOL, 5m) 2024-01-01T00:00:00Z .. 2024-01-01T00:05:00Z: 2 bar(s) with v = 0"
        in strict.stdout
    )
    relaxed = run_tool("tools/verify_candles.py", "--db-dir", str(db), "--allow", "zero_volume,gap")
    assert relaxed.returncode == 0, relaxed.stdout
    assert "WARNING gap: 1 finding(s), 1 row(s)/bar(s)" in relaxed.stdout
    assert relaxed.stdout.splitlines()[-1] == "result: OK (0 error(s), 2 warning(s))"
    bad = run_tool("tools/verify_candles.py", "--db-dir", str(db), "--allow", "nonsense")
    assert bad.returncode == 2 and "unknown check class" in bad.stderr


def test_gap_findings_for_bars_and_funding() -> None:
    """One missing-run rule for candle gaps and funding gaps: a run of missing times is one finding
    with its first and last missing time and its count."""
    import numpy as np

    from engine.data.funding_store import FundingBatch
    from engine.data.verify import gap_findings, verify_funding_batch

    M5, H = 300_000, 3_600_000
    t = np.array([0, M5, 4 * M5, 5 * M5, 7 * M5, 7 * M5 + 1], dtype=np.int64)  # the last is misaligned
    assert [(f.check, f.t, f.t_end, f.count, f.detail) for f in gap_findings("X", "5m", t)] == [
        ("gap", 2 * M5, 3 * M5, 2, "2 missing bar(s)"),
        ("gap", 6 * M5, 6 * M5, 1, "1 missing bar(s)"),
    ]
    times = np.array([0, 8 * H, 32 * H], dtype=np.int64)
    rates = np.zeros(3)
    gaps = [
        f for f in verify_funding_batch(FundingBatch("X", times, rates, rates), 8) if f.check == "funding_gap"
    ]
    assert [(f.interval, f.t, f.t_end, f.count, f.detail, f.table) for f in gaps] == [
        ("8h", 16 * H, 24 * H, 2, "2 missing funding time(s)", "funding_rates")
    ]
