"""Strategy configuration: YAML layers merged over the kernel's defaults and validated.

The defaults, the schema (type and range of every key), the merge
defaults <- global <- symbols.<SYM> <- live (live/dry_live only) <- modes.<mode> and the
config_id live once, in the Rust crate `kernel/aiq-config` (through `bt_runtime`). This package
reads the file (YAML, file safety, size limits), raises `ConfigError` and hands out typed views
(`engine.config.view`, generated from the Rust schema). See docs/configuration.md.
"""

from engine.config.errors import ConfigError, Problem
from engine.config.layout import ConfigDocument, list_symbols
from engine.config.loader import (
    LoadedConfig,
    kernel_defaults,
    load_config,
    read_config,
    resolve,
    resolve_all,
)
from engine.config.modes import (
    RUN_MODES,
    STRATEGY_MODE_ALIASES,
    STRATEGY_MODES,
    RunMode,
    StrategyMode,
    canonical_strategy_mode,
)
from engine.config.view import StrategyConfig
from engine.config.watcher import ConfigWatcher, ReloadEvent

__all__ = [
    "RUN_MODES",
    "STRATEGY_MODES",
    "STRATEGY_MODE_ALIASES",
    "ConfigDocument",
    "ConfigError",
    "ConfigWatcher",
    "LoadedConfig",
    "Problem",
    "ReloadEvent",
    "RunMode",
    "StrategyConfig",
    "StrategyMode",
    "canonical_strategy_mode",
    "kernel_defaults",
    "list_symbols",
    "load_config",
    "read_config",
    "resolve",
    "resolve_all",
]
