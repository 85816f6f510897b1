#!/usr/bin/env python3
"""Strategy factory run: data checks, sweep, shortlist, CPU replay, validation, registry, report,
paper deploy of the best validated candidate.

    python tools/factory_run.py --profile smoke [--run-id ID] [--artifacts-root artifacts]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from strategy.factory.pipeline import PROFILES, RunOptions, default_data_src, run_factory

STAGES = ("walk_forward", "reopt_walk_forward", "slippage", "concentration", "statistics")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="smoke")
    ap.add_argument("--run-id", default=None, help="default: <UTC timestamp>_<random>")
    ap.add_argument("--artifacts-root", type=Path, default=Path("artifacts"))
    ap.add_argument(
        "--registry", type=Path, default=None, help="default: <artifacts-root>/registry/registry.sqlite"
    )
    ap.add_argument("--data-src", type=Path, default=None, help="bundled data (default AI_QUANT_SHARED_DATA)")
    ap.add_argument("--db-dir", type=Path, default=None, help="use these candle DBs instead of importing")
    ap.add_argument("--base-config", type=Path, default=None)
    ap.add_argument("--paper-config", type=Path, default=None, help="paper YAML the daemon watches")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip", action="append", default=[], choices=STAGES, help="disable a validation stage")
    ap.add_argument(
        "--ray-address",
        default=None,
        help="run the trials as Ray tasks: 'local' starts a local cluster, else a cluster address "
        "(optional dependency: pip install 'ai-quant[ray]')",
    )
    ap.add_argument(
        "--backend",
        choices=("cpu", "host-cuda", "gpu"),
        default="cpu",
        help="what evaluates the trials: cpu (one backtest per trial), or a batch of trials as one "
        "sweep on the decision core: gpu (a CUDA device) or host-cuda (the same core on this CPU)",
    )
    ap.add_argument("--gpu-kernel", type=Path, default=None, help="--backend gpu: kernel from gpu-compile")
    ap.add_argument("--search", choices=("grid", "tpe"), default=None, help="override the profile's search")
    ap.add_argument("--trials", type=int, default=None, help="TPE trials (search tpe)")
    ap.add_argument("--seed", type=int, default=None, help="TPE seed")
    ap.add_argument("--objective", choices=("pnl", "sharpe", "dsr"), default=None, help="TPE objective")
    a = ap.parse_args(argv)
    if a.backend != "cpu" and a.ray_address:
        ap.error(
            "--ray-address runs trials on the CPU backtester; it does not combine with --backend " + a.backend
        )
    prof = PROFILES[a.profile]
    if a.trials is not None and a.trials < 1:
        ap.error("--trials must be >= 1")
    changes: dict[str, object] = {}
    if a.search:
        changes["search"] = a.search
    if a.trials is not None:
        changes["tpe_trials"] = a.trials
    if a.seed is not None:
        changes["seed"] = a.seed
    if a.objective:
        changes["objective"] = dataclasses.replace(prof.objective, metric=a.objective)
    prof = dataclasses.replace(prof, **changes)  # type: ignore[arg-type]
    if prof.search == "tpe" and prof.tpe_trials < 1:
        ap.error(f"profile {prof.name} has no TPE trial count: pass --trials N")
    now = dt.datetime.now(dt.UTC)
    run_id = a.run_id or f"{now:%Y%m%dT%H%M%SZ}_{uuid.uuid4().hex[:6]}"
    art = a.artifacts_root / now.strftime("%Y-%m-%d") / f"run_{run_id}"
    opts = RunOptions(
        profile=prof,
        run_id=run_id,
        artifacts=art,
        registry_path=a.registry or a.artifacts_root / "registry" / "registry.sqlite",
        data_src=a.data_src or default_data_src(),
        db_dir=a.db_dir,
        base_config=a.base_config,
        paper_config=a.paper_config,
        threads=a.threads,
        stages=frozenset(STAGES) - set(a.skip),
        ray_address=a.ray_address,
        core_backend=None if a.backend == "cpu" else a.backend,
        core_backend_args=("--gpu-kernel", str(a.gpu_kernel)) if a.gpu_kernel else (),
    )
    report = run_factory(opts)
    run = report["run"]
    print(f"run {run_id}: {run['status']} in {run['wall_s']:.1f} s; report {art / 'report.md'}")
    for c in report["candidates"]:
        print(f"  {c['lane']:<12} {c['config_id'][:12]} {c['verdict']}: {'; '.join(c['reasons'])[:200]}")
    return 0 if run["status"] in ("ok", "ok_no_candidate") else 2


if __name__ == "__main__":
    raise SystemExit(main())
