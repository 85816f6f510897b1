from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator

from strategy.factory.shortlist import shortlist
from strategy.factory.sweep_stream import SweepRow, consume_sweep


def _lines(n: int) -> Iterator[str]:
    for i in range(n):
        pnl = ((i * 7919) % 10007) - 5000.0
        yield json.dumps(
            {
                "combo": i,
                "config_id": f"{i:064x}",
                "overrides": {"trade.sl_atr_mult": 1.0 + (i % 7)},
                "total_pnl": pnl,
                "total_trades": 10 + i % 50,
                "profit_factor": None if i % 11 == 0 else 1.0 + pnl / 10000.0,
                "max_drawdown_pct": 1.0 + (i % 23),
                "sharpe_ratio": pnl / 2500.0,
                "win_rate": 0.5,
            }
        )


def _peak(n: int) -> int:
    tracemalloc.start()
    s = consume_sweep(_lines(n), top_k=100)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert s.n_trials == n and len(s.top()) == 100
    return peak


def test_top_k_and_moments() -> None:
    lines = [*list(_lines(1000)), "", '{"torn": ']
    s = consume_sweep(lines, top_k=10)
    assert s.n_trials == 1000 and s.n_bad_lines == 1
    rows = [SweepRow.parse(json.loads(x)) for x in lines[:1000]]
    want = sorted(rows, key=lambda r: (-r.total_pnl, r.combo))[:10]
    assert [r.combo for r in s.top()] == [r.combo for r in want]
    import numpy as np

    assert abs(s.sharpe.variance - float(np.var([r.sharpe_ratio for r in rows], ddof=1))) < 1e-9


def test_memory_flat_1k_vs_100k() -> None:
    small, large = _peak(1_000), _peak(100_000)
    assert large < small * 1.5 + 64_000, (small, large)


def test_shortlist_lanes() -> None:
    s = consume_sweep(_lines(2000), top_k=200)
    picks = shortlist(s.top(), per_lane=2)
    assert [lane for lane, _ in picks] == ["efficient"] * 2 + ["growth"] * 2 + ["conservative"] * 2 + [
        "balanced"
    ] * 2
    assert len({r.config_id for _, r in picks}) == 8
    cons = [r for lane, r in picks if lane == "conservative"]
    assert cons[0].max_drawdown_pct == min(r.max_drawdown_pct for r in s.top())
