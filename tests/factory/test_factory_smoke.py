"""End to end: tools/factory_run.py --profile smoke on the bundled Hyperliquid data."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from strategy.factory.backtester import REPO, find_binary
from strategy.factory.lifecycle import State, transition
from strategy.factory.pipeline import PROFILES, RunOptions, default_data_src, run_factory
from strategy.factory.registry import Registry

pytestmark = pytest.mark.slow
SMOKE_BUDGET_S = 240.0


def _need_inputs() -> None:
    try:
        find_binary()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    if not (default_data_src() / "hyperliquid" / "futures").is_dir():
        pytest.skip("bundled data not found (AI_QUANT_SHARED_DATA)")


def test_smoke_cli_end_to_end(tmp_path: Path) -> None:
    _need_inputs()
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "factory_run.py"), "--profile", "smoke", "--run-id", "smoke1",
         "--artifacts-root", str(tmp_path), "--threads", "2"],
        capture_output=True, text=True, timeout=SMOKE_BUDGET_S, check=False,
    )  # fmt: skip
    wall = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = list(tmp_path.glob("*/run_smoke1"))
    report = json.loads((run_dir / "report.json").read_text())
    md = (run_dir / "report.md").read_text()
    n_validated = sum(c["verdict"] == "validated" for c in report["candidates"])
    assert report["run"]["status"] == ("ok" if n_validated else "ok_no_candidate")
    assert report["sweep"]["n_trials"] == 36 and report["sweep"]["pool_replayed"] >= 8
    assert len(report["candidates"]) == 8
    names = {"min_trades", "wf_efficiency", "slippage_stress", "top1_symbol_share", "psr", "dsr",
             "purged_kfold", "pbo", "cpcv", "monte_carlo"}  # fmt: skip
    for c in report["candidates"]:
        assert names <= {ch["name"] for ch in c["checks"]}
        # The verdict follows from the checks: validated iff every enabled check passed, and the
        # reasons are exactly the failed enabled checks.
        fails = [f"{ch['name']}: {ch['detail']}" for ch in c["checks"] if ch["enabled"] and not ch["passed"]]
        assert c["verdict"] == ("rejected" if fails else "validated"), c
        assert c["reasons"] == fails
        assert c["config_id"][:12] in md
    assert (run_dir / "equity.png").stat().st_size > 1000
    with Registry(tmp_path / "registry" / "registry.sqlite") as reg:
        assert reg.run("smoke1")["n_trials"] == 36  # type: ignore[index]
        assert len(reg.verdicts("smoke1")) == 8
    assert wall < SMOKE_BUDGET_S


def test_pipeline_promotes_and_deploys_when_gates_allow(tmp_path: Path) -> None:
    """Plumbing of the promotion path: with every gate opened (a test-only profile), the best
    candidate is validated, deployed to paper atomically and its transitions recorded."""
    _need_inputs()
    opened = {
        "min_trades_backtest": 0, "wf_efficiency_min": -1e9, "wf_profitable_share_min": 0.0,
        "wf_median_oos_daily_return_min": -1e9, "top1_symbol_share_max": 1.0, "top5_symbol_share_max": 1.0,
        "min_symbols_traded": 0, "psr_min": 0.0, "dsr_min": 0.0, "pbo_max": 1.0,
        "cv_mean_oos_sharpe_min": -1e9, "cpcv_min_path_share_positive": 0.0, "mc_prob_loss_max": 1.0,
    }  # fmt: skip
    prof = dataclasses.replace(
        PROFILES["smoke"], axes=PROFILES["smoke"].axes[:1], per_lane=1, threshold_overrides=opened
    )
    paper = tmp_path / "paper" / "strategy_overrides.yaml"
    # a config already trading live: the run re-validates it on its window (lane "revalidation")
    live = {"base": {"global": {"strategy": "mei_alpha_v1", "engine": {"interval": "5m"}}},
            "overrides": {"trade.sl_atr_mult": 2.75}}  # fmt: skip
    live_id = "f" * 64
    with Registry(tmp_path / "reg.sqlite") as reg:
        reg.add_config(live_id, live, "earlier_run")
        for a, b in ((State.CANDIDATE, State.VALIDATED), (State.VALIDATED, State.PAPER)):
            reg.record_transition(transition(live_id, a, b, "test", "setup"))
        reg.record_transition(
            transition(live_id, State.PAPER, State.LIVE_SMALL, "test", "setup", ramp_stage=0)
        )
    opts = RunOptions(prof, "open1", tmp_path / "run", tmp_path / "reg.sqlite", default_data_src(),
                      paper_config=paper, threads=2, stages=frozenset({"walk_forward", "concentration", "statistics"}))  # fmt: skip
    report = run_factory(opts)
    # the slippage stage is switched off here: it must show as skipped, not vanish
    assert all(
        any(ch["name"] == "slippage" and not ch["enabled"] for ch in c["checks"])
        for c in report["candidates"]
    )
    assert report["promoted"] is not None
    cid = report["promoted"]["config_id"]
    assert paper.is_file() and cid in paper.read_text()
    assert f"| `{live_id[:12]}` | **validated** |" in (tmp_path / "run" / "report.md").read_text()
    [reval] = report["revalidation"]
    assert reval["config_id"] == live_id and reval["source"] == "revalidation"
    assert reval["verdict"] == "validated" and {c["name"] for c in reval["checks"]} >= {
        "min_trades",
        "wf_efficiency",
    }
    with Registry(tmp_path / "reg.sqlite") as reg:
        assert reg.latest_verdict(live_id)[:2] == ("open1", "validated")  # type: ignore[index]
        assert reg.verdicts("open1").count((live_id, "revalidation", "validated")) == 1
        assert reg.state(live_id) is State.LIVE_SMALL  # the ramp tick, not the factory, acts on it
        assert reg.state(cid) is State.PAPER
        assert [(t["from_state"], t["to_state"]) for t in reg.transitions(cid)] == [
            ("candidate", "validated"), ("validated", "paper"),
        ]  # fmt: skip


def test_smoke_tpe_profile_runs_search_and_reoptimised_walk_forward(tmp_path: Path) -> None:
    """The TPE search replaces the grid and the re-optimised walk-forward gates every candidate."""
    _need_inputs()
    prof = dataclasses.replace(PROFILES["smoke-tpe"], tpe_trials=16, reopt_trials=6, per_lane=1)
    opts = RunOptions(prof, "tpe1", tmp_path / "run", tmp_path / "reg.sqlite", default_data_src(), threads=2)
    report = run_factory(opts)
    sw = report["sweep"]
    assert sw["search"] == "tpe" and sw["tpe"]["n_trials"] == 16 and sw["tpe"]["seed"] == prof.seed
    assert sw["n_trials"] == sw["tpe"]["n_distinct"] <= 16  # the DSR counts distinct configs
    ro = report["reopt_walk_forward"]
    assert len(ro["folds"]) == 3
    assert [f["test"][0] for f in ro["folds"][1:]] == [f["test"][1] for f in ro["folds"][:-1]]
    for c in report["candidates"]:
        wfo = {ch["name"]: ch for ch in c["checks"] if ch["name"].startswith("wfo_")}
        assert set(wfo) == {"wfo_efficiency", "wfo_profitable_share", "wfo_median_oos_daily_return"}
        assert all(ch["enabled"] for ch in wfo.values())
        failed = [n for n, ch in wfo.items() if not ch["passed"]]
        assert all(any(r.startswith(n) for r in c["reasons"]) for n in failed)
    md = (tmp_path / "run" / "report.md").read_text()
    assert "## TPE search" in md and "## Re-optimised walk-forward" in md
