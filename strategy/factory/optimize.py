"""TPE optimisation (Optuna) over strategy overrides, evaluated in batches by a backend.

The loop is ask a batch -> evaluate the batch -> tell the batch, so a backend that runs many
trials at once (the CPU backtester's process pool today, a GPU sweep later) plugs in behind
:class:`Backend` without touching the search. Every evaluated trial is streamed to a JSONL file in
the sweep's row format, so the rest of the factory (trial count and Sharpe variance for the
Deflated Sharpe, bounded top-K, shortlist) reads it like a grid sweep.

Reproducibility: the sampler is seeded, a batch is told in ask order, and the backtester is
deterministic, so the same seed gives the same trials and the same best result.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Protocol

import yaml

from exchange.timestamps import iso_ms

from . import stats
from .backtester import DataScope, _run, find_binary
from .stats import RunningVariance
from .sweep_stream import SweepRow
from .window import INTERVAL_MS

Metric = Literal["pnl", "sharpe", "dsr"]


# --------------------------------------------------------------------------- search space


@dataclass(frozen=True)
class Param:
    """One searched override. ``choices`` makes it categorical (numbers, like sweep specs);
    otherwise ``low``..``high`` (``step`` for a grid, ``log`` for a log scale)."""

    path: str
    low: float = 0.0
    high: float = 0.0
    kind: Literal["float", "int"] = "float"
    step: float | None = None
    log: bool = False
    choices: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("a search parameter needs a path")
        if not self.choices and not self.high > self.low:
            raise ValueError(f"{self.path}: high ({self.high}) must be greater than low ({self.low})")
        if self.log and self.low <= 0:
            raise ValueError(f"{self.path}: a log-scale range needs low > 0")

    def suggest(self, trial: Any) -> float:
        if self.choices:
            return float(trial.suggest_categorical(self.path, list(self.choices)))
        if self.kind == "int":
            step = int(self.step or 1)
            return float(trial.suggest_int(self.path, int(self.low), int(self.high), step=step, log=self.log))
        v = float(trial.suggest_float(self.path, self.low, self.high, step=self.step, log=self.log))
        return round(v, 12)  # a stepped float arrives as 1.8000000000000003


def space_from_axes(axes: Sequence[Mapping[str, Any]]) -> tuple[Param, ...]:
    """A TPE space from grid axes: each axis becomes a categorical over its values."""
    return tuple(Param(str(a["path"]), choices=tuple(float(v) for v in a["values"])) for a in axes)


# --------------------------------------------------------------------------- objective


@dataclass(frozen=True)
class Objective:
    """Score to maximise. ``dsr`` is the probabilistic Sharpe against the expected maximum Sharpe
    of the trials told so far (Bailey & Lopez de Prado 2014, normal returns assumed since a
    sweep row has no return moments): a lucky Sharpe among many trials scores lower.

    A trial with fewer than ``min_trades`` trades loses ``penalty`` times its shortfall share, so
    the search cannot win by barely trading."""

    metric: Metric = "sharpe"
    min_trades: int = 30
    penalty: float | None = None  # None: a per-metric default (larger than any plausible gain)

    def penalty_value(self) -> float:
        if self.penalty is not None:
            return self.penalty
        return {"pnl": 10_000.0, "sharpe": 10.0, "dsr": 1.0}[self.metric]

    def score(self, row: SweepRow, steps: int, periods_per_year: float, sharpe_var: RunningVariance) -> float:
        if self.metric == "pnl":
            raw = row.total_pnl
        elif self.metric == "sharpe":
            raw = row.sharpe_ratio
        else:
            root = math.sqrt(periods_per_year)
            sr = row.sharpe_ratio / root
            var = sharpe_var.variance / periods_per_year if sharpe_var.count >= 2 else 0.0
            raw = stats.probabilistic_sharpe_ratio(
                sr, max(steps, 2), 0.0, 3.0, stats.expected_max_sharpe(max(sharpe_var.count, 1), var)
            )
        short = max(0, self.min_trades - row.total_trades)
        if short:
            raw -= self.penalty_value() * short / max(self.min_trades, 1)
        return float(raw) if math.isfinite(raw) else -1e18


# --------------------------------------------------------------------------- backends


def run_one_combo(
    binary: str,
    base_config: str,
    scope_args: list[str],
    overrides: dict[str, float],
    workdir: str,
    timeout: float,
) -> str:
    """One ``ai-quant-bt sweep`` of a single combo; returns its JSONL row. Plain types in and out,
    so a Ray worker can run it as well as a local thread."""
    d = Path(workdir)
    d.mkdir(parents=True, exist_ok=True)
    spec, out = d / "spec.yaml", d / "row.jsonl"
    axes = [{"path": k, "values": [float(v)]} for k, v in sorted(overrides.items())]
    spec.write_text(yaml.safe_dump({"axes": axes}, sort_keys=False))
    cmd = [binary, "sweep", "--config", base_config, "--sweep-spec", str(spec), *scope_args]
    cmd += ["--output", str(out), "--threads", "1", "--no-progress", "-q"]
    _run(cmd, timeout)
    line = out.read_text().splitlines()[0]
    for f in (spec, out, out.with_name(out.name + ".top.json")):
        f.unlink(missing_ok=True)
    d.rmdir()
    return line


class Backend(Protocol):
    """Evaluates a batch of override sets; returns one sweep row per set, in order."""

    name: str

    def evaluate(self, batch: Sequence[Mapping[str, float]]) -> list[SweepRow]: ...


@dataclass
class CpuBackend:
    """The CPU backtester: one ``ai-quant-bt sweep`` process per trial with a single-combo spec,
    ``workers`` at a time (each with one thread).

    The sweep spec is a cartesian grid with no list of explicit combos, so a TPE batch cannot be
    one call; a one-combo sweep costs the data load (about 0.3 s on the smoke scope) on top of
    the simulation. Results equal the grid sweep's row for the same overrides (same config_id)."""

    base_config: Path
    scope: DataScope
    workdir: Path
    workers: int = 2
    timeout: float = 600.0
    name: str = "cpu"
    _n: int = field(default=0, init=False)

    def _one(self, i: int, overrides: Mapping[str, float]) -> SweepRow:
        line = run_one_combo(str(find_binary()), str(self.base_config), self.scope.args(), dict(overrides),
                             str(self.workdir / f"t{i:07d}"), self.timeout)  # fmt: skip
        return SweepRow.parse(json.loads(line))

    def evaluate(self, batch: Sequence[Mapping[str, float]]) -> list[SweepRow]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        start = self._n
        self._n += len(batch)
        with ThreadPoolExecutor(max_workers=max(1, self.workers)) as ex:
            return list(ex.map(self._one, range(start, start + len(batch)), batch))


# --------------------------------------------------------------------------- study


@dataclass(frozen=True)
class Trial:
    number: int
    params: dict[str, float]
    score: float
    row: SweepRow


@dataclass
class TPEResult:
    n_trials: int  # asked and told
    n_distinct: int  # distinct configs evaluated (the Deflated Sharpe's trial count)
    best: Trial
    top: list[Trial]  # best first, at most top_k
    sharpe: RunningVariance
    wall_s: float
    backend: str
    seed: int
    jsonl: Path | None

    @property
    def trials_per_s(self) -> float:
        return self.n_trials / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "search": "tpe",
            "backend": self.backend,
            "seed": self.seed,
            "n_trials": self.n_trials,
            "n_distinct": self.n_distinct,
            "wall_s": self.wall_s,
            "trials_per_s": self.trials_per_s,
            "best": {"number": self.best.number, "score": self.best.score, "params": self.best.params,
                     "config_id": self.best.row.config_id, "total_pnl": self.best.row.total_pnl,
                     "total_trades": self.best.row.total_trades, "sharpe_ratio": self.best.row.sharpe_ratio},
        }  # fmt: skip


def _row_json(row: SweepRow, number: int, score: float) -> str:
    return json.dumps(
        {"combo": number, "config_id": row.config_id, "overrides": row.overrides,
         "total_pnl": row.total_pnl, "total_trades": row.total_trades, "profit_factor": row.profit_factor,
         "max_drawdown_pct": row.max_drawdown_pct, "sharpe_ratio": row.sharpe_ratio,
         "win_rate": row.win_rate, "score": score},
        sort_keys=True,
    )  # fmt: skip


def steps_in(scope: DataScope) -> int:
    return max(2, (iso_ms(scope.end) - iso_ms(scope.start)) // INTERVAL_MS[scope.interval] + 1)


@dataclass
class _Batch:
    """One asked batch: its trials, their parameters and keys, which of them run (``todo``, the
    rest repeat a trial already run or asked), and the running backend call (``submit``)."""

    asked: list[Any]
    params: list[dict[str, float]]
    keys: list[tuple[tuple[str, float], ...]]
    todo: list[int]
    batch: list[dict[str, float]]
    future: Any


def run_tpe(
    space: Sequence[Param],
    backend: Backend,
    objective: Objective,
    *,
    n_trials: int,
    batch_size: int,
    seed: int,
    top_k: int = 64,
    steps: int = 2,
    interval: str = "5m",
    jsonl: Path | None = None,
    n_startup_trials: int | None = None,
    on_batch: Callable[[int, float], None] | None = None,
) -> TPEResult:
    """Seeded TPE: ``n_trials`` trials in batches of ``batch_size`` (the last may be smaller).

    Repeated parameter sets (TPE re-proposes on discrete spaces) are evaluated once and told the
    same score; they count once in the trial statistics and the JSONL (the Deflated Sharpe wants
    distinct trials). Top-K is a bounded heap by score; new trials go to ``jsonl`` as they finish."""
    import optuna

    if n_trials < 1 or batch_size < 1:
        raise ValueError("n_trials and batch_size must be >= 1")
    if not space:
        raise ValueError("the search space is empty")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    sampler = optuna.samplers.TPESampler(
        seed=seed,
        n_startup_trials=n_startup_trials if n_startup_trials is not None else min(10, max(1, n_trials // 4)),
        multivariate=True,
        constant_liar=True,
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    periods = 365 * 86_400_000 / INTERVAL_MS[interval]
    sharpe = RunningVariance()
    seen: dict[tuple[tuple[str, float], ...], SweepRow] = {}
    scored: dict[tuple[tuple[str, float], ...], float] = {}
    distinct = 0
    heap: list[tuple[float, int, Trial]] = []
    best: Trial | None = None
    t0 = time.monotonic()
    if jsonl is not None:
        jsonl.parent.mkdir(parents=True, exist_ok=True)
    fh: IO[str] | None = jsonl.open("w") if jsonl is not None else None
    done = 0
    asked_n = 0
    # A backend with `submit` runs a batch while the next one is asked (the sampler's constant
    # liar covers the trials still running); batches are told in ask order either way.
    submit = getattr(backend, "submit", None)
    inflight: set[tuple[tuple[str, float], ...]] = set()
    pending: _Batch | None = None
    try:
        while asked_n < n_trials or pending is not None:
            nxt: _Batch | None = None
            if asked_n < n_trials:
                asked = [study.ask() for _ in range(min(batch_size, n_trials - asked_n))]
                params = [{p.path: p.suggest(t) for p in space} for t in asked]
                keys = [tuple(sorted(p.items())) for p in params]
                todo = [
                    i for i, k in enumerate(keys) if k not in seen and k not in inflight and k not in keys[:i]
                ]
                batch = [params[i] for i in todo]
                fut = submit(batch) if submit is not None and batch else None
                inflight.update(keys[i] for i in todo)
                asked_n += len(asked)
                nxt = _Batch(asked, params, keys, todo, batch, fut)
                if submit is None:
                    pending, nxt = nxt, None
            if pending is None:
                pending = nxt
                continue
            cur, pending = pending, nxt
            asked, params, keys = cur.asked, cur.params, cur.keys
            rows = (
                cur.future.result()
                if cur.future is not None
                else backend.evaluate(cur.batch)
                if cur.batch
                else []
            )
            for i, row in zip(cur.todo, rows, strict=True):
                seen[keys[i]] = row
                inflight.discard(keys[i])
            for t, p, k in zip(asked, params, keys, strict=True):
                row = seen[k]
                if k in scored:
                    study.tell(t, scored[k])
                    continue
                sharpe.push(row.sharpe_ratio)
                sc = scored[k] = objective.score(row, steps, periods, sharpe)
                study.tell(t, sc)
                distinct += 1
                tr = Trial(t.number, p, sc, row)
                if best is None or sc > best.score:
                    best = tr
                item = (sc, -t.number, tr)
                if len(heap) < top_k:
                    heapq.heappush(heap, item)
                elif item[:2] > heap[0][:2]:
                    heapq.heapreplace(heap, item)
                if fh is not None:
                    fh.write(_row_json(row, t.number, sc) + "\n")
            if fh is not None:
                fh.flush()
            done += len(asked)
            if on_batch is not None and best is not None:
                on_batch(done, best.score)
    finally:
        if fh is not None:
            fh.close()
    assert best is not None
    top = [tr for _, _, tr in sorted(heap, key=lambda x: (-x[0], -x[1]))]
    return TPEResult(done, distinct, best, top, sharpe, time.monotonic() - t0, backend.name, seed, jsonl)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def run_grid(axes: Sequence[Mapping[str, Any]], backend: Backend, jsonl: Path, batch_size: int = 64) -> int:
    """A grid (cartesian product, first axis slowest, like ``ai-quant-bt sweep`` without gates)
    evaluated through a backend in batches, rows streamed to ``jsonl`` in combo order. This is how
    a grid runs sharded on Ray; memory is one batch, whatever the grid size."""
    import itertools

    if any(a.get("gate") for a in axes):
        raise ValueError("gated axes run only in ai-quant-bt sweep (no --ray-address for this profile)")
    paths = [str(a["path"]) for a in axes]
    combos = itertools.product(*[[float(v) for v in a["values"]] for a in axes])
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with jsonl.open("w") as fh:
        while True:
            chunk = [dict(zip(paths, c, strict=True)) for c in itertools.islice(combos, batch_size)]
            if not chunk:
                return n
            for row in backend.evaluate(chunk):
                fh.write(_row_json(row, n, row.total_pnl) + "\n")
                n += 1
            fh.flush()
