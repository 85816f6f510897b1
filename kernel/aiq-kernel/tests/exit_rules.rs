//! Exit rules (docs/strategy/mei_alpha_v1.md, section 3) at and around each threshold, for longs
//! and shorts. Every level is worked out in the comments; an entry ATR of 2 keeps multiplying and
//! dividing by the ATR apart. Written from the cargo-mutants run (docs/mutation.md).

mod common;

use aiq_config::{Confidence, StrategyConfig};
use aiq_indicators::IndicatorSnapshot;
use aiq_kernel::exits::{check_exit, ratchet, stop_loss_level, trailing_candidate};
use aiq_kernel::{Position, ReasonCode, Side};
use common::{bull, long_pos};

fn cfg() -> StrategyConfig {
    StrategyConfig::default()
}

fn short_pos(entry: f64, atr: f64) -> Position {
    Position { side: Side::Short, ..long_pos(entry, atr) }
}

fn low_conf(mut p: Position) -> Position {
    p.confidence = Confidence::Low;
    p
}

fn snap(f: impl Fn(&mut IndicatorSnapshot)) -> IndicatorSnapshot {
    let mut s = bull();
    f(&mut s);
    s
}

/// A bearish bar for shorts: fast EMA 97 under slow 99, RSI 40 (no smart exit for a short).
fn bear() -> IndicatorSnapshot {
    snap(|s| (s.ema_fast, s.ema_slow, s.rsi) = (97.0, 99.0, 40.0))
}

fn close_to(got: f64, want: f64) -> bool {
    (got - want).abs() < 1e-9
}

fn reason(pos: &Position, s: &IndicatorSnapshot, px: f64, c: &StrategyConfig) -> Option<ReasonCode> {
    check_exit(pos, s, px, c).0.map(|d| d.reason_code)
}

// ---- stop loss ----

#[test]
fn stop_loss_multiplier_modifiers_apply_only_in_their_conditions() {
    let c = cfg();
    let pos = long_pos(100.0, 2.0); // stop = 100 - mult * 2
    let sl = |s: IndicatorSnapshot, px: f64| stop_loss_level(&pos, &s, px, &c);

    // Plain: 2 ATR = 96 (bull(): ADX 30, slope +1).
    assert_eq!(sl(bull(), 99.0), (96.0, false));
    // ADX falling tightens to 1.6 ATR (96.8) only while under water ...
    let (level, be) = sl(snap(|s| s.adx_slope = -1.0), 99.0);
    assert!(!be && close_to(level, 96.8), "{level}");
    // ... not in profit (0.5 ATR, below the 0.7 breakeven trigger), not at exactly break-even,
    // and not with a flat ADX.
    assert_eq!(sl(snap(|s| s.adx_slope = -1.0), 101.0), (96.0, false));
    assert_eq!(sl(snap(|s| s.adx_slope = -1.0), 100.0), (96.0, false));
    assert_eq!(sl(snap(|s| s.adx_slope = 0.0), 99.0), (96.0, false));

    // ADX above 40 widens by 1.15 in profit: 2.3 ATR = 95.4; not at ADX 40, not at a loss or flat.
    assert!(close_to(sl(snap(|s| s.adx = 41.0), 101.0).0, 95.4));
    assert_eq!(sl(snap(|s| s.adx = 40.0), 101.0), (96.0, false));
    assert_eq!(sl(snap(|s| s.adx = 41.0), 99.0), (96.0, false));
    assert_eq!(sl(snap(|s| s.adx = 41.0), 100.0), (96.0, false));
    // ADX above 45 widens by 1.10 whatever the PnL: 2.2 ATR = 95.6; not at 45.
    assert!(close_to(sl(snap(|s| s.adx = 46.0), 99.0).0, 95.6));
    assert_eq!(sl(snap(|s| s.adx = 45.0), 99.0), (96.0, false));
}

#[test]
fn a_short_stop_sits_above_the_entry_and_breakeven_below_it() {
    let c = cfg();
    let pos = short_pos(100.0, 2.0);
    // 100 + 2 * 2 = 104: hit at and above it.
    assert_eq!(stop_loss_level(&pos, &bull(), 101.0, &c), (104.0, false));
    let mut b = bear();
    b.atr = 2.0; // as at entry (a bar ATR under 0.7 of it would be a stagnation exit)
    assert_eq!(reason(&pos, &b, 103.9, &c), None);
    assert_eq!(reason(&pos, &b, 104.0, &c), Some(ReasonCode::StopLoss));
    // 0.75 ATR in profit at 98.5 (>= 0.7): breakeven 100 - 0.05 * 2 = 99.9 replaces 104.
    let (level, be) = stop_loss_level(&pos, &bull(), 98.5, &c);
    assert!(be && close_to(level, 99.9), "{level}");
    // The same for a long: 100 + 0.1 = 100.1 at 0.75 ATR profit (101.5).
    let (level, be) = stop_loss_level(&long_pos(100.0, 2.0), &bull(), 101.5, &c);
    assert!(be && close_to(level, 100.1), "{level}");
}

// ---- trailing stop ----

#[test]
fn trailing_arms_at_the_start_distance_and_scales_its_distance() {
    let c = cfg();
    let pos = long_pos(100.0, 2.0);
    let tc = |s: IndicatorSnapshot, px: f64| trailing_candidate(&pos, &s, px, &c);

    // Armed at exactly 1 ATR of profit (102): 102 - 0.8 * 2 = 100.4; not at 101.9.
    assert!(close_to(tc(bull(), 102.0).unwrap(), 100.4));
    assert_eq!(tc(bull(), 101.9), None);
    // Wide Bollinger bands (ratio 1.5 > 1.2) buffer the distance by 1.25: 1.0 ATR.
    assert!(close_to(tc(snap(|s| s.bb_width_ratio = 1.5), 102.0).unwrap(), 100.0));
    let mut no_buffer = cfg();
    no_buffer.trade.enable_vol_buffered_trailing = false;
    let s = snap(|s| s.bb_width_ratio = 1.5);
    assert!(close_to(trailing_candidate(&pos, &s, 102.0, &no_buffer).unwrap(), 100.4));
}

#[test]
fn trailing_tightens_past_two_atr_unless_the_trend_strengthens() {
    // Distance 2 ATR so that the 0.7 floor stays out of the way; entry ATR 2.
    let mut c = cfg();
    c.trade.trailing_distance_atr = 2.0;
    let pos = long_pos(100.0, 2.0);
    let tc = |f: fn(&mut IndicatorSnapshot), px: f64| trailing_candidate(&pos, &snap(f), px, &c).unwrap();

    // At 3 ATR profit (106): ADX 40 rising keeps 2 ATR: 106 - 4 = 102.
    assert!(close_to(tc(|s| s.adx = 40.0, 106.0), 102.0));
    // ADX 40 not rising (slope 0) with ATR rising: 0.75 -> 1.5 ATR: 103.
    assert!(close_to(tc(|s| (s.adx, s.adx_slope, s.atr_slope) = (40.0, 0.0, 0.1), 106.0), 103.0));
    // ... with ATR flat: 0.5 -> 1 ATR: 104.
    assert!(close_to(tc(|s| (s.adx, s.adx_slope, s.atr_slope) = (40.0, 0.0, 0.0), 106.0), 104.0));
    // ADX exactly 35 is not a strong trend: 104.
    assert!(close_to(tc(|s| s.adx = 35.0, 106.0), 104.0));
    // ADX 30 rising is not strong either; ATR rising gives 1.5 ATR: 103.
    assert!(close_to(tc(|s| s.atr_slope = 0.1, 106.0), 103.0));
    // Exactly 2 ATR of profit (104) is not past 2: the full 2 ATR: 100.
    assert!(close_to(tc(|s| s.adx = 30.0, 104.0), 100.0));
    // Below ADX 25 the distance is 0.7 of itself (at 1.5 ATR profit, 103): 1.4 ATR = 100.2;
    // at exactly 25 it is not: 99.
    assert!(close_to(tc(|s| s.adx = 20.0, 103.0), 100.2));
    assert!(close_to(tc(|s| s.adx = 25.0, 103.0), 99.0));
}

#[test]
fn the_trailing_distance_floor_depends_on_whether_rsi_favours_the_position() {
    // Default 0.8 ATR * 0.7 (ADX 20) = 0.56 ATR, below both floors. Entry ATR 2, 1.5 ATR profit.
    let c = cfg();
    let long = long_pos(100.0, 2.0);
    let short = short_pos(100.0, 2.0);
    let s = |rsi: f64| snap(move |s| (s.adx, s.rsi) = (20.0, rsi));
    // Long, RSI 60 (> 50, favourable): floor 0.7 -> 103 - 1.4 = 101.6.
    assert!(close_to(trailing_candidate(&long, &s(60.0), 103.0, &c).unwrap(), 101.6));
    // Long, RSI 50 (not favourable): floor 0.5 -> 0.56 stays: 103 - 1.12 = 101.88.
    assert!(close_to(trailing_candidate(&long, &s(50.0), 103.0, &c).unwrap(), 101.88));
    // Short at 97 (1.5 ATR profit), RSI 40 (< 50, favourable): 97 + 1.4 = 98.4.
    assert!(close_to(trailing_candidate(&short, &s(40.0), 97.0, &c).unwrap(), 98.4));
    // Short, RSI 50: 97 + 1.12 = 98.12.
    assert!(close_to(trailing_candidate(&short, &s(50.0), 97.0, &c).unwrap(), 98.12));
}

#[test]
fn low_confidence_positions_use_their_own_trailing_settings_when_set() {
    let mut c = cfg();
    c.trade.trailing_start_atr_low_conf = 2.0;
    let s = bull();
    // 1.5 ATR of profit: a low-confidence position waits for 2 ATR, a medium one does not.
    assert_eq!(trailing_candidate(&low_conf(long_pos(100.0, 2.0)), &s, 103.0, &c), None);
    assert!(trailing_candidate(&long_pos(100.0, 2.0), &s, 103.0, &c).is_some());
    // A low-confidence setting of 0 means "same as the main one" (start 1 ATR): 0.5 ATR is not enough.
    assert_eq!(trailing_candidate(&low_conf(long_pos(100.0, 2.0)), &s, 101.0, &cfg()), None);
}

#[test]
fn the_ratchet_only_moves_a_stop_in_the_positions_favour() {
    assert_eq!(ratchet(Side::Long, None, 95.0), 95.0);
    assert_eq!(ratchet(Side::Long, Some(96.0), 95.0), 96.0);
    assert_eq!(ratchet(Side::Long, Some(96.0), 97.0), 97.0);
    assert_eq!(ratchet(Side::Short, Some(104.0), 105.0), 104.0);
    assert_eq!(ratchet(Side::Short, Some(104.0), 103.0), 103.0);
}

#[test]
fn a_short_trailing_stop_fires_at_or_above_it() {
    let c = cfg();
    let mut pos = short_pos(100.0, 1.0);
    pos.trailing_sl = Some(99.0);
    // At 98.9 the candidate is 98.9 + 0.8 = 99.7, the ratchet keeps 99.0; not hit.
    let (d, upd) = check_exit(&pos, &bear(), 98.9, &c);
    assert_eq!((d, upd.trailing_sl), (None, Some(99.0)));
    assert_eq!(reason(&pos, &bear(), 99.0, &c), Some(ReasonCode::TrailingStop));
}

// ---- take profit ----

#[test]
fn take_profit_partial_full_and_after_the_first_partial() {
    let c = cfg();
    // Long 10 @ 100, ATR 1, tp_mult 4: target 104. Keep the trailing stop out of the way.
    let mut pos = long_pos(100.0, 1.0);
    pos.trailing_sl = Some(90.0);
    assert_eq!(reason(&pos, &bull(), 103.9, &c), None);
    // Half of 10 at 104 = 520 USD each side, above the 10 USD minimum: a 50% partial.
    let (d, upd) = check_exit(&pos, &bull(), 104.0, &c);
    let d = d.unwrap();
    assert_eq!((d.reason_code, d.fraction), (ReasonCode::TakeProfitPartial, 0.5));
    // The trailing candidate at 104 (4 ATR profit, ADX 30, ATR flat: 0.8 * 0.5 = 0.4,
    // floored at 0.7) is 103.3, and the stop keeps it.
    assert!(close_to(upd.trailing_sl.unwrap(), 103.3));
    // With no trailing candidate (start 10 ATR) the stop moves from 90 to breakeven + 0.05 ATR.
    let mut no_trail = cfg();
    no_trail.trade.trailing_start_atr = 10.0;
    let (_, upd) = check_exit(&pos, &bull(), 104.0, &no_trail);
    assert_eq!(upd.trailing_sl, Some(100.05));

    // Either half below the minimum: close it all.
    let mut big_min = cfg();
    big_min.trade.tp_partial_min_notional_usd = 521.0;
    assert_eq!(reason(&pos, &bull(), 104.0, &big_min), Some(ReasonCode::TakeProfit));
    // The minimum is inclusive: halves of exactly 520 with a 520 minimum (or 500) stay partial.
    for min in [520.0, 500.0] {
        let mut at_min = cfg();
        at_min.trade.tp_partial_min_notional_usd = min;
        assert_eq!(reason(&pos, &bull(), 104.0, &at_min), Some(ReasonCode::TakeProfitPartial), "{min}");
    }
    // A 40% part is 10 * 0.4 * 104 = 416 < 500 (the rest, 624, is enough): close it all.
    let mut small_part = cfg();
    small_part.trade.tp_partial_pct = 0.4;
    small_part.trade.tp_partial_min_notional_usd = 500.0;
    assert_eq!(reason(&pos, &bull(), 104.0, &small_part), Some(ReasonCode::TakeProfit));
    let mut lopsided = cfg();
    lopsided.trade.tp_partial_pct = 0.99; // rest 0.1 * 104 = 10.4 ... with min 11: full
    lopsided.trade.tp_partial_min_notional_usd = 11.0;
    assert_eq!(reason(&pos, &bull(), 104.0, &lopsided), Some(ReasonCode::TakeProfit));

    // After the partial (partial level = the target): no second take profit; trailing manages it.
    pos.tp1_taken = true;
    assert_eq!(reason(&pos, &bull(), 104.5, &c), None);

    // A separate partial level (2 ATR = 102): partial there, full at the 104 target afterwards.
    let mut two_level = cfg();
    two_level.trade.tp_partial_atr_mult = 2.0;
    pos.tp1_taken = false;
    assert_eq!(reason(&pos, &bull(), 102.0, &two_level), Some(ReasonCode::TakeProfitPartial));
    pos.tp1_taken = true;
    assert_eq!(reason(&pos, &bull(), 103.9, &two_level), None);
    assert_eq!(reason(&pos, &bull(), 104.0, &two_level), Some(ReasonCode::TakeProfit));

    // Partial exits off: the target closes in full.
    let mut whole = cfg();
    whole.trade.enable_partial_tp = false;
    pos.tp1_taken = false;
    assert_eq!(reason(&pos, &bull(), 104.0, &whole), Some(ReasonCode::TakeProfit));
}

#[test]
fn a_short_takes_profit_below_the_entry() {
    let mut c = cfg();
    c.trade.enable_partial_tp = false;
    let mut pos = short_pos(100.0, 1.0);
    pos.trailing_sl = Some(110.0);
    let s = bear();
    assert_eq!(reason(&pos, &s, 96.1, &c), None);
    assert_eq!(reason(&pos, &s, 96.0, &c), Some(ReasonCode::TakeProfit));
}

// ---- glitch guard ----

#[test]
fn exits_are_held_on_a_price_far_from_the_bar_when_the_guard_is_on() {
    let mut c = cfg();
    c.trade.block_exits_on_extreme_dev = true;
    let pos = long_pos(100.0, 1.0);
    // Close 100, ATR 1: 85 is 15 ATR away (> 12): held, although the 98 stop is hit.
    assert_eq!(check_exit(&pos, &bull(), 85.0, &c).0, None);
    // 89 is 11 ATR and 11% away: the stop fires.
    assert_eq!(reason(&pos, &bull(), 89.0, &c), Some(ReasonCode::StopLoss));
    // ATR 10: 55 is 4.5 ATR but 45% away (> 40%): held.
    let wide = snap(|s| s.atr = 10.0);
    assert_eq!(check_exit(&long_pos(100.0, 10.0), &wide, 55.0, &c).0, None);
    // Exactly 12 ATR (88), or exactly 40% (60 with ATR 10), is not beyond the limit: stops fire.
    assert_eq!(reason(&pos, &bull(), 88.0, &c), Some(ReasonCode::StopLoss));
    assert_eq!(reason(&long_pos(100.0, 10.0), &wide, 60.0, &c), Some(ReasonCode::StopLoss));
    // The ATR limit scales with the bar's ATR: with ATR 2 it is 24, so 79 (21 away) is a stop
    // and 75 (25 away, 25%) is held.
    let atr2 = snap(|s| s.atr = 2.0);
    let pos2 = long_pos(100.0, 2.0); // stop 96
    assert_eq!(reason(&pos2, &atr2, 79.0, &c), Some(ReasonCode::StopLoss));
    assert_eq!(check_exit(&pos2, &atr2, 75.0, &c).0, None);
    // Guard off: 85 is a stop.
    assert_eq!(reason(&pos, &bull(), 85.0, &cfg()), Some(ReasonCode::StopLoss));
}

// ---- smart exits (long 100, ATR 1, price 100.2 unless said: no stop, trail or target) ----

#[test]
fn trend_breakdown_needs_a_real_cross_against_the_position() {
    let c = cfg();
    let pos = long_pos(100.0, 1.0);
    // Fast 96.99 under slow 97 by 0.01% with ADX 30 (> 25): a weak cross, ignored.
    let weak = snap(|s| s.ema_fast = 96.99);
    assert_eq!(reason(&pos, &weak, 100.2, &c), None);
    // The same cross with ADX 25 (not > 25) is a breakdown.
    let weak_adx = snap(|s| (s.ema_fast, s.adx) = (96.99, 25.0));
    assert_eq!(reason(&pos, &weak_adx, 100.2, &c), Some(ReasonCode::TrendBreakdown));
    // 0.2% under (96.8): a breakdown at ADX 30.
    assert_eq!(reason(&pos, &snap(|s| s.ema_fast = 96.8), 100.2, &c), Some(ReasonCode::TrendBreakdown));
    // A short breaks down when fast is above slow (bull() has 99 over 97).
    assert_eq!(
        reason(&short_pos(100.0, 1.0), &snap(|s| s.rsi = 40.0), 99.8, &c),
        Some(ReasonCode::TrendBreakdown)
    );
}

#[test]
fn adx_exhaustion_below_18_or_the_low_confidence_limit() {
    let c = cfg();
    let pos = long_pos(100.0, 1.0);
    assert_eq!(reason(&pos, &snap(|s| s.adx = 17.9), 100.2, &c), Some(ReasonCode::AdxExhaustion));
    assert_eq!(reason(&pos, &snap(|s| s.adx = 18.0), 100.2, &c), None);
    let mut lc = cfg();
    lc.trade.smart_exit_adx_exhaustion_lt_low_conf = 22.0;
    let s = snap(|s| s.adx = 20.0);
    assert_eq!(reason(&low_conf(long_pos(100.0, 1.0)), &s, 100.2, &lc), Some(ReasonCode::AdxExhaustion));
    assert_eq!(reason(&pos, &s, 100.2, &lc), None, "medium confidence keeps 18");
}

#[test]
fn macro_breakdown_when_alignment_is_required() {
    let mut c = cfg();
    c.filters.require_macro_alignment = true;
    let under = snap(|s| s.ema_macro = 100.5); // close 100 under the macro EMA
    assert_eq!(reason(&long_pos(100.0, 1.0), &under, 100.2, &c), Some(ReasonCode::MacroBreakdown));
    assert_eq!(reason(&long_pos(100.0, 1.0), &under, 100.2, &cfg()), None, "not required");
    assert_eq!(reason(&long_pos(100.0, 1.0), &bull(), 100.2, &c), None, "close 100 over 90");
    // A short breaks when the close is above the macro EMA.
    let bear = snap(|s| (s.ema_fast, s.ema_slow, s.rsi, s.ema_macro) = (97.0, 99.0, 40.0, 99.5));
    assert_eq!(reason(&short_pos(100.0, 1.0), &bear, 99.8, &c), Some(ReasonCode::MacroBreakdown));
}

#[test]
fn stagnation_when_volatility_dries_up_under_water() {
    let c = cfg();
    let pos = long_pos(100.0, 1.0);
    // ATR 0.6 < 0.7 * entry ATR 1, at a loss (99.9): stagnation; not in profit, not at ATR 0.7.
    assert_eq!(reason(&pos, &snap(|s| s.atr = 0.6), 99.9, &c), Some(ReasonCode::Stagnation));
    assert_eq!(reason(&pos, &snap(|s| s.atr = 0.6), 100.2, &c), None);
    assert_eq!(reason(&pos, &snap(|s| s.atr = 0.7), 99.9, &c), None);
    // Entry ATR 2: 1.3 < 1.4 stagnates, 1.5 does not (0.7 ATR of the entry, not of 1).
    let pos2 = long_pos(100.0, 2.0);
    assert_eq!(reason(&pos2, &snap(|s| s.atr = 1.3), 99.9, &c), Some(ReasonCode::Stagnation));
    assert_eq!(reason(&pos2, &snap(|s| s.atr = 1.5), 99.9, &c), None);
}

/// MACD histogram newest first: `h[0]` is this bar's.
fn hist(s: &mut IndicatorSnapshot, h: [f64; 4]) {
    (s.macd_hist, s.prev_macd_hist, s.prev2_macd_hist, s.prev3_macd_hist) = (h[0], h[1], h[2], h[3]);
}

#[test]
fn tsme_on_a_strong_trend_losing_momentum_in_profit() {
    let c = cfg();
    let pos = long_pos(100.0, 1.0);
    // ADX 51 falling, 1 ATR of profit (101), histogram falling two bars (0.1 < 0.2 < 0.3).
    let s = |adx: f64, slope: f64, h: [f64; 4]| {
        let mut s = snap(|s| (s.adx, s.adx_slope) = (adx, slope));
        hist(&mut s, h);
        s
    };
    let falling = [0.1, 0.2, 0.3, 0.3];
    assert_eq!(reason(&pos, &s(51.0, -1.0, falling), 101.0, &c), Some(ReasonCode::Tsme));
    // Not at ADX 50, not below 1 ATR of profit, not with ADX still rising.
    assert_eq!(reason(&pos, &s(50.0, -1.0, falling), 101.0, &c), None);
    assert_eq!(reason(&pos, &s(51.0, -1.0, falling), 100.9, &c), None);
    assert_eq!(reason(&pos, &s(51.0, 1.0, falling), 101.0, &c), None);
    let mut any_slope = cfg();
    any_slope.trade.tsme_require_adx_slope_negative = false;
    assert_eq!(reason(&pos, &s(51.0, 1.0, falling), 101.0, &any_slope), Some(ReasonCode::Tsme));
    // The histogram must fall on both bars: flat or rising on either one is not enough.
    for h in [[0.2, 0.2, 0.3, 0.3], [0.1, 0.2, 0.2, 0.3], [0.3, 0.2, 0.1, 0.0]] {
        assert_eq!(reason(&pos, &s(51.0, -1.0, h), 101.0, &c), None, "{h:?}");
    }
    // For a short, momentum lost is a rising histogram (-0.1 > -0.2 > -0.3), 1 ATR down (99).
    let bear = |h: [f64; 4]| {
        let mut b = s(51.0, -1.0, h);
        (b.ema_fast, b.ema_slow, b.rsi) = (97.0, 99.0, 40.0);
        b
    };
    assert_eq!(
        reason(&short_pos(100.0, 1.0), &bear([-0.1, -0.2, -0.3, -0.3]), 99.0, &c),
        Some(ReasonCode::Tsme)
    );
    assert_eq!(reason(&short_pos(100.0, 1.0), &bear([-0.1, -0.1, -0.3, -0.3]), 99.0, &c), None);
}

#[test]
fn mmde_on_three_falling_bars_past_one_and_a_half_atr() {
    let c = cfg();
    let pos = long_pos(100.0, 1.0);
    // ADX 40 (> 35, < 50: not TSME), 1.6 ATR of profit (101.6: trailing at 100.8, not hit).
    let s = |adx: f64, h: [f64; 4]| {
        let mut s = snap(|s| s.adx = adx);
        hist(&mut s, h);
        s
    };
    let falling3 = [0.1, 0.2, 0.3, 0.4];
    assert_eq!(reason(&pos, &s(40.0, falling3), 101.6, &c), Some(ReasonCode::Mmde));
    // The third bar matters: flat there, no exit.
    assert_eq!(reason(&pos, &s(40.0, [0.1, 0.2, 0.3, 0.3]), 101.6, &c), None);
    // Not at ADX 35; not at exactly 1.5 ATR (101.5).
    assert_eq!(reason(&pos, &s(35.0, falling3), 101.6, &c), None);
    assert_eq!(reason(&pos, &s(40.0, falling3), 101.5, &c), None);
}

#[test]
fn rsi_overextension_limits_switch_at_one_and_a_half_atr() {
    let c = cfg();
    let long = long_pos(100.0, 1.0);
    let rsi = |r: f64| snap(move |s| s.rsi = r);
    // Under 1.5 ATR of profit the long limit is 80; from 1.5 ATR (101.5) it is 70.
    assert_eq!(reason(&long, &rsi(79.0), 100.2, &c), None);
    assert_eq!(reason(&long, &rsi(81.0), 100.2, &c), Some(ReasonCode::RsiOverextension));
    assert_eq!(reason(&long, &rsi(71.0), 101.5, &c), Some(ReasonCode::RsiOverextension));
    assert_eq!(reason(&long, &rsi(69.0), 101.5, &c), None);
    // Short: 20 under 1.5 ATR, 30 from it.
    let short = short_pos(100.0, 1.0);
    let bear = |r: f64| snap(move |s| (s.ema_fast, s.ema_slow, s.rsi) = (97.0, 99.0, r));
    assert_eq!(reason(&short, &bear(21.0), 99.8, &c), None);
    assert_eq!(reason(&short, &bear(19.0), 99.8, &c), Some(ReasonCode::RsiOverextension));
    assert_eq!(reason(&short, &bear(29.0), 98.5, &c), Some(ReasonCode::RsiOverextension));
    assert_eq!(reason(&short, &bear(31.0), 98.5, &c), None);
    // Switched off: no RSI exit.
    let mut off = cfg();
    off.trade.enable_rsi_overextension_exit = false;
    assert_eq!(reason(&long, &rsi(81.0), 100.2, &off), None);
    // Low confidence limits when set (75 under 1.5 ATR).
    let mut lc = cfg();
    lc.trade.rsi_exit_ub_lo_profit_low_conf = 75.0;
    assert_eq!(
        reason(&low_conf(long_pos(100.0, 1.0)), &rsi(76.0), 100.2, &lc),
        Some(ReasonCode::RsiOverextension)
    );
    assert_eq!(reason(&long, &rsi(76.0), 100.2, &lc), None);
}

#[test]
fn smart_exit_thresholds_are_strict() {
    // Each comparison at its exact threshold: not an exit (long 100, ATR 1, price 100.2).
    let c = cfg();
    let long = long_pos(100.0, 1.0);
    let short = short_pos(100.0, 1.0);
    // Equal EMAs are not a cross, even at ADX 20 (where a weak cross does not excuse one).
    let flat = snap(|s| (s.ema_fast, s.ema_slow, s.adx) = (97.0, 97.0, 20.0));
    assert_eq!(reason(&long, &flat, 100.2, &c), None);
    let mut flat_bear = flat;
    flat_bear.rsi = 40.0;
    assert_eq!(reason(&short, &flat_bear, 99.8, &c), None);
    // A gap of exactly 0.1% of the slow EMA (999 vs 1000: 1 / 1000) is not weak: breakdown.
    let gap = snap(|s| (s.ema_fast, s.ema_slow) = (999.0, 1000.0));
    assert_eq!(reason(&long, &gap, 100.2, &c), Some(ReasonCode::TrendBreakdown));
    // Close on the macro EMA is not a macro breakdown, for either side.
    let mut macro_cfg = cfg();
    macro_cfg.filters.require_macro_alignment = true;
    assert_eq!(reason(&long, &snap(|s| s.ema_macro = 100.0), 100.2, &macro_cfg), None);
    assert_eq!(reason(&short, &bear_at_macro(), 99.8, &macro_cfg), None);
    // Low ATR at exactly break-even is not stagnation (the loss must be real).
    assert_eq!(reason(&long, &snap(|s| s.atr = 0.6), 100.0, &c), None);
    // A flat ADX (slope 0) is not the falling ADX that TSME requires.
    let mut tsme = snap(|s| (s.adx, s.adx_slope) = (51.0, 0.0));
    hist(&mut tsme, [0.1, 0.2, 0.3, 0.3]);
    assert_eq!(reason(&long, &tsme, 101.0, &c), None);
    // RSI exactly at the 80 limit is not overextended, nor a short at exactly 20.
    assert_eq!(reason(&long, &snap(|s| s.rsi = 80.0), 100.2, &c), None);
    let mut at_20 = bear();
    at_20.rsi = 20.0;
    assert_eq!(reason(&short, &at_20, 99.8, &c), None);
}

/// bear() with the close (100) on the macro EMA.
fn bear_at_macro() -> IndicatorSnapshot {
    let mut s = bear();
    s.ema_macro = 100.0;
    s
}
