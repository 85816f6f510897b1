//! Strategy configuration for ai-quant.
//!
//! This crate is the **single source of default values** for every strategy key, of their types
//! and ranges, and of the layered YAML merge, its checks and `config_id` (`layered`,
//! `canonical`): the daemon reaches them through `bt_runtime`, the backtester directly. Nothing
//! else in the repository restates a default or a rule.
//!
//! Every key is declared once, below, as `name: Type = default => rule,` (`declare`): the macro
//! writes the struct field, its default and its row of the schema (`schema::FIELDS`, whose rule
//! names are defined in `schema`). Adding a key is one line here. Field names match the YAML keys
//! in `config/strategy_overrides.example.yaml` one to one.

use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

pub mod canonical;
pub mod declare;
mod difflib;
pub mod layered;
pub mod raw;
pub mod schema;
mod validate;
pub use canonical::{canonical_json, config_id};
pub use declare::{Section, Value};
pub use layered::{check_document, Document, Problem, Resolved};
pub use raw::Raw;
pub use validate::{validate, ConfigError};

use declare::{config_section, SECTION};
use schema::Bound::{Excl, Incl};
use schema::{
    float, int, BOOL, CONFIDENCE, FRACTION, INTERVAL, LEVEL, LEVERAGE, MACD_MODE, NON_NEGATIVE, NUM,
    OPT_INTERVAL, POSITIVE, STRATEGY_NAME, STR_LIST, U32, U32_MAX, WINDOW,
};

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

config_section! {
    /// The full merged strategy configuration for one symbol and mode.
    pub struct StrategyConfig {
        strategy: StrategyName = StrategyName::MeiAlphaV1 => STRATEGY_NAME,
        trade: TradeConfig = Default::default() => SECTION,
        indicators: IndicatorsConfig = Default::default() => SECTION,
        filters: FiltersConfig = Default::default() => SECTION,
        thresholds: ThresholdsConfig = Default::default() => SECTION,
        market_regime: MarketRegimeConfig = Default::default() => SECTION,
        engine: EngineConfig = Default::default() => SECTION,
        watchlist_exclude: Vec<String> = Vec::new() => STR_LIST,
    }
}

config_section! {
    /// Sizing, fees, entries, adds and exits.
    pub struct TradeConfig {
        // --- sizing ---
        /// Fraction of equity committed as margin per entry (before dynamic scalars).
        allocation_pct: f64 = 0.03 => float(Some(Excl(0.0)), Some(Incl(1.0))),
        /// Fallback leverage when no tier applies (e.g. state restored without confidence).
        leverage: f64 = 3.0 => LEVERAGE,
        leverage_low: f64 = 1.0 => LEVERAGE,
        leverage_medium: f64 = 3.0 => LEVERAGE,
        leverage_high: f64 = 5.0 => LEVERAGE,
        slippage_bps: f64 = 10.0 => NON_NEGATIVE,
        use_bbo_for_fills: bool = true => BOOL,
        min_notional_usd: f64 = 10.0 => NON_NEGATIVE,
        bump_to_min_notional: bool = false => BOOL,
        /// Cap on total margin in use as a fraction of equity.
        max_total_margin_pct: f64 = 0.60 => FRACTION,
        enable_dynamic_sizing: bool = true => BOOL,
        confidence_mult_high: f64 = 1.0 => FRACTION,
        confidence_mult_medium: f64 = 0.7 => FRACTION,
        confidence_mult_low: f64 = 0.5 => FRACTION,
        adx_sizing_min_mult: f64 = 0.6 => FRACTION,
        adx_sizing_full_adx: f64 = 40.0 => POSITIVE,
        vol_baseline_pct: f64 = 0.01 => POSITIVE,
        vol_scalar_min: f64 = 0.5 => FRACTION,
        vol_scalar_max: f64 = 1.0 => FRACTION,
        /// Scales every entry and add; the hook for the live ramp (0.25 / 0.5 / 1.0).
        size_multiplier: f64 = 1.0 => NON_NEGATIVE,
        // --- costs and margin model ---
        // Hyperliquid base tier: 0.045% taker, 0.015% maker (one value, used everywhere).
        maker_fee_bps: f64 = 1.5 => NON_NEGATIVE,
        taker_fee_bps: f64 = 4.5 => NON_NEGATIVE,
        /// Maintenance margin as a fraction of position notional; liquidation below it.
        maintenance_margin_pct: f64 = 0.0125 => FRACTION,
        enable_funding: bool = true => BOOL,
        // --- entries and adds ---
        entry_min_confidence: Confidence = Confidence::High => CONFIDENCE,
        add_min_confidence: Confidence = Confidence::Medium => CONFIDENCE,
        enable_pyramiding: bool = true => BOOL,
        max_adds_per_symbol: u32 = 2 => U32,
        add_fraction_of_base_margin: f64 = 0.5 => FRACTION,
        add_cooldown_minutes: f64 = 60.0 => NON_NEGATIVE,
        add_min_profit_atr: f64 = 0.5 => NON_NEGATIVE,
        allow_reverse: bool = true => BOOL,
        // --- stop loss / take profit ---
        sl_atr_mult: f64 = 2.0 => POSITIVE,
        tp_atr_mult: f64 = 4.0 => POSITIVE,
        enable_partial_tp: bool = true => BOOL,
        tp_partial_pct: f64 = 0.5 => FRACTION,
        /// 0 means the partial TP sits at the full TP level and trailing manages the rest.
        tp_partial_atr_mult: f64 = 0.0 => NON_NEGATIVE,
        tp_partial_min_notional_usd: f64 = 10.0 => NON_NEGATIVE,
        // --- trailing ---
        trailing_start_atr: f64 = 1.0 => NON_NEGATIVE,
        trailing_distance_atr: f64 = 0.8 => POSITIVE,
        /// 0 means "use the main value".
        trailing_start_atr_low_conf: f64 = 0.0 => NON_NEGATIVE,
        /// 0 means "use the main value".
        trailing_distance_atr_low_conf: f64 = 0.0 => NON_NEGATIVE,
        enable_vol_buffered_trailing: bool = true => BOOL,
        // --- breakeven ---
        enable_breakeven_stop: bool = true => BOOL,
        breakeven_start_atr: f64 = 0.7 => NON_NEGATIVE,
        breakeven_buffer_atr: f64 = 0.05 => NON_NEGATIVE,
        // --- smart exits ---
        enable_rsi_overextension_exit: bool = true => BOOL,
        rsi_exit_profit_atr_switch: f64 = 1.5 => NUM,
        rsi_exit_ub_lo_profit: f64 = 80.0 => LEVEL,
        rsi_exit_lb_lo_profit: f64 = 20.0 => LEVEL,
        rsi_exit_ub_hi_profit: f64 = 70.0 => LEVEL,
        rsi_exit_lb_hi_profit: f64 = 30.0 => LEVEL,
        /// 0 means "use the main value" for each `_low_conf` key.
        rsi_exit_ub_lo_profit_low_conf: f64 = 0.0 => LEVEL,
        rsi_exit_lb_lo_profit_low_conf: f64 = 0.0 => LEVEL,
        rsi_exit_ub_hi_profit_low_conf: f64 = 0.0 => LEVEL,
        rsi_exit_lb_hi_profit_low_conf: f64 = 0.0 => LEVEL,
        smart_exit_adx_exhaustion_lt: f64 = 18.0 => LEVEL,
        /// 0 means "use the main value".
        smart_exit_adx_exhaustion_lt_low_conf: f64 = 0.0 => LEVEL,
        tsme_min_profit_atr: f64 = 1.0 => NUM,
        tsme_require_adx_slope_negative: bool = true => BOOL,
        // --- glitch guard ---
        block_exits_on_extreme_dev: bool = false => BOOL,
        glitch_price_dev_pct: f64 = 0.40 => NUM,
        glitch_atr_mult: f64 = 12.0 => NUM,
        // --- entry filters ---
        enable_reef_filter: bool = true => BOOL,
        reef_long_rsi_block_gt: f64 = 70.0 => LEVEL,
        reef_short_rsi_block_lt: f64 = 30.0 => LEVEL,
        reef_adx_threshold: f64 = 45.0 => LEVEL,
        reef_long_rsi_extreme_gt: f64 = 75.0 => LEVEL,
        reef_short_rsi_extreme_lt: f64 = 25.0 => LEVEL,
        enable_ssf_filter: bool = true => BOOL,
        // --- cooldowns (PESC) ---
        reentry_cooldown_minutes: f64 = 60.0 => NON_NEGATIVE,
        reentry_cooldown_min_mins: f64 = 45.0 => NON_NEGATIVE,
        reentry_cooldown_max_mins: f64 = 180.0 => NON_NEGATIVE,
        min_atr_pct: f64 = 0.003 => NON_NEGATIVE,
        reverse_entry_signal: bool = false => BOOL,
        // --- limits ---
        max_open_positions: u32 = 20 => int(Some(Incl(1.0)), Some(Incl(U32_MAX))),
        entry_cooldown_s: f64 = 20.0 => NON_NEGATIVE,
        exit_cooldown_s: f64 = 15.0 => NON_NEGATIVE,
        max_entry_orders_per_loop: u32 = 6 => U32,
    }
}

config_section! {
    /// Indicator windows. Every window is a bar count.
    pub struct IndicatorsConfig {
        ema_slow_window: u32 = 50 => WINDOW,
        ema_fast_window: u32 = 20 => WINDOW,
        ema_macro_window: u32 = 200 => WINDOW,
        adx_window: u32 = 14 => WINDOW,
        bb_window: u32 = 20 => WINDOW,
        bb_std: f64 = 2.0 => POSITIVE,
        bb_width_avg_window: u32 = 30 => WINDOW,
        atr_window: u32 = 14 => WINDOW,
        rsi_window: u32 = 14 => WINDOW,
        vol_sma_window: u32 = 20 => WINDOW,
        vol_trend_window: u32 = 5 => WINDOW,
        stoch_rsi_window: u32 = 14 => WINDOW,
        stoch_rsi_smooth1: u32 = 3 => WINDOW,
        stoch_rsi_smooth2: u32 = 3 => WINDOW,
        macd_fast: u32 = 12 => WINDOW,
        macd_slow: u32 = 26 => WINDOW,
        macd_signal: u32 = 9 => WINDOW,
    }
}

config_section! {
    /// Entry gates that can be switched on or off.
    pub struct FiltersConfig {
        enable_ranging_filter: bool = true => BOOL,
        enable_anomaly_filter: bool = true => BOOL,
        enable_extension_filter: bool = true => BOOL,
        require_adx_rising: bool = true => BOOL,
        /// ADX above this counts as "rising" even when it fell versus the previous bar.
        adx_rising_saturation: f64 = 40.0 => NUM,
        require_volume_confirmation: bool = false => BOOL,
        vol_confirm_include_prev: bool = true => BOOL,
        use_stoch_rsi_filter: bool = true => BOOL,
        require_btc_alignment: bool = true => BOOL,
        require_macro_alignment: bool = false => BOOL,
    }
}

config_section! {
    pub struct ThresholdsConfig {
        entry: EntryThresholds = Default::default() => SECTION,
        ranging: RangingThresholds = Default::default() => SECTION,
        anomaly: AnomalyThresholds = Default::default() => SECTION,
        tp_and_momentum: TpMomentumThresholds = Default::default() => SECTION,
        stoch_rsi: StochRsiThresholds = Default::default() => SECTION,
    }
}

config_section! {
    pub struct EntryThresholds {
        min_adx: f64 = 22.0 => LEVEL,
        high_conf_volume_mult: f64 = 2.5 => NUM,
        btc_adx_override: f64 = 40.0 => LEVEL,
        max_dist_ema_fast: f64 = 0.04 => NUM,
        ave_enabled: bool = true => BOOL,
        ave_atr_ratio_gt: f64 = 1.5 => NUM,
        ave_adx_mult: f64 = 1.25 => NUM,
        ave_avg_atr_window: u32 = 50 => WINDOW,
        macd_hist_entry_mode: MacdMode = MacdMode::Accel => MACD_MODE,
        enable_pullback_entries: bool = false => BOOL,
        pullback_confidence: Confidence = Confidence::Low => CONFIDENCE,
        pullback_min_adx: f64 = 22.0 => LEVEL,
        pullback_rsi_long_min: f64 = 50.0 => LEVEL,
        pullback_rsi_short_max: f64 = 50.0 => LEVEL,
        pullback_require_macd_sign: bool = true => BOOL,
        enable_slow_drift_entries: bool = false => BOOL,
        slow_drift_slope_window: u32 = 20 => WINDOW,
        slow_drift_min_slope_pct: f64 = 0.0006 => NUM,
        slow_drift_min_adx: f64 = 10.0 => LEVEL,
        slow_drift_rsi_long_min: f64 = 50.0 => LEVEL,
        slow_drift_rsi_short_max: f64 = 50.0 => LEVEL,
        slow_drift_require_macd_sign: bool = true => BOOL,
    }
}

config_section! {
    pub struct RangingThresholds {
        /// How many of the three ranging signals must fire.
        min_signals: u32 = 2 => int(Some(Incl(0.0)), Some(Incl(3.0))),
        adx_below: f64 = 21.0 => LEVEL,
        bb_width_ratio_below: f64 = 0.8 => NUM,
        rsi_low: f64 = 47.0 => LEVEL,
        rsi_high: f64 = 53.0 => LEVEL,
    }
}

config_section! {
    pub struct AnomalyThresholds {
        price_change_pct_gt: f64 = 0.10 => NUM,
        ema_fast_dev_pct_gt: f64 = 0.50 => NUM,
    }
}

config_section! {
    pub struct TpMomentumThresholds {
        adx_strong_gt: f64 = 40.0 => LEVEL,
        adx_weak_lt: f64 = 30.0 => LEVEL,
        tp_mult_strong: f64 = 7.0 => NUM,
        tp_mult_weak: f64 = 3.0 => NUM,
        rsi_long_strong: f64 = 52.0 => LEVEL,
        rsi_long_weak: f64 = 56.0 => LEVEL,
        rsi_short_strong: f64 = 48.0 => LEVEL,
        rsi_short_weak: f64 = 44.0 => LEVEL,
    }
}

config_section! {
    pub struct StochRsiThresholds {
        block_long_if_k_gt: f64 = 0.85 => FRACTION,
        block_short_if_k_lt: f64 = 0.15 => FRACTION,
    }
}

config_section! {
    /// Market-breadth regime filter, auto-reverse and global regime gate (all off by default).
    pub struct MarketRegimeConfig {
        enable_regime_filter: bool = false => BOOL,
        breadth_block_short_above: f64 = 90.0 => NUM,
        breadth_block_long_below: f64 = 10.0 => NUM,
        enable_auto_reverse: bool = false => BOOL,
        auto_reverse_breadth_low: f64 = 10.0 => NUM,
        auto_reverse_breadth_high: f64 = 90.0 => NUM,
        enable_regime_gate: bool = false => BOOL,
        regime_gate_breadth_low: f64 = 20.0 => NUM,
        regime_gate_breadth_high: f64 = 80.0 => NUM,
        regime_gate_btc_adx_min: f64 = 20.0 => NUM,
        regime_gate_btc_atr_pct_min: f64 = 0.003 => NUM,
        regime_gate_fail_open: bool = false => BOOL,
    }
}

config_section! {
    /// Daemon loop settings (engine-only; the kernel ignores them).
    pub struct EngineConfig {
        /// Signal interval. Not hot-reloadable.
        interval: String = "1h".to_string() => INTERVAL,
        /// Empty means "same as `interval`".
        entry_interval: String = String::new() => OPT_INTERVAL,
        /// Empty means "same as `interval`".
        exit_interval: String = String::new() => OPT_INTERVAL,
        loop_target_s: f64 = 60.0 => POSITIVE,
        signal_on_candle_close: bool = true => BOOL,
        lookback_bars: u32 = 200 => int(Some(Incl(50.0)), Some(Incl(10000.0))),
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

    /// `Section::visit` walks the values in `schema::FIELDS` order, each with its key's kind.
    #[test]
    fn visit_follows_the_schema_rows() {
        let cfg = StrategyConfig::default();
        let json = defaults_json();
        let mut rows = schema::FIELDS.iter();
        cfg.visit(&mut |value| {
            let (path, kind) = rows.next().expect("more values than schema rows");
            let at = path.split('.').fold(&json, |v, k| &v[k]);
            let same = match (value, kind) {
                (Value::Num(x), schema::Kind::Float { .. }) => at.as_f64() == Some(x),
                (Value::Int(n), schema::Kind::Int { .. }) => at.as_u64() == Some(u64::from(n)),
                (Value::Bool(b), schema::Kind::Bool) => at.as_bool() == Some(b),
                (Value::Choice(i), schema::Kind::Choice(names)) => at.as_str() == Some(names[i]),
                (Value::Text(t), schema::Kind::Interval { .. }) => at.as_str() == Some(t),
                (Value::List(l), schema::Kind::StrList) => at == &serde_json::json!(l),
                _ => false,
            };
            assert!(same, "{path}: {value:?} vs {kind:?} / {at}");
        });
        assert!(rows.next().is_none(), "fewer values than schema rows");
    }

    /// A choice's variant index is its position in the schema's list, for every variant.
    #[test]
    fn choice_index_is_the_position_in_the_schema_list() {
        fn check<T: Serialize + declare::Field>(variants: &[T], kind: schema::Kind) {
            let schema::Kind::Choice(names) = kind else { panic!("{kind:?}") };
            assert_eq!(variants.len(), names.len());
            for v in variants {
                let mut index = None;
                v.visit(&mut |x| index = if let Value::Choice(i) = x { Some(i) } else { None });
                let name = serde_json::to_value(v).unwrap();
                assert_eq!(name.as_str(), Some(names[index.unwrap()]));
            }
        }
        check(&[Confidence::Low, Confidence::Medium, Confidence::High], schema::CONFIDENCE);
        check(&[MacdMode::Accel, MacdMode::Sign, MacdMode::None], schema::MACD_MODE);
        check(&[StrategyName::MeiAlphaV1, StrategyName::EmaCross], schema::STRATEGY_NAME);
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
