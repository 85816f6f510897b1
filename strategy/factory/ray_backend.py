"""Optional Ray backend: the TPE batch (or a re-optimised fold's batch) runs as Ray tasks, one
single-combo ``ai-quant-bt sweep`` per task, on a Ray cluster (``--ray-address``) or a local one.

Ray is optional (``pip install 'ai-quant[ray]'``); without it this module imports, and only
constructing :class:`RayBackend` fails with a clear message. Every node needs the repository at the
same path, the built ``ai-quant-bt`` and the candle DBs (a shared filesystem), as the tasks get
paths, not data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .backtester import REPO, DataScope, find_binary
from .optimize import run_one_combo
from .sweep_stream import SweepRow


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


class RayBackend:
    name = "ray"

    def __init__(
        self,
        base_config: Path,
        scope: DataScope,
        workdir: Path,
        address: str | None,
        *,
        num_cpus: int | None = None,
        timeout: float = 600.0,
    ) -> None:
        """``address`` None or "local": start a local cluster on 127.0.0.1 (shut down by
        :meth:`close`); otherwise connect to that cluster."""
        try:
            import ray
        except ImportError as exc:
            raise RuntimeError(
                "--ray-address needs Ray: pip install 'ai-quant[ray]' (or pip install ray)"
            ) from exc
        self._ray: Any = ray
        self.base_config, self.scope, self.workdir, self.timeout = base_config, scope, workdir, timeout
        self._owns = False
        if not ray.is_initialized():
            env = {
                "env_vars": {
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
                }
            }
            if address in (None, "local"):
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False,
                         runtime_env=env, _node_ip_address="127.0.0.1")  # fmt: skip
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False, runtime_env=env)
            self._owns = True
        self._task = ray.remote(num_cpus=1)(run_one_combo)
        self._n = 0

    def evaluate(self, batch: Sequence[Mapping[str, float]]) -> list[SweepRow]:
        binary, args = str(find_binary()), self.scope.args()
        refs = []
        for p in batch:
            wd = str(self.workdir / f"t{self._n:07d}")
            self._n += 1
            refs.append(self._task.remote(binary, str(self.base_config), args, dict(p), wd, self.timeout))
        return [SweepRow.parse(json.loads(line)) for line in self._ray.get(refs)]

    def close(self) -> None:
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
            self._owns = False
