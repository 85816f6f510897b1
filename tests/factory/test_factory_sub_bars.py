"""The factory on the blueprint's primary mode (profile ``deep-primary``: 30m bars, 3m entries and
exits): the import builds both intervals from the shipped files by exact aggregation (30m from 5m,
3m from 1m: Hyperliquid ships neither), and every sweep and replay of the run carries the sub-bars
(``DataScope``), so the sweep's numbers are the replay's and differ from the same sweep without
sub-bars."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from strategy.factory.backtester import DataScope, find_binary, replay, sweep
from strategy.factory.pipeline import PROFILES, default_data_src, import_data

pytestmark = pytest.mark.slow
SYMS = ("BTC", "ETH")


def test_deep_primary_imports_30m_and_3m_and_sweeps_with_sub_bars(tmp_path: Path) -> None:
    try:
        find_binary()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    src = default_data_src()
    if not (src / "hyperliquid" / "futures" / "BTC_USDC_USDC-1m-futures.feather").exists():
        pytest.skip("bundled data not found (AI_QUANT_SHARED_DATA)")
    p = dataclasses.replace(PROFILES["deep-primary"], symbols=SYMS)
    assert (p.interval, p.entry_interval, p.exit_interval) == ("30m", "3m", "3m")
    db = tmp_path / "db"
    import_data(p, src, db)
    for iv, per_day in (("30m", 48), ("3m", 480)):
        with sqlite3.connect(db / f"candles_{iv}.db") as c:
            n = c.execute("SELECT COUNT(*) FROM candles WHERE interval=? AND symbol='BTC'", (iv,)).fetchone()[
                0
            ]
        assert n >= 4 * per_day, (iv, n)  # 30m: months (from 5m); 3m: the 1m files' five days
    base = tmp_path / "base.yaml"
    base.write_text(json.dumps({"global": {
        "indicators": {"ema_fast_window": 8, "ema_slow_window": 15, "ema_macro_window": 50},
        "thresholds": {"entry": {"min_adx": 15.0}},
        "trade": {"entry_min_confidence": "low"},
        "engine": {"interval": "30m", "entry_interval": "3m", "exit_interval": "3m"}}}))  # fmt: skip
    spec = tmp_path / "spec.yaml"
    spec.write_text("axes:\n  - {path: trade.sl_atr_mult, values: [1.5, 3.0]}\n")
    scope = DataScope(db / "candles_30m.db", db / "funding_rates.db", "30m", SYMS, "2025-07-10", "2025-07-26",
                      "3m", "3m")  # fmt: skip
    assert "--entry-candles-db" in scope.args() and str(db / "candles_3m.db") in scope.args()
    rows = [
        json.loads(x)
        for x in sweep(base, spec, scope, tmp_path / "sub.jsonl", top_k=2).read_text().splitlines()
    ]
    plain = dataclasses.replace(scope, entry_interval="", exit_interval="")
    flat = [
        json.loads(x)
        for x in sweep(base, spec, plain, tmp_path / "plain.jsonl", top_k=2).read_text().splitlines()
    ]
    assert len(rows) == len(flat) == 2
    assert [r["total_pnl"] for r in rows] != [r["total_pnl"] for r in flat]
    # The sweep's first combo replayed through the factory's replay(): the same sub-bar run.
    cfg = tmp_path / "combo.yaml"
    doc = json.loads(base.read_text())
    doc["global"]["trade"]["sl_atr_mult"] = 1.5
    cfg.write_text(json.dumps(doc))
    r = replay(cfg, scope, tmp_path / "replay")
    mine = next(x for x in rows if x["overrides"]["trade.sl_atr_mult"] == 1.5)
    assert r.total_trades == mine["total_trades"] > 0
    assert r.total_pnl == pytest.approx(mine["total_pnl"], rel=1e-9, abs=1e-9)
