//! `ema_cross`: long-only EMA fast/slow crossover. Deliberately simple, to check the engine
//! (fills, fees, accounting) against other backtesters. Buy when the fast EMA crosses above the
//! slow EMA, sell (close) when it crosses below.

use aiq_config::Confidence;
use aiq_indicators::IndicatorSnapshot;

use crate::signal::{Gates, SignalDecision};
use crate::types::Signal;

pub fn analyze(s: &IndicatorSnapshot, p: &IndicatorSnapshot) -> SignalDecision {
    let valid = |x: f64| x.is_finite();
    if !(valid(s.ema_fast) && valid(s.ema_slow) && valid(p.ema_fast) && valid(p.ema_slow)) {
        return SignalDecision::neutral();
    }
    let signal = if p.ema_fast <= p.ema_slow && s.ema_fast > s.ema_slow {
        Signal::Buy
    } else if p.ema_fast >= p.ema_slow && s.ema_fast < s.ema_slow {
        Signal::Sell
    } else {
        Signal::Neutral
    };
    SignalDecision { signal, confidence: Confidence::Medium, gates: Gates::default() }
}
