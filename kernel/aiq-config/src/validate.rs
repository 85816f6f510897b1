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

/// An RSI or ADX level: both indicators live on 0..=100, so a threshold outside it never fires
/// (or always does) without saying so.
fn level_0_100(v: f64, path: &str) -> Result<(), ConfigError> {
    check(v.is_finite() && (0.0..=100.0).contains(&v), path, "must be an RSI/ADX level between 0 and 100")
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
    let en = &cfg.thresholds.entry;
    let tpm = &cfg.thresholds.tp_and_momentum;
    for (v, p) in [
        (t.rsi_exit_ub_lo_profit, "trade.rsi_exit_ub_lo_profit"),
        (t.rsi_exit_lb_lo_profit, "trade.rsi_exit_lb_lo_profit"),
        (t.rsi_exit_ub_hi_profit, "trade.rsi_exit_ub_hi_profit"),
        (t.rsi_exit_lb_hi_profit, "trade.rsi_exit_lb_hi_profit"),
        (t.rsi_exit_ub_lo_profit_low_conf, "trade.rsi_exit_ub_lo_profit_low_conf"),
        (t.rsi_exit_lb_lo_profit_low_conf, "trade.rsi_exit_lb_lo_profit_low_conf"),
        (t.rsi_exit_ub_hi_profit_low_conf, "trade.rsi_exit_ub_hi_profit_low_conf"),
        (t.rsi_exit_lb_hi_profit_low_conf, "trade.rsi_exit_lb_hi_profit_low_conf"),
        (t.smart_exit_adx_exhaustion_lt, "trade.smart_exit_adx_exhaustion_lt"),
        (t.smart_exit_adx_exhaustion_lt_low_conf, "trade.smart_exit_adx_exhaustion_lt_low_conf"),
        (t.reef_long_rsi_block_gt, "trade.reef_long_rsi_block_gt"),
        (t.reef_short_rsi_block_lt, "trade.reef_short_rsi_block_lt"),
        (t.reef_adx_threshold, "trade.reef_adx_threshold"),
        (t.reef_long_rsi_extreme_gt, "trade.reef_long_rsi_extreme_gt"),
        (t.reef_short_rsi_extreme_lt, "trade.reef_short_rsi_extreme_lt"),
        (en.min_adx, "thresholds.entry.min_adx"),
        (en.btc_adx_override, "thresholds.entry.btc_adx_override"),
        (en.pullback_min_adx, "thresholds.entry.pullback_min_adx"),
        (en.pullback_rsi_long_min, "thresholds.entry.pullback_rsi_long_min"),
        (en.pullback_rsi_short_max, "thresholds.entry.pullback_rsi_short_max"),
        (en.slow_drift_min_adx, "thresholds.entry.slow_drift_min_adx"),
        (en.slow_drift_rsi_long_min, "thresholds.entry.slow_drift_rsi_long_min"),
        (en.slow_drift_rsi_short_max, "thresholds.entry.slow_drift_rsi_short_max"),
        (cfg.thresholds.ranging.adx_below, "thresholds.ranging.adx_below"),
        (cfg.thresholds.ranging.rsi_low, "thresholds.ranging.rsi_low"),
        (cfg.thresholds.ranging.rsi_high, "thresholds.ranging.rsi_high"),
        (tpm.adx_strong_gt, "thresholds.tp_and_momentum.adx_strong_gt"),
        (tpm.adx_weak_lt, "thresholds.tp_and_momentum.adx_weak_lt"),
        (tpm.rsi_long_strong, "thresholds.tp_and_momentum.rsi_long_strong"),
        (tpm.rsi_long_weak, "thresholds.tp_and_momentum.rsi_long_weak"),
        (tpm.rsi_short_strong, "thresholds.tp_and_momentum.rsi_short_strong"),
        (tpm.rsi_short_weak, "thresholds.tp_and_momentum.rsi_short_weak"),
    ] {
        level_0_100(v, p)?;
    }

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
    fn rsi_and_adx_levels_stay_on_their_scale() {
        let mut cfg = StrategyConfig::default();
        cfg.trade.reef_long_rsi_block_gt = 170.0;
        assert_eq!(validate(&cfg).unwrap_err().path, "trade.reef_long_rsi_block_gt");
        let mut cfg = StrategyConfig::default();
        cfg.thresholds.entry.min_adx = -1.0;
        assert_eq!(validate(&cfg).unwrap_err().path, "thresholds.entry.min_adx");
        let mut cfg = StrategyConfig::default();
        cfg.trade.max_entry_orders_per_loop = 0; // the `flat` strategy mode: no new entries
        assert!(validate(&cfg).is_ok());
        let mut cfg = StrategyConfig::default();
        cfg.trade.rsi_exit_ub_lo_profit_low_conf = 0.0; // 0: "use the main value"
        cfg.thresholds.ranging.rsi_high = 100.0;
        assert!(validate(&cfg).is_ok());
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
