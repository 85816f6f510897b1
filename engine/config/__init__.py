"""Strategy configuration: YAML layers merged over the kernel's defaults and validated.

The defaults live once, in the Rust crate `kernel/aiq-config` (`bt_runtime.defaults()`); this
package declares the type and range of every key and merges
defaults <- global <- symbols.<SYM> <- live (live/dry_live only) <- modes.<mode>.
See docs/configuration.md.
"""

from engine.config.errors import ConfigError, Problem
from engine.config.layout import ConfigDocument, list_symbols
from engine.config.loader import (
    LoadedConfig,
    canonical_json,
    config_id,
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
from engine.config.schema import StrategyConfig
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
    "canonical_json",
    "canonical_strategy_mode",
    "config_id",
    "kernel_defaults",
    "list_symbols",
    "load_config",
    "read_config",
    "resolve",
    "resolve_all",
]
