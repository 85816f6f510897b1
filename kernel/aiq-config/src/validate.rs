//! The kernel's guard when it is fed a merged config directly (JSON from Python or a sweep):
//! the same checks as the layered loader (`schema.rs`), without file locations.

use crate::StrategyConfig;

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

/// Validate value ranges and cross-field rules (the table in `schema.rs`); the first problem.
/// `layered::check_config` gives all of them.
pub fn validate(cfg: &StrategyConfig) -> Result<(), ConfigError> {
    match crate::layered::check_config(cfg).into_iter().next() {
        None => Ok(()),
        Some(p) => Err(ConfigError::new(p.key_path, p.message)),
    }
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
