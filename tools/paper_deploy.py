#!/usr/bin/env python3
"""Deploy a validated config from the factory registry to the paper daemon's strategy YAML.

The YAML is validated exactly as the daemon's hot reload validates it, the current file is kept
as <target>.last_good when it is itself valid, and the new file is written atomically (temp file,
fsync, rename, mode 0644); the daemon's StrategyManager reloads it on the next loop. The config
moves validated -> paper in the registry and the deployment is recorded.

    python tools/paper_deploy.py --config-id 3f2a9c1d [--target PATH] [--registry PATH] [--dry-run]

Refuses (exit 2) a config that is not validated (or already paper), an unknown or ambiguous id,
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
    paper_deploy_config,
    run_cli,
)
from strategy.factory.registry import Registry


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config-id", required=True, help="registry config hash (a unique prefix of 8+ chars)")
    add_paper_deploy_args(ap)
    a = ap.parse_args(argv)

    def body() -> int:
        if not a.registry.is_file():
            raise FileNotFoundError(f"registry {a.registry} not found (run tools/factory_run.py first)")
        target = a.target or default_paper_target()
        with Registry(a.registry) as reg:
            cid = reg.resolve_id(a.config_id)
            d = paper_deploy_config(reg, cid, target, trigger="paper_deploy", dry_run=a.dry_run)
        if a.dry_run:
            print(d.text, end="")
            print(f"dry run: {target} not written (engine config_id {d.engine_config_id[:12]})")
        else:
            kept = f"; previous kept as {d.last_good}" if d.last_good else ""
            print(f"deployed {cid[:12]} to {target} (engine config_id {d.engine_config_id[:12]}){kept}")
        return 0

    return run_cli(body, "paper_deploy")


if __name__ == "__main__":
    raise SystemExit(main())
