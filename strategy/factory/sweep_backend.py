"""The decision-core backends for the TPE search: a whole batch of trials is ONE
``ai-quant-bt sweep --backend gpu|host-cuda`` run, its combos given as the spec's ``points``.

``submit`` starts a batch on a single worker thread and returns a future, so the search asks the
next batch while the device runs this one (``optimize.run_tpe`` does this for any backend with
``submit``); batches run one after the other, in submission order, so results do not depend on
timing. ``gpu`` needs a CUDA device (``--gpu-kernel`` or NVRTC, see docs/backtester.md "CUDA
sweep"); ``host-cuda`` runs the same C++ core on this CPU (what CI tests)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .backtester import DataScope, _run, find_binary
from .sweep_stream import SweepRow

CORE_BACKENDS = ("gpu", "host-cuda")


def points_spec(batch: Sequence[Mapping[str, float]]) -> tuple[list[str], dict[str, object]]:
    """A sweep spec whose combos are exactly ``batch`` (every set must name the same paths)."""
    paths = sorted(batch[0])
    for i, p in enumerate(batch):
        if sorted(p) != paths:
            raise ValueError(f"trial {i} sets {sorted(p)}, the batch's first sets {paths}")
    spec = {"axes": [{"path": k} for k in paths], "points": [[float(p[k]) for k in paths] for p in batch]}
    return paths, spec


@dataclass
class SweepBackend:
    """Batches of trials as one sweep on the decision core (``backend``: gpu or host-cuda)."""

    base_config: Path
    scope: DataScope
    workdir: Path
    backend: str = "gpu"
    threads: int | None = None
    extra_args: tuple[str, ...] = ()  # e.g. ("--gpu-kernel", "aiq_sweep.sm_90.cubin")
    timeout: float = 3600.0
    name: str = field(init=False)
    _n: int = field(default=0, init=False)
    _pool: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        if self.backend not in CORE_BACKENDS:
            raise ValueError(f"backend {self.backend!r}: expected one of {', '.join(CORE_BACKENDS)}")
        self.name = self.backend
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sweep-{self.backend}")

    def _run_batch(self, n: int, batch: list[dict[str, float]]) -> list[SweepRow]:
        d = self.workdir / f"b{n:06d}"
        d.mkdir(parents=True, exist_ok=True)
        spec, out = d / "spec.yaml", d / "rows.jsonl"
        _, doc = points_spec(batch)
        spec.write_text(yaml.safe_dump(doc, sort_keys=False))
        cmd = [str(find_binary()), "sweep", "--config", str(self.base_config), "--sweep-spec", str(spec)]
        cmd += [*self.scope.args(), "--backend", self.backend, *self.extra_args]
        cmd += ["--output", str(out), "--no-progress", "-q"]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        _run(cmd, self.timeout)
        rows = [SweepRow.parse(json.loads(x)) for x in out.read_text().splitlines()]
        if len(rows) != len(batch):
            raise RuntimeError(f"{self.backend} sweep returned {len(rows)} rows for {len(batch)} trials")
        for f in (spec, out, out.with_name(out.name + ".top.json")):
            f.unlink(missing_ok=True)
        d.rmdir()
        return rows

    def submit(self, batch: Sequence[Mapping[str, float]]) -> Future[list[SweepRow]]:
        """Start ``batch`` (after any batch submitted before it); its rows, in order."""
        n = self._n
        self._n += 1
        return self._pool.submit(self._run_batch, n, [dict(p) for p in batch])

    def evaluate(self, batch: Sequence[Mapping[str, float]]) -> list[SweepRow]:
        return self.submit(batch).result() if batch else []

    def close(self) -> None:
        self._pool.shutdown(wait=True)
