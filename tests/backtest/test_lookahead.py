"""The lookahead proof (tools/lookahead_check.py) on a short window of real Hyperliquid data: for
random cuts, the run on data truncated at the cut reproduces every fill, equity step, indicator
value and kernel decision of the full run up to the cut, for ai-quant-bt replay (plain, exit
sub-bars, entry and exit sub-bars), dump-indicators and bt_runtime driven from Python. The
harness itself is shown to catch a lookahead (a feed that peeks one bar ahead)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from bt_helpers import BIN, HL, ROOT, hl_frames, hl_funding, write_candles_db, write_funding_db

pytest.importorskip("bt_runtime")
pytestmark = [
    pytest.mark.skipif(not BIN.exists(), reason=f"build the binary first: {BIN} is missing"),
    pytest.mark.skipif(not HL.exists(), reason=f"real data not found at {HL} (set AI_QUANT_SHARED_DATA)"),
]

TOOL = ROOT / "tools" / "lookahead_check.py"
COINS = ["BTC", "ETH", "SOL"]
START, END = "2025-03-15", "2025-03-29"
T0, T1 = 1_741_996_800_000, 1_743_206_400_000  # START and END in ms
GLOBAL = {
    "indicators": {"ema_fast_window": 8, "ema_slow_window": 15, "adx_window": 10, "bb_window": 15},
    "thresholds": {"entry": {"min_adx": 15.0}},
    "filters": {"enable_ranging_filter": False, "enable_anomaly_filter": False},
    "trade": {"entry_min_confidence": "low", "tp_partial_pct": 0.7, "tp_partial_atr_mult": 1.0},
    "engine": {"interval": "1h"},
}


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lookahead_check", TOOL)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["lookahead_check"] = mod  # dataclasses resolve their module by name
    spec.loader.exec_module(mod)
    return mod


la = _load_tool()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("lookahead")

    def window(frames: dict) -> dict:  # a day either side: the tool trims to the window itself
        return {
            s: df[(df["t"] >= T0 - 86_400_000) & (df["t"] <= T1 + 86_400_000)] for s, df in frames.items()
        }

    write_candles_db(d / "candles_1h.db", window(hl_frames(COINS, "1h")), "1h")
    write_candles_db(d / "candles_5m.db", window(hl_frames(COINS, "5m")), "5m")
    write_funding_db(d / "funding_rates.db", hl_funding(COINS))
    cfg = d / "cfg.yaml"
    cfg.write_text(json.dumps({"global": GLOBAL, "symbols": {"ETH": {"trade": {"sl_atr_mult": 1.2}}}}))
    return {"dir": d, "h1": d / "candles_1h.db", "m5": d / "candles_5m.db", "funding": d / "funding_rates.db",
            "cfg": cfg}  # fmt: skip


def test_truncated_runs_reproduce_the_full_run(data: dict[str, Path]) -> None:
    res = subprocess.run(
        [sys.executable, str(TOOL), "--candles-db", data["h1"], "--interval", "1h", "--sub-candles-db", data["m5"],
         "--sub-interval", "5m", "--funding-db", data["funding"], "--config", data["cfg"],
         "--symbols", ",".join(COINS), "--start", START, "--end", END, "--cuts", "4", "--seed", "2",
         "--bin", BIN],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[-1] == "result: OK (4 cut(s), 0 difference(s))"
    checked = [line for line in lines if line.startswith("ok    cut ")]
    # 4 cuts x (3 replays + 3 symbols' indicators + the kernel path)
    assert len(checked) == 4 * 7, lines
    assert not [line for line in lines if line.startswith("DIFF")]
    # Not vacuous: the truncated runs reproduced fills, and every cut lies after the warm-up.
    fills = [int(m[1]) for line in checked if (m := re.search(r" replay \((\d+) fills", line))]
    assert len(fills) == 4 and min(fills) > 0 and sum(fills) >= 100, fills
    full = [line for line in lines if line.startswith("full  replay")]
    assert len(full) == 3 and all(int(re.search(r"(\d+) fills", x)[1]) >= 30 for x in full), full


def test_5m_main_bars_cut_off_the_funding_hour(data: dict[str, Path]) -> None:
    """5m decisions with hourly funding: most cuts fall between two funding times."""
    res = subprocess.run(
        [sys.executable, str(TOOL), "--candles-db", data["m5"], "--interval", "5m", "--funding-db", data["funding"],
         "--config", data["cfg"], "--symbols", ",".join(COINS), "--start", "2025-03-20", "--end", "2025-03-24",
         "--cuts", "3", "--seed", "4", "--paths", "replay,indicators,kernel", "--bin", BIN],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[-1] == "result: OK (3 cut(s), 0 difference(s))"
    cuts = {m[1] for line in lines if (m := re.match(r"ok    cut (\S+) replay ", line))}
    assert len(cuts) == 3 and any(not c.endswith(":00:00Z") for c in cuts), cuts
    assert len([line for line in lines if line.startswith("ok    cut ")]) == 3 * 5


def _peeking(inputs: la.Inputs) -> la.Inputs:
    """A leaky feed: each bar carries the next bar's close (clamped into its own high/low)."""
    by_sym: dict[str, list] = {}
    for b in inputs.main:
        by_sym.setdefault(b[0], []).append(b)
    out = []
    for bars in by_sym.values():
        for i, (s, t, o, h, lo, c, v) in enumerate(bars):
            nxt = bars[i + 1][5] if i + 1 < len(bars) else c
            out.append((s, t, o, h, lo, min(max(nxt, lo), h), v))
    return la.Inputs(inputs.interval, sorted(out, key=lambda b: (b[1], b[0])), funding=inputs.funding)


def test_the_harness_catches_a_feed_that_peeks_ahead(data: dict[str, Path]) -> None:
    main = la.read_bars(data["h1"], "1h", COINS, T0, T1)
    inputs = la.Inputs("1h", main, funding=la.read_funding(data["funding"], COINS, T0, T1))
    (tau,) = la.choose_cuts(main, inputs.iv, 1, seed=5)
    base, per_symbol = la.merged_configs(BIN, data["cfg"], COINS)
    honest = la.compare_steps(
        la.kernel_run(inputs, base, per_symbol), la.kernel_run(inputs.truncated(tau), base, per_symbol)
    )
    assert honest is None
    leaky_full = la.kernel_run(_peeking(inputs), base, per_symbol)
    leaky_cut = la.kernel_run(_peeking(inputs.truncated(tau)), base, per_symbol)
    diff = la.compare_steps(leaky_full, leaky_cut)
    assert diff is not None and diff.startswith(f"kernel step t_close={tau} "), diff


def test_compare_bin_names_a_changed_extra_or_missing_row() -> None:
    def fill(t: int, px: str) -> dict[str, str]:
        return {"timestamp_ms": str(t), "symbol": "BTC", "price": px}

    equity = [{"timestamp_ms": str(t), "equity": "1.0"} for t in (10, 20, 30)]
    full = la.BinRun([fill(10, "1.5"), fill(30, "2.5")], equity, None)
    same = la.BinRun([fill(10, "1.5")], equity[:2], None)
    assert la.compare_bin(full, same, 20, "replay") is None
    changed = la.BinRun([fill(10, "1.25")], equity[:2], None)
    assert "replay fill #0: full run" in str(la.compare_bin(full, changed, 20, "replay"))
    extra = la.BinRun([fill(10, "1.5"), fill(20, "9")], equity[:2], None)
    assert "the truncated run has 2 rows, the full run only 1" in str(
        la.compare_bin(full, extra, 20, "replay")
    )
    short = la.BinRun([fill(10, "1.5")], equity[:1], None)
    assert "not the cut's close 20" in str(la.compare_bin(full, short, 20, "replay"))


def test_bad_input_is_one_line_exit_2(data: dict[str, Path]) -> None:
    res = subprocess.run(
        [sys.executable, str(TOOL), "--candles-db", data["h1"], "--interval", "1h", "--config", data["cfg"],
         "--symbols", "BTC,NOPE", "--start", START, "--end", END, "--bin", BIN],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 2
    assert res.stderr.strip() == f"lookahead_check: {data['h1']}: no 1h bars for NOPE in the window"
