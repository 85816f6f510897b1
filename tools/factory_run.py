#!/usr/bin/env python3
"""Strategy factory run: data checks, sweep, shortlist, CPU replay, validation, registry, report,
paper deploy of the best validated candidate.

    python tools/factory_run.py --profile smoke [--run-id ID] [--artifacts-root artifacts]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from strategy.factory.pipeline import PROFILES, RunOptions, default_data_src, run_factory

STAGES = ("walk_forward", "slippage", "concentration", "statistics")


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
    a = ap.parse_args(argv)
    now = dt.datetime.now(dt.UTC)
    run_id = a.run_id or f"{now:%Y%m%dT%H%M%SZ}_{uuid.uuid4().hex[:6]}"
    art = a.artifacts_root / now.strftime("%Y-%m-%d") / f"run_{run_id}"
    opts = RunOptions(
        profile=PROFILES[a.profile],
        run_id=run_id,
        artifacts=art,
        registry_path=a.registry or a.artifacts_root / "registry" / "registry.sqlite",
        data_src=a.data_src or default_data_src(),
        db_dir=a.db_dir,
        base_config=a.base_config,
        paper_config=a.paper_config,
        threads=a.threads,
        stages=frozenset(STAGES) - set(a.skip),
    )
    report = run_factory(opts)
    run = report["run"]
    print(f"run {run_id}: {run['status']} in {run['wall_s']:.1f} s; report {art / 'report.md'}")
    for c in report["candidates"]:
        print(f"  {c['lane']:<12} {c['config_id'][:12]} {c['verdict']}: {'; '.join(c['reasons'])[:200]}")
    return 0 if run["status"] in ("ok", "ok_no_candidate") else 2


if __name__ == "__main__":
    raise SystemExit(main())
