"""The one source of every factory gate threshold.

Docs (`docs/success_metrics.md`, `docs/strategy_lifecycle.md`) quote these values; a test
(`tests/factory/test_docs.py`) checks every documented number against this module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    # --- statistics (validation step 5)
    dsr_min: float = 0.95  # Deflated Sharpe (Bailey & Lopez de Prado 2014)
    psr_min: float = 0.95  # Probabilistic Sharpe vs 0 (reported; the DSR is the gate)
    pbo_max: float = 0.25  # probability of backtest overfitting (CSCV); ai-quant's choice
    pbo_blocks: int = 10  # CSCV blocks S (C(10,5) = 252 combinations)
    cv_folds: int = 5  # purged K-fold
    cv_embargo_pct: float = 0.01  # embargo after each test fold, share of observations
    cv_mean_oos_sharpe_min: float = 0.0  # per-step OOS Sharpe of the candidate, mean over folds
    cpcv_groups: int = 6
    cpcv_test_groups: int = 2
    cpcv_min_path_share_positive: float = 0.6  # share of CPCV paths with Sharpe > 0
    mc_iterations: int = 2000
    mc_seed: int = 42
    mc_prob_loss_max: float = 0.5  # share of bootstrapped trade orders ending at a loss
    # --- walk-forward
    wf_windows: int = 4
    wf_train_share: float = 0.6  # of each rolling window
    wf_efficiency_min: float = 0.5  # OOS return rate / IS return rate
    wf_profitable_share_min: float = 0.5  # share of OOS windows with PnL > 0
    wf_median_oos_daily_return_min: float = 0.0  # strictly greater than
    # --- slippage stress
    slippage_stress_bps: tuple[float, ...] = (10.0, 20.0, 30.0)
    slippage_reject_bps: float = 20.0  # reject if PnL flips sign (<= 0) at this level
    # --- concentration
    top1_symbol_share_max: float = 0.65  # of positive PnL
    top5_symbol_share_max: float = 0.90
    min_symbols_traded: int = 5
    # --- candidate -> validated
    min_trades_backtest: int = 30
    # --- paper -> live_small (gates 1 and 2)
    paper_min_closed_trades: int = 20
    paper_min_hours: float = 24.0
    paper_pf_min: float = 1.2
    paper_max_dd_pct: float = 10.0
    paper_net_positive_bps: float = 20.0
    paper_max_kill_events: int = 0
    # --- live ramp (gate 3)
    ramp_stages: tuple[float, ...] = (0.25, 0.50, 1.00)  # trade.size_multiplier per stage
    ramp_stage_hours: float = 24.0
    # --- rotation (live_* -> paused)
    rotation_pf_min: float = 1.0
    rotation_pf_window_trades: int = 30
    rotation_dd_pct_max: float = 15.0
    rotation_max_age_days: float = 14.0
    # --- risk limits quoted in success_metrics.md (enforced by the daemon's risk layer)
    daily_loss_pct: float = 10.0
    equity_dd_pct_flatten: float = 20.0
    max_leverage: float = 5.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        return d


THRESHOLDS = Thresholds()

# Smoke runs trade few symbols over a short slice: concentration and trade-count gates are
# relaxed there only by explicit override, and recorded in the report.
SMOKE_OVERRIDES: dict[str, Any] = {"min_symbols_traded": 3, "min_trades_backtest": 10}


def fmt_value(v: Any) -> str:
    if isinstance(v, tuple):
        return ", ".join(fmt_value(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def markdown_table(names: list[str], th: Thresholds = THRESHOLDS) -> str:
    """The table the docs embed; ``tests/factory/test_docs.py`` checks it against this module."""
    d = th.as_dict()
    rows = ["| threshold | value |", "|---|---|"]
    rows += [f"| `{n}` | {fmt_value(d[n])} |" for n in names]
    return "\n".join(rows)
