"""CI-sized crash-injection run (bounded: 100 SIGKILLs, well under two minutes) and a check that the
checker itself notices a duplicate order."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import crash_harness


def test_crash_harness_100_injections() -> None:
    stats = crash_harness.run(100, seed=1234, deadline_s=100)
    assert stats["iterations"] >= 50, stats
    assert stats["injections"] >= 45, stats
    assert stats["duplicates"] == 0
    assert stats["lost_fills"] == 0
    assert stats["double_counted"] == 0
    assert stats["position_mismatches"] == 0
    assert stats["recovery_failures"] == 0
    assert stats["ok"]


def test_crash_harness_drives_the_real_live_daemon() -> None:
    """Bounded CI run of ``--daemon``: the real daemon process trading kernel decisions, SIGKILLed
    at random order-path points; `tools/crash_harness.py --daemon --iterations 1000` is the soak."""
    # life_s leaves a loaded CI box time to reach the order path before the harness kill
    stats = crash_harness.run_daemon(6, seed=99, deadline_s=220, life_s=25)
    assert stats["iterations"] >= 4, stats
    assert stats["injections"] + stats["harness_kills"] == stats["iterations"]
    assert stats["injections"] >= 2, stats
    assert stats["venue_orders"] >= 2 and stats["venue_fills"] >= 2  # it traded
    for k in ("duplicates", "lost_fills", "double_counted", "unbooked_fills", "double_booked"):
        assert stats[k] == 0, (k, stats)
    assert stats["position_mismatches"] == 0 and stats["kernel_mismatches"] == 0
    assert stats["recovery_failures"] == 0 and stats["ok"]
    assert stats["restart_to_reconciled_ms"]["max"] <= 10_000
