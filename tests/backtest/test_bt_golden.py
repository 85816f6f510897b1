"""Golden outputs of the backtester, byte for byte.

Recorded from the code before the sweep-engine rework (issue #17) and kept in the suite: the
replay report and trade CSV of the 10 Hyperliquid 5m coins with the example config, and the
sweep JSONL of a fixed 64-combo Mei Alpha grid (indicator windows and decision parameters) over
4 coins. Any change to decisions, sizing, accounting, indicators or output formatting shows here.

The files are stored gzipped under tests/backtest/golden/ with their sha256; on a mismatch the
test names the first differing line. `AIQ_WRITE_GOLDEN=1` rewrites them (only for a deliberate
change of the outputs, said in the commit).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from bt_helpers import BIN, HL, ROOT, hl_frames, hl_funding, write_candles_db, write_funding_db

pytestmark = [
    pytest.mark.skipif(not BIN.exists(), reason=f"build the binary first: {BIN} is missing"),
    pytest.mark.skipif(not HL.exists(), reason=f"real data not found at {HL} (set AI_QUANT_SHARED_DATA)"),
]

GOLDEN = Path(__file__).resolve().parent / "golden"
COINS = ["BTC", "ETH", "SOL", "HYPE", "XRP", "DOGE", "SUI", "BNB", "ENA", "kPEPE"]
SWEEP_COINS = ["BTC", "ETH", "SOL", "HYPE"]
# 2^6 = 64 combos: three indicator windows and three decision parameters.
SWEEP_SPEC = """\
axes:
  - {path: indicators.ema_fast_window, values: [8, 12]}
  - {path: indicators.ema_slow_window, values: [30, 50]}
  - {path: indicators.adx_window, values: [10, 14]}
  - {path: trade.sl_atr_mult, values: [1.5, 2.2]}
  - {path: thresholds.entry.min_adx, values: [15, 22]}
  - {path: trade.tp_partial_atr_mult, values: [0, 1.0]}
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the inputs under fixed relative names (the reports record input paths)."""
    d = tmp_path_factory.mktemp("golden")
    write_candles_db(d / "candles_5m.db", hl_frames(COINS, "5m"), "5m")
    write_funding_db(d / "funding_rates.db", hl_funding(COINS))
    shutil.copy(ROOT / "config" / "strategy_overrides.example.yaml", d / "cfg.yaml")
    (d / "spec.yaml").write_text(SWEEP_SPEC)
    return d


def _bt(cwd: Path, *args: str) -> None:
    subprocess.run([str(BIN), *args], cwd=cwd, capture_output=True, text=True, check=True)


MANIFEST = GOLDEN / "manifest.json"
# Outputs whose gzip exceeds this keep only their first lines (for the diff message) and sha256.
FULL_GZ_MAX = 64 * 1024
EXCERPT_LINES = 300


def _check(name: str, produced: Path) -> None:
    data = produced.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    lines = data.decode().splitlines()
    store = GOLDEN / f"{name}.gz"
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    if os.environ.get("AIQ_WRITE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        gz = gzip.compress(data, mtime=0)
        if len(gz) > FULL_GZ_MAX:
            gz = gzip.compress("\n".join(lines[:EXCERPT_LINES]).encode() + b"\n", mtime=0)
        store.write_bytes(gz)
        manifest[name] = {"sha256": digest, "bytes": len(data), "lines": len(lines)}
        MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        return
    want = manifest[name]
    if digest == want["sha256"]:
        return
    golden = gzip.decompress(store.read_bytes()).decode().splitlines()
    first = next(
        (i for i, (a, b) in enumerate(zip(golden, lines, strict=False)) if a != b),
        min(len(golden), len(lines)),
    )
    pytest.fail(
        f"{name} differs from the golden output (sha256 {digest} != {want['sha256']}; {len(lines)} lines, golden"
        f" {want['lines']}); first difference at line {first + 1}"
        + (
            f":\n  golden: {golden[first]}\n  now:    {lines[first] if first < len(lines) else '<end>'}"
            if first < len(golden)
            else f" (past the {len(golden)} stored lines)"
        )
    )


def test_inputs_are_the_recorded_ones(work: Path) -> None:
    """The outputs embed the DB fingerprints (size, rows): the inputs must be the recorded bytes."""
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    for db in ("candles_5m.db", "funding_rates.db"):
        digest = hashlib.sha256((work / db).read_bytes()).hexdigest()
        if os.environ.get("AIQ_WRITE_GOLDEN") == "1":
            manifest[db] = {"sha256": digest}
            GOLDEN.mkdir(exist_ok=True)
            MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        else:
            assert digest == manifest[db]["sha256"], f"{db}: the test inputs changed (not the backtester)"


def test_replay_report_and_trades_are_golden(work: Path) -> None:
    _bt(
        work, "replay", "--config", "cfg.yaml", "--candles-db", "candles_5m.db", "--interval", "5m",
        "--funding-db", "funding_rates.db", "--symbols", ",".join(COINS), "--output", "report.json",
        "--export-trades", "trades.csv", "--quiet",
    )  # fmt: skip
    assert len((work / "trades.csv").read_text().splitlines()) > 1000
    _check("replay_report.json", work / "report.json")
    _check("replay_trades.csv", work / "trades.csv")


def test_sweep_jsonl_is_golden(work: Path) -> None:
    _bt(
        work, "sweep", "--config", "cfg.yaml", "--candles-db", "candles_5m.db", "--interval", "5m",
        "--funding-db", "funding_rates.db", "--symbols", ",".join(SWEEP_COINS), "--sweep-spec", "spec.yaml",
        "--output", "sweep.jsonl", "--threads", "2", "--no-progress", "--quiet",
    )  # fmt: skip
    rows = [json.loads(x) for x in (work / "sweep.jsonl").read_text().splitlines()]
    assert len(rows) == 64 and len({r["total_pnl"] for r in rows}) > 32
    _check("sweep.jsonl", work / "sweep.jsonl")
    _check("sweep.jsonl.top.json", work / "sweep.jsonl.top.json")
