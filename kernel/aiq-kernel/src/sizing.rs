//! Entry sizing and cooldown arithmetic (docs/strategy/mei_alpha_v1.md, section 2). Pure functions.

use aiq_config::{Confidence, StrategyConfig, TradeConfig};
use aiq_indicators::IndicatorSnapshot;

/// Leverage for a confidence tier.
pub fn tier_leverage(t: &TradeConfig, confidence: Confidence) -> f64 {
    match confidence {
        Confidence::Low => t.leverage_low,
        Confidence::Medium => t.leverage_medium,
        Confidence::High => t.leverage_high,
    }
}

fn confidence_mult(t: &TradeConfig, confidence: Confidence) -> f64 {
    match confidence {
        Confidence::Low => t.confidence_mult_low,
        Confidence::Medium => t.confidence_mult_medium,
        Confidence::High => t.confidence_mult_high,
    }
}

/// Margin (USD) for a new entry before the headroom clamp.
pub fn entry_margin(cfg: &StrategyConfig, s: &IndicatorSnapshot, confidence: Confidence, equity: f64) -> f64 {
    let t = &cfg.trade;
    let mut k = 1.0;
    if t.enable_dynamic_sizing {
        let atr_eff = s.atr.max(s.close * t.min_atr_pct);
        let adx_scalar = (s.adx / t.adx_sizing_full_adx).clamp(t.adx_sizing_min_mult, 1.0);
        let atr_pct = atr_eff / s.close;
        let vol_scalar = if atr_pct > 0.0 {
            (t.vol_baseline_pct / atr_pct).clamp(t.vol_scalar_min, t.vol_scalar_max)
        } else {
            t.vol_scalar_max
        };
        k = confidence_mult(t, confidence) * adx_scalar * vol_scalar;
    }
    (equity * t.allocation_pct * t.size_multiplier * k).max(0.0)
}

/// Post-exit same-direction cooldown: `max_mins` at ADX <= 25, `min_mins` at ADX >= 40, linear between.
pub fn pesc_cooldown_minutes(adx: f64, min_mins: f64, max_mins: f64) -> f64 {
    if adx >= 40.0 {
        min_mins
    } else if adx <= 25.0 {
        max_mins
    } else {
        max_mins + (adx - 25.0) / 15.0 * (min_mins - max_mins)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pesc_interpolates() {
        assert_eq!(pesc_cooldown_minutes(10.0, 45.0, 180.0), 180.0);
        assert_eq!(pesc_cooldown_minutes(50.0, 45.0, 180.0), 45.0);
        assert!((pesc_cooldown_minutes(32.5, 45.0, 180.0) - 112.5).abs() < 1e-12);
    }

    #[test]
    fn tiers() {
        let t = TradeConfig::default();
        assert_eq!(tier_leverage(&t, Confidence::Low), 1.0);
        assert_eq!(tier_leverage(&t, Confidence::High), 5.0);
    }
}
