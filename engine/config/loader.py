"""`load_config`: read, merge and validate the config for one symbol, run mode and strategy mode."""

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bt_runtime
from pydantic import ValidationError

from engine.config.errors import ConfigError, Problem
from engine.config.layout import ConfigDocument, check_document
from engine.config.merge import MergeResult, apply_layer
from engine.config.messages import problems_from
from engine.config.modes import (
    DEFAULT_LIVE_MAX_OPEN_POSITIONS,
    LIVE_RUN_MODES,
    RunMode,
    StrategyMode,
    canonical_strategy_mode,
    parse_run_mode,
)
from engine.config.schema import StrategyConfig
from engine.config.yaml_file import read_yaml_file


@functools.cache
def _kernel_defaults_json() -> str:
    return json.dumps(bt_runtime.defaults())


def kernel_defaults() -> dict[str, Any]:
    """A fresh copy of the defaults owned by the Rust crate aiq-config."""
    loaded: dict[str, Any] = json.loads(_kernel_defaults_json())
    return loaded


def canonical_json(merged: Mapping[str, Any]) -> str:
    return json.dumps(merged, sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_id(merged: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of a merged config."""
    return hashlib.sha256(canonical_json(merged).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LoadedConfig:
    """A validated merged config. `merged` is the model dumped to plain JSON types (floats
    normalised, so `3` and `3.0` give one config_id); treat it as read-only."""

    model: StrategyConfig
    merged: dict[str, Any]
    config_id: str
    source: Path
    symbol: str | None
    mode: RunMode
    strategy_mode: StrategyMode | None
    layers: tuple[str, ...]

    def to_json(self) -> str:
        return canonical_json(self.merged)


def read_config(path: Path | str, mode: RunMode | str = "paper") -> ConfigDocument:
    """Read and check a config file. In live and dry_live a symlink or a group/world-writable
    file is refused."""
    run_mode = parse_run_mode(mode)
    source = Path(path)
    raw, file_stamp = read_yaml_file(source, refuse_unsafe=run_mode in LIVE_RUN_MODES)
    return check_document(source, raw, file_stamp)


def _merge(
    doc: ConfigDocument,
    symbol: str | None,
    mode: RunMode,
    strategy_mode: StrategyMode | None,
    live_max_open_positions: int | None,
) -> MergeResult:
    result = MergeResult(kernel_defaults())
    result.layers.append("defaults")
    if mode in LIVE_RUN_MODES:
        limit = (
            DEFAULT_LIVE_MAX_OPEN_POSITIONS if live_max_open_positions is None else live_max_open_positions
        )
        apply_layer(result, {"trade": {"max_open_positions": limit}}, "live safety limit", None)
    layers = [doc.base]
    if mode in LIVE_RUN_MODES and doc.live is not None:
        layers.append(doc.live)
    if strategy_mode is not None and strategy_mode in doc.modes:
        layers.append(doc.modes[strategy_mode])
    for layer in layers:
        for overlay in layer.overlays_for(symbol):
            apply_layer(result, overlay.values, ".".join(overlay.location), overlay.location)
    return result


def _kernel_check(doc: ConfigDocument, merged: dict[str, Any], result: MergeResult) -> None:
    """The kernel must accept what pydantic accepted; a disagreement is reported, not hidden."""
    try:
        bt_runtime.validate_config_json(canonical_json(merged))
    except ValueError as exc:
        text = str(exc)
        key, _, message = text.partition(": ")
        origin = result.origin_of(tuple(key.split("."))) if key else None
        where = origin.describe() if origin is not None and origin.location is not None else key
        raise ConfigError(
            doc.source, [Problem(where, f"rejected by the kernel: {message or text}")]
        ) from None


def resolve(
    doc: ConfigDocument,
    symbol: str | None = None,
    mode: RunMode | str = "paper",
    strategy_mode: str | None = None,
    *,
    live_max_open_positions: int | None = None,
) -> LoadedConfig:
    """Merge defaults <- global <- symbols.<SYM> <- live (live/dry_live only) <- modes.<mode>
    (each as `global` then `symbols.<SYM>`) and validate the result."""
    run_mode = parse_run_mode(mode)
    try:
        smode = None if strategy_mode is None else canonical_strategy_mode(strategy_mode)
    except ValueError as exc:
        raise ConfigError.single(doc.source, "", str(exc)) from None
    if live_max_open_positions is not None and live_max_open_positions < 1:
        raise ValueError(f"live_max_open_positions must be >= 1, got {live_max_open_positions}")
    result = _merge(doc, symbol, run_mode, smode, live_max_open_positions)
    try:
        model = StrategyConfig.model_validate(result.merged)
    except ValidationError as exc:
        raise ConfigError(doc.source, problems_from(exc, result)) from None
    merged = model.model_dump(mode="json")
    _kernel_check(doc, merged, result)
    return LoadedConfig(
        model=model,
        merged=merged,
        config_id=config_id(merged),
        source=doc.source,
        symbol=symbol,
        mode=run_mode,
        strategy_mode=smode,
        layers=tuple(result.layers),
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
