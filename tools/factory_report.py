#!/usr/bin/env python3
"""Factory report: one self-contained HTML page for a strategy-factory run (no network needed).

    python tools/factory_report.py artifacts/<day>/run_<id>/report.json --html reports/factory_<id>.html \\
        [--registry artifacts/registry/registry.sqlite] [--paper-db run/paper/trading_engine.db]

Shows the run (status, window, data checks, sweep), each candidate with every gate (value,
threshold, pass / FAIL / skipped, detail), DSR and PBO against their thresholds, the walk-forward
summary of each candidate and the re-optimised walk-forward folds when the profile ran them, and,
from the registry (read-only), each candidate's lifecycle state, its transitions, the paper gates'
progress (with --paper-db: closed trades, hours, PF, drawdown, stressed PnL and kill events since it
entered paper, against the thresholds) and the live ramp's stage and size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.factory_page import lifecycle, load_report, render
from monitor.report_page import report_cli


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report", type=Path, help="the run's report.json")
    ap.add_argument("--html", type=Path, required=True)
    ap.add_argument("--registry", type=Path, default=None, help="the factory registry (read-only)")
    ap.add_argument("--paper-db", type=Path, default=None, help="the paper daemon's trading DB (paper gates)")
    a = ap.parse_args(argv)

    def write() -> str:
        r = load_report(a.report)
        life = None
        if a.registry is not None:
            life = lifecycle(a.registry, [c["config_id"] for c in r["candidates"]], a.paper_db, time.time())
        a.html.write_text(render(r, life))
        return f"factory report: {a.html} ({len(r['candidates'])} candidates)"

    return report_cli("factory_report", write)


if __name__ == "__main__":
    sys.exit(main())
