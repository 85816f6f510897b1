"""Streaming consumer of the sweep JSONL: trial count, running moments of the trials' Sharpe
ratios (for the Deflated Sharpe) and a bounded top-K heap. Memory is O(K), not O(trials)."""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .stats import RunningVariance


@dataclass(frozen=True)
class SweepRow:
    combo: int
    config_id: str
    overrides: dict[str, float]
    total_pnl: float
    total_trades: int
    profit_factor: float | None
    max_drawdown_pct: float
    sharpe_ratio: float
    win_rate: float

    @staticmethod
    def parse(obj: dict[str, Any]) -> SweepRow:
        pf = obj.get("profit_factor")
        return SweepRow(
            combo=int(obj["combo"]),
            config_id=str(obj["config_id"]),
            overrides={str(k): float(v) for k, v in obj["overrides"].items()},
            total_pnl=float(obj["total_pnl"]),
            total_trades=int(obj["total_trades"]),
            profit_factor=None if pf is None else float(pf),
            max_drawdown_pct=float(obj["max_drawdown_pct"]),
            sharpe_ratio=float(obj["sharpe_ratio"] or 0.0),
            win_rate=float(obj.get("win_rate") or 0.0),
        )


@dataclass
class SweepSummary:
    top_k: int
    n_trials: int = 0
    n_bad_lines: int = 0
    sharpe: RunningVariance = field(default_factory=RunningVariance)
    _heap: list[tuple[float, int, SweepRow]] = field(default_factory=list)

    def push(self, row: SweepRow) -> None:
        self.n_trials += 1
        self.sharpe.push(row.sharpe_ratio)
        # min-heap keyed by (pnl, -combo): the root is the worst kept row; ties keep lower combo
        item = (row.total_pnl, -row.combo, row)
        if len(self._heap) < self.top_k:
            heapq.heappush(self._heap, item)
        elif item[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, item)

    def top(self) -> list[SweepRow]:
        return [r for _, _, r in sorted(self._heap, key=lambda x: (-x[0], -x[1]))]


def consume_sweep(lines: Iterable[str], top_k: int) -> SweepSummary:
    """Read JSONL rows one at a time (a torn or blank line is counted and skipped)."""
    summary = SweepSummary(top_k=top_k)
    for line in lines:
        if not line.strip():
            continue
        try:
            row = SweepRow.parse(json.loads(line))
        except (ValueError, KeyError, TypeError):
            summary.n_bad_lines += 1
            continue
        summary.push(row)
    return summary
