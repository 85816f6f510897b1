#!/usr/bin/env python3
"""Promote a paper config to live, then drive its size ramp (25% -> 50% -> 100% by default).

For a config in paper: the paper gates of strategy/factory/thresholds.py (closed trades or hours,
PF, drawdown, net PnL at the stress slippage, kill-switch events) are computed from the paper
daemon's trading DB since the config went to paper; when they pass, the live YAML is written with
trade.size_multiplier at the first ramp stage and the config becomes live_small.

For a live config (run it on a schedule, e.g. hourly): one ramp tick. A stage held long enough
advances (or completes: live_full); a new kill-switch event in the live DB steps down one stage
(pauses at the first); a rotation trigger (rolling PF, drawdown, age) pauses and, with
--kill-file, sets the live daemon's kill file to close_only.

    python tools/promote_to_live.py --config-id 3f2a9c1d --live-config /etc/ai-quant/live.yaml \
        --paper-db paper/trading.db [--live-db live/trading.db] [--kill-file PATH] [--dry-run]

--ramp-all (instead of --config-id) ticks every live config whose ramp writes --live-config; the
ai-quant-ramp.timer runs it hourly. With none on the ramp it says so and exits 0.

Refuses (exit 2) with the failing gates, or when the config is neither paper nor live.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from strategy.factory.operations import DEFAULT_REGISTRY, live_on_target, promote_or_tick, run_cli
from strategy.factory.registry import Registry


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    who = ap.add_mutually_exclusive_group(required=True)
    who.add_argument("--config-id", help="registry config hash (a unique prefix of 8+ chars)")
    who.add_argument(
        "--ramp-all", action="store_true", help="one ramp tick for each live config on --live-config"
    )
    ap.add_argument("--live-config", type=Path, required=True, help="the live daemon's strategy YAML")
    ap.add_argument("--paper-db", type=Path, default=None, help="paper daemon's trading DB (promotion)")
    ap.add_argument(
        "--live-db", type=Path, default=None, help="live daemon's trading DB (kill events, rotation)"
    )
    ap.add_argument(
        "--kill-file", type=Path, default=None, help="live AI_QUANT_KILL_SWITCH_FILE, set on pause"
    )
    ap.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    ap.add_argument("--now", type=float, default=None, help=argparse.SUPPRESS)  # tests: accelerated clock
    ap.add_argument("--dry-run", action="store_true", help="decide and show; write nothing")
    a = ap.parse_args(argv)

    def body() -> int:
        if not a.registry.is_file():
            raise FileNotFoundError(f"registry {a.registry} not found")
        with Registry(a.registry) as reg:
            ids = live_on_target(reg, a.live_config) if a.ramp_all else [reg.resolve_id(a.config_id)]
            if not ids:
                print(f"no live config is on the ramp for {a.live_config}; nothing to do")
            for cid in ids:
                o = promote_or_tick(reg, cid, a.live_config, paper_db=a.paper_db, live_db=a.live_db,
                                    kill_file=a.kill_file, now=a.now, dry_run=a.dry_run)  # fmt: skip
                size = "" if o.size_multiplier is None else f" size_multiplier {o.size_multiplier:g}"
                print(f"{'dry run: ' if a.dry_run else ''}{o.action} {cid[:12]}:{size}: {o.message}")
        return 0

    return run_cli(body, "promote_to_live")


if __name__ == "__main__":
    raise SystemExit(main())
