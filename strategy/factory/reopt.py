"""Re-optimising walk-forward: for each fold, TPE on the in-sample window only, then the chosen
config is judged on the following out-of-sample window it never saw.

This validates the search procedure (does optimising on the past pick configs that work next?),
unlike :func:`validation.walk_forward`, which slices one fixed config's curve. The folds roll:
train windows of equal length followed by contiguous, non-overlapping test windows that tile the
end of the range. The OOS measure is the equity change over the test window of a replay that
starts at the fold's train start, so indicators are warm and a position open at the boundary is
carried as it would be live.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from exchange.timestamps import iso_ms, ms_iso

from .backtester import DataScope, replay
from .deploy import overrides_to_doc, write_yaml_atomic
from .optimize import Backend, Objective, Param, run_tpe, steps_in
from .thresholds import Thresholds
from .validation import DAY_MS, Check, WalkForward, WFWindow, walk_forward_checks
from .window import INTERVAL_MS


@dataclass(frozen=True)
class Fold:
    train_start_ms: int
    test_start_ms: int  # = train end (exclusive)
    test_end_ms: int


def rolling_folds(start_ms: int, end_ms: int, n_folds: int, train_share: float, step_ms: int) -> list[Fold]:
    """``n_folds`` folds; each train window is ``train_share / (1 - train_share)`` test windows
    long, and the test windows tile ``[start + train, end]`` without overlap. Bounds are bar-aligned."""
    if n_folds < 1 or not 0.0 < train_share < 1.0:
        raise ValueError("need n_folds >= 1 and 0 < train_share < 1")
    ratio = train_share / (1.0 - train_share)
    test_len = (end_ms - start_ms) / (ratio + n_folds)
    train_len = ratio * test_len
    if test_len < 4 * step_ms:
        raise ValueError(f"range too short for {n_folds} re-optimised folds")

    def bar(x: float) -> int:
        return start_ms + int((x - start_ms) // step_ms) * step_ms

    out = []
    for i in range(n_folds):
        t0 = start_ms + i * test_len
        out.append(Fold(bar(t0), bar(t0 + train_len), bar(t0 + train_len + test_len)))
    return out


@dataclass(frozen=True)
class FoldResult:
    fold: Fold
    params: dict[str, float]
    config_id: str
    is_score: float
    is_pnl: float
    is_trades: int
    is_daily_return: float
    oos_pnl: float
    oos_daily_return: float
    oos_closed_trades: int
    oos_max_dd_pct: float
    n_trials: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "train": [ms_iso(self.fold.train_start_ms), ms_iso(self.fold.test_start_ms)],
            "test": [ms_iso(self.fold.test_start_ms), ms_iso(self.fold.test_end_ms)],
            "params": self.params, "config_id": self.config_id, "is_score": self.is_score,
            "is_pnl": self.is_pnl, "is_trades": self.is_trades, "is_daily_return": self.is_daily_return,
            "oos_pnl": self.oos_pnl, "oos_daily_return": self.oos_daily_return,
            "oos_closed_trades": self.oos_closed_trades, "oos_max_dd_pct": self.oos_max_dd_pct,
            "n_trials": self.n_trials,
        }  # fmt: skip


@dataclass(frozen=True)
class ReoptWalkForward:
    folds: tuple[FoldResult, ...]
    wf: WalkForward  # the aggregate in the shape the validation gates read

    @property
    def oos_total_pnl(self) -> float:
        return float(sum(f.oos_pnl for f in self.folds))

    def summary(self) -> dict[str, Any]:
        return {
            "folds": [f.as_dict() for f in self.folds],
            "oos_total_pnl": self.oos_total_pnl,
            "efficiency": self.wf.efficiency,
            "profitable_share": self.wf.profitable_share,
            "median_oos_daily_return": self.wf.median_oos_daily_return,
        }


def _closed_in(trades_csv: Path, a_ms: int, b_ms: int) -> int:
    """Round trips whose last fill falls in [a, b]."""
    last: dict[str, int] = {}
    with trades_csv.open() as fh:
        for row in csv.DictReader(fh):
            last[row["trade_id"]] = int(row["timestamp_ms"])
    return sum(1 for t in last.values() if a_ms <= t <= b_ms)


def _rate(t: np.ndarray, e: np.ndarray, a: int, b: int) -> float:
    """Return per elapsed day between curve points a and b."""
    return float(e[b] / e[a] - 1.0) / max((int(t[b]) - int(t[a])) / DAY_MS, 1e-9)


def reoptimising_walk_forward(
    space: Sequence[Param],
    backend_for: Callable[[DataScope, Path], Backend],
    scope: DataScope,
    base_doc: dict[str, Any],
    workdir: Path,
    objective: Objective,
    *,
    n_folds: int,
    train_share: float,
    trials_per_fold: int,
    batch_size: int,
    seed: int,
    defaults: dict[str, Any] | None = None,
) -> ReoptWalkForward:
    step = INTERVAL_MS[scope.interval]
    folds = rolling_folds(iso_ms(scope.start), iso_ms(scope.end), n_folds, train_share, step)
    out: list[FoldResult] = []
    for i, f in enumerate(folds):
        fdir = workdir / f"fold{i}"
        is_scope = dataclasses.replace(
            scope, start=ms_iso(f.train_start_ms), end=ms_iso(f.test_start_ms - step)
        )
        r = run_tpe(space, backend_for(is_scope, fdir / "tpe"), objective, n_trials=trials_per_fold,
                    batch_size=batch_size, seed=seed + i, top_k=1, steps=steps_in(is_scope),
                    interval=scope.interval, jsonl=fdir / "trials.jsonl")  # fmt: skip
        best = r.best
        cfg = fdir / "chosen.yaml"
        write_yaml_atomic(cfg, overrides_to_doc(base_doc, best.row.overrides, defaults))
        full = dataclasses.replace(scope, start=ms_iso(f.train_start_ms), end=ms_iso(f.test_end_ms))
        res = replay(cfg, full, fdir / "replay")
        t = np.asarray(res.equity_t_ms, dtype=np.int64)
        e = np.asarray(res.equity, dtype=np.float64)
        k = int(np.searchsorted(t, f.test_start_ms))
        if k <= 0 or k >= t.size - 1:
            raise ValueError(f"fold {i}: the replay's equity curve does not span the test window")

        oos = e[k - 1 :]
        peak = np.maximum.accumulate(oos)
        out.append(
            FoldResult(
                f, dict(best.params), best.row.config_id, best.score, best.row.total_pnl,
                best.row.total_trades, _rate(t, e, 0, k - 1), float(e[-1] - e[k - 1]),
                _rate(t, e, k - 1, t.size - 1),
                _closed_in(fdir / "replay" / "trades.csv", f.test_start_ms, f.test_end_ms),
                float(np.max((peak - oos) / peak) * 100.0), r.n_distinct,
            )
        )  # fmt: skip
    wins = tuple(
        WFWindow(x.fold.train_start_ms, x.fold.test_start_ms, x.fold.test_end_ms, x.is_daily_return,
                 x.oos_daily_return, x.oos_pnl)
        for x in out
    )  # fmt: skip
    tr = float(np.mean([w.train_daily_return for w in wins]))
    te = float(np.mean([w.test_daily_return for w in wins]))
    wf = WalkForward(
        wins,
        te / tr if tr > 0 else 0.0,
        float(np.mean([w.test_pnl > 0 for w in wins])),
        float(np.median([w.test_daily_return for w in wins])),
    )
    return ReoptWalkForward(tuple(out), wf)


def reopt_checks(r: ReoptWalkForward, th: Thresholds) -> list[Check]:
    """The walk-forward gates (same thresholds) on the re-optimised folds, named ``wfo_*``."""
    out = []
    for c in walk_forward_checks(r.wf, th):
        name = "wfo_" + c.name.removeprefix("wf_")
        out.append(Check(name, c.passed, c.value, c.threshold, f"re-optimised: {c.detail}", c.enabled))
    return out
