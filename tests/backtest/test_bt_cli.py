"""ai-quant-bt: dump-indicators, sweep, and clear errors on bad input (real data in tmp_path)."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from bt_helpers import BIN, HL, hl_frames, run_bt, write_candles_db

pytestmark = [
    pytest.mark.skipif(not BIN.exists(), reason=f"build the binary first: {BIN} is missing"),
    pytest.mark.skipif(not HL.exists(), reason=f"real data not found at {HL} (set AI_QUANT_SHARED_DATA)"),
]

GLOBAL_YAML = """
global:
  indicators: {ema_fast_window: 8, ema_slow_window: 15, adx_window: 10, bb_window: 15}
  thresholds: {entry: {min_adx: 15.0}}
  filters: {enable_ranging_filter: false, enable_anomaly_filter: false}
  trade: {entry_min_confidence: low}
  engine: {interval: 5m}
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bt_cli")
    write_candles_db(d / "candles_5m.db", hl_frames(["BTC", "ETH", "SOL"], "5m", n=4000), "5m")
    cfg = d / "cfg.yaml"
    cfg.write_text(GLOBAL_YAML)
    return {"dir": d, "db": d / "candles_5m.db", "cfg": cfg}


def test_dump_indicators_matches_bt_runtime(data: dict[str, Path], tmp_path: Path) -> None:
    bt_runtime = pytest.importorskip("bt_runtime")
    out = tmp_path / "ind.csv"
    run_bt(
        "dump-indicators",
        "--config",
        data["cfg"],
        "--candles-db",
        data["db"],
        "--symbol",
        "ETH",
        "--output",
        out,
    )
    got = pd.read_csv(out, float_precision="round_trip")
    df = hl_frames(["ETH"], "5m", n=4000)["ETH"]
    cfg = {"indicators": {"ema_fast_window": 8, "ema_slow_window": 15, "adx_window": 10, "bb_window": 15}}
    ref = bt_runtime.compute_indicators(
        df["t"].tolist(),
        *(df[c].tolist() for c in ("open", "high", "low", "close", "volume")),
        json.dumps(cfg),
    )
    assert list(got.columns) == list(ref.keys())
    assert len(got) == 4000
    for col, vals in ref.items():
        a = got[col].to_numpy(dtype=float)
        for x, y in zip(a, vals, strict=True):
            assert (math.isnan(x) and math.isnan(y)) or x == y, col


def _sweep(data: dict[str, Path], out: Path, spec: Path, *extra: str) -> None:
    run_bt(
        "sweep", "--config", data["cfg"], "--candles-db", data["db"], "--sweep-spec", spec,
        "--output", out, "-q", *extra,
    )  # fmt: skip


SPEC = """
axes:
  - {path: trade.sl_atr_mult, values: [1.5, 2.0, 3.0]}
  - {path: trade.enable_pyramiding, values: [0, 1]}
  - {path: trade.max_adds_per_symbol, values: [1, 3], gate: {path: trade.enable_pyramiding, eq: 1}}
  - {path: thresholds.entry.macd_hist_entry_mode, values: [0, 1]}
"""


def test_sweep_deterministic_across_threads_and_resume(data: dict[str, Path], tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    _sweep(data, one, spec, "--threads", "1")
    _sweep(data, two, spec, "--threads", "2", "--top-k", "5")
    lines = one.read_text().splitlines()
    assert len(lines) == 3 * (1 + 2) * 2  # gated axis expands only with pyramiding on
    assert one.read_bytes() == two.read_bytes()
    rows = [json.loads(x) for x in lines]
    assert [r["combo"] for r in rows] == list(range(len(rows)))
    assert len({r["config_id"] for r in rows}) == len(rows)
    top = json.loads((tmp_path / "two.jsonl.top.json").read_text())["rows"]
    best = sorted(rows, key=lambda r: (-r["total_pnl"], r["combo"]))[:5]
    assert [r["combo"] for r in top] == [r["combo"] for r in best]
    # Resume from a partial file (a torn last line included) gives the same bytes.
    part = tmp_path / "part.jsonl"
    part.write_text("\n".join(lines[:7]) + "\n" + lines[7][:20])
    _sweep(data, part, spec, "--threads", "2", "--resume")
    assert part.read_bytes() == one.read_bytes()


def test_sweep_verify_overrides(data: dict[str, Path], tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    res = run_bt("sweep", "--config", data["cfg"], "--candles-db", data["db"], "--sweep-spec", spec,
                 "--verify-overrides", "-q")  # fmt: skip
    assert "overrides OK" in res.stdout and "18 combos" in res.stdout
    spec.write_text("axes:\n  - {path: trade.sl_atr_multt, values: [1.0]}\n")
    res = run_bt("sweep", "--config", data["cfg"], "--candles-db", data["db"], "--sweep-spec", spec,
                 "--verify-overrides", "-q", check=False)  # fmt: skip
    assert res.returncode != 0 and "trade.sl_atr_multt" in res.stderr and "does not exist" in res.stderr


def _replay(data: dict[str, Path], *extra: str | Path):
    return run_bt("replay", "--config", data["cfg"], "--candles-db", data["db"], "--output",
                  data["dir"] / "r.json", *extra, check=False)  # fmt: skip


def test_bad_inputs_have_clear_errors(data: dict[str, Path], tmp_path: Path) -> None:
    res = run_bt("replay", "--config", tmp_path / "missing.yaml", "--candles-db", data["db"], check=False)
    assert res.returncode != 0 and "missing.yaml" in res.stderr and "does not exist" in res.stderr
    res = _replay(data, "--symbols", "BTC,NOPE")
    assert res.returncode != 0 and "NOPE" in res.stderr and "available: BTC, ETH, SOL" in res.stderr
    res = run_bt("replay", "--config", data["cfg"], "--candles-db", tmp_path / "none.db", check=False)
    assert res.returncode != 0 and "none.db" in res.stderr
    res = _replay(data, "--start", "yesterday")
    assert res.returncode != 0 and "yesterday" in res.stderr
    # A corrupt row: NULL close.
    bad = tmp_path / "candles_5m.db"
    bad.write_bytes(data["db"].read_bytes())
    con = sqlite3.connect(bad)
    con.execute(
        "UPDATE candles SET c = NULL WHERE symbol = 'ETH' AND t = (SELECT MIN(t) + 300000 FROM candles)"
    )
    con.commit()
    con.close()
    res = run_bt("replay", "--config", data["cfg"], "--candles-db", bad, check=False)
    assert res.returncode != 0 and "corrupt row ETH" in res.stderr and "NULL" in res.stderr
    # An inconsistent bar is refused by the kernel, naming symbol and time.
    con = sqlite3.connect(bad)
    con.execute("UPDATE candles SET c = h * 2 WHERE c IS NULL")
    con.commit()
    con.close()
    res = run_bt("replay", "--config", data["cfg"], "--candles-db", bad, check=False)
    assert res.returncode != 0 and "ETH" in res.stderr and "OHLC inconsistent" in res.stderr


def test_scope_start_end_and_partition_dir(data: dict[str, Path], tmp_path: Path) -> None:
    # Split one DB into two partition files in a directory; the replay is the same.
    df = hl_frames(["BTC", "ETH", "SOL"], "5m", n=4000)
    part = tmp_path / "parts"
    part.mkdir()
    write_candles_db(part / "candles_5m_a.db", {k: v.iloc[:2000] for k, v in df.items()}, "5m")
    write_candles_db(part / "candles_5m_b.db", {k: v.iloc[1990:] for k, v in df.items()}, "5m")
    a = run_bt("replay", "--config", data["cfg"], "--candles-db", data["db"], "-q")
    b = run_bt("replay", "--config", data["cfg"], "--candles-db", part, "-q")
    ra, rb = json.loads(a.stdout), json.loads(b.stdout)
    for k in ("final_equity", "total_trades", "sharpe_ratio", "by_symbol"):
        assert ra[k] == rb[k], k
    t0 = int(df["BTC"]["t"].iloc[1000])
    t1 = int(df["BTC"]["t"].iloc[2999])
    c = run_bt("replay", "--config", data["cfg"], "--candles-db", data["db"], "--start", str(t0 // 1000),
               "--end", pd.Timestamp(t1, unit="ms").isoformat())  # fmt: skip
    rc = json.loads(c.stdout)
    assert rc["inputs"]["first_bar_ms"] == t0 and rc["inputs"]["last_bar_ms"] == t1
    assert rc["bars"] == 3 * 2000
    assert "scope:" in c.stderr


def test_init_state_resume_equals_straight_run(data: dict[str, Path], tmp_path: Path) -> None:
    common = ["--config", data["cfg"], "--candles-db", data["db"], "-q"]
    df = hl_frames(["BTC"], "5m", n=4000)["BTC"]
    cut = str(int(df["t"].iloc[2500]))
    run_bt(
        "replay",
        *common,
        "--end",
        cut,
        "--export-state",
        tmp_path / "st.json",
        "--output",
        tmp_path / "x.json",
    )
    run_bt("replay", *common, "--init-state", tmp_path / "st.json", "--output", tmp_path / "a.json",
           "--export-trades", tmp_path / "a.csv")  # fmt: skip
    run_bt("replay", *common, "--output", tmp_path / "b.json", "--export-trades", tmp_path / "b.csv")
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a["final_equity"] == b["final_equity"] and a["total_fees"] == b["total_fees"]
    rows_a = [r.split(",")[2:] for r in (tmp_path / "a.csv").read_text().splitlines()[1:]]
    rows_b = [r.split(",")[2:] for r in (tmp_path / "b.csv").read_text().splitlines()[1:]]
    # The resumed run's fills are exactly the straight run's fills after the cut (cash_after aside).
    assert rows_a and [r[:-1] for r in rows_a] == [r[:-1] for r in rows_b[len(rows_b) - len(rows_a) :]]
