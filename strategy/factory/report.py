"""Run report: JSON (machine), Markdown (people) and the equity-curve PNG (matplotlib, optional)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def render_markdown(report: dict[str, Any]) -> str:
    run = report["run"]
    out = [
        f"# Strategy factory run `{run['run_id']}` ({run['profile']})",
        "",
        f"- status: **{run['status']}**, wall time {run.get('wall_s', 0):.1f} s",
        f"- data: {report['data']['summary']}",
        f"- sweep: {report['sweep']['n_trials']} trials, per-step SR variance "
        f"{report['sweep']['sr_variance_per_step']:.3g}, pool {report['sweep']['pool_size']} rows",
        f"- thresholds: `strategy/factory/thresholds.py` (overrides: {report['threshold_overrides'] or 'none'})",
        f"- promoted to paper: {report.get('promoted') or 'none'}",
        "",
        "## Data checks",
        "",
    ]
    out += [
        f"- {'PASS' if c['passed'] else 'FAIL'} {c['name']}: {c['detail']}" for c in report["data"]["checks"]
    ]
    tpe = report["sweep"].get("tpe")
    if tpe:
        b = tpe["best"]
        out += ["", "## TPE search", "",
                f"{tpe['n_trials']} trials ({tpe['n_distinct']} distinct) on the {tpe['backend']} backend, seed "
                f"{tpe['seed']}, {tpe['trials_per_s']:.2f} trials/s; best #{b['number']} score "
                f"{_fmt(b['score'])} `{b['config_id'][:12]}` `{json.dumps(b['params'], sort_keys=True)}`"]  # fmt: skip
    ro = report.get("reopt_walk_forward")
    if ro:
        out += ["", "## Re-optimised walk-forward", "",
                "| fold | train | test | chosen | IS PnL | OOS PnL | OOS trades | OOS DD % |",
                "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for i, f in enumerate(ro["folds"]):
            out.append(
                f"| {i} | {f['train'][0]}..{f['train'][1]} | {f['test'][0]}..{f['test'][1]} | "
                f"`{f['config_id'][:12]}` | {_fmt(f['is_pnl'])} | {_fmt(f['oos_pnl'])} | "
                f"{f['oos_closed_trades']} | {_fmt(f['oos_max_dd_pct'])} |"
            )
        out += ["", f"OOS total PnL {_fmt(ro['oos_total_pnl'])}, efficiency {_fmt(ro['efficiency'])}, "
                f"profitable folds {ro['profitable_share']:.0%}, median OOS daily return "
                f"{_fmt(ro['median_oos_daily_return'])}"]  # fmt: skip
    out += ["", "## Candidates", ""]
    out += [
        "| # | lane | config_id | PnL | trades | PF | DD % | Sharpe | DSR | PBO | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, c in enumerate(report["candidates"], 1):
        m = c["metrics"]
        out.append(
            f"| {i} | {c['lane']} | `{c['config_id'][:12]}` | {_fmt(m.get('total_pnl'))} | "
            f"{_fmt(m.get('total_trades'))} | {_fmt(m.get('profit_factor'))} | "
            f"{_fmt(m.get('max_drawdown_pct'))} | {_fmt(m.get('sharpe_ratio'))} | {_fmt(m.get('dsr'))} | "
            f"{_fmt(m.get('pbo'))} | **{c['verdict']}** |"
        )
    for i, c in enumerate(report["candidates"], 1):
        out += ["", f"### {i}. {c['lane']} `{c['config_id'][:12]}` - {c['verdict']}", ""]
        out.append(f"overrides: `{json.dumps(c['overrides'], sort_keys=True)}`")
        out += ["", "| check | result | value | threshold | detail |", "|---|---|---|---|---|"]
        for ch in c["checks"]:
            res = "skipped" if not ch["enabled"] else ("pass" if ch["passed"] else "FAIL")
            out.append(
                f"| {ch['name']} | {res} | {_fmt(ch['value'])} | {_fmt(ch['threshold'])} | {ch['detail']} |"
            )
        if c["reasons"]:
            out += ["", "Reasons: " + "; ".join(c["reasons"])]
    reval = report.get("revalidation") or []
    if reval:
        out += ["", "## Live configs re-validated", "",
                "A rejection here is a rotation trigger: the next hourly ramp tick pauses the config.", "",
                "| config_id | verdict | reasons |", "|---|---|---|"]  # fmt: skip
        out += [
            f"| `{r['config_id'][:12]}` | **{r['verdict']}** | {'; '.join(r['reasons']) or '-'} |"
            for r in reval
        ]
    if report.get("plot"):
        out += ["", "## Equity", "", report["plot"]]
    return "\n".join(out) + "\n"


def plot_equity(path: Path, t_ms: Sequence[int], equity: Sequence[float], title: str) -> str:
    """Write a PNG with matplotlib; without matplotlib return a message and write nothing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "equity plot skipped: matplotlib is not installed (pip install matplotlib)"
    import numpy as np

    xs = np.asarray(list(t_ms), dtype="datetime64[ms]")
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    ax.plot(xs, list(equity), linewidth=1.0)
    ax.set_title(title)
    ax.set_ylabel("equity (USD)")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(str(path))
    plt.close(fig)
    return f"![equity]({path.name})"
