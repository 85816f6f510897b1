#!/usr/bin/env python3
"""Deploy a factory run's result to paper: the promoted candidate of its report.json by default,
or the first validated candidate of a lane, or a named candidate. Only candidates the run
validated can be deployed; the registry must know them (the run's --registry).

    python tools/deploy_sweep.py --report artifacts/<day>/run_<id>/report.json [--lane efficient]
        [--config-id 3f2a9c1d] [--target PATH] [--registry PATH] [--dry-run]

Refuses (exit 2) a rejected candidate (quoting the run's reasons), a run that validated none,
and a YAML the daemon would reject.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from strategy.factory.operations import (
    add_paper_deploy_args,
    default_paper_target,
    load_report,
    paper_deploy_config,
    pick_from_report,
    run_cli,
)
from strategy.factory.registry import Registry


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", type=Path, required=True, help="a factory run's report.json")
    ap.add_argument("--lane", default=None, choices=("efficient", "growth", "conservative", "balanced"))
    ap.add_argument("--config-id", default=None, help="a candidate of the report (prefix)")
    add_paper_deploy_args(ap)
    a = ap.parse_args(argv)

    def body() -> int:
        cid, run_id = pick_from_report(load_report(a.report), a.lane, a.config_id)
        if not a.registry.is_file():
            raise FileNotFoundError(f"registry {a.registry} not found (the run's --registry)")
        target = a.target or default_paper_target()
        with Registry(a.registry) as reg:
            d = paper_deploy_config(reg, cid, target, trigger=f"deploy_sweep:{run_id}", dry_run=a.dry_run)
        if a.dry_run:
            print(d.text, end="")
            print(f"dry run: {target} not written")
        else:
            print(
                f"deployed {cid[:12]} of run {run_id} to {target} (engine config_id {d.engine_config_id[:12]})"
            )
        return 0

    return run_cli(body, "deploy_sweep")


if __name__ == "__main__":
    raise SystemExit(main())
