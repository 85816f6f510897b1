//! Strategy configuration for ai-quant.
//!
//! This crate is the **single source of default values** for every strategy key (the structs
//! below), of their types and ranges (`schema`), and of the layered YAML merge, its checks and
//! `config_id` (`layered`, `canonical`): the daemon reaches them through `bt_runtime`, the
//! backtester directly. Nothing else in the repository restates a default or a rule.
//! Field names match the YAML keys in `config/strategy_overrides.example.yaml` one to one.

use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

pub mod canonical;
mod difflib;
pub mod layered;
pub mod raw;
pub mod schema;
mod validate;
pub use canonical::{canonical_json, config_id};
pub use layered::{check_document, Document, Problem, Resolved};
pub use raw::Raw;
pub use validate::{validate, ConfigError};

/// Confidence tier of an entry signal. Ordered: `Low < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    /// Rank used by entry ranking (`score = rank * 100 + ADX`): low 0, medium 1, high 2.
    pub fn rank(self) -> u8 {
        match self {
            Confidence::Low => 0,
            Confidence::Medium => 1,
            Confidence::High => 2,
        }
    }
}

/// How the MACD histogram confirms a trend entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MacdMode {
    /// Histogram rising (long) / falling (short) versus the previous bar.
    Accel,
    /// Histogram above zero (long) / below zero (short).
    Sign,
    /// No MACD check.
    None,
}

/// Which decision logic the kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyName {
    MeiAlphaV1,
    /// Long-only EMA fast/slow crossover; a deliberately simple reference for engine checks.
    EmaCross,
}

/// The full merged strategy configuration for one symbol and mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StrategyConfig {
    pub strategy: StrategyName,
    pub trade: TradeConfig,
    pub indicators: IndicatorsConfig,
    pub filters: FiltersConfig,
    pub thresholds: ThresholdsConfig,
    pub market_regime: MarketRegimeConfig,
    pub engine: EngineConfig,
    pub watchlist_exclude: Vec<String>,
}

impl Default for StrategyConfig {
    fn default() -> Self {
        Self {
            strategy: StrategyName::MeiAlphaV1,
            trade: TradeConfig::default(),
            indicators: IndicatorsConfig::default(),
            filters: FiltersConfig::default(),
            thresholds: ThresholdsConfig::default(),
            market_regime: MarketRegimeConfig::default(),
            engine: EngineConfig::default(),
            watchlist_exclude: Vec::new(),
        }
    }
}

/// Sizing, fees, entries, adds and exits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TradeConfig {
    // --- sizing ---
    /// Fraction of equity committed as margin per entry (before dynamic scalars).
    pub allocation_pct: f64,
    /// Fallback leverage when no tier applies (e.g. state restored without confidence).
    pub leverage: f64,
    pub leverage_low: f64,
    pub leverage_medium: f64,
    pub leverage_high: f64,
    pub slippage_bps: f64,
    pub use_bbo_for_fills: bool,
    pub min_notional_usd: f64,
    pub bump_to_min_notional: bool,
    /// Cap on total margin in use as a fraction of equity.
    pub max_total_margin_pct: f64,
    pub enable_dynamic_sizing: bool,
    pub confidence_mult_high: f64,
    pub confidence_mult_medium: f64,
    pub confidence_mult_low: f64,
    pub adx_sizing_min_mult: f64,
    pub adx_sizing_full_adx: f64,
    pub vol_baseline_pct: f64,
    pub vol_scalar_min: f64,
    pub vol_scalar_max: f64,
    /// Scales every entry and add; the hook for the live ramp (0.25 / 0.5 / 1.0).
    pub size_multiplier: f64,
    // --- costs and margin model ---
    pub maker_fee_bps: f64,
    pub taker_fee_bps: f64,
    /// Maintenance margin as a fraction of position notional; liquidation below it.
    pub maintenance_margin_pct: f64,
    pub enable_funding: bool,
    // --- entries and adds ---
    pub entry_min_confidence: Confidence,
    pub add_min_confidence: Confidence,
    pub enable_pyramiding: bool,
    pub max_adds_per_symbol: u32,
    pub add_fraction_of_base_margin: f64,
    pub add_cooldown_minutes: f64,
    pub add_min_profit_atr: f64,
    pub allow_reverse: bool,
    // --- stop loss / take profit ---
    pub sl_atr_mult: f64,
    pub tp_atr_mult: f64,
    pub enable_partial_tp: bool,
    pub tp_partial_pct: f64,
    /// 0 means the partial TP sits at the full TP level and trailing manages the rest.
    pub tp_partial_atr_mult: f64,
    pub tp_partial_min_notional_usd: f64,
    // --- trailing ---
    pub trailing_start_atr: f64,
    pub trailing_distance_atr: f64,
    /// 0 means "use the main value".
    pub trailing_start_atr_low_conf: f64,
    /// 0 means "use the main value".
    pub trailing_distance_atr_low_conf: f64,
    pub enable_vol_buffered_trailing: bool,
    // --- breakeven ---
    pub enable_breakeven_stop: bool,
    pub breakeven_start_atr: f64,
    pub breakeven_buffer_atr: f64,
    // --- smart exits ---
    pub enable_rsi_overextension_exit: bool,
    pub rsi_exit_profit_atr_switch: f64,
    pub rsi_exit_ub_lo_profit: f64,
    pub rsi_exit_lb_lo_profit: f64,
    pub rsi_exit_ub_hi_profit: f64,
    pub rsi_exit_lb_hi_profit: f64,
    /// 0 means "use the main value" for each `_low_conf` key.
    pub rsi_exit_ub_lo_profit_low_conf: f64,
    pub rsi_exit_lb_lo_profit_low_conf: f64,
    pub rsi_exit_ub_hi_profit_low_conf: f64,
    pub rsi_exit_lb_hi_profit_low_conf: f64,
    pub smart_exit_adx_exhaustion_lt: f64,
    /// 0 means "use the main value".
    pub smart_exit_adx_exhaustion_lt_low_conf: f64,
    pub tsme_min_profit_atr: f64,
    pub tsme_require_adx_slope_negative: bool,
    // --- glitch guard ---
    pub block_exits_on_extreme_dev: bool,
    pub glitch_price_dev_pct: f64,
    pub glitch_atr_mult: f64,
    // --- entry filters ---
    pub enable_reef_filter: bool,
    pub reef_long_rsi_block_gt: f64,
    pub reef_short_rsi_block_lt: f64,
    pub reef_adx_threshold: f64,
    pub reef_long_rsi_extreme_gt: f64,
    pub reef_short_rsi_extreme_lt: f64,
    pub enable_ssf_filter: bool,
    // --- cooldowns (PESC) ---
    pub reentry_cooldown_minutes: f64,
    pub reentry_cooldown_min_mins: f64,
    pub reentry_cooldown_max_mins: f64,
    pub min_atr_pct: f64,
    pub reverse_entry_signal: bool,
    // --- limits ---
    pub max_open_positions: u32,
    pub entry_cooldown_s: f64,
    pub exit_cooldown_s: f64,
    pub max_entry_orders_per_loop: u32,
}

impl Default for TradeConfig {
    fn default() -> Self {
        Self {
            allocation_pct: 0.03,
            leverage: 3.0,
            leverage_low: 1.0,
            leverage_medium: 3.0,
            leverage_high: 5.0,
            slippage_bps: 10.0,
            use_bbo_for_fills: true,
            min_notional_usd: 10.0,
            bump_to_min_notional: false,
            max_total_margin_pct: 0.60,
            enable_dynamic_sizing: true,
            confidence_mult_high: 1.0,
            confidence_mult_medium: 0.7,
            confidence_mult_low: 0.5,
            adx_sizing_min_mult: 0.6,
            adx_sizing_full_adx: 40.0,
            vol_baseline_pct: 0.01,
            vol_scalar_min: 0.5,
            vol_scalar_max: 1.0,
            size_multiplier: 1.0,
            // Hyperliquid base tier: 0.045% taker, 0.015% maker (one value, used everywhere).
            maker_fee_bps: 1.5,
            taker_fee_bps: 4.5,
            maintenance_margin_pct: 0.0125,
            enable_funding: true,
            entry_min_confidence: Confidence::High,
            add_min_confidence: Confidence::Medium,
            enable_pyramiding: true,
            max_adds_per_symbol: 2,
            add_fraction_of_base_margin: 0.5,
            add_cooldown_minutes: 60.0,
            add_min_profit_atr: 0.5,
            allow_reverse: true,
            sl_atr_mult: 2.0,
            tp_atr_mult: 4.0,
            enable_partial_tp: true,
            tp_partial_pct: 0.5,
            tp_partial_atr_mult: 0.0,
            tp_partial_min_notional_usd: 10.0,
            trailing_start_atr: 1.0,
            trailing_distance_atr: 0.8,
            trailing_start_atr_low_conf: 0.0,
            trailing_distance_atr_low_conf: 0.0,
            enable_vol_buffered_trailing: true,
            enable_breakeven_stop: true,
            breakeven_start_atr: 0.7,
            breakeven_buffer_atr: 0.05,
            enable_rsi_overextension_exit: true,
            rsi_exit_profit_atr_switch: 1.5,
            rsi_exit_ub_lo_profit: 80.0,
            rsi_exit_lb_lo_profit: 20.0,
            rsi_exit_ub_hi_profit: 70.0,
            rsi_exit_lb_hi_profit: 30.0,
            rsi_exit_ub_lo_profit_low_conf: 0.0,
            rsi_exit_lb_lo_profit_low_conf: 0.0,
            rsi_exit_ub_hi_profit_low_conf: 0.0,
            rsi_exit_lb_hi_profit_low_conf: 0.0,
            smart_exit_adx_exhaustion_lt: 18.0,
            smart_exit_adx_exhaustion_lt_low_conf: 0.0,
            tsme_min_profit_atr: 1.0,
            tsme_require_adx_slope_negative: true,
            block_exits_on_extreme_dev: false,
            glitch_price_dev_pct: 0.40,
            glitch_atr_mult: 12.0,
            enable_reef_filter: true,
            reef_long_rsi_block_gt: 70.0,
            reef_short_rsi_block_lt: 30.0,
            reef_adx_threshold: 45.0,
            reef_long_rsi_extreme_gt: 75.0,
            reef_short_rsi_extreme_lt: 25.0,
            enable_ssf_filter: true,
            reentry_cooldown_minutes: 60.0,
            reentry_cooldown_min_mins: 45.0,
            reentry_cooldown_max_mins: 180.0,
            min_atr_pct: 0.003,
            reverse_entry_signal: false,
            max_open_positions: 20,
            entry_cooldown_s: 20.0,
            exit_cooldown_s: 15.0,
            max_entry_orders_per_loop: 6,
        }
    }
}

/// Indicator windows. Every window is a bar count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndicatorsConfig {
    pub ema_slow_window: u32,
    pub ema_fast_window: u32,
    pub ema_macro_window: u32,
    pub adx_window: u32,
    pub bb_window: u32,
    pub bb_std: f64,
    pub bb_width_avg_window: u32,
    pub atr_window: u32,
    pub rsi_window: u32,
    pub vol_sma_window: u32,
    pub vol_trend_window: u32,
    pub stoch_rsi_window: u32,
    pub stoch_rsi_smooth1: u32,
    pub stoch_rsi_smooth2: u32,
    pub macd_fast: u32,
    pub macd_slow: u32,
    pub macd_signal: u32,
}

impl Default for IndicatorsConfig {
    fn default() -> Self {
        Self {
            ema_slow_window: 50,
            ema_fast_window: 20,
            ema_macro_window: 200,
            adx_window: 14,
            bb_window: 20,
            bb_std: 2.0,
            bb_width_avg_window: 30,
            atr_window: 14,
            rsi_window: 14,
            vol_sma_window: 20,
            vol_trend_window: 5,
            stoch_rsi_window: 14,
            stoch_rsi_smooth1: 3,
            stoch_rsi_smooth2: 3,
            macd_fast: 12,
            macd_slow: 26,
            macd_signal: 9,
        }
    }
}

/// Entry gates that can be switched on or off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FiltersConfig {
    pub enable_ranging_filter: bool,
    pub enable_anomaly_filter: bool,
    pub enable_extension_filter: bool,
    pub require_adx_rising: bool,
    /// ADX above this counts as "rising" even when it fell versus the previous bar.
    pub adx_rising_saturation: f64,
    pub require_volume_confirmation: bool,
    pub vol_confirm_include_prev: bool,
    pub use_stoch_rsi_filter: bool,
    pub require_btc_alignment: bool,
    pub require_macro_alignment: bool,
}

impl Default for FiltersConfig {
    fn default() -> Self {
        Self {
            enable_ranging_filter: true,
            enable_anomaly_filter: true,
            enable_extension_filter: true,
            require_adx_rising: true,
            adx_rising_saturation: 40.0,
            require_volume_confirmation: false,
            vol_confirm_include_prev: true,
            use_stoch_rsi_filter: true,
            require_btc_alignment: true,
            require_macro_alignment: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ThresholdsConfig {
    pub entry: EntryThresholds,
    pub ranging: RangingThresholds,
    pub anomaly: AnomalyThresholds,
    pub tp_and_momentum: TpMomentumThresholds,
    pub stoch_rsi: StochRsiThresholds,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EntryThresholds {
    pub min_adx: f64,
    pub high_conf_volume_mult: f64,
    pub btc_adx_override: f64,
    pub max_dist_ema_fast: f64,
    pub ave_enabled: bool,
    pub ave_atr_ratio_gt: f64,
    pub ave_adx_mult: f64,
    pub ave_avg_atr_window: u32,
    pub macd_hist_entry_mode: MacdMode,
    pub enable_pullback_entries: bool,
    pub pullback_confidence: Confidence,
    pub pullback_min_adx: f64,
    pub pullback_rsi_long_min: f64,
    pub pullback_rsi_short_max: f64,
    pub pullback_require_macd_sign: bool,
    pub enable_slow_drift_entries: bool,
    pub slow_drift_slope_window: u32,
    pub slow_drift_min_slope_pct: f64,
    pub slow_drift_min_adx: f64,
    pub slow_drift_rsi_long_min: f64,
    pub slow_drift_rsi_short_max: f64,
    pub slow_drift_require_macd_sign: bool,
}

impl Default for EntryThresholds {
    fn default() -> Self {
        Self {
            min_adx: 22.0,
            high_conf_volume_mult: 2.5,
            btc_adx_override: 40.0,
            max_dist_ema_fast: 0.04,
            ave_enabled: true,
            ave_atr_ratio_gt: 1.5,
            ave_adx_mult: 1.25,
            ave_avg_atr_window: 50,
            macd_hist_entry_mode: MacdMode::Accel,
            enable_pullback_entries: false,
            pullback_confidence: Confidence::Low,
            pullback_min_adx: 22.0,
            pullback_rsi_long_min: 50.0,
            pullback_rsi_short_max: 50.0,
            pullback_require_macd_sign: true,
            enable_slow_drift_entries: false,
            slow_drift_slope_window: 20,
            slow_drift_min_slope_pct: 0.0006,
            slow_drift_min_adx: 10.0,
            slow_drift_rsi_long_min: 50.0,
            slow_drift_rsi_short_max: 50.0,
            slow_drift_require_macd_sign: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RangingThresholds {
    /// How many of the three ranging signals must fire.
    pub min_signals: u32,
    pub adx_below: f64,
    pub bb_width_ratio_below: f64,
    pub rsi_low: f64,
    pub rsi_high: f64,
}

impl Default for RangingThresholds {
    fn default() -> Self {
        Self { min_signals: 2, adx_below: 21.0, bb_width_ratio_below: 0.8, rsi_low: 47.0, rsi_high: 53.0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyThresholds {
    pub price_change_pct_gt: f64,
    pub ema_fast_dev_pct_gt: f64,
}

impl Default for AnomalyThresholds {
    fn default() -> Self {
        Self { price_change_pct_gt: 0.10, ema_fast_dev_pct_gt: 0.50 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TpMomentumThresholds {
    pub adx_strong_gt: f64,
    pub adx_weak_lt: f64,
    pub tp_mult_strong: f64,
    pub tp_mult_weak: f64,
    pub rsi_long_strong: f64,
    pub rsi_long_weak: f64,
    pub rsi_short_strong: f64,
    pub rsi_short_weak: f64,
}

impl Default for TpMomentumThresholds {
    fn default() -> Self {
        Self {
            adx_strong_gt: 40.0,
            adx_weak_lt: 30.0,
            tp_mult_strong: 7.0,
            tp_mult_weak: 3.0,
            rsi_long_strong: 52.0,
            rsi_long_weak: 56.0,
            rsi_short_strong: 48.0,
            rsi_short_weak: 44.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StochRsiThresholds {
    pub block_long_if_k_gt: f64,
    pub block_short_if_k_lt: f64,
}

impl Default for StochRsiThresholds {
    fn default() -> Self {
        Self { block_long_if_k_gt: 0.85, block_short_if_k_lt: 0.15 }
    }
}

/// Market-breadth regime filter, auto-reverse and global regime gate (all off by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarketRegimeConfig {
    pub enable_regime_filter: bool,
    pub breadth_block_short_above: f64,
    pub breadth_block_long_below: f64,
    pub enable_auto_reverse: bool,
    pub auto_reverse_breadth_low: f64,
    pub auto_reverse_breadth_high: f64,
    pub enable_regime_gate: bool,
    pub regime_gate_breadth_low: f64,
    pub regime_gate_breadth_high: f64,
    pub regime_gate_btc_adx_min: f64,
    pub regime_gate_btc_atr_pct_min: f64,
    pub regime_gate_fail_open: bool,
}

impl Default for MarketRegimeConfig {
    fn default() -> Self {
        Self {
            enable_regime_filter: false,
            breadth_block_short_above: 90.0,
            breadth_block_long_below: 10.0,
            enable_auto_reverse: false,
            auto_reverse_breadth_low: 10.0,
            auto_reverse_breadth_high: 90.0,
            enable_regime_gate: false,
            regime_gate_breadth_low: 20.0,
            regime_gate_breadth_high: 80.0,
            regime_gate_btc_adx_min: 20.0,
            regime_gate_btc_atr_pct_min: 0.003,
            regime_gate_fail_open: false,
        }
    }
}

/// Daemon loop settings (engine-only; the kernel ignores them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Signal interval. Not hot-reloadable.
    pub interval: String,
    /// Empty means "same as `interval`".
    pub entry_interval: String,
    /// Empty means "same as `interval`".
    pub exit_interval: String,
    pub loop_target_s: f64,
    pub signal_on_candle_close: bool,
    pub lookback_bars: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            interval: "1h".to_string(),
            entry_interval: String::new(),
            exit_interval: String::new(),
            loop_target_s: 60.0,
            signal_on_candle_close: true,
            lookback_bars: 200,
        }
    }
}

/// The interval file (`intervals.txt`): the one list both languages read.
pub const INTERVALS_FILE: &str = include_str!("../intervals.txt");

/// `(name, milliseconds, stored)` for every row of [`INTERVALS_FILE`] (1M: 0 ms, not stored).
fn interval_rows() -> impl Iterator<Item = (&'static str, i64, bool)> {
    INTERVALS_FILE.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = || panic!("intervals.txt: bad row {line:?}");
        if f.len() != 3 || !matches!(f[2], "store" | "venue") {
            bad();
        }
        let ms = if f[1] == "-" { 0 } else { f[1].parse().unwrap_or_else(|_| bad()) };
        (f[0], ms, f[2] == "store")
    })
}

/// Intervals the candle store keeps (sidecar, data layer, engine, backtester), with their length
/// in milliseconds, shortest first.
pub static INTERVALS: LazyLock<Vec<(&'static str, i64)>> =
    LazyLock::new(|| interval_rows().filter(|r| r.2).map(|(n, ms, _)| (n, ms)).collect());

/// Every interval name the venue serves, stored or not (`1m` ... `1M`).
pub static VENUE_INTERVALS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| interval_rows().map(|r| r.0).collect());

/// Milliseconds in `interval`, or `None` for an unknown interval name.
pub fn interval_ms(interval: &str) -> Option<i64> {
    INTERVALS.iter().find(|(name, _)| *name == interval).map(|(_, ms)| *ms)
}

/// The defaults as a JSON value (what `bt_runtime.defaults()` returns to Python).
pub fn defaults_json() -> serde_json::Value {
    serde_json::to_value(StrategyConfig::default()).expect("default config serialises")
}

/// Parse a fully merged config from JSON, then validate it.
pub fn from_json_value(value: serde_json::Value) -> Result<StrategyConfig, ConfigError> {
    let cfg: StrategyConfig = serde_path_to_error::deserialize(value).map_err(|e| {
        // Dotted path with list indices as `.N`, the form the Python loader reports.
        let path: Vec<String> = e
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
                serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        ConfigError::new(path.join("."), format!("invalid config: {}", e.inner()))
    })?;
    validate(&cfg)?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        validate(&StrategyConfig::default()).unwrap();
    }

    #[test]
    fn defaults_round_trip_through_json() {
        let v = defaults_json();
        let back = from_json_value(v).unwrap();
        assert_eq!(back, StrategyConfig::default());
    }

    #[test]
    fn unknown_key_rejected() {
        let mut v = defaults_json();
        v["trade"]["no_such_key"] = serde_json::json!(1);
        let err = from_json_value(v).unwrap_err();
        assert!(err.to_string().contains("no_such_key"), "{err}");
    }

    #[test]
    fn type_error_names_the_key_path() {
        let mut v = defaults_json();
        v["filters"]["enable_ranging_filter"] = serde_json::json!(1);
        let err = from_json_value(v).unwrap_err();
        assert_eq!(err.path, "filters.enable_ranging_filter", "{err}");
    }

    #[test]
    fn confidence_order_and_rank() {
        assert!(Confidence::Low < Confidence::Medium && Confidence::Medium < Confidence::High);
        assert_eq!(Confidence::High.rank(), 2);
    }

    #[test]
    fn interval_lookup() {
        assert_eq!(interval_ms("5m"), Some(300_000));
        assert_eq!(interval_ms("7m"), None);
        assert_eq!(interval_ms("1M"), None);
        assert_eq!((INTERVALS.len(), INTERVALS[0].0, INTERVALS[10].0), (11, "1m", "1d"));
        assert!(INTERVALS.windows(2).all(|w| w[0].1 < w[1].1));
        assert_eq!(VENUE_INTERVALS.len(), 14);
    }
}
