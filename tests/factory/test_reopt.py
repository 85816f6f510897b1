"""Re-optimising walk-forward on real HL data, the fold layout, and relative profile windows."""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from exchange.timestamps import iso_ms as _ms
from exchange.timestamps import ms_iso as _iso
from strategy.factory.deploy import write_yaml_atomic
from strategy.factory.optimize import CpuBackend, Objective, Param
from strategy.factory.pipeline import PROFILES, resolve_window
from strategy.factory.reopt import reopt_checks, reoptimising_walk_forward, rolling_folds
from strategy.factory.thresholds import THRESHOLDS

from .conftest import scope_of

DAY = 86_400_000
STEP = 300_000


def test_rolling_folds_tile_the_range_without_overlap() -> None:
    a, b = 0, 110 * DAY
    folds = rolling_folds(a, b, 4, 0.6, STEP)
    assert len(folds) == 4 and folds[0].train_start_ms == a
    for f in folds:
        assert f.train_start_ms < f.test_start_ms < f.test_end_ms
        # train is 1.5 test windows long (0.6 / 0.4)
        assert (f.test_start_ms - f.train_start_ms) == pytest.approx(
            1.5 * (f.test_end_ms - f.test_start_ms), abs=3 * STEP
        )
        assert f.train_start_ms % STEP == 0 and f.test_end_ms % STEP == 0
    for x, y in itertools.pairwise(folds):
        assert y.test_start_ms == x.test_end_ms  # contiguous OOS windows
    assert folds[-1].test_end_ms == b
    with pytest.raises(ValueError, match="too short"):
        rolling_folds(0, 10 * STEP, 4, 0.6, STEP)
    with pytest.raises(ValueError):
        rolling_folds(0, b, 0, 0.6, STEP)


@pytest.mark.slow
def test_reoptimising_walk_forward_on_real_data(hl_db: Path, tmp_path: Path) -> None:
    syms = ("BTC", "ETH", "SOL")
    scope = scope_of(hl_db, "2025-04-01", "2025-06-30", syms)
    base_doc = {"global": {"strategy": "mei_alpha_v1", "engine": {"interval": "5m"}}}
    base = tmp_path / "base.yaml"
    write_yaml_atomic(base, base_doc)
    space = (
        Param("trade.sl_atr_mult", 1.0, 4.0, step=0.5),
        Param("indicators.ema_fast_window", 5, 30, kind="int"),
    )
    r = reoptimising_walk_forward(
        space, lambda s, w: CpuBackend(base, s, w, 2), scope, base_doc, tmp_path / "wfo", Objective("pnl", 10),
        n_folds=3, train_share=0.6, trials_per_fold=8, batch_size=4, seed=5,
    )  # fmt: skip
    assert len(r.folds) == 3
    for i, f in enumerate(r.folds):
        rows = [
            json.loads(x) for x in (tmp_path / "wfo" / f"fold{i}" / "trials.jsonl").read_text().splitlines()
        ]
        assert len(rows) == f.n_trials and 1 <= f.n_trials <= 8
        # the chosen config is the in-sample winner ...
        assert f.config_id == max(rows, key=lambda x: x["score"])["config_id"]
        # ... and its in-sample PnL is that of a backtest that ends before the test window starts
        be = CpuBackend(base, scope_of(hl_db, *_is_window(f.fold.train_start_ms, f.fold.test_start_ms), syms),
                        tmp_path / "check", 1)  # fmt: skip
        (again,) = be.evaluate([f.params])
        assert again.config_id == f.config_id and again.total_pnl == f.is_pnl
        assert f.oos_closed_trades >= 0 and f.oos_max_dd_pct >= 0
    # the aggregate feeds the walk-forward gates under wfo_* names
    assert r.oos_total_pnl == pytest.approx(sum(f.oos_pnl for f in r.folds))
    names = [c.name for c in reopt_checks(r, THRESHOLDS)]
    assert names == ["wfo_efficiency", "wfo_profitable_share", "wfo_median_oos_daily_return"]
    share = sum(f.oos_pnl > 0 for f in r.folds) / 3
    assert r.wf.profitable_share == pytest.approx(share)


def _is_window(a_ms: int, b_ms: int) -> tuple[str, str]:
    return _iso(a_ms), _iso(b_ms - STEP)


def test_relative_window_follows_the_data(hl_db: Path, tmp_path: Path) -> None:
    """The nightly profile's window ends at the data's last bar and moves when a bar arrives."""
    db = tmp_path / "db"
    db.mkdir()
    shutil.copy(hl_db / "candles_5m.db", db / "candles_5m.db")
    prof = dataclasses.replace(PROFILES["daily"], symbols=("BTC", "ETH"))
    assert prof.window_days is not None and not prof.start  # no fixed dates any more
    with sqlite3.connect(db / "candles_5m.db") as c:
        (last,) = c.execute("SELECT MAX(t) FROM candles WHERE symbol IN ('BTC','ETH')").fetchone()
    p1 = resolve_window(prof, db)
    assert _ms(p1.end) == last and _ms(p1.end) - _ms(p1.start) == int(prof.window_days * DAY)
    with sqlite3.connect(db / "candles_5m.db") as c:
        cols = [r[1] for r in c.execute("PRAGMA table_info(candles)")]
        row = c.execute(
            f"SELECT {','.join(cols)} FROM candles WHERE symbol='BTC' AND t=?", (last,)
        ).fetchone()
        new = [last + STEP if k == "t" else v for k, v in zip(cols, row, strict=True)]
        if "t_close" in cols:
            new[cols.index("t_close")] = row[cols.index("t_close")] + STEP
        c.execute(f"INSERT INTO candles({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", new)
    p2 = resolve_window(prof, db)
    assert _ms(p2.end) == last + STEP and _ms(p2.start) == _ms(p1.start) + STEP
    # a fixed-window profile is left alone; a profile with neither is refused
    assert resolve_window(PROFILES["smoke"], db) is PROFILES["smoke"]
    with pytest.raises(ValueError, match="window_days"):
        resolve_window(dataclasses.replace(prof, window_days=None), db)


def test_one_window_arithmetic_for_pipeline_optimize_and_reopt() -> None:
    """The three modules share strategy.factory.window and exchange.timestamps (they used to import
    each other's private copies, a runtime import circle): a naive, a Z and a +00:00 timestamp are
    the same instant."""
    import strategy.factory.optimize as opt
    import strategy.factory.pipeline as pipe
    import strategy.factory.reopt as reopt
    from strategy.factory import window

    assert pipe.INTERVAL_MS is opt.INTERVAL_MS is reopt.INTERVAL_MS is window.INTERVAL_MS
    t = 1_735_689_600_000  # 2025-01-01T00:00:00Z
    for text in ("2025-01-01", "2025-01-01T00:00:00", "2025-01-01T00:00:00Z", "2025-01-01T00:00:00+00:00"):
        assert _ms(text) == t, text
    assert _iso(t) == "2025-01-01T00:00:00Z" and _ms(_iso(t + 300_000)) == t + 300_000


def test_one_parse_time_for_the_sim_and_the_download_tool() -> None:
    """``--start``/``--end`` of ``python -m exchange.sim`` and tools/download_binance.py take epoch ms
    or ISO (naive means UTC) through the one exchange.timestamps.parse_time."""
    import tools.download_binance as dl
    from exchange.sim.__main__ import build_parser
    from exchange.timestamps import parse_time

    t = 1_735_689_600_000
    assert dl.parse_time is parse_time
    for text in (str(t), "2025-01-01", "2025-01-01T00:00:00Z", "2025-01-01T01:00:00+01:00"):
        assert parse_time(text) == t, text
    assert build_parser().parse_args(["--start", "2025-01-01"]).start == t
