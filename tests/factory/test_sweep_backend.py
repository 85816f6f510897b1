"""The decision-core TPE backend: a batch of trials is one `ai-quant-bt sweep --backend host-cuda`
(the GPU's code on this CPU) with the trials as the spec's points; the next batch is asked while
the current one runs; seeds reproduce runs."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from strategy.factory.deploy import write_yaml_atomic
from strategy.factory.optimize import CpuBackend, Objective, Param, run_tpe, steps_in
from strategy.factory.sweep_backend import SweepBackend, points_spec
from strategy.factory.sweep_stream import SweepRow

from .conftest import scope_of


class PipelinedFake:
    """A backend with `submit`: records when batches start and when their results are taken."""

    name = "fake-pipelined"

    def __init__(self) -> None:
        self.log: list[str] = []
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._gate = threading.Lock()
        self._n = 0

    def _run(self, n: int, batch: list[dict[str, float]]) -> list[SweepRow]:
        out = []
        for p in batch:
            x = p["x"]
            out.append(
                SweepRow(0, f"c{x:g}", dict(p), -((x - 3.0) ** 2), 40, 1.0, 1.0, -((x - 3.0) ** 2), 0.5)
            )
        return out

    def submit(self, batch: Sequence[Mapping[str, float]]) -> Future[list[SweepRow]]:
        n = self._n
        self._n += 1
        self.log.append(f"submit {n}")
        fut = self._pool.submit(self._run, n, [dict(p) for p in batch])
        orig = fut.result

        def result(timeout: float | None = None) -> list[SweepRow]:
            self.log.append(f"result {n}")
            return orig(timeout)

        fut.result = result  # type: ignore[method-assign]
        return fut

    def evaluate(self, batch: Sequence[Mapping[str, float]]) -> list[SweepRow]:
        raise AssertionError("a pipelined backend is driven through submit")


def test_next_batch_is_asked_while_the_current_one_runs_and_seeds_reproduce() -> None:
    space = (Param("x", 0.0, 6.0, step=0.5),)

    def study(seed: int) -> tuple[list[str], list[tuple[int, float]]]:
        be = PipelinedFake()
        r = run_tpe(space, be, Objective("pnl", 0), n_trials=24, batch_size=6, seed=seed, top_k=50)
        return be.log, sorted((t.number, t.params["x"]) for t in r.top)

    log, trials = study(5)
    # Batch k + 1 is submitted before batch k's results are taken (and so before they are told).
    assert log.index("submit 1") < log.index("result 0")
    assert log.index("submit 2") < log.index("result 1")
    # Results are taken in submission order.
    results = [x for x in log if x.startswith("result")]
    assert results == sorted(results, key=lambda s: int(s.split()[1]))
    log2, trials2 = study(5)
    assert trials2 == trials and log2 == log
    assert study(6)[1] != trials


def test_points_spec_is_the_batch_in_order() -> None:
    paths, spec = points_spec([{"b": 2.0, "a": 1.0}, {"a": 3.0, "b": 4.0}])
    assert paths == ["a", "b"]
    assert spec == {"axes": [{"path": "a"}, {"path": "b"}], "points": [[1.0, 2.0], [3.0, 4.0]]}
    with pytest.raises(ValueError, match="trial 1 sets"):
        points_spec([{"a": 1.0}, {"b": 1.0}])
    with pytest.raises(ValueError, match="expected one of"):
        SweepBackend(Path("x"), scope_of(Path("."), "2025-05-01", "2025-05-02"), Path("w"), backend="cpu")


SPACE = (
    Param("trade.sl_atr_mult", 1.0, 4.0, step=0.25),
    Param("trade.tp_atr_mult", 1.5, 6.0, step=0.5),
    Param("trade.leverage", 1, 5, kind="int"),
)


@pytest.mark.slow
def test_host_cuda_tpe_on_real_data_reproduces_and_equals_the_cpu_rows(hl_db: Path, tmp_path: Path) -> None:
    scope = scope_of(hl_db, "2025-05-01", "2025-05-15", ("BTC", "ETH", "SOL"))
    base = tmp_path / "base.yaml"
    write_yaml_atomic(base, {"global": {"strategy": "mei_alpha_v1", "engine": {"interval": "5m"}}})

    def study(seed: int, tag: str) -> tuple[list[dict[str, float]], list[SweepRow]]:
        be = SweepBackend(base, scope, tmp_path / f"w_{tag}", backend="host-cuda", threads=2)
        try:
            r = run_tpe(SPACE, be, Objective("pnl", 0), n_trials=16, batch_size=8, seed=seed, top_k=16,
                        steps=steps_in(scope), interval="5m", n_startup_trials=8)  # fmt: skip
        finally:
            be.close()
        top = sorted(r.top, key=lambda t: t.number)
        return [t.params for t in top], [t.row for t in top]

    a_params, a_rows = study(11, "a")
    b_params, b_rows = study(11, "b")
    assert a_params == b_params and a_rows == b_rows
    assert len(a_rows) >= 8 and any(r.total_trades > 0 for r in a_rows)
    # Each row is what the CPU backtester gives for the same overrides (one-combo sweeps).
    cpu = CpuBackend(base, scope, tmp_path / "w_cpu", workers=2).evaluate(a_params[:4])
    for got, want in zip(a_rows[:4], cpu, strict=True):
        assert (got.config_id, got.total_pnl, got.total_trades, got.sharpe_ratio) == (
            want.config_id,
            want.total_pnl,
            want.total_trades,
            want.sharpe_ratio,
        )
