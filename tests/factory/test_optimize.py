"""TPE optimisation: seeded reproducibility on real data, the trade-count penalty, dedup and the
bounded top-K, and the batch interface a GPU backend would implement."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from strategy.factory.deploy import write_yaml_atomic
from strategy.factory.optimize import CpuBackend, Objective, Param, run_tpe, space_from_axes, steps_in
from strategy.factory.stats import RunningVariance
from strategy.factory.sweep_stream import SweepRow, consume_sweep

from .conftest import scope_of

SPACE = (
    Param("trade.sl_atr_mult", 1.0, 4.0, step=0.25),
    Param("trade.tp_atr_mult", 1.5, 6.0, step=0.5),
    Param("indicators.ema_fast_window", 5, 30, kind="int"),
)


def _row(pnl: float, trades: int, sharpe: float, cid: str = "x") -> SweepRow:
    return SweepRow(0, cid, {}, pnl, trades, 1.0, 5.0, sharpe, 0.5)


def test_objective_penalises_too_few_trades() -> None:
    rv = RunningVariance()
    ob = Objective("pnl", min_trades=30)
    assert ob.score(_row(500.0, 30, 1.0), 1000, 105_120, rv) == 500.0
    # 10 of 30 trades: two thirds of the 10,000 default penalty
    assert ob.score(_row(500.0, 10, 1.0), 1000, 105_120, rv) == pytest.approx(500.0 - 10_000 * 20 / 30)
    sh = Objective("sharpe", min_trades=30)
    assert sh.score(_row(0, 0, 3.0), 1000, 105_120, rv) == pytest.approx(3.0 - 10.0)
    assert Objective("sharpe", 30, penalty=1.0).score(_row(0, 15, 3.0), 1000, 105_120, rv) == 2.5


def test_dsr_objective_deflates_with_more_trials() -> None:
    ob = Objective("dsr", min_trades=0)
    row = _row(100.0, 50, 20.0)
    few, many = RunningVariance(), RunningVariance()
    for s in (-5.0, 5.0):
        few.push(s)
    for i in range(200):
        many.push(-5.0 if i % 2 else 5.0)
    # same Sharpe, same spread of trial Sharpes: more trials -> higher expected max -> lower score
    a, b = ob.score(row, 17_000, 105_120, few), ob.score(row, 17_000, 105_120, many)
    assert 0.0 <= b < a <= 1.0


def test_param_validation() -> None:
    with pytest.raises(ValueError, match="high"):
        Param("trade.sl_atr_mult", 2.0, 1.0)
    with pytest.raises(ValueError, match="log"):
        Param("trade.sl_atr_mult", 0.0, 1.0, log=True)
    assert space_from_axes([{"path": "a.b", "values": [1, 2]}])[0].choices == (1.0, 2.0)


class FakeBackend:
    """A deterministic stand-in with the backend interface (what a GPU backend implements)."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def evaluate(self, batch: Sequence[Mapping[str, float]]) -> list[SweepRow]:
        self.calls.append(len(batch))
        out = []
        for p in batch:
            x = p["x"]
            cid = f"c{x:g}"
            out.append(SweepRow(0, cid, dict(p), -((x - 3.0) ** 2), 40, 1.0, 1.0, -((x - 3.0) ** 2), 0.5))
        return out


def test_batches_dedup_and_bounded_top_k(tmp_path: Path) -> None:
    be = FakeBackend()
    space = (Param("x", choices=tuple(float(i) for i in range(7))),)
    r = run_tpe(space, be, Objective("pnl", 0), n_trials=40, batch_size=8, seed=1, top_k=3,
                jsonl=tmp_path / "t.jsonl")  # fmt: skip
    assert r.n_trials == 40 and r.n_distinct <= 7
    assert sum(be.calls) == r.n_distinct and all(c <= 8 for c in be.calls)
    assert len(r.top) == 3 and r.best.params == {"x": 3.0} and r.top[0].params == {"x": 3.0}
    assert [t.score for t in r.top] == sorted((t.score for t in r.top), reverse=True)
    with (tmp_path / "t.jsonl").open() as fh:
        s = consume_sweep(fh, 10)
    assert s.n_trials == r.n_distinct and s.n_bad_lines == 0


@pytest.mark.slow
def test_tpe_on_real_data_is_reproducible(hl_db: Path, tmp_path: Path) -> None:
    scope = scope_of(hl_db, "2025-05-01", "2025-05-31", ("BTC", "ETH", "SOL"))
    base = tmp_path / "base.yaml"
    write_yaml_atomic(base, {"global": {"strategy": "mei_alpha_v1", "engine": {"interval": "5m"}}})

    def study(seed: int, tag: str) -> tuple[list[dict[str, float]], object]:
        be = CpuBackend(base, scope, tmp_path / f"w_{tag}", workers=2)
        out = tmp_path / f"{tag}.jsonl"
        r = run_tpe(SPACE, be, Objective("sharpe", 20), n_trials=12, batch_size=4, seed=seed, top_k=5,
                    steps=steps_in(scope), interval="5m", jsonl=out, n_startup_trials=4)  # fmt: skip
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(r.top) == 5 and r.best.score == max(x["score"] for x in rows)
        return [x["overrides"] for x in rows], r.best.row

    a_params, a_best = study(7, "a")
    b_params, b_best = study(7, "b")
    c_params, _ = study(8, "c")
    assert a_params == b_params and a_best == b_best
    assert c_params != a_params
    # every trial is a real backtest: a one-combo sweep row (same config_id as a grid sweep's)
    assert a_best.total_trades > 0 and len(a_best.config_id) == 64  # type: ignore[attr-defined]
