"""Run modes (`AI_QUANT_MODE`) and strategy modes (`AI_QUANT_STRATEGY_MODE`) with their aliases."""

from typing import Final, Literal, get_args

RunMode = Literal["paper", "dry_live", "live"]
RUN_MODES: Final[tuple[RunMode, ...]] = get_args(RunMode)
#: Run modes that apply the `live` section and refuse unsafe config files.
LIVE_RUN_MODES: Final[frozenset[str]] = frozenset({"live", "dry_live"})

StrategyMode = Literal["primary", "fallback", "conservative", "flat"]
STRATEGY_MODES: Final[tuple[StrategyMode, ...]] = get_args(StrategyMode)
STRATEGY_MODE_ALIASES: Final[dict[str, StrategyMode]] = {
    "m1": "primary",
    "m2": "fallback",
    "m3": "conservative",
    "safe": "conservative",
    "halt": "flat",
    "pause": "flat",
}


def parse_run_mode(value: str) -> RunMode:
    """`value` as a run mode; raises ValueError naming the valid choices."""
    for mode in RUN_MODES:
        if value == mode:
            return mode
    raise ValueError(f"unknown run mode {value!r} (expected one of {', '.join(RUN_MODES)})")


def canonical_strategy_mode(value: str) -> StrategyMode:
    """The canonical strategy mode for `value` (a canonical name or an alias, any case)."""
    key = value.strip().lower()
    for mode in STRATEGY_MODES:
        if key == mode:
            return mode
    if key in STRATEGY_MODE_ALIASES:
        return STRATEGY_MODE_ALIASES[key]
    choices = ", ".join(STRATEGY_MODES)
    aliases = ", ".join(f"{a}->{m}" for a, m in STRATEGY_MODE_ALIASES.items())
    raise ValueError(f"unknown strategy mode {value!r} (expected one of {choices}; aliases {aliases})")


#: `trade.max_open_positions` in live and dry_live when no layer of the file sets it
#: (overridable with AI_QUANT_LIVE_MAX_OPEN_POSITIONS). A live-safety limit, not a strategy default.
DEFAULT_LIVE_MAX_OPEN_POSITIONS: Final = 1
