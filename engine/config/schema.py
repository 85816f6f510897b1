"""Pydantic models of the merged strategy config: the type and range of every key.

No field has a default: the defaults live once, in the Rust crate `kernel/aiq-config`, and reach
Python through `bt_runtime.defaults()`. The loader merges the YAML layers over those defaults and
validates the complete result here. Ranges and cross-field rules mirror
`kernel/aiq-config/src/validate.rs`; `tests/config/test_config_schema_parity.py` holds the two
in agreement.
"""

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from exchange.intervals import INTERVALS

U32_MAX: Final = 2**32 - 1

# Value kinds, named after the checks in validate.rs.
Num = float
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Leverage = Annotated[float, Field(ge=1, le=50)]
U32 = Annotated[int, Field(ge=0, le=U32_MAX)]
Window = Annotated[int, Field(ge=1, le=5000)]
#: An RSI or ADX threshold (both indicators live on 0..100).
Level = Annotated[float, Field(ge=0, le=100)]

Confidence = Literal["low", "medium", "high"]
MacdMode = Literal["accel", "sign", "none"]
StrategyName = Literal["mei_alpha_v1", "ema_cross"]
if TYPE_CHECKING:
    Interval = str
    OptionalInterval = str
else:
    #: Interval names the kernel, the data layer and the sidecar understand: the one list
    #: (`kernel/aiq-config/intervals.txt`, also `aiq_config::INTERVALS`), as a Literal so a bad
    #: value's error lists the choices.
    Interval = Literal[tuple(INTERVALS)]
    #: An interval, or "" for "same as engine.interval".
    OptionalInterval = Literal[("", *INTERVALS)]


class OrderRule:
    """Cross-field rule `low < high` (strict) or `low <= high` between two fields of one model."""

    def __init__(self, low: str, high: str, *, strict: bool) -> None:
        self.low, self.high, self.strict = low, high, strict

    def check(self, model: BaseModel) -> None:
        lo, hi = getattr(model, self.low), getattr(model, self.high)
        ok = lo < hi if self.strict else lo <= hi
        if not ok:
            raise PydanticCustomError(
                "field_order",
                "{low} must be {op} {high}",
                {
                    "low": self.low,
                    "high": self.high,
                    "op": "<" if self.strict else "<=",
                    "low_value": lo,
                    "high_value": hi,
                },
            )


class Section(BaseModel):
    """Base of every config model: strict types, no unknown keys, no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)
    #: Cross-field rules checked after the fields (subclasses set it).
    order_rules: ClassVar[tuple[OrderRule, ...]] = ()

    @model_validator(mode="after")
    def _check_order_rules(self) -> Self:
        for rule in type(self).order_rules:
            rule.check(self)
        return self


class TradeConfig(Section):
    order_rules = (
        OrderRule("vol_scalar_min", "vol_scalar_max", strict=False),
        OrderRule("reentry_cooldown_min_mins", "reentry_cooldown_max_mins", strict=False),
    )

    # sizing
    allocation_pct: Annotated[float, Field(gt=0, le=1)]
    leverage: Leverage
    leverage_low: Leverage
    leverage_medium: Leverage
    leverage_high: Leverage
    slippage_bps: NonNegative
    use_bbo_for_fills: bool
    min_notional_usd: NonNegative
    bump_to_min_notional: bool
    max_total_margin_pct: Fraction
    enable_dynamic_sizing: bool
    confidence_mult_high: Fraction
    confidence_mult_medium: Fraction
    confidence_mult_low: Fraction
    adx_sizing_min_mult: Fraction
    adx_sizing_full_adx: Positive
    vol_baseline_pct: Positive
    vol_scalar_min: Fraction
    vol_scalar_max: Fraction
    size_multiplier: NonNegative
    # costs and margin model
    maker_fee_bps: NonNegative
    taker_fee_bps: NonNegative
    maintenance_margin_pct: Fraction
    enable_funding: bool
    # entries and adds
    entry_min_confidence: Confidence
    add_min_confidence: Confidence
    enable_pyramiding: bool
    max_adds_per_symbol: U32
    add_fraction_of_base_margin: Fraction
    add_cooldown_minutes: NonNegative
    add_min_profit_atr: NonNegative
    allow_reverse: bool
    # stop loss / take profit
    sl_atr_mult: Positive
    tp_atr_mult: Positive
    enable_partial_tp: bool
    tp_partial_pct: Fraction
    tp_partial_atr_mult: NonNegative
    tp_partial_min_notional_usd: NonNegative
    # trailing
    trailing_start_atr: NonNegative
    trailing_distance_atr: Positive
    trailing_start_atr_low_conf: NonNegative
    trailing_distance_atr_low_conf: NonNegative
    enable_vol_buffered_trailing: bool
    # breakeven
    enable_breakeven_stop: bool
    breakeven_start_atr: NonNegative
    breakeven_buffer_atr: NonNegative
    # smart exits
    enable_rsi_overextension_exit: bool
    rsi_exit_profit_atr_switch: Num
    rsi_exit_ub_lo_profit: Level
    rsi_exit_lb_lo_profit: Level
    rsi_exit_ub_hi_profit: Level
    rsi_exit_lb_hi_profit: Level
    rsi_exit_ub_lo_profit_low_conf: Level
    rsi_exit_lb_lo_profit_low_conf: Level
    rsi_exit_ub_hi_profit_low_conf: Level
    rsi_exit_lb_hi_profit_low_conf: Level
    smart_exit_adx_exhaustion_lt: Level
    smart_exit_adx_exhaustion_lt_low_conf: Level
    tsme_min_profit_atr: Num
    tsme_require_adx_slope_negative: bool
    # glitch guard
    block_exits_on_extreme_dev: bool
    glitch_price_dev_pct: Num
    glitch_atr_mult: Num
    # entry filters
    enable_reef_filter: bool
    reef_long_rsi_block_gt: Level
    reef_short_rsi_block_lt: Level
    reef_adx_threshold: Level
    reef_long_rsi_extreme_gt: Level
    reef_short_rsi_extreme_lt: Level
    enable_ssf_filter: bool
    # cooldowns (PESC)
    reentry_cooldown_minutes: NonNegative
    reentry_cooldown_min_mins: NonNegative
    reentry_cooldown_max_mins: NonNegative
    min_atr_pct: NonNegative
    reverse_entry_signal: bool
    # limits
    max_open_positions: Annotated[int, Field(ge=1, le=U32_MAX)]
    entry_cooldown_s: NonNegative
    exit_cooldown_s: NonNegative
    max_entry_orders_per_loop: U32


class IndicatorsConfig(Section):
    order_rules = (
        OrderRule("ema_fast_window", "ema_slow_window", strict=True),
        OrderRule("macd_fast", "macd_slow", strict=True),
    )

    ema_slow_window: Window
    ema_fast_window: Window
    ema_macro_window: Window
    adx_window: Window
    bb_window: Window
    bb_std: Positive
    bb_width_avg_window: Window
    atr_window: Window
    rsi_window: Window
    vol_sma_window: Window
    vol_trend_window: Window
    stoch_rsi_window: Window
    stoch_rsi_smooth1: Window
    stoch_rsi_smooth2: Window
    macd_fast: Window
    macd_slow: Window
    macd_signal: Window


class FiltersConfig(Section):
    enable_ranging_filter: bool
    enable_anomaly_filter: bool
    enable_extension_filter: bool
    require_adx_rising: bool
    adx_rising_saturation: Num
    require_volume_confirmation: bool
    vol_confirm_include_prev: bool
    use_stoch_rsi_filter: bool
    require_btc_alignment: bool
    require_macro_alignment: bool


class EntryThresholds(Section):
    min_adx: Level
    high_conf_volume_mult: Num
    btc_adx_override: Level
    max_dist_ema_fast: Num
    ave_enabled: bool
    ave_atr_ratio_gt: Num
    ave_adx_mult: Num
    ave_avg_atr_window: Window
    macd_hist_entry_mode: MacdMode
    enable_pullback_entries: bool
    pullback_confidence: Confidence
    pullback_min_adx: Level
    pullback_rsi_long_min: Level
    pullback_rsi_short_max: Level
    pullback_require_macd_sign: bool
    enable_slow_drift_entries: bool
    slow_drift_slope_window: Window
    slow_drift_min_slope_pct: Num
    slow_drift_min_adx: Level
    slow_drift_rsi_long_min: Level
    slow_drift_rsi_short_max: Level
    slow_drift_require_macd_sign: bool


class RangingThresholds(Section):
    order_rules = (OrderRule("rsi_low", "rsi_high", strict=False),)

    min_signals: Annotated[int, Field(ge=0, le=3)]
    adx_below: Level
    bb_width_ratio_below: Num
    rsi_low: Level
    rsi_high: Level


class AnomalyThresholds(Section):
    price_change_pct_gt: Num
    ema_fast_dev_pct_gt: Num


class TpMomentumThresholds(Section):
    adx_strong_gt: Level
    adx_weak_lt: Level
    tp_mult_strong: Num
    tp_mult_weak: Num
    rsi_long_strong: Level
    rsi_long_weak: Level
    rsi_short_strong: Level
    rsi_short_weak: Level


class StochRsiThresholds(Section):
    block_long_if_k_gt: Fraction
    block_short_if_k_lt: Fraction


class ThresholdsConfig(Section):
    entry: EntryThresholds
    ranging: RangingThresholds
    anomaly: AnomalyThresholds
    tp_and_momentum: TpMomentumThresholds
    stoch_rsi: StochRsiThresholds


class MarketRegimeConfig(Section):
    enable_regime_filter: bool
    breadth_block_short_above: Num
    breadth_block_long_below: Num
    enable_auto_reverse: bool
    auto_reverse_breadth_low: Num
    auto_reverse_breadth_high: Num
    enable_regime_gate: bool
    regime_gate_breadth_low: Num
    regime_gate_breadth_high: Num
    regime_gate_btc_adx_min: Num
    regime_gate_btc_atr_pct_min: Num
    regime_gate_fail_open: bool


class EngineConfig(Section):
    """Daemon loop settings; the kernel ignores them. `interval` is not hot-reloadable."""

    interval: Interval
    entry_interval: OptionalInterval
    exit_interval: OptionalInterval
    loop_target_s: Positive
    signal_on_candle_close: bool
    lookback_bars: Annotated[int, Field(ge=50, le=10_000)]


class StrategyConfig(Section):
    """The complete merged config for one symbol, run mode and strategy mode."""

    strategy: StrategyName
    trade: TradeConfig
    indicators: IndicatorsConfig
    filters: FiltersConfig
    thresholds: ThresholdsConfig
    market_regime: MarketRegimeConfig
    engine: EngineConfig
    watchlist_exclude: list[str]


#: Keys that only make sense once per daemon; a `symbols.<SYM>` block may not set them.
GLOBAL_ONLY_KEYS: Final[frozenset[str]] = frozenset({"engine", "watchlist_exclude"})


def key_tree(model: type[BaseModel] = StrategyConfig) -> dict[str, Any]:
    """The nested key set of `model`: a sub-model maps to its own tree, a leaf to None."""
    tree: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            tree[name] = key_tree(ann)
        else:
            tree[name] = None
    return tree
