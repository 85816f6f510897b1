from __future__ import annotations

from pathlib import Path

import pytest

from strategy.factory.lifecycle import (
    LEGAL,
    IllegalTransition,
    LiveStats,
    MetricsSnapshot,
    PaperStats,
    State,
    paper_gates,
    ramp_step,
    rotation_triggers,
    start_ramp,
    transition,
)
from strategy.factory.registry import Registry
from strategy.factory.thresholds import THRESHOLDS

H = 3600.0


def test_legal_transitions() -> None:
    assert LEGAL[State.RETIRED] == frozenset()
    transition("h", State.CANDIDATE, State.VALIDATED, "validation", "all checks passed")
    for bad in [
        (State.CANDIDATE, State.PAPER),
        (State.PAUSED, State.PAPER),  # must re-validate
        (State.PAUSED, State.LIVE_SMALL),
        (State.RETIRED, State.CANDIDATE),
        (State.VALIDATED, State.LIVE_FULL),
        (State.PAPER, State.LIVE_FULL),
    ]:
        with pytest.raises(IllegalTransition):
            transition("h", bad[0], bad[1], "t", "r", ramp_stage=0)
    with pytest.raises(IllegalTransition):
        transition("h", State.PAPER, State.LIVE_SMALL, "gates", "ok")  # no ramp stage
    with pytest.raises(IllegalTransition):
        transition("h", State.CANDIDATE, State.RETIRED, "t", "")  # no reason


def test_paper_gates() -> None:
    ok = PaperStats(25, 10.0, 1.5, 5.0, 120.0, 0)
    assert paper_gates(ok).passed
    assert paper_gates(PaperStats(5, 30.0, 1.5, 5.0, 1.0, 0)).passed  # 24 h instead of 20 trades
    bad = paper_gates(PaperStats(5, 3.0, 1.1, 12.0, -1.0, 1))
    assert not bad.passed and len(bad.reasons) == 5
    assert any("PF 1.100 < 1.2" in r for r in bad.reasons)
    assert paper_gates(PaperStats(25, 30.0, None, 1.0, 5.0, 0)).passed  # no losses: PF inf


def test_rotation_triggers() -> None:
    assert rotation_triggers(LiveStats(1.3, 30, 5.0, True, 3.0)) == ()
    r = rotation_triggers(LiveStats(0.9, 30, 16.0, False, 15.0))
    assert r == (
        "rolling PF 0.900 < 1.0 over 30 trades",
        "DD 16.00% > 15.0% from start",
        "nightly re-validation failed",
        "config age 15.0 d > 14 d",
    )
    assert rotation_triggers(LiveStats(0.5, 10, 0.0, None, 1.0)) == ()  # too few trades for PF


@pytest.mark.parametrize(
    ("stats", "fired"),
    [
        (LiveStats(0.99, 30, 0.0, None, 0.0), "rolling PF"),
        (LiveStats(1.0, 30, 0.0, None, 0.0), None),  # PF at the minimum keeps running
        (LiveStats(0.5, 29, 0.0, None, 0.0), None),  # one trade short of the window
        (LiveStats(None, 30, 15.0, None, 0.0), None),  # DD at the maximum keeps running
        (LiveStats(None, 30, 15.01, None, 0.0), "DD"),
        (LiveStats(None, 30, 0.0, True, 0.0), None),
        (LiveStats(None, 30, 0.0, False, 0.0), "nightly re-validation"),
        (LiveStats(None, 30, 0.0, None, 14.0), None),
        (LiveStats(None, 30, 0.0, None, 14.01), "config age"),
    ],
)
def test_each_rotation_trigger_alone_at_its_edge(stats: LiveStats, fired: str | None) -> None:
    r = rotation_triggers(stats)
    assert [t.split(" ")[0] for t in r] == ([] if fired is None else [fired.split(" ")[0]])
    if fired is not None:
        assert r[0].startswith(fired)


def test_ramp_accelerated_clock() -> None:
    t0 = 1_000_000.0
    rs = start_ramp(t0)
    stages = THRESHOLDS.ramp_stages
    d = ramp_step(rs, t0 + 1 * H, 0)
    assert d.action == "hold" and d.size_multiplier == stages[0]
    d = ramp_step(rs, t0 + 24 * H, 0)
    assert d.action == "advance" and d.size_multiplier == stages[1] and d.next.stage == 1
    # kill event at 50% -> step down to 25%, clock restarts
    d2 = ramp_step(d.next, t0 + 30 * H, 1)
    assert d2.action == "step_down" and d2.size_multiplier == stages[0] and d2.next.stage == 0
    # same kill counted once: holds afterwards
    assert ramp_step(d2.next, t0 + 31 * H, 1).action == "hold"
    d3 = ramp_step(d2.next, t0 + 54 * H, 1)
    assert d3.action == "advance"
    d4 = ramp_step(d3.next, t0 + 78 * H, 1)
    assert d4.action == "complete" and d4.next.state is State.LIVE_FULL and d4.size_multiplier == 1.0
    assert d4.transition == (State.LIVE_SMALL, State.LIVE_FULL)
    # kill at stage 0 pauses
    p = ramp_step(start_ramp(t0), t0 + H, 1)
    assert p.action == "pause" and p.next.state is State.PAUSED and p.size_multiplier == 0.0
    # rotation pauses even at live_full
    r = ramp_step(d4.next, t0 + 100 * H, 1, rotation=("DD 16% > 15%",))
    assert r.action == "pause" and r.transition == (State.LIVE_FULL, State.PAUSED)
    # the ramp's walk through a bounded simulated clock always ends at live_full without kills
    rs = start_ramp(t0)
    for step in range(200):
        dec = ramp_step(rs, t0 + step * H, 0)
        rs = dec.next
    assert rs.state is State.LIVE_FULL


def test_registry_roundtrip(tmp_path: Path) -> None:
    with Registry(tmp_path / "registry.sqlite") as reg:
        reg.start_run("r1", "smoke", str(tmp_path), {"x": 1})
        reg.add_config("abc", {"trade": {"sl_atr_mult": 2.0}}, "r1")
        reg.add_metrics("r1", "abc", {"dsr": 0.97, "pbo": 0.1})
        reg.add_verdict("r1", "abc", "efficient", "validated", [("dsr", True, "0.97 >= 0.95")])
        reg.finish_run("r1", "ok", n_trials=16)
        assert reg.run("r1")["n_trials"] == 16  # type: ignore[index]
        assert reg.metrics("r1", "abc") == {"dsr": 0.97, "pbo": 0.1}
        assert reg.reasons("r1", "abc") == [("dsr", True, "0.97 >= 0.95")]
        assert reg.state("abc") is State.CANDIDATE
        snap = MetricsSnapshot(100.0, 1.5, 3.0, 40, 1.2)
        reg.record_transition(transition("abc", State.CANDIDATE, State.VALIDATED, "factory", "passed", snap))
        with pytest.raises(ValueError):  # stale from-state
            reg.record_transition(transition("abc", State.CANDIDATE, State.RETIRED, "x", "y"))
        reg.record_transition(transition("abc", State.VALIDATED, State.PAPER, "deploy", "best"))
        reg.record_transition(
            transition("abc", State.PAPER, State.LIVE_SMALL, "gates", "gates 1+2", ramp_stage=0)
        )
        rows = reg.transitions("abc")
        assert [(r["from_state"], r["to_state"]) for r in rows] == [
            ("candidate", "validated"),
            ("validated", "paper"),
            ("paper", "live_small"),
        ]
        assert rows[0]["profit_factor"] == 1.5 and rows[2]["ramp_stage"] == 0
        assert reg.state("abc") is State.LIVE_SMALL
