"""A parsed config file whose layout and keys were checked by the Rust crate aiq-config (the
sections, the two forms of `live` and `modes.<name>`, every key against the one schema; errors
name the place in the file). Values are checked once merged (`engine.config.loader`)."""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bt_runtime

from engine.config.errors import ConfigError, Problem
from engine.config.modes import STRATEGY_MODES, StrategyMode
from engine.config.yaml_file import FileStamp


@dataclass(frozen=True)
class ConfigDocument:
    """A parsed config file with a valid layout: `modes` are the strategy modes it has a section
    for, `symbols()` the symbols it overrides anywhere."""

    source: Path
    raw: dict[str, Any]
    stamp: FileStamp | None
    modes: tuple[StrategyMode, ...]
    symbol_names: tuple[str, ...]

    def symbols(self) -> list[str]:
        return list(self.symbol_names)


def check_document(source: Path, raw: Any, stamp: FileStamp | None = None) -> ConfigDocument:
    """Check the layout and every key of a parsed file; raises ConfigError with all problems."""
    problems, modes, symbols = bt_runtime.check_config_document(raw)
    if problems:
        raise ConfigError(source, [Problem(key, message) for key, message in problems])
    known = tuple(m for name in modes for m in STRATEGY_MODES if m == name)
    return ConfigDocument(source, dict(raw), stamp, known, tuple(symbols))


def list_symbols(raw: Mapping[str, Any]) -> list[str]:
    """Sorted symbols that have overrides anywhere in a parsed file: `symbols`, `live.symbols`
    or `modes.<name>.symbols`. Symbol names are case-sensitive (Hyperliquid has `kPEPE`)."""
    return bt_runtime.config_symbols(raw)
