"""Validation checks (pure functions on replay results) and the verdict that combines them.

Every check returns a :class:`Check` with its value, threshold and a one-line reason; a stage
can be switched off (``enabled=False`` is recorded, never silently dropped).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import stats
from .stats import FloatArray
from .thresholds import Thresholds

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    value: float | None
    threshold: float | None
    detail: str
    enabled: bool = True

    @classmethod
    def at_least(cls, name: str, value: float, minimum: float, detail: str) -> Check:
        return cls(name, value >= minimum, value, minimum, detail)

    @classmethod
    def above(cls, name: str, value: float, bound: float, detail: str) -> Check:
        return cls(name, value > bound, value, bound, detail)

    @classmethod
    def at_most(cls, name: str, value: float, maximum: float, detail: str) -> Check:
        return cls(name, value <= maximum, value, maximum, detail)


def skipped(name: str, why: str) -> Check:
    return Check(name, True, None, None, f"skipped: {why}", enabled=False)


# --------------------------------------------------------------------------- walk-forward


@dataclass(frozen=True)
class WFWindow:
    train_start_ms: int
    test_start_ms: int
    test_end_ms: int
    train_daily_return: float
    test_daily_return: float
    test_pnl: float


@dataclass(frozen=True)
class WalkForward:
    windows: tuple[WFWindow, ...]
    efficiency: float  # mean test daily return / mean train daily return (0 if train <= 0)
    profitable_share: float
    median_oos_daily_return: float


def walk_forward(
    t_ms: Sequence[int], equity: Sequence[float], n_windows: int, train_share: float
) -> WalkForward:
    """Rolling train/test windows over a fixed config's equity curve.

    The curve is cut into ``n_windows`` consecutive windows, each split into a train part (first
    ``train_share``) and a test part. Daily return = (E_end / E_start - 1) per elapsed day. The
    config is not re-optimised per window (its parameters were chosen on the whole sweep range).
    """
    t = np.asarray(t_ms, dtype=np.int64)
    e = np.asarray(equity, dtype=np.float64)
    n = t.size
    if n < 4 * n_windows:
        raise ValueError("equity curve too short for the walk-forward windows")
    edges = np.linspace(0, n - 1, n_windows + 1).astype(int)
    wins = []

    def rate(a: int, b: int) -> float:
        days = max((int(t[b]) - int(t[a])) / DAY_MS, 1e-9)
        return float(e[b] / e[a] - 1.0) / days

    for w in range(n_windows):
        a, b = int(edges[w]), int(edges[w + 1])
        mid = a + max(1, int((b - a) * train_share))
        wins.append(
            WFWindow(int(t[a]), int(t[mid]), int(t[b]), rate(a, mid), rate(mid, b), float(e[b] - e[mid]))
        )
    tr = float(np.mean([w.train_daily_return for w in wins]))
    te = float(np.mean([w.test_daily_return for w in wins]))
    return WalkForward(
        tuple(wins),
        te / tr if tr > 0 else 0.0,
        float(np.mean([w.test_pnl > 0 for w in wins])),
        float(np.median([w.test_daily_return for w in wins])),
    )


def walk_forward_checks(wf: WalkForward, th: Thresholds) -> list[Check]:
    return [
        Check.at_least(
            "wf_efficiency",
            wf.efficiency,
            th.wf_efficiency_min,
            f"OOS/IS daily return {wf.efficiency:.3f} (min {th.wf_efficiency_min})",
        ),
        Check.at_least(
            "wf_profitable_share",
            wf.profitable_share,
            th.wf_profitable_share_min,
            f"{wf.profitable_share:.0%} of {len(wf.windows)} OOS windows profitable "
            f"(min {th.wf_profitable_share_min:.0%})",
        ),
        Check.above(
            "wf_median_oos_daily_return",
            wf.median_oos_daily_return,
            th.wf_median_oos_daily_return_min,
            f"median OOS daily return {wf.median_oos_daily_return:.5f} (must be > "
            f"{th.wf_median_oos_daily_return_min})",
        ),
    ]


# --------------------------------------------------------------------------- slippage / concentration


def slippage_check(base_pnl: float, pnl_by_bps: Mapping[float, float], th: Thresholds) -> Check:
    """Reject when the PnL at ``slippage_reject_bps`` is not positive (a sign flip from a positive
    base, or never positive)."""
    at = pnl_by_bps[th.slippage_reject_bps]
    curve = ", ".join(f"{b:g} bps: {p:.2f}" for b, p in sorted(pnl_by_bps.items()))
    flipped = base_pnl > 0 and at <= 0
    detail = ("PnL flips sign" if flipped else "PnL") + f" at {th.slippage_reject_bps:g} bps ({curve})"
    return Check.above("slippage_stress", at, 0.0, detail)


@dataclass(frozen=True)
class Concentration:
    top1_share: float
    top5_share: float
    symbols_traded: int
    positive_pnl: float = 0.0


def concentration(by_symbol_pnl: Mapping[str, float], by_symbol_trades: Mapping[str, int]) -> Concentration:
    pos = sorted((p for p in by_symbol_pnl.values() if p > 0), reverse=True)
    total = sum(pos)
    traded = sum(1 for n in by_symbol_trades.values() if n > 0)
    if total <= 0:
        return Concentration(1.0, 1.0, traded, 0.0)
    return Concentration(pos[0] / total, sum(pos[:5]) / total, traded, total)


def concentration_checks(c: Concentration, th: Thresholds) -> list[Check]:
    # The breadth check reads the same whether or not any symbol made money.
    traded = Check.at_least(
        "min_symbols_traded",
        float(c.symbols_traded),
        float(th.min_symbols_traded),
        f"{c.symbols_traded} symbols traded (min {th.min_symbols_traded})",
    )
    if c.positive_pnl <= 0:
        none = "no symbol has positive PnL (counted as 100%)"
        return [
            Check.at_most("top1_symbol_share", 1.0, th.top1_symbol_share_max, none),
            Check.at_most("top5_symbol_share", 1.0, th.top5_symbol_share_max, none),
            traded,
        ]
    return [
        Check.at_most(
            "top1_symbol_share",
            c.top1_share,
            th.top1_symbol_share_max,
            f"top symbol {c.top1_share:.0%} of positive PnL (max {th.top1_symbol_share_max:.0%})",
        ),
        Check.at_most(
            "top5_symbol_share",
            c.top5_share,
            th.top5_symbol_share_max,
            f"top 5 symbols {c.top5_share:.0%} of positive PnL (max {th.top5_symbol_share_max:.0%})",
        ),
        traded,
    ]


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class TrialStats:
    """What the whole sweep contributes: the real number of trials and the variance of their
    (per-step) Sharpe ratios; plus the return matrix of the replayed pool for PBO / CV."""

    n_trials: int
    sr_variance: float  # per step
    pool_returns: FloatArray | None = field(default=None)  # T x N per-step returns
    pool_ids: tuple[str, ...] = ()


def statistics_checks(
    returns: FloatArray,
    trade_pnls: Sequence[float],
    trials: TrialStats,
    config_id: str,
    th: Thresholds,
    label_horizon: int,
) -> tuple[list[Check], dict[str, float]]:
    mo = stats.moments(returns)
    dsr = stats.deflated_sharpe_ratio(
        mo.sharpe, mo.n, max(trials.n_trials, 1), trials.sr_variance, mo.skew, mo.kurtosis
    )
    m: dict[str, float] = {
        "sr_per_step": mo.sharpe,
        "skew": mo.skew,
        "kurtosis": mo.kurtosis,
        "n_steps": float(mo.n),
        "psr": dsr.psr0,
        "dsr": dsr.dsr,
        "sr0_expected_max": dsr.sr0,
        "n_trials": float(trials.n_trials),
        "trial_sr_variance": trials.sr_variance,
    }
    checks = [
        Check.at_least(
            "psr",
            dsr.psr0,
            th.psr_min,
            f"PSR(0) {dsr.psr0:.4f} (T={mo.n}, skew {mo.skew:.2f}, kurt {mo.kurtosis:.1f})",
        ),
        Check.at_least(
            "dsr",
            dsr.dsr,
            th.dsr_min,
            f"DSR {dsr.dsr:.4f}: SR {mo.sharpe:.5f}/step vs expected max {dsr.sr0:.5f} of "
            f"{trials.n_trials} trials (var {trials.sr_variance:.3g})",
        ),
    ]
    n = returns.size
    ends = [min(i + label_horizon, n - 1) for i in range(n)]
    emb = stats.embargo_size(n, th.cv_embargo_pct)
    folds = stats.purged_kfold_splits(n, th.cv_folds, ends, emb)
    cv = stats.cv_selection_oos(returns, folds, select=0)
    m["cv_mean_oos_sr"] = cv.mean
    m["cv_std_oos_sr"] = cv.std
    checks.append(
        Check.above(
            "purged_kfold",
            cv.mean,
            th.cv_mean_oos_sharpe_min,
            f"purged {th.cv_folds}-fold (horizon {label_horizon}, embargo {emb}): mean OOS SR "
            f"{cv.mean:.5f}/step, std {cv.std:.5f}",
        )
    )
    pool = trials.pool_returns
    if pool is not None and pool.shape[1] >= 2 and pool.shape[0] >= 4 * th.pbo_blocks:
        pbo = stats.pbo_cscv(pool, th.pbo_blocks)
        m["pbo"] = pbo.pbo
        checks.append(
            Check.at_most(
                "pbo",
                pbo.pbo,
                th.pbo_max,
                f"PBO {pbo.pbo:.3f} over {pbo.n_strategies} replayed trials, "
                f"{pbo.n_combinations} CSCV combinations",
            )
        )
        cp = stats.cpcv_selection_paths(pool, th.cpcv_groups, th.cpcv_test_groups, ends, emb)
        share = float(np.mean([s > 0 for s in cp.path_sharpes]))
        m["cpcv_path_share_positive"] = share
        m["cpcv_mean_path_sr"] = float(np.mean(cp.path_sharpes))
        checks.append(
            Check.at_least(
                "cpcv",
                share,
                th.cpcv_min_path_share_positive,
                f"CPCV N={th.cpcv_groups} k={th.cpcv_test_groups}: {share:.0%} of "
                f"{len(cp.path_sharpes)} paths of the sweep's selection rule have SR > 0",
            )
        )
    else:
        checks.append(skipped("pbo", "fewer than 2 replayed trials or too few steps"))
        checks.append(skipped("cpcv", "fewer than 2 replayed trials or too few steps"))
    mc = stats.monte_carlo_trades(trade_pnls, th.mc_iterations, th.mc_seed)
    m["mc_prob_loss"] = mc.prob_loss
    m["mc_pnl_p05"] = mc.pnl_p05
    m["mc_max_dd_p95"] = mc.max_dd_p95
    checks.append(
        Check.at_most(
            "monte_carlo",
            mc.prob_loss,
            th.mc_prob_loss_max,
            f"{mc.iterations} bootstraps (seed {mc.seed}): P(loss) {mc.prob_loss:.2f}, PnL p5 "
            f"{mc.pnl_p05:.2f}, max DD p95 {mc.max_dd_p95:.2f}",
        )
    )
    return checks, {k: (v if math.isfinite(v) else 0.0) for k, v in m.items()}


def trades_check(trades: int, th: Thresholds) -> Check:
    return Check.at_least(
        "min_trades",
        float(trades),
        float(th.min_trades_backtest),
        f"{trades} trades (min {th.min_trades_backtest})",
    )


def verdict(checks: Sequence[Check]) -> tuple[str, list[str]]:
    """``validated`` when every enabled check passed, else ``rejected`` with the failures."""
    fails = [f"{c.name}: {c.detail}" for c in checks if c.enabled and not c.passed]
    return ("validated" if not fails else "rejected"), fails
