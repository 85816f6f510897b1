"""Ray sharding (optional dependency): trials as Ray tasks on a local cluster give exactly the rows
of the CPU backtester; skipped when Ray is not installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strategy.factory.backtester import sweep
from strategy.factory.deploy import write_yaml_atomic
from strategy.factory.optimize import CpuBackend, Objective, Param, run_grid, run_tpe
from strategy.factory.ray_backend import RayBackend, ray_available

from .conftest import scope_of

pytestmark = pytest.mark.slow


def test_ray_backend_refuses_cleanly_without_ray(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import builtins

    real = builtins.__import__

    def no_ray(name: str, *a: object, **k: object) -> object:
        if name == "ray":
            raise ImportError("no ray")
        return real(name, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_ray)
    assert not ray_available()
    with pytest.raises(RuntimeError, match="pip install"):
        RayBackend(tmp_path / "b.yaml", scope_of(tmp_path, "2025-05-01", "2025-05-02"), tmp_path, None)


def test_grid_and_tpe_on_a_local_ray_cluster_match_the_cpu_path(hl_db: Path, tmp_path: Path) -> None:
    if not ray_available():
        pytest.skip("ray is not installed (optional: pip install 'ai-quant[ray]')")
    scope = scope_of(hl_db, "2025-05-01", "2025-05-20", ("BTC", "ETH"))
    base = tmp_path / "base.yaml"
    write_yaml_atomic(base, {"global": {"strategy": "mei_alpha_v1", "engine": {"interval": "5m"}}})
    axes = ({"path": "trade.sl_atr_mult", "values": [1.5, 3.0]},
            {"path": "indicators.ema_fast_window", "values": [8, 12, 20]})  # fmt: skip
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps({"axes": list(axes)}))
    sweep(base, spec, scope, tmp_path / "grid.jsonl", 10, threads=2)
    ref = [json.loads(x) for x in (tmp_path / "grid.jsonl").read_text().splitlines()]
    rb = RayBackend(base, scope, tmp_path / "ray_work", "local", num_cpus=2)
    try:
        assert run_grid(axes, rb, tmp_path / "ray_grid.jsonl", batch_size=4) == 6
        got = [json.loads(x) for x in (tmp_path / "ray_grid.jsonl").read_text().splitlines()]
        # same combos in the same order, same configs, same results as one ai-quant-bt grid sweep
        assert [(g["combo"], g["config_id"], g["total_pnl"]) for g in got] == [
            (r["combo"], r["config_id"], r["total_pnl"]) for r in ref
        ]
        space = (Param("trade.sl_atr_mult", 1.0, 4.0, step=0.5),)
        kw = {"n_trials": 6, "batch_size": 3, "seed": 11, "n_startup_trials": 3}
        via_ray = run_tpe(space, rb, Objective("pnl", 0), **kw)  # type: ignore[arg-type]
    finally:
        rb.close()
    via_cpu = run_tpe(space, CpuBackend(base, scope, tmp_path / "cpu_work", 2), Objective("pnl", 0), **kw)  # type: ignore[arg-type]
    assert via_ray.best.params == via_cpu.best.params and via_ray.best.row == via_cpu.best.row
