"""`load_config`: read a config file, then merge, validate and hash it in Rust (aiq-config)."""

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

import bt_runtime

from engine.config.errors import ConfigError, Problem
from engine.config.layout import ConfigDocument, check_document
from engine.config.modes import (
    LIVE_RUN_MODES,
    RunMode,
    StrategyMode,
    canonical_strategy_mode,
    parse_run_mode,
)
from engine.config.view import StrategyConfig
from engine.config.yaml_file import read_yaml_file


@functools.cache
def _kernel_defaults_json() -> str:
    return json.dumps(bt_runtime.defaults())


def kernel_defaults() -> dict[str, Any]:
    """A fresh copy of the defaults owned by the Rust crate aiq-config."""
    loaded: dict[str, Any] = json.loads(_kernel_defaults_json())
    return loaded


_VIEW_FIELDS: dict[type[Any], tuple[tuple[str, type[Any] | None], ...]] = {}


def _view_fields(cls: type[Any]) -> tuple[tuple[str, type[Any] | None], ...]:
    """(field name, its view class or None for a leaf) of a view class, computed once."""
    found = _VIEW_FIELDS.get(cls)
    if found is None:
        hints = get_type_hints(cls)
        found = tuple(
            (
                f.name,
                hints[f.name] if isinstance(hints[f.name], type) and is_dataclass(hints[f.name]) else None,
            )
            for f in fields(cls)
        )
        _VIEW_FIELDS[cls] = found
    return found


def _view(cls: type[Any], values: Mapping[str, Any]) -> Any:
    """The typed view of a checked merged config (a key the view lacks, or the other way round,
    is a TypeError: engine/config/view.py is stale)."""
    spec = _view_fields(cls)
    if len(spec) != len(values):
        extra = sorted(set(values) - {name for name, _ in spec})
        raise TypeError(f"{cls.__name__} does not match the config ({extra}); run tools/gen_config_view.py")
    return cls(**{name: values[name] if sub is None else _view(sub, values[name]) for name, sub in spec})


@dataclass(frozen=True)
class LoadedConfig:
    """A validated merged config. `model` is its typed view; `merged` the same values as plain
    JSON types (floats normalised, so `3` and `3.0` give one config_id), read-only by contract;
    `config_id` the sha256 of its canonical JSON (computed in Rust, stable across versions: the
    factory registry stores it)."""

    model: StrategyConfig
    merged: dict[str, Any]
    config_id: str
    source: Path
    symbol: str | None
    mode: RunMode
    strategy_mode: StrategyMode | None
    layers: tuple[str, ...]
    canonical_json: str

    def to_json(self) -> str:
        return self.canonical_json


def read_config(path: Path | str, mode: RunMode | str = "paper") -> ConfigDocument:
    """Read and check a config file. In live and dry_live a symlink or a group/world-writable
    file is refused."""
    run_mode = parse_run_mode(mode)
    source = Path(path)
    raw, file_stamp = read_yaml_file(source, refuse_unsafe=run_mode in LIVE_RUN_MODES)
    return check_document(source, raw, file_stamp)


def resolve(
    doc: ConfigDocument,
    symbol: str | None = None,
    mode: RunMode | str = "paper",
    strategy_mode: str | None = None,
    *,
    live_max_open_positions: int | None = None,
) -> LoadedConfig:
    """Merge defaults <- global <- symbols.<SYM> <- live (live/dry_live only) <- modes.<mode>
    (each as `global` then `symbols.<SYM>`) and validate the result (aiq-config)."""
    run_mode = parse_run_mode(mode)
    try:
        smode = None if strategy_mode is None else canonical_strategy_mode(strategy_mode)
    except ValueError as exc:
        raise ConfigError.single(doc.source, "", str(exc)) from None
    if live_max_open_positions is not None and live_max_open_positions < 1:
        raise ValueError(f"live_max_open_positions must be >= 1, got {live_max_open_positions}")
    problems, canonical, cid, layers = bt_runtime.resolve_config(
        doc.raw, symbol, run_mode in LIVE_RUN_MODES, smode, live_max_open_positions
    )
    if problems or canonical is None or cid is None:
        raise ConfigError(doc.source, [Problem(key, message) for key, message in problems])
    merged: dict[str, Any] = json.loads(canonical)
    model: StrategyConfig = _view(StrategyConfig, merged)
    return LoadedConfig(
        model=model,
        merged=merged,
        config_id=cid,
        source=doc.source,
        symbol=symbol,
        mode=run_mode,
        strategy_mode=smode,
        layers=tuple(layers),
        canonical_json=canonical,
    )


def load_config(
    path: Path | str,
    symbol: str | None = None,
    mode: RunMode | str = "paper",
    strategy_mode: str | None = None,
    *,
    live_max_open_positions: int | None = None,
) -> LoadedConfig:
    """Read `path` and return the validated config for `symbol` (None: no symbol overrides).
    Raises ConfigError naming the file, the key path and the problem."""
    doc = read_config(path, mode)
    return resolve(doc, symbol, mode, strategy_mode, live_max_open_positions=live_max_open_positions)


def resolve_all(
    doc: ConfigDocument,
    mode: RunMode | str = "paper",
    strategy_modes: Iterable[str | None] | None = None,
    *,
    live_max_open_positions: int | None = None,
) -> dict[tuple[str | None, StrategyMode | None], LoadedConfig]:
    """Every combination the file defines: (no symbol or each overridden symbol) x (no strategy
    mode or each mode in the file, unless `strategy_modes` is given). All problems of all
    combinations are raised together, without repeats."""
    modes: list[str | None] = [None, *doc.modes] if strategy_modes is None else list(strategy_modes)
    out: dict[tuple[str | None, StrategyMode | None], LoadedConfig] = {}
    problems: list[Problem] = []
    for smode in modes:
        for symbol in [None, *doc.symbols()]:
            try:
                loaded = resolve(doc, symbol, mode, smode, live_max_open_positions=live_max_open_positions)
            except ConfigError as exc:
                problems.extend(p for p in exc.problems if p not in problems)
                continue
            out[(symbol, loaded.strategy_mode)] = loaded
    if problems:
        raise ConfigError(doc.source, problems)
    return out
