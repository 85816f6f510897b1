"""Market-regime rules (breadth filter, auto-reverse, BTC regime gate) are kernel decisions: the replay
applies them, and the daemon's kernel (bt_runtime) makes the same entries and blocks on the same bars.

Real HL 5m bars of four coins; the daemon-side loop follows docs/backtester.md's calling convention
(step every symbol at bar time t in name order, then evaluate(t + interval)); no funding DB, so both
sides see the same inputs.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
from bt_helpers import BIN, HL, INTERVAL_MS, hl_frames, run_bt, write_candles_db

bt_runtime = pytest.importorskip("bt_runtime")

pytestmark = [
    pytest.mark.skipif(not BIN.exists(), reason=f"build the binary first: {BIN} is missing"),
    pytest.mark.skipif(not HL.exists(), reason=f"real data not found at {HL} (set AI_QUANT_SHARED_DATA)"),
]

COINS = ["BTC", "ETH", "SOL", "kPEPE"]
BASE = {
    "indicators": {"ema_fast_window": 8, "ema_slow_window": 15, "adx_window": 10, "bb_window": 15},
    "thresholds": {"entry": {"min_adx": 15.0}},
    "filters": {"enable_ranging_filter": False, "enable_anomaly_filter": False},
    "trade": {"entry_min_confidence": "low", "enable_ssf_filter": False, "enable_reef_filter": False},
    "engine": {"interval": "5m"},
}
REGIMES = {
    "off": {},
    # Longs need more than half of the watchlist bullish; shorts need less than half.
    "filter": {
        "enable_regime_filter": True,
        "breadth_block_long_below": 50.0,
        "breadth_block_short_above": 50.0,
    },
    # Every entry flips side (band 0..100 covers every breadth value).
    "reverse": {
        "enable_auto_reverse": True,
        "auto_reverse_breadth_low": 0.0,
        "auto_reverse_breadth_high": 100.0,
    },
    "gate": {
        "enable_regime_gate": True,
        "regime_gate_btc_adx_min": 30.0,
        "regime_gate_btc_atr_pct_min": 0.002,
    },
}


def _config(regime: str) -> dict:
    return {**BASE, "market_regime": REGIMES[regime]}


@pytest.fixture(scope="module")
def candles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_candles_db(
        tmp_path_factory.mktemp("regime") / "candles_5m.db", hl_frames(COINS, n=6_000), "5m"
    )


def _replay(candles: Path, regime: str, d: Path) -> tuple[dict, list[dict]]:
    cfg = d / f"{regime}.yaml"
    cfg.write_text(json.dumps({"global": _config(regime)}))
    run_bt("replay", "--config", cfg, "--candles-db", candles, "--output", d / f"{regime}.json",
           "--export-trades", d / f"{regime}.csv")  # fmt: skip
    with open(d / f"{regime}.csv") as f:
        return json.loads((d / f"{regime}.json").read_text()), list(csv.DictReader(f))


def _kernel_path(candles: Path, regime: str) -> tuple[list[tuple[int, str, str]], Counter[str]]:
    import sqlite3

    con = sqlite3.connect(candles)
    rows = sorted(con.execute("SELECT t, symbol, o, h, l, c, v FROM candles").fetchall())
    con.close()
    kernel = bt_runtime.Kernel(json.dumps(_config(regime)), initial_cash=10_000.0)
    opens: list[tuple[int, str, str]] = []
    blocked: Counter[str] = Counter()
    i = 0
    while i < len(rows):
        t = rows[i][0]
        while i < len(rows) and rows[i][0] == t:
            _, sym, o, h, lo, c, v = rows[i]
            kernel.step_candle(sym, t, o, h, lo, c, v)
            i += 1
        res = kernel.evaluate(t + INTERVAL_MS["5m"])
        opens += [(f.timestamp_ms, f.symbol, f.side) for f in res.fills if f.kind == "open"]
        blocked.update(code for _, code in res.blocked)
    return opens, blocked


@pytest.mark.parametrize("regime", list(REGIMES))
def test_replay_and_daemon_kernel_agree_under_each_regime_rule(
    candles: Path, regime: str, tmp_path: Path
) -> None:
    report, trades = _replay(candles, regime, tmp_path)
    rs_opens = [(int(r["timestamp_ms"]), r["symbol"], r["side"]) for r in trades if r["kind"] == "open"]
    py_opens, py_blocked = _kernel_path(candles, regime)
    assert len(rs_opens) >= 20, f"{regime}: too few entries to prove anything ({len(rs_opens)})"
    assert rs_opens == py_opens
    by_reason = report["gate_stats"]["blocked_by_reason"]
    for code in ("breadth_long", "breadth_short", "regime_gate", "regime_gate_no_data"):
        assert by_reason.get(code, 0) == py_blocked.get(code, 0), code


def test_each_rule_changes_what_is_traded(candles: Path, tmp_path: Path) -> None:
    runs = {r: _replay(candles, r, tmp_path) for r in REGIMES}
    opens = {r: [(t["timestamp_ms"], t["symbol"], t["side"]) for t in tr if t["kind"] == "open"]
             for r, (_, tr) in runs.items()}  # fmt: skip
    stats = {r: rep["gate_stats"]["blocked_by_reason"] for r, (rep, _) in runs.items()}
    assert not any(k in stats["off"] for k in ("breadth_long", "breadth_short", "regime_gate"))
    assert stats["filter"].get("breadth_long", 0) > 0 and stats["filter"].get("breadth_short", 0) > 0
    assert stats["gate"].get("regime_gate", 0) > 0
    for r in ("filter", "reverse", "gate"):
        assert opens[r] != opens["off"], f"{r} changed nothing"
    # Auto-reverse over the whole band: the first entry of the run is the off-run's first, flipped.
    first_off, first_rev = opens["off"][0], opens["reverse"][0]
    assert first_off[:2] == first_rev[:2] and first_off[2] != first_rev[2]
