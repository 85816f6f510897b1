"""Run modes (`AI_QUANT_MODE`) and strategy modes (`AI_QUANT_STRATEGY_MODE`) with their aliases.

The strategy modes, their aliases and the live safety limit come from the Rust crate aiq-config
(`bt_runtime.strategy_modes()`), which merges `modes.<name>`; the Literal below only types them."""

from typing import Final, Literal, get_args

import bt_runtime

RunMode = Literal["paper", "dry_live", "live"]
RUN_MODES: Final[tuple[RunMode, ...]] = get_args(RunMode)
#: Run modes that apply the `live` section and refuse unsafe config files.
LIVE_RUN_MODES: Final[frozenset[str]] = frozenset({"live", "dry_live"})

StrategyMode = Literal["primary", "fallback", "conservative", "flat"]
STRATEGY_MODES: Final[tuple[StrategyMode, ...]] = get_args(StrategyMode)
_modes, _aliases, _live_limit = bt_runtime.strategy_modes()
if tuple(_modes) != STRATEGY_MODES:  # the Literal is for type checkers; Rust owns the list
    raise ImportError(f"engine.config.modes.StrategyMode {STRATEGY_MODES} != aiq-config {tuple(_modes)}")
STRATEGY_MODE_ALIASES: Final[dict[str, StrategyMode]] = {
    alias: next(m for m in STRATEGY_MODES if m == target) for alias, target in _aliases
}


def parse_run_mode(value: str) -> RunMode:
    """`value` as a run mode; raises ValueError naming the valid choices."""
    for mode in RUN_MODES:
        if value == mode:
            return mode
    raise ValueError(f"unknown run mode {value!r} (expected one of {', '.join(RUN_MODES)})")


def canonical_strategy_mode(value: str) -> StrategyMode:
    """The canonical strategy mode for `value` (a canonical name or an alias, any case); raises
    ValueError naming the choices and aliases."""
    canonical = bt_runtime.canonical_strategy_mode(value)
    return next(m for m in STRATEGY_MODES if m == canonical)


#: `trade.max_open_positions` in live and dry_live when no layer of the file sets it
#: (overridable with AI_QUANT_LIVE_MAX_OPEN_POSITIONS). A live-safety limit, not a strategy default.
DEFAULT_LIVE_MAX_OPEN_POSITIONS: Final[int] = _live_limit
