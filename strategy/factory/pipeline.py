"""Factory pipeline: data checks -> sweep -> shortlist -> CPU replay -> validation -> registry ->
report -> paper deploy of the best validated candidate."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from exchange.candle_db import CandleReader
from exchange.timestamps import iso_ms, ms_iso

from . import report as rpt
from .backtester import REPO, DataScope, ReplayResult, replay, sweep
from .deploy import overrides_to_doc, paper_deploy, write_yaml_atomic
from .lifecycle import MetricsSnapshot, State, transition
from .optimize import (
    Backend,
    CpuBackend,
    Objective,
    Param,
    default_workers,
    run_grid,
    run_tpe,
    space_from_axes,
    steps_in,
)
from .registry import Registry
from .reopt import reopt_checks, reoptimising_walk_forward
from .shortlist import shortlist
from .sweep_stream import SweepRow, consume_sweep
from .thresholds import THRESHOLDS, Thresholds
from .validation import (
    Check,
    TrialStats,
    concentration,
    concentration_checks,
    skipped,
    slippage_check,
    statistics_checks,
    trades_check,
    verdict,
    walk_forward,
    walk_forward_checks,
)
from .window import INTERVAL_MS


@dataclass(frozen=True)
class Profile:
    name: str
    symbols: tuple[str, ...]
    interval: str
    start: str  # ignored when window_days is set
    end: str
    axes: tuple[dict[str, Any], ...]  # the grid (search "grid"); TPE's space when tpe_space is empty
    top_k: int
    per_lane: int
    pool_replay_max: int  # trials replayed for PBO / CPCV (bounded)
    max_staleness_days: float | None  # None: bundled snapshot, freshness not checked
    threshold_overrides: dict[str, Any] = field(default_factory=dict)
    # a window of this many days ending at the data's last bar, so a nightly run moves with the data
    window_days: float | None = None
    search: str = "grid"  # grid | tpe
    tpe_space: tuple[Param, ...] = ()
    tpe_trials: int = 0
    tpe_batch: int = 8
    seed: int = 42
    objective: Objective = field(default_factory=Objective)
    reopt_folds: int = 0  # re-optimising walk-forward folds (0: stage not run)
    reopt_trials: int = 0  # TPE trials per fold's in-sample window
    # sub-bar entries / exits (the blueprint's 30m/3m): every replay and sweep runs them
    entry_interval: str = ""
    exit_interval: str = ""


_HL5 = ("BTC", "ETH", "SOL", "DOGE", "XRP")
SMOKE_AXES = (
    {"path": "trade.sl_atr_mult", "values": [1.5, 2.0, 3.0]},
    {"path": "trade.tp_atr_mult", "values": [2.0, 4.0]},
    {"path": "indicators.ema_fast_window", "values": [8, 12, 20]},
    {"path": "trade.trailing_distance_atr", "values": [0.6, 1.2]},
)
TPE_SPACE = (
    Param("trade.sl_atr_mult", 1.0, 4.0, step=0.25),
    Param("trade.tp_atr_mult", 1.5, 8.0, step=0.5),
    Param("trade.trailing_distance_atr", 0.4, 2.0, step=0.1),
    Param("indicators.ema_fast_window", 5, 30, kind="int"),
    Param("indicators.ema_slow_window", 30, 120, kind="int", step=5),
    Param("thresholds.entry.min_adx", 10.0, 35.0, step=1.0),
    Param("trade.allocation_pct", 0.01, 0.05, step=0.005),
)
DEEP_AXES = (
    *SMOKE_AXES,
    {"path": "trade.allocation_pct", "values": [0.01, 0.02, 0.03, 0.05]},
    {"path": "thresholds.entry.min_adx", "values": [12.0, 15.0, 20.0, 25.0, 30.0]},
    {"path": "indicators.ema_slow_window", "values": [30, 50, 80, 120]},
    {"path": "trade.entry_min_confidence", "values": [0, 1, 2]},
)
PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", _HL5, "5m", "2025-05-01", "2025-06-30", SMOKE_AXES, 64, 2, 36, None),
    # smoke with the TPE search and the re-optimising walk-forward (same data and gates)
    "smoke-tpe": Profile(
        "smoke-tpe", _HL5, "5m", "2025-05-01", "2025-06-30", SMOKE_AXES, 64, 2, 36, None,
        search="tpe", tpe_space=TPE_SPACE[:4], tpe_trials=48, tpe_batch=8,
        objective=Objective("sharpe", min_trades=30), reopt_folds=3, reopt_trials=16,
    ),
    "daily": Profile(
        "daily", (), "5m", "", "",
        (*SMOKE_AXES,
         {"path": "trade.allocation_pct", "values": [0.02, 0.03, 0.05]},
         {"path": "thresholds.entry.min_adx", "values": [15.0, 20.0, 25.0, 30.0]},
         {"path": "indicators.ema_slow_window", "values": [30, 50, 80]}),
        1000, 5, 100, 2.0, window_days=120.0,
        search="tpe", tpe_space=TPE_SPACE, tpe_trials=400, tpe_batch=16,
        objective=Objective("dsr", min_trades=30), reopt_folds=4, reopt_trials=64,
    ),
    "deep": Profile(
        "deep", (), "5m", "", "",
        DEEP_AXES,
        1000, 10, 200, 2.0, window_days=120.0, reopt_folds=4, reopt_trials=128,
    ),
    # deep on the blueprint's primary mode: 30m bars (exact aggregation of 5m files), 3m entries and
    # exits (of 1m files); the replays keep the main bars the 3m bars cover (auto-scope)
    "deep-primary": Profile(
        "deep-primary", (), "30m", "", "",
        DEEP_AXES,
        1000, 10, 200, 2.0, window_days=120.0, reopt_folds=4, reopt_trials=128,
        entry_interval="3m", exit_interval="3m",
    ),
}  # fmt: skip


ALL_STAGES = frozenset({"walk_forward", "reopt_walk_forward", "slippage", "concentration", "statistics"})


@dataclass(frozen=True)
class RunOptions:
    profile: Profile
    run_id: str
    artifacts: Path  # the run's directory
    registry_path: Path
    data_src: Path
    db_dir: Path | None = None  # use existing DBs instead of importing
    base_config: Path | None = None
    paper_config: Path | None = None  # deploy target; default <artifacts>/paper/strategy_overrides.yaml
    threads: int | None = None
    stages: frozenset[str] = ALL_STAGES
    ray_address: str | None = None  # "local" or a cluster address: trials run as Ray tasks
    # "gpu" or "host-cuda": each batch of trials is one sweep on the decision core (sweep_backend.py)
    core_backend: str | None = None
    core_backend_args: tuple[str, ...] = ()  # e.g. ("--gpu-kernel", "aiq_sweep.sm_90.cubin")


def log(msg: str) -> None:
    print(f"[factory] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- data


def _source_interval(fut: Path, iv: str) -> str:
    """The shipped interval ``iv`` is read from: its own files, else the coarsest shipped interval
    that divides it (the longest history), aggregated exactly by the import."""
    if any(fut.glob(f"*-{iv}-futures.feather")):
        return iv
    ms = INTERVAL_MS[iv]
    native = [x for x in INTERVAL_MS if INTERVAL_MS[x] < ms and ms % INTERVAL_MS[x] == 0]
    have = [x for x in native if any(fut.glob(f"*-{x}-futures.feather"))]
    if not have:
        raise ValueError(f"no {iv} candles and none to aggregate them from in {fut}")
    return max(have, key=INTERVAL_MS.__getitem__)


def import_data(p: Profile, src: Path, db_dir: Path) -> None:
    """The profile's intervals (main and sub-bar) into ``db_dir``, each from its own files or
    aggregated exactly from a finer shipped interval (tools/import_candles.py --aggregate)."""
    fut = src / "hyperliquid" / "futures"
    targets: dict[str, list[str]] = {}
    for iv in dict.fromkeys(x for x in (p.interval, p.entry_interval, p.exit_interval) if x):
        targets.setdefault(_source_interval(fut, iv), []).append(iv)
    main_src = _source_interval(fut, p.interval)
    syms = p.symbols or tuple(
        sorted({f.name.split("_")[0] for f in fut.glob(f"*-{main_src}-futures.feather")})
    )
    for source, ivs in targets.items():
        files = [str(fut / f"{sym}_USDC_USDC-{source}-futures.feather") for sym in syms]
        if source == main_src:
            files += [str(fut / f"{sym}_USDC_USDC-1h-funding_rate.feather") for sym in syms]
        agg = [iv for iv in ivs if iv != source]
        cmd = [
            sys.executable,
            str(REPO / "tools" / "import_candles.py"),
            *files,
            "--db-dir",
            str(db_dir),
            "--quiet",
        ]
        if agg:
            cmd += ["--aggregate", ",".join(agg)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"import_candles failed: {proc.stdout[-1000:]} {proc.stderr[-2000:]}")


def resolve_window(p: Profile, db_dir: Path) -> Profile:
    """A profile with ``window_days`` gets ``[last bar - window_days, last bar]``, the last bar
    being the newest candle of the profile's symbols (all symbols when none are listed). A fixed
    window is returned unchanged."""
    if p.window_days is None:
        if not p.start or not p.end:
            raise ValueError(f"profile {p.name}: set start and end, or window_days")
        return p
    if p.window_days <= 0:
        raise ValueError(f"profile {p.name}: window_days must be > 0")
    with CandleReader(db_dir / f"candles_{p.interval}.db") as db:
        last = db.last_t(p.interval, tuple(p.symbols))
    if last is None:
        raise ValueError(f"profile {p.name}: no {p.interval} candles in {db_dir} to anchor the window")
    step = INTERVAL_MS[p.interval]
    end = int(last) // step * step
    start = (end - int(p.window_days * 86_400_000)) // step * step
    return dataclasses.replace(p, start=ms_iso(start), end=ms_iso(end))


def data_checks(p: Profile, db_dir: Path, now_ms: int | None = None) -> tuple[list[Check], tuple[str, ...]]:
    """Gaps and coverage inside the run's window, funding coverage, freshness."""
    step = INTERVAL_MS[p.interval]
    a, b = iso_ms(p.start), iso_ms(p.end)
    checks: list[Check] = []
    with CandleReader(db_dir / f"candles_{p.interval}.db") as db:
        syms = tuple(p.symbols) or tuple(db.symbols())
        last_all = 0
        for s in syms:
            n = db.count(s, p.interval, a, b)
            last_all = max(last_all, db.last_t(symbols=(s,)) or 0)
            expected = (b - a) // step + 1
            missing = expected - int(n)
            share = missing / expected
            checks.append(
                Check(
                    f"candles:{s}",
                    n > 0 and share <= 0.01,
                    share,
                    0.01,
                    f"{n} of {expected} bars in window ({share:.2%} missing)",
                )
            )
    with sqlite3.connect(f"file:{db_dir / 'funding_rates.db'}?mode=ro", uri=True) as c:
        hours = (b - a) // 3_600_000
        for s in syms:
            n = int(
                c.execute(
                    "SELECT COUNT(*) FROM funding_rates WHERE symbol=? AND time>=? AND time<?", (s, a, b)
                ).fetchone()[0]
            )
            cov = n / max(hours, 1)
            checks.append(
                Check(
                    f"funding:{s}", cov >= 0.9, cov, 0.9, f"{n} of {hours} hourly funding rates ({cov:.0%})"
                )
            )
    if p.max_staleness_days is None:
        checks.append(
            Check(
                "freshness",
                True,
                None,
                None,
                "skipped: bundled snapshot (profile sets no staleness limit)",
                enabled=False,
            )
        )
    else:
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        age = (now - last_all) / 86_400_000
        checks.append(
            Check(
                "freshness",
                age <= p.max_staleness_days,
                age,
                p.max_staleness_days,
                f"last bar {age:.1f} d old",
            )
        )
    return checks, syms  # fmt: skip


# --------------------------------------------------------------------------- run


def _check_dict(c: Check) -> dict[str, Any]:
    return dataclasses.asdict(c)


def _thresholds(p: Profile) -> Thresholds:
    return dataclasses.replace(THRESHOLDS, **p.threshold_overrides) if p.threshold_overrides else THRESHOLDS


def run_factory(o: RunOptions) -> dict[str, Any]:
    t_start = time.monotonic()
    p, th = o.profile, _thresholds(o.profile)
    art = o.artifacts
    art.mkdir(parents=True, exist_ok=True)
    reg = Registry(o.registry_path)
    reg.start_run(o.run_id, p.name, str(art), {"profile": dataclasses.asdict(p)})
    report: dict[str, Any] = {
        "run": {"run_id": o.run_id, "profile": p.name, "status": "running", "artifacts": str(art)},
        "threshold_overrides": p.threshold_overrides,
        "thresholds": th.as_dict(),
        "candidates": [],
        "promoted": None,
    }
    try:
        _run(o, p, th, reg, report)
        report["run"]["status"] = report["run"].get("status_final", "ok")
    except Exception as exc:
        report["run"]["status"] = "failed"
        report["run"]["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        report["run"]["wall_s"] = time.monotonic() - t_start
        report["run"].pop("status_final", None)
        reg.finish_run(o.run_id, report["run"]["status"], report.get("sweep", {}).get("n_trials"))
        reg.close()
        rpt.write_json(art / "report.json", report)
        if "data" in report and "sweep" in report:
            (art / "report.md").write_text(rpt.render_markdown(report))
    return report


def _run(o: RunOptions, p: Profile, th: Thresholds, reg: Registry, report: dict[str, Any]) -> None:
    art = o.artifacts
    # 1. data
    db_dir = o.db_dir
    if db_dir is None:
        db_dir = art / "data"
        log(f"importing {p.interval} candles + funding into {db_dir}")
        import_data(p, o.data_src, db_dir)
    p = resolve_window(p, db_dir)
    report["run"]["window"] = {"start": p.start, "end": p.end, "relative_days": p.window_days}
    checks, syms = data_checks(p, db_dir)
    bad = [c for c in checks if c.enabled and not c.passed]
    report["data"] = {
        "db_dir": str(db_dir),
        "symbols": list(syms),
        "checks": [_check_dict(c) for c in checks],
        "summary": f"{len(syms)} symbols {p.interval} {p.start}..{p.end}, "
        f"{len(checks) - len(bad)}/{len(checks)} checks pass",
    }
    if bad:
        report["sweep"] = {"n_trials": 0, "sr_variance_per_step": 0.0, "pool_size": 0}
        report["run"]["status_final"] = "data_unfit"
        log("data not fit: " + "; ".join(f"{c.name}: {c.detail}" for c in bad))
        return
    scope = DataScope(
        db_dir / f"candles_{p.interval}.db", db_dir / "funding_rates.db", p.interval, syms, p.start, p.end,
        p.entry_interval, p.exit_interval,
    )  # fmt: skip
    # 2. sweep
    base_doc: dict[str, Any]
    if o.base_config is not None:
        base_doc = yaml.safe_load(o.base_config.read_text()) or {}
    else:
        engine = {"interval": p.interval}
        engine.update(
            {k: v for k, v in (("entry_interval", p.entry_interval), ("exit_interval", p.exit_interval)) if v}
        )
        base_doc = {"global": {"strategy": "mei_alpha_v1", "engine": engine}}
    base_path = art / "base_config.yaml"
    write_yaml_atomic(base_path, base_doc)
    jsonl = art / "sweep.jsonl"
    t0 = time.monotonic()
    space = p.tpe_space or space_from_axes(p.axes)
    backends: list[Any] = []

    def make_backend(sc: DataScope, work: Path) -> Backend:
        b: Backend
        if o.core_backend:
            from .sweep_backend import SweepBackend

            b = SweepBackend(base_path, sc, work, o.core_backend, o.threads, o.core_backend_args)
        elif o.ray_address:
            from .ray_backend import RayBackend

            b = RayBackend(base_path, sc, work, o.ray_address, num_cpus=o.threads)
        else:
            b = CpuBackend(base_path, sc, work, o.threads or default_workers())
        backends.append(b)
        return b

    try:
        _search_and_validate(
            o, p, th, reg, report, scope, base_doc, base_path, jsonl, t0, space, make_backend
        )
    finally:
        for b in backends:
            if hasattr(b, "close"):
                b.close()


def _search_and_validate(
    o: RunOptions,
    p: Profile,
    th: Thresholds,
    reg: Registry,
    report: dict[str, Any],
    scope: DataScope,
    base_doc: dict[str, Any],
    base_path: Path,
    jsonl: Path,
    t0: float,
    space: tuple[Param, ...],
    make_backend: Callable[[DataScope, Path], Backend],
) -> None:
    art = o.artifacts
    tpe_summary: dict[str, Any] = {}
    if p.search == "tpe":
        log(f"TPE: {p.tpe_trials} trials in batches of {p.tpe_batch} (seed {p.seed}, {p.objective.metric})")
        backend = make_backend(scope, art / "tpe_work")
        tpe = run_tpe(space, backend, p.objective, n_trials=p.tpe_trials, batch_size=p.tpe_batch, seed=p.seed,
                      top_k=p.top_k, steps=steps_in(scope), interval=p.interval, jsonl=jsonl)  # fmt: skip
        tpe_summary = tpe.summary()
    elif p.search == "grid" and o.ray_address:
        log(f"grid: {math.prod(len(a['values']) for a in p.axes)} combos as Ray tasks")
        run_grid(p.axes, make_backend(scope, art / "grid_work"), jsonl, batch_size=max(p.tpe_batch, 16))
    elif p.search == "grid":
        spec = art / "sweep_spec.yaml"
        spec.write_text(yaml.safe_dump({"axes": [dict(a) for a in p.axes]}, sort_keys=False))
        log(f"sweep: {math.prod(len(a['values']) for a in p.axes)} combos")
        core = ("--backend", o.core_backend, *o.core_backend_args) if o.core_backend else ()
        sweep(base_path, spec, scope, jsonl, p.top_k, o.threads, backend_args=core)
    else:
        raise ValueError(f"profile {p.name}: unknown search {p.search!r} (grid or tpe)")
    with jsonl.open() as fh:
        summary = consume_sweep(fh, p.top_k)
    periods = 365 * 86_400_000 / INTERVAL_MS[p.interval]
    sr_var = summary.sharpe.variance / periods  # annualised -> per step
    pool = summary.top()
    report["sweep"] = {
        "n_trials": summary.n_trials,
        "bad_lines": summary.n_bad_lines,
        "sr_variance_per_step": sr_var,
        "sr_mean_annualised": summary.sharpe.mean,
        "pool_size": len(pool),
        "wall_s": time.monotonic() - t0,
        "jsonl": str(jsonl),
        "search": p.search,
        **({"tpe": tpe_summary} if tpe_summary else {}),
    }
    # 3. shortlist
    picks = shortlist(pool, p.per_lane)
    log(f"shortlist: {len(picks)} candidates from a pool of {len(pool)}")
    # 4. CPU replay (pool for PBO/CPCV, bounded; the shortlist always)
    defaults = _defaults()
    cache: dict[str, ReplayResult] = {}

    def cpu(row: SweepRow, slip: float | None = None) -> ReplayResult:
        key = f"{row.config_id}@{slip}"
        if key not in cache:
            cfg = art / "configs" / f"{row.config_id[:16]}.yaml"
            if not cfg.exists():
                write_yaml_atomic(cfg, overrides_to_doc(base_doc, row.overrides, defaults))
            out = art / "replays" / (row.config_id[:16] + ("" if slip is None else f"_slip{slip:g}"))
            cache[key] = replay(cfg, scope, out, slippage_bps=slip)
        return cache[key]

    t0 = time.monotonic()
    pool_rows = pool[: p.pool_replay_max]
    for _, r in picks:
        if r not in pool_rows:
            pool_rows.append(r)
    curves = [cpu(r).step_returns() for r in pool_rows]
    t_len = min(c.size for c in curves)
    matrix = np.stack([c[:t_len] for c in curves], axis=1)
    trials = TrialStats(summary.n_trials, sr_var, matrix, tuple(r.config_id for r in pool_rows))
    report["sweep"]["pool_replayed"] = len(pool_rows)
    report["sweep"]["replay_wall_s"] = time.monotonic() - t0
    # 5. validation; the re-optimising walk-forward judges the search itself, once per run
    wfo: list[Check]
    if "reopt_walk_forward" not in o.stages:
        wfo = [skipped("reopt_walk_forward", "stage disabled for this run")]
    elif p.reopt_folds <= 0:
        wfo = [skipped("reopt_walk_forward", f"profile {p.name} runs no re-optimised folds")]
    else:
        t0 = time.monotonic()
        log(f"re-optimising walk-forward: {p.reopt_folds} folds x {p.reopt_trials} TPE trials")
        ro = reoptimising_walk_forward(
            space, make_backend, scope, base_doc,
            art / "reopt_wf", p.objective, n_folds=p.reopt_folds, train_share=th.wf_train_share,
            trials_per_fold=p.reopt_trials, batch_size=p.tpe_batch, seed=p.seed, defaults=defaults,
        )  # fmt: skip
        wfo = reopt_checks(ro, th)
        report["reopt_walk_forward"] = {**ro.summary(), "wall_s": time.monotonic() - t0}

    def config_checks(
        res: ReplayResult, at_bps: Callable[[float], ReplayResult]
    ) -> tuple[list[Check], dict[str, float | None]]:
        """The checks one config's own replay decides (no trial pool needed)."""
        checks_c: list[Check] = [trades_check(res.total_trades, th)]
        metrics: dict[str, float | None] = dict(res.metrics())
        if "walk_forward" in o.stages:
            wf = walk_forward(res.equity_t_ms, res.equity, th.wf_windows, th.wf_train_share)
            checks_c += walk_forward_checks(wf, th)
            metrics.update(wf_efficiency=wf.efficiency, wf_profitable_share=wf.profitable_share,
                           wf_median_oos_daily_return=wf.median_oos_daily_return)  # fmt: skip
        if "slippage" in o.stages:
            by_bps = {b: at_bps(b).total_pnl for b in th.slippage_stress_bps}
            checks_c.append(slippage_check(res.total_pnl, by_bps, th))
            metrics.update({f"pnl_at_{b:g}bps": v for b, v in by_bps.items()})
        if "concentration" in o.stages:
            conc = concentration(res.by_symbol_pnl, res.by_symbol_trades)
            checks_c += concentration_checks(conc, th)
            metrics.update(
                top1_share=conc.top1_share,
                top5_share=conc.top5_share,
                symbols_traded=float(conc.symbols_traded),
            )
        return checks_c, metrics

    promoted: tuple[str, SweepRow, ReplayResult] | None = None
    for lane, row in picks:
        res = cpu(row)
        if abs(res.total_pnl - row.total_pnl) > 1e-6 * max(1.0, abs(row.total_pnl)):
            log(f"warning: replay PnL {res.total_pnl} != sweep {row.total_pnl} for {row.config_id[:12]}")

        def at_bps(b: float, row: SweepRow = row) -> ReplayResult:
            return cpu(row, b)

        checks_c, metrics = config_checks(res, at_bps)
        if "statistics" in o.stages:
            col = trials.pool_ids.index(row.config_id)
            sc, sm = statistics_checks(
                matrix[:, col], res.trade_pnls, trials, row.config_id, th, res.holding_steps()
            )
            checks_c += sc
            metrics.update(sm)
        checks_c += wfo
        checks_c += [
            skipped(st, "stage disabled for this run")
            for st in sorted(ALL_STAGES - o.stages - {"reopt_walk_forward"})
        ]
        v, reasons = verdict(checks_c)
        reg.add_config(row.config_id, {"base": base_doc, "overrides": row.overrides}, o.run_id)
        reg.add_metrics(o.run_id, row.config_id, metrics)
        reg.add_verdict(
            o.run_id,
            row.config_id,
            lane,
            v,
            _reason_rows(checks_c),
        )
        snap = MetricsSnapshot(
            res.total_pnl, res.profit_factor, res.max_drawdown_pct, res.total_trades, res.sharpe_ratio
        )
        if reg.state(row.config_id) is State.CANDIDATE:
            to = State.VALIDATED if v == "validated" else State.RETIRED
            reg.record_transition(transition(row.config_id, State.CANDIDATE, to, f"factory:{o.run_id}",
                                             "all checks passed" if not reasons else "; ".join(reasons), snap))  # fmt: skip
        if v == "validated" and promoted is None:
            promoted = (lane, row, res)
        report["candidates"].append({
            "lane": lane, "config_id": row.config_id, "combo": row.combo, "overrides": row.overrides,
            "metrics": metrics, "checks": [_check_dict(c) for c in checks_c], "verdict": v, "reasons": reasons,
            "state": (reg.state(row.config_id) or State.CANDIDATE).value,
        })  # fmt: skip
        log(f"{lane} {row.config_id[:12]}: {v}" + (f" ({len(reasons)} failed checks)" if reasons else ""))
    # 5b. nightly re-validation of the configs trading live: the same per-config checks on this
    # run's window (a failure is a rotation trigger the hourly ramp tick acts on)
    report["revalidation"] = revalidate_live(o, reg, scope, defaults, config_checks, report["candidates"])
    # 6. paper deploy of the best validated candidate
    plot_src: tuple[str, ReplayResult] | None = None
    if promoted is not None:
        lane, row, res = promoted
        target = o.paper_config or art / "paper" / "strategy_overrides.yaml"
        paper_deploy(target, base_doc, row.overrides, row.config_id, o.run_id, defaults)
        reg.add_deployment(
            "paper_deploy", row.config_id, str(target), "paper", f"factory:{o.run_id}: best ({lane})"
        )
        if reg.state(row.config_id) is State.VALIDATED:
            snap = MetricsSnapshot(
                res.total_pnl, res.profit_factor, res.max_drawdown_pct, res.total_trades, res.sharpe_ratio
            )
            reg.record_transition(transition(row.config_id, State.VALIDATED, State.PAPER, f"factory:{o.run_id}",
                                             f"best validated candidate ({lane}); deployed to {target}", snap))  # fmt: skip
        report["promoted"] = {"config_id": row.config_id, "lane": lane, "paper_config": str(target)}
        plot_src = (f"promoted config {row.config_id[:12]} ({lane})", res)
    elif picks:
        lane, row = picks[0]
        plot_src = (f"best shortlisted config {row.config_id[:12]} ({lane}) - NOT promoted", cpu(row))
    if plot_src is not None:
        report["plot"] = rpt.plot_equity(
            art / "equity.png", plot_src[1].equity_t_ms, plot_src[1].equity, plot_src[0]
        )
    n_val = sum(1 for c in report["candidates"] if c["verdict"] == "validated")
    report["run"]["status_final"] = "ok" if n_val else "ok_no_candidate"


def _reason_rows(checks: list[Check]) -> list[tuple[str, bool, str]]:
    """A verdict's reasons as the registry stores them (a disabled check counts as passed)."""
    return [(c.name, c.passed or not c.enabled, c.detail) for c in checks]


def revalidate_live(
    o: RunOptions,
    reg: Registry,
    scope: DataScope,
    defaults: dict[str, Any],
    config_checks: Callable[
        [ReplayResult, Callable[[float], ReplayResult]], tuple[list[Check], dict[str, Any]]
    ],
    candidates: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Replay every live_small / live_full config of the registry over this run's data with its
    own base config and record a verdict (lane ``revalidation``). The trial-pool statistics (DSR,
    PBO, CPCV) are not re-run: the config is not one of this run's trials. A config that this run
    also validated as a candidate keeps that verdict."""
    out: list[dict[str, Any]] = []
    judged = {c["config_id"]: c for c in candidates}
    for cid in reg.in_states((State.LIVE_SMALL, State.LIVE_FULL)):
        if cid in judged:
            c = judged[cid]
            out.append(
                {"config_id": cid, "verdict": c["verdict"], "reasons": c["reasons"], "source": "candidate"}
            )
            continue
        doc = reg.config(cid)
        cfg = o.artifacts / "revalidation" / f"{cid[:16]}.yaml"
        if not cfg.exists():
            write_yaml_atomic(
                cfg, overrides_to_doc(doc.get("base") or {}, doc.get("overrides") or {}, defaults)
            )
        work = o.artifacts / "revalidation" / cid[:16]

        def at_bps(b: float, cfg: Path = cfg, work: Path = work) -> ReplayResult:
            return replay(cfg, scope, work.with_name(f"{work.name}_slip{b:g}"), slippage_bps=b)

        checks_c, metrics = config_checks(replay(cfg, scope, work), at_bps)
        v, reasons = verdict(checks_c)
        reg.add_metrics(o.run_id, cid, metrics)
        reg.add_verdict(
            o.run_id,
            cid,
            "revalidation",
            v,
            _reason_rows(checks_c),
        )
        log(f"re-validation of live {cid[:12]}: {v}" + (f" ({'; '.join(reasons)})" if reasons else ""))
        out.append({"config_id": cid, "verdict": v, "reasons": reasons, "source": "revalidation",
                    "checks": [_check_dict(c) for c in checks_c]})  # fmt: skip
    return out


def _defaults() -> dict[str, Any]:
    try:
        from engine.config.loader import kernel_defaults

        return kernel_defaults()
    except Exception:  # pragma: no cover - bt_runtime not built
        return {}


def default_data_src() -> Path:
    env = os.environ.get("AI_QUANT_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def to_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
