//! Mei Alpha v1 entry signal (docs/strategy/mei_alpha_v1.md, section 1). Pure functions.

use aiq_config::{Confidence, MacdMode, StrategyConfig};
use aiq_indicators::IndicatorSnapshot;
use serde::{Deserialize, Serialize};

use crate::types::Signal;

/// Gate values of one decision, kept for diagnostics and audit.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Gates {
    pub is_ranging: bool,
    pub is_anomaly: bool,
    pub is_extended: bool,
    pub adx_above_min: bool,
    pub trending_up: bool,
    pub vol_confirm: bool,
    pub all_gates_pass: bool,
    pub bullish_alignment: bool,
    pub bearish_alignment: bool,
    pub btc_ok_long: bool,
    pub btc_ok_short: bool,
    pub effective_min_adx: f64,
    pub rsi_long_limit: f64,
    pub rsi_short_limit: f64,
    pub dynamic_tp_mult: f64,
}

/// Result of `analyze` for one bar.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SignalDecision {
    pub signal: Signal,
    pub confidence: Confidence,
    pub gates: Gates,
}

impl SignalDecision {
    pub fn neutral() -> Self {
        Self { signal: Signal::Neutral, confidence: Confidence::Low, gates: Gates::default() }
    }
}

/// Evaluate every gate for bar `s` with previous bar `p`.
pub fn gates(
    s: &IndicatorSnapshot,
    p: &IndicatorSnapshot,
    cfg: &StrategyConfig,
    symbol: &str,
    btc_bullish: Option<bool>,
) -> Gates {
    gates_for(s, p, cfg, symbol == "BTC", btc_bullish)
}

/// [`gates`] for a symbol known to be BTC or not (the kernel's per-bar path: no string compare).
pub fn gates_for(
    s: &IndicatorSnapshot,
    p: &IndicatorSnapshot,
    cfg: &StrategyConfig,
    is_btc: bool,
    btc_bullish: Option<bool>,
) -> Gates {
    let f = &cfg.filters;
    let th = &cfg.thresholds;
    let e = &th.entry;
    let r = &th.ranging;
    let tp = &th.tp_and_momentum;

    let is_ranging = f.enable_ranging_filter && {
        let n = u32::from(s.adx < r.adx_below)
            + u32::from(s.bb_width_ratio < r.bb_width_ratio_below)
            + u32::from(r.rsi_low < s.rsi && s.rsi < r.rsi_high);
        n >= r.min_signals
    };
    let ema_dev = (s.close - s.ema_fast).abs() / s.ema_fast;
    let is_anomaly = f.enable_anomaly_filter
        && ((s.close / s.prev_close - 1.0).abs() > th.anomaly.price_change_pct_gt
            || ema_dev > th.anomaly.ema_fast_dev_pct_gt);
    let is_extended = f.enable_extension_filter && ema_dev > e.max_dist_ema_fast;

    let mut min_adx = e.min_adx;
    if s.adx_slope > 0.5 {
        min_adx = min_adx.min(25.0);
    }
    if e.ave_enabled && s.avg_atr > 0.0 && s.atr / s.avg_atr > e.ave_atr_ratio_gt {
        min_adx *= e.ave_adx_mult;
    }
    let adx_above_min = s.adx > min_adx;
    let trending_up = !f.require_adx_rising || s.adx > p.adx || s.adx > f.adx_rising_saturation;
    let vol_confirm = !f.require_volume_confirmation
        || ((s.volume > s.vol_sma || (f.vol_confirm_include_prev && p.volume > p.vol_sma)) && s.vol_trend);
    let all_gates_pass =
        adx_above_min && !is_ranging && !is_anomaly && !is_extended && vol_confirm && trending_up;

    let macro_long = !f.require_macro_alignment || s.ema_slow > s.ema_macro;
    let macro_short = !f.require_macro_alignment || s.ema_slow < s.ema_macro;
    let bullish_alignment = s.ema_fast > s.ema_slow && macro_long;
    let bearish_alignment = s.ema_fast < s.ema_slow && macro_short;

    let btc_free = !f.require_btc_alignment || is_btc || s.adx > e.btc_adx_override;
    let btc_ok_long = btc_free || btc_bullish != Some(false);
    let btc_ok_short = btc_free || btc_bullish != Some(true);

    let denom = tp.adx_strong_gt - e.min_adx;
    let w = if denom > 0.0 {
        ((s.adx - e.min_adx) / denom).clamp(0.0, 1.0)
    } else if s.adx >= tp.adx_strong_gt {
        1.0
    } else {
        0.0
    };
    let rsi_long_limit = tp.rsi_long_weak + w * (tp.rsi_long_strong - tp.rsi_long_weak);
    let rsi_short_limit = tp.rsi_short_weak + w * (tp.rsi_short_strong - tp.rsi_short_weak);

    Gates {
        is_ranging,
        is_anomaly,
        is_extended,
        adx_above_min,
        trending_up,
        vol_confirm,
        all_gates_pass,
        bullish_alignment,
        bearish_alignment,
        btc_ok_long,
        btc_ok_short,
        effective_min_adx: min_adx,
        rsi_long_limit,
        rsi_short_limit,
        dynamic_tp_mult: dynamic_tp_mult(s.adx, cfg),
    }
}

/// TP multiplier chosen from ADX at entry.
pub fn dynamic_tp_mult(adx: f64, cfg: &StrategyConfig) -> f64 {
    let tp = &cfg.thresholds.tp_and_momentum;
    if adx > tp.adx_strong_gt {
        tp.tp_mult_strong
    } else if adx < tp.adx_weak_lt {
        tp.tp_mult_weak
    } else {
        cfg.trade.tp_atr_mult
    }
}

fn macd_ok(s: &IndicatorSnapshot, mode: MacdMode, long: bool) -> bool {
    match (mode, long) {
        (MacdMode::Accel, true) => s.macd_hist > s.prev_macd_hist,
        (MacdMode::Accel, false) => s.macd_hist < s.prev_macd_hist,
        (MacdMode::Sign, true) => s.macd_hist > 0.0,
        (MacdMode::Sign, false) => s.macd_hist < 0.0,
        (MacdMode::None, _) => true,
    }
}

fn macd_sign_ok(s: &IndicatorSnapshot, required: bool, long: bool) -> bool {
    !required || if long { s.macd_hist > 0.0 } else { s.macd_hist < 0.0 }
}

/// The Mei Alpha v1 entry signal for bar `s` (previous bar `p`).
pub fn analyze(
    s: &IndicatorSnapshot,
    p: &IndicatorSnapshot,
    cfg: &StrategyConfig,
    symbol: &str,
    btc_bullish: Option<bool>,
) -> SignalDecision {
    analyze_for(s, p, cfg, symbol == "BTC", btc_bullish)
}

/// [`analyze`] for a symbol known to be BTC or not (the kernel's per-bar path: no string compare).
pub fn analyze_for(
    s: &IndicatorSnapshot,
    p: &IndicatorSnapshot,
    cfg: &StrategyConfig,
    is_btc: bool,
    btc_bullish: Option<bool>,
) -> SignalDecision {
    if !s.ready || !p.ready {
        return SignalDecision::neutral();
    }
    let g = gates_for(s, p, cfg, is_btc, btc_bullish);
    let e = &cfg.thresholds.entry;
    let sr = &cfg.thresholds.stoch_rsi;
    let use_stoch = cfg.filters.use_stoch_rsi_filter;

    let mut signal = Signal::Neutral;
    let mut confidence = Confidence::Low;

    if g.all_gates_pass {
        let long = g.bullish_alignment
            && s.close > s.ema_fast
            && s.rsi > g.rsi_long_limit
            && macd_ok(s, e.macd_hist_entry_mode, true)
            && !(use_stoch && s.stoch_rsi_k > sr.block_long_if_k_gt)
            && g.btc_ok_long;
        let short = g.bearish_alignment
            && s.close < s.ema_fast
            && s.rsi < g.rsi_short_limit
            && macd_ok(s, e.macd_hist_entry_mode, false)
            && !(use_stoch && s.stoch_rsi_k < sr.block_short_if_k_lt)
            && g.btc_ok_short;
        if long || short {
            signal = if long { Signal::Buy } else { Signal::Sell };
            confidence = if s.volume > s.vol_sma * e.high_conf_volume_mult {
                Confidence::High
            } else {
                Confidence::Medium
            };
        }
    }

    if signal == Signal::Neutral && e.enable_pullback_entries && s.adx > e.pullback_min_adx && !g.is_anomaly {
        let long = g.bullish_alignment
            && p.close <= p.ema_fast
            && s.close > s.ema_fast
            && s.rsi >= e.pullback_rsi_long_min
            && macd_sign_ok(s, e.pullback_require_macd_sign, true)
            && g.btc_ok_long;
        let short = g.bearish_alignment
            && p.close >= p.ema_fast
            && s.close < s.ema_fast
            && s.rsi <= e.pullback_rsi_short_max
            && macd_sign_ok(s, e.pullback_require_macd_sign, false)
            && g.btc_ok_short;
        if long || short {
            signal = if long { Signal::Buy } else { Signal::Sell };
            confidence = e.pullback_confidence;
        }
    }

    if signal == Signal::Neutral
        && e.enable_slow_drift_entries
        && s.adx >= e.slow_drift_min_adx
        && !g.is_anomaly
    {
        let slope = s.ema_slow_slope_pct;
        let long = slope >= e.slow_drift_min_slope_pct
            && s.close > s.ema_slow
            && s.rsi >= e.slow_drift_rsi_long_min
            && macd_sign_ok(s, e.slow_drift_require_macd_sign, true)
            && g.btc_ok_long;
        let short = slope <= -e.slow_drift_min_slope_pct
            && s.close < s.ema_slow
            && s.rsi <= e.slow_drift_rsi_short_max
            && macd_sign_ok(s, e.slow_drift_require_macd_sign, false)
            && g.btc_ok_short;
        if long || short {
            signal = if long { Signal::Buy } else { Signal::Sell };
            confidence = Confidence::Low;
        }
    }

    if cfg.trade.reverse_entry_signal {
        signal = match signal {
            Signal::Buy => Signal::Sell,
            Signal::Sell => Signal::Buy,
            Signal::Neutral => Signal::Neutral,
        };
    }
    SignalDecision { signal, confidence, gates: g }
}
