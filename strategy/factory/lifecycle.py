"""Strategy lifecycle: states, legal transitions, promotion gates, the automated live ramp and the
rotation triggers. Pure decision logic; persistence is :mod:`strategy.factory.registry`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .thresholds import THRESHOLDS, Thresholds


class State(StrEnum):
    CANDIDATE = "candidate"
    VALIDATED = "validated"
    PAPER = "paper"
    LIVE_SMALL = "live_small"
    LIVE_FULL = "live_full"
    PAUSED = "paused"
    RETIRED = "retired"


S = State
LEGAL: dict[State, frozenset[State]] = {
    S.CANDIDATE: frozenset({S.VALIDATED, S.RETIRED}),
    S.VALIDATED: frozenset({S.PAPER, S.RETIRED}),
    S.PAPER: frozenset({S.LIVE_SMALL, S.PAUSED, S.RETIRED}),
    # live_small -> live_small is a ramp step (25% -> 50%), recorded like any transition
    S.LIVE_SMALL: frozenset({S.LIVE_SMALL, S.LIVE_FULL, S.PAUSED}),
    S.LIVE_FULL: frozenset({S.PAUSED}),
    S.PAUSED: frozenset({S.VALIDATED, S.RETIRED}),  # never straight back to paper or live
    S.RETIRED: frozenset(),
}


class IllegalTransition(ValueError):
    pass


@dataclass(frozen=True)
class MetricsSnapshot:
    pnl: float = 0.0
    profit_factor: float | None = None
    max_drawdown_pct: float = 0.0
    trades: int = 0
    sharpe: float = 0.0


@dataclass(frozen=True)
class Transition:
    config_hash: str
    from_state: State
    to_state: State
    trigger: str
    timestamp: float
    metrics: MetricsSnapshot
    ramp_stage: int | None
    reason: str

    def as_row(self) -> dict[str, Any]:
        return {
            "config_hash": self.config_hash,
            "from_state": self.from_state.value,
            "to_state": self.to_state.value,
            "trigger": self.trigger,
            "timestamp": self.timestamp,
            "pnl": self.metrics.pnl,
            "profit_factor": self.metrics.profit_factor,
            "max_drawdown_pct": self.metrics.max_drawdown_pct,
            "trades": self.metrics.trades,
            "sharpe": self.metrics.sharpe,
            "ramp_stage": self.ramp_stage,
            "reason": self.reason,
        }


def transition(
    config_hash: str,
    from_state: State,
    to_state: State,
    trigger: str,
    reason: str,
    metrics: MetricsSnapshot | None = None,
    ramp_stage: int | None = None,
    timestamp: float | None = None,
) -> Transition:
    """Build the record of a legal transition; raise :class:`IllegalTransition` otherwise."""
    if to_state not in LEGAL[from_state]:
        raise IllegalTransition(f"{from_state.value} -> {to_state.value} is not allowed")
    if to_state is S.LIVE_SMALL and ramp_stage is None:
        raise IllegalTransition("live_small needs a ramp stage")
    if not reason:
        raise IllegalTransition("every transition needs a reason")
    return Transition(
        config_hash,
        from_state,
        to_state,
        trigger,
        time.time() if timestamp is None else timestamp,
        metrics or MetricsSnapshot(),
        ramp_stage,
        reason,
    )


# --------------------------------------------------------------------------- gates


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: tuple[str, ...]  # failures (empty when passed) or the notes of a pass


@dataclass(frozen=True)
class PaperStats:
    closed_trades: int
    hours: float
    profit_factor: float | None  # None: no losing trade
    max_drawdown_pct: float
    net_pnl_at_stress_bps: float  # net PnL re-priced at paper_net_positive_bps slippage
    kill_events: int


def paper_gates(p: PaperStats, th: Thresholds = THRESHOLDS) -> GateResult:
    """Gate 1 (enough evidence) and gate 2 (quality) for paper -> live_small."""
    fails = []
    if p.closed_trades < th.paper_min_closed_trades and p.hours < th.paper_min_hours:
        fails.append(
            f"gate1: {p.closed_trades} closed trades < {th.paper_min_closed_trades} "
            f"and {p.hours:.1f} h < {th.paper_min_hours:g} h"
        )
    pf = float("inf") if p.profit_factor is None else p.profit_factor
    if p.closed_trades == 0 or pf < th.paper_pf_min:
        fails.append(f"gate2: PF {pf:.3f} < {th.paper_pf_min}")
    if p.max_drawdown_pct > th.paper_max_dd_pct:
        fails.append(f"gate2: DD {p.max_drawdown_pct:.2f}% > {th.paper_max_dd_pct}%")
    if p.net_pnl_at_stress_bps <= 0:
        fails.append(f"gate2: net PnL at {th.paper_net_positive_bps:g} bps <= 0")
    if p.kill_events > th.paper_max_kill_events:
        fails.append(f"gate2: {p.kill_events} kill-switch events")
    return GateResult(not fails, tuple(fails))


@dataclass(frozen=True)
class LiveStats:
    rolling_pf: float | None  # over the last rotation_pf_window_trades trades
    rolling_trades: int
    dd_from_start_hwm_pct: float
    revalidation_passed: bool | None  # None: not run yet
    age_days: float


def rotation_triggers(s: LiveStats, th: Thresholds = THRESHOLDS) -> tuple[str, ...]:
    out = []
    if (
        s.rolling_trades >= th.rotation_pf_window_trades
        and s.rolling_pf is not None
        and s.rolling_pf < th.rotation_pf_min
    ):
        out.append(
            f"rolling PF {s.rolling_pf:.3f} < {th.rotation_pf_min} over {th.rotation_pf_window_trades} trades"
        )
    if s.dd_from_start_hwm_pct > th.rotation_dd_pct_max:
        out.append(f"DD {s.dd_from_start_hwm_pct:.2f}% > {th.rotation_dd_pct_max}% from start")
    if s.revalidation_passed is False:
        out.append("nightly re-validation failed")
    if s.age_days > th.rotation_max_age_days:
        out.append(f"config age {s.age_days:.1f} d > {th.rotation_max_age_days:g} d")
    return tuple(out)


# --------------------------------------------------------------------------- live ramp


@dataclass(frozen=True)
class RampState:
    """Position in the ramp: ``stage`` indexes ``Thresholds.ramp_stages``."""

    state: State
    stage: int
    stage_started_at: float  # epoch seconds
    kill_events_seen: int = 0


@dataclass(frozen=True)
class RampDecision:
    action: str  # hold | advance | complete | step_down | pause
    next: RampState
    size_multiplier: float
    reason: str
    transition: tuple[State, State] | None = field(default=None)


def start_ramp(now: float) -> RampState:
    return RampState(S.LIVE_SMALL, 0, now)


def ramp_step(
    rs: RampState,
    now: float,
    kill_events_total: int,
    rotation: tuple[str, ...] = (),
    th: Thresholds = THRESHOLDS,
) -> RampDecision:
    """One tick of the automated ramp (25% -> 50% -> 100% by default).

    - a new kill event at stage > 0 steps down one stage (clock restarts); at stage 0 it pauses;
    - any rotation trigger pauses;
    - a stage held ``ramp_stage_hours`` without a new kill event advances; the last stage
      completes the ramp (live_full).
    """
    stages = th.ramp_stages
    if rs.state not in (S.LIVE_SMALL, S.LIVE_FULL):
        raise IllegalTransition(f"no ramp in state {rs.state.value}")
    new_kills = kill_events_total - rs.kill_events_seen
    if rotation:
        nxt = RampState(S.PAUSED, rs.stage, now, kill_events_total)
        return RampDecision("pause", nxt, 0.0, "; ".join(rotation), (rs.state, S.PAUSED))
    if new_kills > 0:
        if rs.stage == 0:
            nxt = RampState(S.PAUSED, 0, now, kill_events_total)
            return RampDecision(
                "pause", nxt, 0.0, f"{new_kills} kill event(s) at the first stage", (rs.state, S.PAUSED)
            )
        stage = rs.stage - 1
        nxt = RampState(S.LIVE_SMALL, stage, now, kill_events_total)
        return RampDecision(
            "step_down",
            nxt,
            stages[stage],
            f"{new_kills} kill event(s): step down to {stages[stage]:.0%}",
            (rs.state, S.LIVE_SMALL),
        )
    if rs.state is S.LIVE_FULL:
        return RampDecision("hold", rs, stages[-1], "live_full")
    held_h = (now - rs.stage_started_at) / 3600.0
    if held_h < th.ramp_stage_hours:
        return RampDecision("hold", rs, stages[rs.stage], f"held {held_h:.1f} h of {th.ramp_stage_hours:g} h")
    if rs.stage + 1 >= len(stages) - 1:
        nxt = RampState(S.LIVE_FULL, len(stages) - 1, now, kill_events_total)
        return RampDecision(
            "complete", nxt, stages[-1], f"ramp complete at {stages[-1]:.0%}", (S.LIVE_SMALL, S.LIVE_FULL)
        )
    stage = rs.stage + 1
    nxt = RampState(S.LIVE_SMALL, stage, now, kill_events_total)
    return RampDecision(
        "advance", nxt, stages[stage], f"advance to {stages[stage]:.0%}", (S.LIVE_SMALL, S.LIVE_SMALL)
    )
