#!/usr/bin/env python3
"""Restore a daemon's strategy YAML from the last good copy the deploy tools keep next to it
(<target>.last_good). The copy is validated first; the replaced file is kept as
<target>.rolled_back; with a registry, the config deployed there moves to paused and the rollback
is recorded.

    python tools/rollback_to_last_good.py [--target PATH] [--mode paper|live] [--registry PATH]
        [--reason TEXT] [--dry-run]

Refuses (exit 2) when there is no last good copy, when it does not validate, or when the target
already equals it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from strategy.factory.operations import DEFAULT_REGISTRY, default_paper_target, rollback, run_cli
from strategy.factory.registry import Registry


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", type=Path, default=None, help="the YAML (default AI_QUANT_STRATEGY_YAML)")
    ap.add_argument("--mode", choices=("paper", "live"), default="paper", help="validate for this run mode")
    ap.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY, help="recorded when the file exists")
    ap.add_argument("--reason", default="manual rollback")
    ap.add_argument("--dry-run", action="store_true", help="check and show; write nothing")
    a = ap.parse_args(argv)

    def body() -> int:
        target = a.target or default_paper_target()
        reg = Registry(a.registry) if a.registry.is_file() else None
        try:
            r = rollback(target, a.mode, reg, reason=a.reason, dry_run=a.dry_run)
        finally:
            if reg is not None:
                reg.close()
        what = f"config_id {r.restored_config_id[:12]}" if r.restored_config_id else "the last good copy"
        if a.dry_run:
            print(
                f"dry run: would restore {what} to {target}"
                + (f" and pause {r.paused[:12]}" if r.paused else "")
            )
        else:
            print(f"restored {what} to {target}; replaced file kept as {r.kept_as}"
                  + (f"; {r.paused[:12]} paused" if r.paused else ""))  # fmt: skip
        return 0

    return run_cli(body, "rollback_to_last_good")


if __name__ == "__main__":
    raise SystemExit(main())
