"""CI-sized crash-injection runs: the scripted trader (40 lives) and the real live daemon (6 lives).
The checker's negative controls are in test_crash_checker_controls.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import crash_harness


def test_crash_harness_40_scripted_lives() -> None:
    # A fixed count, no deadline: how fast the box is never decides what is checked (each life is
    # bounded by the harness's own join timeout).
    stats = crash_harness.run(40, seed=1234)
    assert stats["iterations"] == 40, stats
    assert stats["injections"] >= 25, stats
    assert sum(stats["by_point"].values()) == stats["injections"]
    assert sum(1 for n in stats["by_point"].values() if n) >= 5, stats["by_point"]  # spread over the path
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
    # every life but one that crashed while recovering was checked, and so was the final start
    assert stats["checks"] == stats["iterations"] - stats["in_recovery"] + 1, stats
    assert stats["venue_orders"] >= 2 and stats["venue_fills"] >= 2  # it traded
    for k in ("duplicates", "lost_fills", "double_counted", "unbooked_fills", "double_booked"):
        assert stats[k] == 0, (k, stats)
    assert stats["position_mismatches"] == 0 and stats["kernel_mismatches"] == 0
    assert stats["recovery_failures"] == 0 and stats["ok"]
    rtr = stats["restart_to_reconciled_ms"]
    # one fresh process a life plus the final one; a crash inside the start-up reconcile records none
    assert stats["iterations"] - stats["in_recovery"] + 1 <= rtr["starts"] <= stats["iterations"] + 1
    assert rtr["max"] <= 10_000
