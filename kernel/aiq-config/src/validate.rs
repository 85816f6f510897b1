//! Range and consistency checks on a merged config. Python's pydantic schema runs the same
//! checks with file-aware messages; this copy guards the kernel when it is fed JSON directly.

use crate::{interval_ms, StrategyConfig};

/// A config problem at a dotted key path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }
}

fn check(ok: bool, path: &str, message: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(path, message))
    }
}

fn positive(v: f64, path: &str) -> Result<(), ConfigError> {
    check(v.is_finite() && v > 0.0, path, "must be a finite number > 0")
}

fn non_negative(v: f64, path: &str) -> Result<(), ConfigError> {
    check(v.is_finite() && v >= 0.0, path, "must be a finite number >= 0")
}

fn fraction(v: f64, path: &str) -> Result<(), ConfigError> {
    check(v.is_finite() && (0.0..=1.0).contains(&v), path, "must be between 0 and 1")
}

/// Validate value ranges and cross-field rules.
pub fn validate(cfg: &StrategyConfig) -> Result<(), ConfigError> {
    let t = &cfg.trade;
    check(
        t.allocation_pct.is_finite() && t.allocation_pct > 0.0 && t.allocation_pct <= 1.0,
        "trade.allocation_pct",
        "must be > 0 and <= 1",
    )?;
    for (v, p) in [
        (t.leverage, "trade.leverage"),
        (t.leverage_low, "trade.leverage_low"),
        (t.leverage_medium, "trade.leverage_medium"),
        (t.leverage_high, "trade.leverage_high"),
    ] {
        check(v.is_finite() && (1.0..=50.0).contains(&v), p, "must be between 1 and 50")?;
    }
    for (v, p) in [
        (t.sl_atr_mult, "trade.sl_atr_mult"),
        (t.tp_atr_mult, "trade.tp_atr_mult"),
        (t.trailing_distance_atr, "trade.trailing_distance_atr"),
        (t.adx_sizing_full_adx, "trade.adx_sizing_full_adx"),
        (t.vol_baseline_pct, "trade.vol_baseline_pct"),
    ] {
        positive(v, p)?;
    }
    for (v, p) in [
        (t.slippage_bps, "trade.slippage_bps"),
        (t.min_notional_usd, "trade.min_notional_usd"),
        (t.maker_fee_bps, "trade.maker_fee_bps"),
        (t.taker_fee_bps, "trade.taker_fee_bps"),
        (t.size_multiplier, "trade.size_multiplier"),
        (t.add_cooldown_minutes, "trade.add_cooldown_minutes"),
        (t.add_min_profit_atr, "trade.add_min_profit_atr"),
        (t.tp_partial_atr_mult, "trade.tp_partial_atr_mult"),
        (t.tp_partial_min_notional_usd, "trade.tp_partial_min_notional_usd"),
        (t.trailing_start_atr, "trade.trailing_start_atr"),
        (t.trailing_start_atr_low_conf, "trade.trailing_start_atr_low_conf"),
        (t.trailing_distance_atr_low_conf, "trade.trailing_distance_atr_low_conf"),
        (t.breakeven_start_atr, "trade.breakeven_start_atr"),
        (t.breakeven_buffer_atr, "trade.breakeven_buffer_atr"),
        (t.reentry_cooldown_minutes, "trade.reentry_cooldown_minutes"),
        (t.reentry_cooldown_min_mins, "trade.reentry_cooldown_min_mins"),
        (t.reentry_cooldown_max_mins, "trade.reentry_cooldown_max_mins"),
        (t.min_atr_pct, "trade.min_atr_pct"),
        (t.entry_cooldown_s, "trade.entry_cooldown_s"),
        (t.exit_cooldown_s, "trade.exit_cooldown_s"),
    ] {
        non_negative(v, p)?;
    }
    for (v, p) in [
        (t.max_total_margin_pct, "trade.max_total_margin_pct"),
        (t.tp_partial_pct, "trade.tp_partial_pct"),
        (t.confidence_mult_high, "trade.confidence_mult_high"),
        (t.confidence_mult_medium, "trade.confidence_mult_medium"),
        (t.confidence_mult_low, "trade.confidence_mult_low"),
        (t.adx_sizing_min_mult, "trade.adx_sizing_min_mult"),
        (t.vol_scalar_min, "trade.vol_scalar_min"),
        (t.vol_scalar_max, "trade.vol_scalar_max"),
        (t.add_fraction_of_base_margin, "trade.add_fraction_of_base_margin"),
        (t.maintenance_margin_pct, "trade.maintenance_margin_pct"),
    ] {
        fraction(v, p)?;
    }
    check(t.vol_scalar_min <= t.vol_scalar_max, "trade.vol_scalar_min", "must be <= trade.vol_scalar_max")?;
    check(
        t.reentry_cooldown_min_mins <= t.reentry_cooldown_max_mins,
        "trade.reentry_cooldown_min_mins",
        "must be <= trade.reentry_cooldown_max_mins",
    )?;
    check(t.max_open_positions >= 1, "trade.max_open_positions", "must be >= 1")?;

    let i = &cfg.indicators;
    for (v, p) in [
        (i.ema_slow_window, "indicators.ema_slow_window"),
        (i.ema_fast_window, "indicators.ema_fast_window"),
        (i.ema_macro_window, "indicators.ema_macro_window"),
        (i.adx_window, "indicators.adx_window"),
        (i.bb_window, "indicators.bb_window"),
        (i.bb_width_avg_window, "indicators.bb_width_avg_window"),
        (i.atr_window, "indicators.atr_window"),
        (i.rsi_window, "indicators.rsi_window"),
        (i.vol_sma_window, "indicators.vol_sma_window"),
        (i.vol_trend_window, "indicators.vol_trend_window"),
        (i.stoch_rsi_window, "indicators.stoch_rsi_window"),
        (i.stoch_rsi_smooth1, "indicators.stoch_rsi_smooth1"),
        (i.stoch_rsi_smooth2, "indicators.stoch_rsi_smooth2"),
        (i.macd_fast, "indicators.macd_fast"),
        (i.macd_slow, "indicators.macd_slow"),
        (i.macd_signal, "indicators.macd_signal"),
        (cfg.thresholds.entry.ave_avg_atr_window, "thresholds.entry.ave_avg_atr_window"),
        (cfg.thresholds.entry.slow_drift_slope_window, "thresholds.entry.slow_drift_slope_window"),
    ] {
        check((1..=5000).contains(&v), p, "must be a window between 1 and 5000 bars")?;
    }
    check(
        i.ema_fast_window < i.ema_slow_window,
        "indicators.ema_fast_window",
        "must be < indicators.ema_slow_window (ema_fast >= ema_slow)",
    )?;
    check(i.macd_fast < i.macd_slow, "indicators.macd_fast", "must be < indicators.macd_slow")?;
    positive(i.bb_std, "indicators.bb_std")?;

    let r = &cfg.thresholds.ranging;
    check(r.min_signals <= 3, "thresholds.ranging.min_signals", "must be between 0 and 3")?;
    check(r.rsi_low <= r.rsi_high, "thresholds.ranging.rsi_low", "must be <= thresholds.ranging.rsi_high")?;
    let s = &cfg.thresholds.stoch_rsi;
    fraction(s.block_long_if_k_gt, "thresholds.stoch_rsi.block_long_if_k_gt")?;
    fraction(s.block_short_if_k_lt, "thresholds.stoch_rsi.block_short_if_k_lt")?;

    let e = &cfg.engine;
    check(interval_ms(&e.interval).is_some(), "engine.interval", "unknown interval")?;
    for (v, p) in [(&e.entry_interval, "engine.entry_interval"), (&e.exit_interval, "engine.exit_interval")] {
        check(v.is_empty() || interval_ms(v).is_some(), p, "unknown interval")?;
    }
    check((50..=10_000).contains(&e.lookback_bars), "engine.lookback_bars", "must be between 50 and 10000")?;
    positive(e.loop_target_s, "engine.loop_target_s")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_fast_must_be_below_slow() {
        let mut cfg = StrategyConfig::default();
        cfg.indicators.ema_fast_window = 50;
        let err = validate(&cfg).unwrap_err();
        assert_eq!(err.path, "indicators.ema_fast_window");
    }

    #[test]
    fn negative_fee_rejected() {
        let mut cfg = StrategyConfig::default();
        cfg.trade.taker_fee_bps = -1.0;
        assert_eq!(validate(&cfg).unwrap_err().path, "trade.taker_fee_bps");
    }

    #[test]
    fn bad_interval_rejected() {
        let mut cfg = StrategyConfig::default();
        cfg.engine.interval = "7m".into();
        assert_eq!(validate(&cfg).unwrap_err().path, "engine.interval");
    }
}
