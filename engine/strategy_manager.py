"""StrategyManager: the daemon's current strategy config, hot-reloaded from the YAML.

A thin layer over ``engine.config.ConfigWatcher`` (stat-only polling, full validation, last good
config kept). It adds what the daemon needs: an alert and an audit line when an edit is rejected,
a warning when a key that needs a restart changed (``engine.interval``, ``entry_interval``,
``exit_interval``: the running intervals stay in force), and the set of symbols whose kernel
config must be replaced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import ConfigError, ConfigWatcher, LoadedConfig, ReloadEvent, StrategyConfig
from engine.config.errors import Problem

log = logging.getLogger("engine.strategy_manager")


@dataclass(frozen=True)
class ReloadOutcome:
    event: ReloadEvent
    symbols: tuple[str, ...] = ()  # symbols whose config must be pushed to the kernel

    @property
    def applied(self) -> bool:
        return self.event.status == "reloaded"


def refuse_unsupported(source: Path, configs: Iterable[LoadedConfig]) -> None:
    """Sub-bar intervals the daemon cannot follow as a replay would: refused, so backtest and daemon
    never silently disagree. ``engine.entry_interval`` / ``exit_interval`` must divide
    ``engine.interval`` (``ai-quant-bt replay`` refuses the same)."""
    from engine.data.intervals import INTERVALS

    problems = []
    for cfg in configs:
        eng = cfg.model.engine
        main = INTERVALS.get(eng.interval)
        for key, sub in (("entry_interval", eng.entry_interval), ("exit_interval", eng.exit_interval)):
            if not sub or main is None or sub not in INTERVALS:
                continue  # unset, or an unknown name the schema already reports
            if INTERVALS[sub] > main or main % INTERVALS[sub]:
                where = f" (symbols.{cfg.symbol})" if cfg.symbol else ""
                problems.append(
                    Problem(
                        f"engine.{key}",
                        f"{sub}{where} must divide engine.interval {eng.interval} (sub-bars close "
                        "inside each main bar)",
                    )
                )
    if problems:
        raise ConfigError(source, problems[:1] if len({p.message for p in problems}) == 1 else problems)


class StrategyManager:
    def __init__(
        self,
        path: Path,
        *,
        mode: str = "paper",
        strategy_mode: str | None = None,
        alert: Callable[[str, str], None] | None = None,
    ) -> None:
        self.watcher = ConfigWatcher(path, mode=mode, strategy_mode=strategy_mode, check=refuse_unsupported)
        self.alert = alert or (lambda kind, msg: log.warning("%s: %s", kind, msg))
        self.interval: str = self.base.model.engine.interval
        self.reloads = 0
        self.rejected = 0

    @property
    def path(self) -> Path:
        return self.watcher.path

    @property
    def base(self) -> LoadedConfig:
        return self.watcher.get(None)

    @property
    def config_id(self) -> str:
        return self.base.config_id

    @property
    def strategy_mode(self) -> str:
        return self.watcher.strategy_mode or ""

    def get(self, symbol: str | None = None) -> LoadedConfig:
        return self.watcher.get(symbol)

    def merged(self, symbol: str | None = None) -> dict[str, Any]:
        """The merged config as plain JSON types (what the kernel is fed)."""
        return self.watcher.get(symbol).merged

    def model(self, symbol: str | None = None) -> StrategyConfig:
        """The merged config as a typed view (what Python code reads)."""
        return self.watcher.get(symbol).model

    def poll(self, watchlist: Iterable[str]) -> ReloadOutcome:
        """Check the file (each loop). Never raises on a bad file."""
        ev = self.watcher.poll()
        if ev.status == "invalid":
            self.rejected += 1
            err = str(ev.error) if ev.error is not None else "invalid config"
            self.alert(
                "config_rejected", f"config edit rejected, last good config {self.config_id[:12]} kept: {err}"
            )
            return ReloadOutcome(ev)
        if ev.status != "reloaded":
            return ReloadOutcome(ev)
        self.reloads += 1
        if ev.restart_required:
            keys = ", ".join(ev.restart_required)
            self.alert(
                "config_restart_required",
                f"{keys} changed in {self.path}; it takes effect only after a restart"
                f" (running on {self.interval})",
            )
        log.info("config reloaded: %s (config_id %s)", ", ".join(ev.changed_keys[:10]), self.config_id[:12])
        return ReloadOutcome(ev, tuple(sorted(set(watchlist))))


__all__ = ["ReloadOutcome", "StrategyManager", "refuse_unsupported"]
