"""Hostile candle files: ``verify_candles.py --file`` fails on anything it could not verify.

Damaged copies of a real Hyperliquid feather (truncated, 4 KB overwritten), a misnamed copy, a
missing path, malformed JSON and a bar with ``h = 1e308``: each gives one finding line naming the
file or the bar, ``result: FAIL`` and exit 1, never a traceback. The untouched real data passes the
plausibility check (no false positives).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.feather as feather
import pytest

from engine.data.importers import ParsedCandles, iter_files, parse_file
from engine.data.verify import PLAUSIBLE_FACTOR, implausible_findings

REPO = Path(__file__).resolve().parents[2]
REAL = "hyperliquid/futures/BTC_USDC_USDC-1h-futures.feather"
NAME = "BTC_USDC_USDC-1h-futures.feather"


def verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "tools/verify_candles.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_fails_cleanly(res: subprocess.CompletedProcess[str], line: str) -> None:
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert line in res.stdout.splitlines(), res.stdout
    assert res.stdout.splitlines()[-1].startswith("result: FAIL ("), res.stdout


@pytest.fixture()
def real_copy(shared_data: Path, tmp_path: Path) -> Path:
    path = tmp_path / NAME
    shutil.copyfile(shared_data / REAL, path)
    return path


def test_truncated_feather_fails(real_copy: Path) -> None:
    data = real_copy.read_bytes()
    real_copy.write_bytes(data[: len(data) // 2])
    res = verify("--file", str(real_copy))
    assert_fails_cleanly(res, "ERROR unreadable: 1 file(s)")
    assert f"  unreadable {real_copy}: Not an Arrow file" in res.stdout.splitlines()


@pytest.mark.parametrize("where", [0.1, 0.5, 0.9])
def test_feather_with_4kb_overwritten_fails(real_copy: Path, where: float) -> None:
    data = bytearray(real_copy.read_bytes())
    at = int(len(data) * where)
    data[at : at + 4096] = b"\0" * 4096
    real_copy.write_bytes(bytes(data))
    res = verify("--file", str(real_copy))
    assert_fails_cleanly(res, "ERROR unreadable: 1 file(s)")
    assert any(line.startswith(f"  unreadable {real_copy}: ") for line in res.stdout.splitlines())


def test_unrecognised_name_missing_file_and_empty_dir_fail(real_copy: Path, tmp_path: Path) -> None:
    odd = tmp_path / "btc-1h.feather"
    real_copy.rename(odd)
    (tmp_path / "empty").mkdir()
    res = verify(
        "--file", str(odd), "--file", str(tmp_path / "gone.feather"), "--file", str(tmp_path / "empty")
    )
    assert_fails_cleanly(res, "ERROR skipped: 2 file(s)")
    out = res.stdout.splitlines()
    assert "ERROR unreadable: 1 file(s)" in out
    assert f"  unreadable {tmp_path / 'gone.feather'}: no such file" in out
    assert f"  skipped {tmp_path / 'empty'}: directory holds no files" in out
    assert any(line.startswith(f"  skipped {odd}: not verified: feather file name is not") for line in out)
    # An operator who means to pass a folder with other files in it says so.
    relaxed = verify("--file", str(odd), "--allow", "skipped")
    assert relaxed.returncode == 0, relaxed.stdout
    assert relaxed.stdout.splitlines()[-1] == "result: OK (0 error(s), 1 warning(s))"


@pytest.mark.parametrize(
    "body",
    [
        '[{"t": 1, "T": 2, "s": "BTC", "i": "1m", "o": "1", "h": "1", "l": "1", "c": "1", "v": "1"}, {}]',
        "[" * 100_000 + "]" * 100_000,
        '{"not": "candles"',
    ],
    ids=["row-missing-keys", "nested-100k-deep", "bad-json"],
)
def test_malformed_json_is_unreadable_not_a_traceback(tmp_path: Path, body: str) -> None:
    path = tmp_path / "candles.json"
    path.write_text(body)
    res = verify("--file", str(path))
    assert_fails_cleanly(res, "ERROR unreadable: 1 file(s)")


def test_bar_with_huge_high_is_implausible(real_copy: Path) -> None:
    frame = feather.read_table(real_copy).to_pandas()
    frame.loc[100, "high"] = 1e308
    frame.loc[200, ["open", "high", "low", "close"]] = 1e-300  # a whole bar, self-consistent
    feather.write_feather(frame, real_copy)
    t100 = int(frame["date"].iloc[100].value // 1_000_000)
    res = verify("--file", str(real_copy), "--allow", "gap,zero_volume")
    assert_fails_cleanly(res, "ERROR implausible: 2 finding(s), 2 row(s)/bar(s)")
    (line,) = [x for x in res.stdout.splitlines() if x.startswith(f"  implausible (BTC, 1h, t={t100} ")]
    assert "h=1e+308 is " in line and "the neighbouring bars' median close" in line
    assert res.stdout.splitlines()[-1] == "result: FAIL (2 error(s), 0 warning(s))"


def test_real_data_has_no_implausible_bars(shared_data: Path) -> None:
    checked = 0
    for path in iter_files([shared_data]):
        if path.suffix != ".feather":
            continue
        for item in parse_file(path):
            if isinstance(item, ParsedCandles):
                assert implausible_findings(item.batch, item.kind.table) == [], path
                checked += len(item.batch)
    assert checked > 500_000


def test_implausible_catches_a_run_of_bad_bars_but_not_a_real_jump() -> None:
    from engine.data.candle_store import CandleBatch

    c = np.full(40, 100.0)
    c[20:] = 100.0 * PLAUSIBLE_FACTOR * 0.9  # a real (if wild) step: every bar after it agrees
    h, lo = c * 1.01, c * 0.99
    h[5:8] = 1e300  # three consecutive corrupt highs
    t = np.arange(40, dtype=np.int64) * 60_000
    nan = np.full(40, np.nan)
    batch = CandleBatch("X", "1m", t, c.copy(), h, lo, c, np.ones(40), nan)
    assert [f.t for f in implausible_findings(batch)] == [5 * 60_000, 6 * 60_000, 7 * 60_000]


@pytest.mark.parametrize("offset", [0, 8192], ids=["header", "a-page"])
def test_damaged_database_is_unreadable_and_the_others_still_checked(
    shared_data: Path, tmp_path: Path, offset: int
) -> None:
    from engine.data.ingest import import_paths

    db = tmp_path / "db"
    src = shared_data / "hyperliquid" / "futures"
    report = import_paths([src / NAME, src / "BTC_USDC_USDC-5m-futures.feather"], db)
    assert not report.failed
    path = db / "candles_1h.db"
    data = bytearray(path.read_bytes())
    data[offset : offset + 4096] = b"\xff" * 4096
    path.write_bytes(bytes(data))
    res = verify("--db-dir", str(db), "--allow", "gap,zero_volume")
    assert_fails_cleanly(res, "ERROR unreadable: 1 file(s)")
    out = res.stdout.splitlines()
    assert any(line.startswith(f"  unreadable {path}: not a readable SQLite database: ") for line in out), out
    assert any(line.startswith("checked: candles BTC 5m: ") for line in out), out  # the other DB
