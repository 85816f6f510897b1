"""Sweep at scale: indicator series shared across combos, and a lazily expanded grid.

- Each distinct (symbol, indicator kind, parameters) series is computed once and shared by every
  combo that reads it; combos step the kernel on snapshots assembled from those series
  (`Kernel::step_snapshot`); the output must be byte-identical to every combo computing its own
  indicators (`--no-share-indicators`).
- The grid is never materialised: a gated grid of hundreds of millions of combos is counted by
  `--verify-overrides` and streamed with `--limit` in the memory a tiny grid needs.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from bt_helpers import BIN, HL, hl_frames, run_bt, write_candles_db

pytestmark = [
    pytest.mark.skipif(not BIN.exists(), reason=f"build the binary first: {BIN} is missing"),
    pytest.mark.skipif(not HL.exists(), reason=f"real data not found at {HL} (set AI_QUANT_SHARED_DATA)"),
]

CFG = """
global:
  indicators: {ema_fast_window: 8, ema_slow_window: 15, adx_window: 10, bb_window: 15}
  thresholds: {entry: {min_adx: 15.0}}
  filters: {enable_ranging_filter: false, enable_anomaly_filter: false}
  trade: {entry_min_confidence: low}
  engine: {interval: 5m}
symbols:
  ETH: {indicators: {adx_window: 12}}
"""

# Two indicator configs (the axis is listed last, i.e. fastest, the hard case for sharing) times
# 3 x 2 trade settings.
SHARE_SPEC = """
axes:
  - {path: trade.sl_atr_mult, values: [1.5, 2.0, 3.0]}
  - {path: trade.trailing_distance_atr, values: [0.5, 0.8]}
  - {path: indicators.ema_fast_window, values: [8, 12]}
"""

# Pyramiding off freezes the 3 gated axes: 4^11 + 4^14 = 272,629,760 combos.
HUGE_AXES = [
    ("trade.sl_atr_mult", [0.5, 1.0, 1.5, 2.0], False),
    ("trade.tp_atr_mult", [0.5, 1.0, 1.5, 2.0], False),
    ("trade.trailing_distance_atr", [0.5, 1.0, 1.5, 2.0], False),
    ("trade.trailing_start_atr", [0.5, 1.0, 1.5, 2.0], False),
    ("trade.allocation_pct", [0.01, 0.02, 0.03, 0.05], False),
    ("trade.leverage", [1, 2, 3, 4], False),
    ("trade.add_fraction_of_base_margin", [0.2, 0.4, 0.6, 0.8], True),
    ("trade.max_adds_per_symbol", [1, 2, 3, 4], True),
    ("trade.add_min_profit_atr", [0.5, 1.0, 1.5, 2.0], True),
    ("trade.breakeven_start_atr", [0.5, 1.0, 1.5, 2.0], False),
    ("trade.tp_partial_pct", [0.3, 0.5, 0.7, 0.9], False),
    ("thresholds.entry.min_adx", [10, 15, 20, 25], False),
    ("trade.entry_cooldown_s", [10, 15, 20, 25], False),
    ("trade.exit_cooldown_s", [10, 15, 20, 25], False),
]
HUGE_COUNT = 4**11 + 4**14


def _spec(axes: list[tuple[str, list[float], bool]]) -> str:
    out = "axes:\n  - {path: trade.enable_pyramiding, values: [0, 1]}\n"
    for path, values, gated in axes:
        gate = ", gate: {path: trade.enable_pyramiding, eq: 1}" if gated else ""
        out += f"  - {{path: {path}, values: {values}{gate}}}\n"
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bt_scale")
    write_candles_db(d / "candles_5m.db", hl_frames(["BTC", "ETH", "SOL"], "5m", n=6000), "5m")
    (d / "cfg.yaml").write_text(CFG)
    (d / "share.yaml").write_text(SHARE_SPEC)
    (d / "huge.yaml").write_text(_spec(HUGE_AXES))
    return {"dir": d, "db": d / "candles_5m.db", "cfg": d / "cfg.yaml"}


def _sweep(data: dict[str, Path], spec: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_bt(
        "sweep", "--config", data["cfg"], "--candles-db", data["db"], "--sweep-spec", data["dir"] / spec,
        "--output", out, "--no-progress", *extra,
    )  # fmt: skip


def _peak_rss_kib(args: list[str], tmp: Path) -> tuple[int, str]:
    """Run the binary; (its peak RSS in KiB from wait4, its stdout)."""
    out = tmp / "stdout.txt"
    with open(out, "w") as f:
        p = subprocess.Popen([str(BIN), *args], stdout=f, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    assert p.returncode == 0, out.read_text()
    return ru.ru_maxrss, out.read_text()


def test_shared_indicators_give_byte_identical_sweeps(data: dict[str, Path], tmp_path: Path) -> None:
    shared, own = tmp_path / "shared.jsonl", tmp_path / "own.jsonl"
    res = _sweep(data, "share.yaml", shared, "--threads", "2")
    _sweep(data, "share.yaml", own, "--threads", "1", "--no-share-indicators")
    # Each distinct (symbol, indicator, parameters) the decisions read, once: per symbol EMA 8,
    # 12 (the fast axis) and 15 (slow), two volume SMAs (20, 5) and one of each other kind read:
    # 11 x 3. Not read with this config (aiq_kernel::reads): the macro EMA (macro alignment off)
    # and the slow-EMA slope (slow-drift entries off).
    assert "indicators: 33 series computed and shared by 12 of 12 combos" in res.stderr
    assert "by kind: adx 3, atr 3, bb 3, ema 9, macd 3, rsi 3, stoch_rsi 3, vol_sma 6" in res.stderr
    assert shared.read_bytes() == own.read_bytes()
    rows = [json.loads(x) for x in shared.read_text().splitlines()]
    assert len(rows) == 12 and len({r["total_pnl"] for r in rows}) == 12
    assert sum(r["total_trades"] for r in rows) > 100
    # A budget too small for any series: every combo runs on its own banks, same bytes.
    small = tmp_path / "small.jsonl"
    res = _sweep(data, "share.yaml", small, "--threads", "2", "--indicator-cache-mb", "1")
    assert "indicators: 0 series computed and shared by 0 of 12 combos" in res.stderr
    assert small.read_bytes() == own.read_bytes()


def test_huge_gated_grid_is_counted_and_streamed_in_flat_memory(
    data: dict[str, Path], tmp_path: Path
) -> None:
    common = ["sweep", "--config", str(data["cfg"]), "--candles-db", str(data["db"]), "-q"]
    (tmp_path / "tiny.yaml").write_text("axes:\n  - {path: trade.sl_atr_mult, values: [1.5]}\n")
    tiny = [*common, "--sweep-spec", str(tmp_path / "tiny.yaml"), "--verify-overrides"]
    tiny_rss, tiny_out = _peak_rss_kib(tiny, tmp_path)
    huge = [*common, "--sweep-spec", str(data["dir"] / "huge.yaml"), "--verify-overrides"]
    huge_rss, huge_out = _peak_rss_kib(huge, tmp_path)
    assert "1 combos" in tiny_out
    assert f"15 axes, {HUGE_COUNT} combos" in huge_out
    # A materialised grid would need >20 GiB (15 f64 per combo); the count costs nothing extra.
    assert huge_rss - tiny_rss < 8 * 1024, (tiny_rss, huge_rss)

    # A bounded run streams the first combos in grid order; --resume continues from there.
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _sweep(data, "huge.yaml", a, "--limit", "40", "--threads", "2")
    rows = [json.loads(x) for x in a.read_text().splitlines()]
    assert [r["combo"] for r in rows] == list(range(40))
    # Pyramiding off (combo 0..): gated axes frozen at their first value; the last axis moves fastest.
    assert rows[0]["overrides"]["trade.max_adds_per_symbol"] == 1
    assert [r["overrides"]["trade.exit_cooldown_s"] for r in rows[:5]] == [10, 15, 20, 25, 10]
    _sweep(data, "huge.yaml", a, "--limit", "80", "--threads", "2", "--resume")
    _sweep(data, "huge.yaml", b, "--limit", "80", "--threads", "1")
    assert a.read_bytes() == b.read_bytes()
    top = json.loads((tmp_path / "b.jsonl.top.json").read_text())
    assert top["combos"] == HUGE_COUNT and len(top["rows"]) == 80


def test_verify_overrides_fails_on_unknown_path_in_a_huge_grid(data: dict[str, Path], tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(_spec([*HUGE_AXES, ("trade.no_such_knob", [1, 2], False)]))
    res = run_bt(
        "sweep", "--config", data["cfg"], "--candles-db", data["db"], "--sweep-spec", spec,
        "--verify-overrides", "-q", check=False,
    )  # fmt: skip
    assert res.returncode == 2
    assert "trade.no_such_knob" in res.stderr and "does not exist" in res.stderr


def test_ema_grid_computes_each_ema_once(tmp_path: Path) -> None:
    """The issue's 500-combo grid (ema_slow 60..212 step 8 x ema_fast 5..53 step 2): 45 EMA series
    and nothing else ema_cross does not read, not 500 banks; same bytes as every combo on its own."""
    write_candles_db(tmp_path / "c.db", hl_frames(["BTC"], "5m", n=2500), "5m")
    (tmp_path / "cfg.yaml").write_text("global:\n  strategy: ema_cross\n  engine: {interval: 5m}\n")
    slow, fast = list(range(60, 213, 8)), list(range(5, 54, 2))
    (tmp_path / "grid.yaml").write_text(
        f"axes:\n  - {{path: indicators.ema_slow_window, values: {slow}}}\n"
        f"  - {{path: indicators.ema_fast_window, values: {fast}}}\n"
    )
    common = ["sweep", "--config", tmp_path / "cfg.yaml", "--candles-db", tmp_path / "c.db", "--no-progress"]
    common += ["--sweep-spec", tmp_path / "grid.yaml", "--threads", "2"]
    res = run_bt(*common, "--output", tmp_path / "shared.jsonl")
    assert len(slow) * len(fast) == 500
    assert "shared by 500 of 500 combos" in res.stderr
    assert (
        "indicators: 45 series computed" in res.stderr and "by kind: ema 45\n" in res.stderr
    )  # 20 slow + 25 fast
    run_bt(*common, "--output", tmp_path / "own.jsonl", "--no-share-indicators")
    assert (tmp_path / "shared.jsonl").read_bytes() == (tmp_path / "own.jsonl").read_bytes()
    rows = [json.loads(x) for x in (tmp_path / "shared.jsonl").read_text().splitlines()]
    assert len(rows) == 500 and sum(r["total_trades"] > 0 for r in rows) > 400
