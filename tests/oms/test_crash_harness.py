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
