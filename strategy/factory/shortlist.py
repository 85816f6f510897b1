"""Shortlist lanes over the bounded top-K pool (pure functions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .sweep_stream import SweepRow

PF_CAP = 10.0


def _pf(r: SweepRow) -> float:
    return PF_CAP if r.profit_factor is None else min(r.profit_factor, PF_CAP)


def _dd(r: SweepRow) -> float:
    return r.max_drawdown_pct / 100.0


def score_efficient(r: SweepRow) -> float:
    return r.total_pnl / max(_dd(r), 0.01) * _pf(r)


def score_growth(r: SweepRow) -> float:
    return r.total_pnl * (1.0 - _dd(r)) * _pf(r)


def score_conservative(r: SweepRow) -> float:
    return -_dd(r)  # lowest drawdown first


def score_balanced(r: SweepRow) -> float:
    s = 0.3 * r.total_pnl + 20.0 * _pf(r) + 15.0 * r.sharpe_ratio - 100.0 * _dd(r)
    return s * (0.5 if r.total_trades < 20 else 1.0)


LANES: dict[str, Callable[[SweepRow], float]] = {
    "efficient": score_efficient,
    "growth": score_growth,
    "conservative": score_conservative,
    "balanced": score_balanced,
}


def shortlist(
    pool: Sequence[SweepRow],
    per_lane: int,
    lanes: Sequence[str] = tuple(LANES),
    min_trades: int = 1,
) -> list[tuple[str, SweepRow]]:
    """Best ``per_lane`` rows of each lane (ties: lower combo); a config picked by an earlier lane
    is not repeated. Returns (lane, row) in lane order."""
    eligible = [r for r in pool if r.total_trades >= min_trades]
    seen: set[str] = set()
    out: list[tuple[str, SweepRow]] = []
    for lane in lanes:
        score = LANES[lane]
        ranked = sorted(eligible, key=lambda r: (-score(r), r.combo))
        n = 0
        for r in ranked:
            if n >= per_lane:
                break
            if r.config_id in seen:
                continue
            seen.add(r.config_id)
            out.append((lane, r))
            n += 1
    return out
