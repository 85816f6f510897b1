//! Mei Alpha v1 exits (docs/strategy/mei_alpha_v1.md, section 3). Pure: the caller applies the result.

use aiq_config::{Confidence, StrategyConfig};
use aiq_indicators::IndicatorSnapshot;
use serde::{Deserialize, Serialize};

use crate::types::{Position, ReasonCode, Side};

/// What the exit logic decided for one position at one price.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExitDecision {
    /// Fraction of the quantity to close (1.0 = full close).
    pub fraction: f64,
    pub reason_code: ReasonCode,
}

/// Position fields the exit logic updates even when it does not exit (trailing ratchet).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ExitUpdate {
    pub trailing_sl: Option<f64>,
}

fn low_conf_or(pos: &Position, low_conf_value: f64, main: f64) -> f64 {
    if pos.confidence == Confidence::Low && low_conf_value > 0.0 {
        low_conf_value
    } else {
        main
    }
}

/// Price at `entry ± atr_mult * entry_atr` in the position's favour.
fn favour(pos: &Position, atr_mult: f64) -> f64 {
    pos.avg_entry_price + pos.side.sign() * atr_mult * pos.entry_atr
}

/// True when `px` is at or beyond `level` against the position (stop hit).
fn stop_hit(side: Side, px: f64, level: f64) -> bool {
    match side {
        Side::Long => px <= level,
        Side::Short => px >= level,
    }
}

/// True when `px` is at or beyond `level` in the position's favour (target hit).
fn target_hit(side: Side, px: f64, level: f64) -> bool {
    match side {
        Side::Long => px >= level,
        Side::Short => px <= level,
    }
}

/// The stop-loss level and whether breakeven set it.
pub fn stop_loss_level(pos: &Position, s: &IndicatorSnapshot, px: f64, cfg: &StrategyConfig) -> (f64, bool) {
    let t = &cfg.trade;
    let profit_atr = pos.profit_atr(px);
    let mut mult = t.sl_atr_mult;
    if s.adx_slope < 0.0 && profit_atr < 0.0 {
        mult *= 0.80;
    }
    if s.adx > 40.0 && profit_atr > 0.0 {
        mult *= 1.15;
    }
    if s.adx > 45.0 {
        mult *= 1.10;
    }
    let sl = favour(pos, -mult);
    if t.enable_breakeven_stop && profit_atr >= t.breakeven_start_atr {
        let be = favour(pos, t.breakeven_buffer_atr);
        let tighter = match pos.side {
            Side::Long => be > sl,
            Side::Short => be < sl,
        };
        if tighter {
            return (be, true);
        }
    }
    (sl, false)
}

/// The trailing-stop candidate at `px`, if trailing is armed.
pub fn trailing_candidate(
    pos: &Position,
    s: &IndicatorSnapshot,
    px: f64,
    cfg: &StrategyConfig,
) -> Option<f64> {
    let t = &cfg.trade;
    let profit_atr = pos.profit_atr(px);
    let start = low_conf_or(pos, t.trailing_start_atr_low_conf, t.trailing_start_atr);
    if profit_atr < start {
        return None;
    }
    let mut dist = low_conf_or(pos, t.trailing_distance_atr_low_conf, t.trailing_distance_atr);
    if t.enable_vol_buffered_trailing && s.bb_width_ratio > 1.2 {
        dist *= 1.25;
    }
    if profit_atr > 2.0 {
        if s.adx > 35.0 && s.adx_slope > 0.0 {
            // keep the distance while the trend strengthens
        } else if s.atr_slope > 0.0 {
            dist *= 0.75;
        } else {
            dist *= 0.5;
        }
    }
    if s.adx < 25.0 {
        dist *= 0.7;
    }
    let rsi_favourable = match pos.side {
        Side::Long => s.rsi > 50.0,
        Side::Short => s.rsi < 50.0,
    };
    let floor = if rsi_favourable { 0.7 } else { 0.5 };
    dist = dist.max(floor);
    Some(px - pos.side.sign() * dist * pos.entry_atr)
}

/// Ratchet: keep whichever stop is more in the position's favour.
pub fn ratchet(side: Side, current: Option<f64>, candidate: f64) -> f64 {
    match (side, current) {
        (_, None) => candidate,
        (Side::Long, Some(c)) => c.max(candidate),
        (Side::Short, Some(c)) => c.min(candidate),
    }
}

fn macd_falling(s: &IndicatorSnapshot, side: Side, bars: usize) -> bool {
    let h = [s.macd_hist, s.prev_macd_hist, s.prev2_macd_hist, s.prev3_macd_hist];
    (0..bars).all(|i| match side {
        Side::Long => h[i] < h[i + 1],
        Side::Short => h[i] > h[i + 1],
    })
}

fn smart_exit(pos: &Position, s: &IndicatorSnapshot, px: f64, cfg: &StrategyConfig) -> Option<ReasonCode> {
    let t = &cfg.trade;
    let side = pos.side;
    let profit_atr = pos.profit_atr(px);

    let crossed_against = match side {
        Side::Long => s.ema_fast < s.ema_slow,
        Side::Short => s.ema_fast > s.ema_slow,
    };
    let weak_cross = (s.ema_fast - s.ema_slow).abs() / s.ema_slow < 0.001 && s.adx > 25.0;
    if crossed_against && !weak_cross {
        return Some(ReasonCode::TrendBreakdown);
    }
    let exhaustion =
        low_conf_or(pos, t.smart_exit_adx_exhaustion_lt_low_conf, t.smart_exit_adx_exhaustion_lt);
    if s.adx < exhaustion {
        return Some(ReasonCode::AdxExhaustion);
    }
    if cfg.filters.require_macro_alignment {
        let broken = match side {
            Side::Long => s.close < s.ema_macro,
            Side::Short => s.close > s.ema_macro,
        };
        if broken {
            return Some(ReasonCode::MacroBreakdown);
        }
    }
    if s.atr < 0.7 * pos.entry_atr && profit_atr < 0.0 {
        return Some(ReasonCode::Stagnation);
    }
    if s.adx > 50.0
        && profit_atr >= t.tsme_min_profit_atr
        && (!t.tsme_require_adx_slope_negative || s.adx_slope < 0.0)
        && macd_falling(s, side, 2)
    {
        return Some(ReasonCode::Tsme);
    }
    if profit_atr > 1.5 && s.adx > 35.0 && macd_falling(s, side, 3) {
        return Some(ReasonCode::Mmde);
    }
    if t.enable_rsi_overextension_exit {
        let (ub, lb) = if profit_atr < t.rsi_exit_profit_atr_switch {
            (
                low_conf_or(pos, t.rsi_exit_ub_lo_profit_low_conf, t.rsi_exit_ub_lo_profit),
                low_conf_or(pos, t.rsi_exit_lb_lo_profit_low_conf, t.rsi_exit_lb_lo_profit),
            )
        } else {
            (
                low_conf_or(pos, t.rsi_exit_ub_hi_profit_low_conf, t.rsi_exit_ub_hi_profit),
                low_conf_or(pos, t.rsi_exit_lb_hi_profit_low_conf, t.rsi_exit_lb_hi_profit),
            )
        };
        let over = match side {
            Side::Long => s.rsi > ub,
            Side::Short => s.rsi < lb,
        };
        if over {
            return Some(ReasonCode::RsiOverextension);
        }
    }
    None
}

/// Decide the exit for `pos` at price `px` given the latest snapshot `s`.
/// Returns the decision (if any) and the trailing-stop update to apply either way.
pub fn check_exit(
    pos: &Position,
    s: &IndicatorSnapshot,
    px: f64,
    cfg: &StrategyConfig,
) -> (Option<ExitDecision>, ExitUpdate) {
    let t = &cfg.trade;
    let mut update = ExitUpdate { trailing_sl: pos.trailing_sl };
    let full = |reason_code| Some(ExitDecision { fraction: 1.0, reason_code });

    if t.block_exits_on_extreme_dev
        && ((px / s.close - 1.0).abs() > t.glitch_price_dev_pct
            || (px - s.close).abs() > t.glitch_atr_mult * s.atr)
    {
        return (None, update);
    }

    let (sl, breakeven) = stop_loss_level(pos, s, px, cfg);
    if stop_hit(pos.side, px, sl) {
        let code = if breakeven { ReasonCode::BreakevenStop } else { ReasonCode::StopLoss };
        return (full(code), update);
    }

    if let Some(candidate) = trailing_candidate(pos, s, px, cfg) {
        update.trailing_sl = Some(ratchet(pos.side, update.trailing_sl, candidate));
    }
    if let Some(tsl) = update.trailing_sl {
        if stop_hit(pos.side, px, tsl) {
            return (full(ReasonCode::TrailingStop), update);
        }
    }

    let tp = favour(pos, pos.tp_mult);
    if t.enable_partial_tp && !pos.tp1_taken {
        let level = if t.tp_partial_atr_mult > 0.0 { favour(pos, t.tp_partial_atr_mult) } else { tp };
        if target_hit(pos.side, px, level) {
            let part = pos.quantity * t.tp_partial_pct * px;
            let rest = pos.quantity * (1.0 - t.tp_partial_pct) * px;
            if part < t.tp_partial_min_notional_usd || rest < t.tp_partial_min_notional_usd {
                return (full(ReasonCode::TakeProfit), update);
            }
            let be = favour(pos, t.breakeven_buffer_atr);
            update.trailing_sl = Some(ratchet(pos.side, update.trailing_sl, be));
            return (
                Some(ExitDecision { fraction: t.tp_partial_pct, reason_code: ReasonCode::TakeProfitPartial }),
                update,
            );
        }
    } else if (!t.enable_partial_tp || t.tp_partial_atr_mult > 0.0) && target_hit(pos.side, px, tp) {
        return (full(ReasonCode::TakeProfit), update);
    }

    if let Some(code) = smart_exit(pos, s, px, cfg) {
        return (full(code), update);
    }
    (None, update)
}
