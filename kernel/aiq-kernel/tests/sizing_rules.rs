//! Entry and pyramid sizing through the kernel (docs/strategy/mei_alpha_v1.md, section 2): the
//! margin formula, the headroom cap, the minimum notional and its bump, and the gates that block
//! an entry or an add. Every expected value is worked out in the comments. Written from the
//! cargo-mutants run (docs/mutation.md).

mod common;

use aiq_config::{Confidence, StrategyConfig};
use aiq_indicators::IndicatorSnapshot;
use aiq_kernel::sizing::{entry_margin, pesc_cooldown_minutes, tier_leverage};
use aiq_kernel::{CloseInfo, Fill, IntentKind, Kernel, ReasonCode, Side, StepOutput};
use common::{bull, kernel_with};

const NOW: i64 = 7_200_000;

fn assert_close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "{what}: got {got}, want {want}");
}

/// Entries allowed from medium confidence (bull() is a medium-confidence buy at 100).
fn medium() -> StrategyConfig {
    let mut c = StrategyConfig::default();
    c.trade.entry_min_confidence = Confidence::Medium;
    c
}

fn long_fill(symbol: &str, quantity: f64, price: f64, leverage: f64) -> Fill {
    Fill {
        intent_id: 0,
        symbol: symbol.into(),
        kind: IntentKind::Open,
        side: Side::Long,
        quantity,
        price,
        notional_usd: quantity * price,
        fee_usd: 0.0,
        pnl_usd: 0.0,
        reason_code: ReasonCode::EntrySignal,
        timestamp_ms: 0,
        confidence: Confidence::Medium,
        leverage,
    }
}

fn blocked(out: &StepOutput) -> Vec<ReasonCode> {
    out.blocked.iter().map(|b| b.reason_code).collect()
}

// ---- entry_margin, the pure formula ----

#[test]
fn entry_margin_scales_with_confidence_adx_and_volatility() {
    let mut c = StrategyConfig::default();
    let s = bull(); // close 100, ATR 1 (1%), ADX 30
                    // 10,000 * 3% = 300 before the scalars. ADX 30/40 = 0.75; vol 1% baseline / 1% = 1.
    assert_close(entry_margin(&c, &s, Confidence::High, 10_000.0), 300.0 * 1.0 * 0.75, "high");
    assert_close(entry_margin(&c, &s, Confidence::Medium, 10_000.0), 300.0 * 0.7 * 0.75, "medium");
    assert_close(entry_margin(&c, &s, Confidence::Low, 10_000.0), 300.0 * 0.5 * 0.75, "low");

    let mut weak = s;
    weak.adx = 10.0; // 10/40 = 0.25, floored at adx_sizing_min_mult 0.6
    assert_close(entry_margin(&c, &weak, Confidence::High, 10_000.0), 300.0 * 0.6, "adx floor");
    let mut strong = s;
    strong.adx = 60.0; // 1.5, capped at 1
    assert_close(entry_margin(&c, &strong, Confidence::High, 10_000.0), 300.0, "adx cap");

    let mut wild = strong;
    wild.atr = 2.0; // 2%: 1% / 2% = 0.5
    assert_close(entry_margin(&c, &wild, Confidence::High, 10_000.0), 150.0, "vol 2%");
    wild.atr = 4.0; // 4%: 0.25, floored at vol_scalar_min 0.5
    assert_close(entry_margin(&c, &wild, Confidence::High, 10_000.0), 150.0, "vol floor");
    wild.atr = 0.5; // 0.5%: 2, capped at vol_scalar_max 1
    assert_close(entry_margin(&c, &wild, Confidence::High, 10_000.0), 300.0, "vol cap");

    // The ATR used is at least min_atr_pct of the price: 2% of 100 = 2 > ATR 1, so vol 0.5.
    c.trade.min_atr_pct = 0.02;
    assert_close(entry_margin(&c, &strong, Confidence::High, 10_000.0), 150.0, "min_atr_pct");
    // No volatility at all (ATR 0, no floor): the largest vol scalar.
    c.trade.min_atr_pct = 0.0;
    c.trade.vol_scalar_max = 0.8;
    let mut flat = strong;
    flat.atr = 0.0;
    assert_close(entry_margin(&c, &flat, Confidence::High, 10_000.0), 240.0, "zero atr");

    // Static sizing: equity * allocation * size multiplier, whatever the bar.
    let mut st = StrategyConfig::default();
    st.trade.enable_dynamic_sizing = false;
    st.trade.size_multiplier = 2.0;
    assert_close(entry_margin(&st, &weak, Confidence::Low, 10_000.0), 600.0, "static");
    // Never negative, even on negative equity.
    assert_eq!(entry_margin(&st, &weak, Confidence::Low, -10_000.0), 0.0);
}

#[test]
fn leverage_by_tier_and_the_pesc_window() {
    let t = StrategyConfig::default().trade;
    assert_eq!(
        [Confidence::Low, Confidence::Medium, Confidence::High].map(|c| tier_leverage(&t, c)),
        [1.0, 3.0, 5.0]
    );
    // 180 min at ADX <= 25, 45 at >= 40, linear between: ADX 28 is 1/5 of the way, 180 - 27 = 153.
    assert_close(pesc_cooldown_minutes(28.0, 45.0, 180.0), 153.0, "adx 28");
    assert_close(pesc_cooldown_minutes(37.0, 45.0, 180.0), 72.0, "adx 37"); // 4/5: 180 - 108
    assert_eq!(pesc_cooldown_minutes(25.0, 45.0, 180.0), 180.0);
    assert_eq!(pesc_cooldown_minutes(40.0, 45.0, 180.0), 45.0);
}

// ---- try_open through evaluate ----

/// The ETH entry intent of an evaluation, if any.
fn eth_open(out: &StepOutput) -> Option<&aiq_kernel::OrderIntent> {
    out.intents.iter().find(|i| i.symbol == "ETH" && i.kind == IntentKind::Open)
}

#[test]
fn the_entry_margin_is_capped_by_the_headroom_left_by_open_positions() {
    // 10,000 equity; bull() at medium confidence asks 157.5 margin (see accounting.rs).
    // Cap 2%: 200, less the 100 a 1x SOL position of 1 @ 100 holds = 100 of headroom.
    let mut c = medium();
    c.trade.max_total_margin_pct = 0.02;
    let mut k = kernel_with(&[("ETH", bull())], c.clone());
    k.apply_fill(long_fill("SOL", 1.0, 100.0, 1.0));
    let out = k.evaluate(NOW, None);
    let i = eth_open(&out).expect("opens with the capped margin");
    assert_close(i.notional_usd, 100.0 * 3.0, "capped notional");
    assert_close(i.quantity, 3.0, "capped quantity");

    // Cap 1%: 100 - 100 = 0 headroom: blocked for margin, not for size.
    c.trade.max_total_margin_pct = 0.01;
    let mut k = kernel_with(&[("ETH", bull())], c);
    k.apply_fill(long_fill("SOL", 1.0, 100.0, 1.0));
    let out = k.evaluate(NOW, None);
    assert!(eth_open(&out).is_none());
    assert_eq!(blocked(&out), [ReasonCode::MarginCap]);
}

#[test]
fn the_minimum_notional_blocks_a_small_entry_or_bumps_it_when_allowed() {
    // Sized on the live equity 100 (not the 10,000 cash): 100 * 3% * 0.525 = 1.575 margin,
    // 4.725 notional < 10.
    let out = kernel_with(&[("ETH", bull())], medium()).evaluate(NOW, Some(100.0));
    assert_eq!(blocked(&out), [ReasonCode::MinNotional]);

    // Bump: 10 / 3x = 3.33 margin fits in the 60 of headroom (60% of 100): notional 10.
    let mut c = medium();
    c.trade.bump_to_min_notional = true;
    let out = kernel_with(&[("ETH", bull())], c.clone()).evaluate(NOW, Some(100.0));
    assert_close(eth_open(&out).expect("bumped").notional_usd, 10.0, "bumped notional");

    // Bump, but only 3 of headroom (3% of 100) for the 3.33 needed: blocked.
    c.trade.max_total_margin_pct = 0.03;
    let out = kernel_with(&[("ETH", bull())], c).evaluate(NOW, Some(100.0));
    assert_eq!(blocked(&out), [ReasonCode::MinNotional]);
}

#[test]
fn entry_gates_confidence_cooldown_and_open_position_limit() {
    // Default: high confidence required; bull() is medium.
    let out = kernel_with(&[("ETH", bull())], StrategyConfig::default()).evaluate(NOW, None);
    assert_eq!(blocked(&out), [ReasonCode::LowConfidence]);

    // Entry cooldown 20 s since the last entry on the symbol.
    let with_last_entry = |ago: i64| {
        let mut k = kernel_with(&[("ETH", bull())], medium());
        k.state.symbols.get_mut("ETH").unwrap().last_entry_ms = Some(NOW - ago);
        k.evaluate(NOW, None)
    };
    assert_eq!(blocked(&with_last_entry(19_999)), [ReasonCode::EntryCooldown]);
    assert!(eth_open(&with_last_entry(20_000)).is_some());

    // One open position allowed, one held (on SOL): blocked; two allowed: opens.
    let mut c = medium();
    c.trade.max_open_positions = 1;
    let mut k = kernel_with(&[("ETH", bull())], c.clone());
    k.apply_fill(long_fill("SOL", 1.0, 100.0, 1.0));
    assert_eq!(blocked(&k.evaluate(NOW, None)), [ReasonCode::MaxPositions]);
    c.trade.max_open_positions = 2;
    let mut k = kernel_with(&[("ETH", bull())], c);
    k.apply_fill(long_fill("SOL", 1.0, 100.0, 1.0));
    assert!(eth_open(&k.evaluate(NOW, None)).is_some());
}

#[test]
fn pesc_blocks_a_same_side_reentry_for_the_adx_scaled_window_only() {
    // ADX 30: 180 + (30 - 25) / 15 * (45 - 180) = 135 minutes.
    let after_close = |mins_ago: i64, side: Side, reason_code: ReasonCode| {
        let mut k = kernel_with(&[("ETH", bull())], medium());
        let timestamp_ms = NOW - mins_ago * 60_000;
        k.state.symbols.get_mut("ETH").unwrap().last_close =
            Some(CloseInfo { timestamp_ms, side, reason_code });
        k.evaluate(NOW, None)
    };
    assert_eq!(blocked(&after_close(134, Side::Long, ReasonCode::StopLoss)), [ReasonCode::Pesc]);
    assert!(eth_open(&after_close(136, Side::Long, ReasonCode::StopLoss)).is_some());
    // A flip is not a loss to cool down from, and a short's close does not hold back a long.
    assert!(eth_open(&after_close(1, Side::Long, ReasonCode::SignalFlip)).is_some());
    assert!(eth_open(&after_close(1, Side::Short, ReasonCode::StopLoss)).is_some());

    // At ADX 40 the window is exactly 45 minutes, and it ends at 45:00.
    let at_adx_40 = |ms_ago: i64| {
        let mut s = bull();
        s.adx = 40.0;
        let mut k = kernel_with(&[("ETH", s)], medium());
        let close =
            CloseInfo { timestamp_ms: NOW - ms_ago, side: Side::Long, reason_code: ReasonCode::StopLoss };
        k.state.symbols.get_mut("ETH").unwrap().last_close = Some(close);
        k.evaluate(NOW, None)
    };
    assert_eq!(blocked(&at_adx_40(2_699_999)), [ReasonCode::Pesc]);
    assert!(eth_open(&at_adx_40(2_700_000)).is_some());
}

#[test]
fn an_entry_of_exactly_the_minimum_notional_goes_through_unbumped() {
    // Static sizing, 50% allocation at 4x on an equity of 5: margin 2.5, notional exactly 10.
    let mut c = medium();
    c.trade.enable_dynamic_sizing = false;
    c.trade.allocation_pct = 0.5;
    c.trade.leverage_medium = 4.0;
    let out = kernel_with(&[("ETH", bull())], c).evaluate(NOW, Some(5.0));
    let i = eth_open(&out).expect("10 USD is enough");
    assert_eq!((i.notional_usd, i.leverage), (10.0, 4.0));
}

#[test]
fn reef_uses_the_extreme_rsi_limit_from_adx_45() {
    // Long blocked above RSI 70 below ADX 45, above 75 from ADX 45.
    let at = |adx: f64, rsi: f64| {
        let mut s = bull();
        s.adx = adx;
        s.rsi = rsi;
        kernel_with(&[("ETH", s)], medium()).evaluate(NOW, None)
    };
    assert_eq!(blocked(&at(44.0, 72.0)), [ReasonCode::Reef]);
    let out = at(45.0, 72.0);
    assert!(eth_open(&out).is_some(), "{:?}", out.blocked);
    assert_eq!(blocked(&at(45.0, 76.0)), [ReasonCode::Reef]);
    // The limit itself is allowed: RSI 70 at ADX 30.
    assert!(eth_open(&at(30.0, 70.0)).is_some());
}

/// bull() mirrored for a medium-confidence sell at 100: fast EMA 101 under slow 103, RSI 40,
/// MACD histogram -0.2 falling from -0.1.
fn bear() -> IndicatorSnapshot {
    let mut s = bull();
    (s.open, s.high, s.low, s.prev_close) = (100.5, 101.0, 99.5, 100.5);
    (s.ema_fast, s.ema_slow, s.ema_macro, s.prev_ema_fast, s.prev_ema_slow) =
        (101.0, 103.0, 110.0, 101.1, 103.1);
    (s.adx_pos, s.adx_neg, s.rsi) = (10.0, 30.0, 40.0);
    (s.macd, s.macd_signal, s.macd_hist, s.prev_macd_hist) = (-0.5, -0.3, -0.2, -0.1);
    s.ema_slow_slope_pct = -0.001;
    s
}

fn eth_short(s: IndicatorSnapshot) -> StepOutput {
    kernel_with(&[("ETH", s)], medium()).evaluate(NOW, None)
}

#[test]
fn reef_and_ssf_for_shorts_mirror_the_long_limits() {
    let out = eth_short(bear());
    assert_eq!(eth_open(&out).map(|i| i.side), Some(Side::Short), "{:?}", out.blocked);
    // REEF: a short is blocked under RSI 30 below ADX 45 (the limit itself is allowed) ...
    let at = |adx: f64, rsi: f64| {
        let mut s = bear();
        (s.adx, s.rsi) = (adx, rsi);
        eth_short(s)
    };
    assert_eq!(blocked(&at(30.0, 29.0)), [ReasonCode::Reef]);
    assert!(eth_open(&at(30.0, 30.0)).is_some());
    // ... and under 25 from ADX 45.
    assert!(eth_open(&at(45.0, 29.0)).is_some());
    assert_eq!(blocked(&at(45.0, 24.0)), [ReasonCode::Reef]);

    // SSF: a short needs a histogram at or below zero, a long one at or above zero.
    let mut s = bear();
    (s.macd_hist, s.prev_macd_hist) = (0.05, 0.1); // still falling, but above zero
    assert_eq!(blocked(&eth_short(s)), [ReasonCode::Ssf]);
    (s.macd_hist, s.prev_macd_hist) = (0.0, 0.1);
    assert!(eth_open(&eth_short(s)).is_some());
    let mut s = bull();
    (s.macd_hist, s.prev_macd_hist) = (0.0, -0.1);
    assert!(eth_open(&kernel_with(&[("ETH", s)], medium()).evaluate(NOW, None)).is_some());
}

// ---- try_pyramid through evaluate ----

/// ETH long of 1 @ `entry` at 3x, opened at t=0 on a bull() bar (entry ATR 1), then a
/// medium-confidence buy at 100 at NOW. Sized on an equity override of 10,000 unless given.
fn pyramid(entry: f64, cfg: StrategyConfig, snap: IndicatorSnapshot, equity: f64) -> (Kernel, StepOutput) {
    let mut k = kernel_with(&[("ETH", snap)], cfg);
    k.apply_fill(long_fill("ETH", 1.0, entry, 3.0));
    let out = k.evaluate(NOW, Some(equity));
    (k, out)
}

fn add(out: &StepOutput) -> Option<&aiq_kernel::OrderIntent> {
    out.intents.iter().find(|i| i.kind == IntentKind::Add)
}

#[test]
fn a_pyramid_add_is_half_the_base_allocation_and_updates_the_position() {
    // Entry 99, price 100: 1 ATR in profit (>= 0.5). Margin 10,000 * 3% * 0.5 = 150, 3x: 450.
    let (k, out) = pyramid(99.0, medium(), bull(), 10_000.0);
    let i = add(&out).expect("adds");
    assert_eq!(
        (i.side, i.reason_code, i.leverage, i.reduce_only),
        (Side::Long, ReasonCode::PyramidAdd, 3.0, false)
    );
    assert_close(i.notional_usd, 450.0, "add notional");
    assert_close(i.quantity, 4.5, "add quantity");
    // Filled at 100.1: average (99 * 1 + 100.1 * 4.5) / 5.5 = 549.45 / 5.5 = 99.9.
    let p = &k.state.positions["ETH"];
    assert_close(p.quantity, 5.5, "quantity");
    assert_close(p.avg_entry_price, 99.9, "average entry");
    assert_eq!((p.adds_count, p.last_add_ms, p.opened_at_ms), (1, NOW, 0));
}

#[test]
fn pyramid_gates_profit_count_cooldown_confidence_and_switch() {
    // 0.3 ATR in profit: enough only while the halving applies (ADX slope > 0.75, ATR slope
    // <= 0, RSI not extreme): bull() has slope 1, ATR slope 0, RSI 60: 0.5 * 0.5 = 0.25.
    assert!(add(&pyramid(99.7, medium(), bull(), 10_000.0).1).is_some());
    for (what, tweak) in [
        ("RSI above 65", (|s: &mut IndicatorSnapshot| s.rsi = 66.0) as fn(&mut IndicatorSnapshot)),
        ("ATR rising", |s| s.atr_slope = 0.1),
        ("ADX slope at 0.75", |s| s.adx_slope = 0.75),
    ] {
        let mut s = bull();
        tweak(&mut s);
        assert!(add(&pyramid(99.7, medium(), s, 10_000.0).1).is_none(), "{what}: full 0.5 ATR needed");
    }
    // Below even the halved 0.25 ATR.
    assert!(add(&pyramid(99.8, medium(), bull(), 10_000.0).1).is_none());

    // At most 2 adds; 60 minutes since the last add; medium confidence at least; switchable.
    let with = |f: &dyn Fn(&mut Kernel)| {
        let mut k = kernel_with(&[("ETH", bull())], medium());
        k.apply_fill(long_fill("ETH", 1.0, 99.0, 3.0));
        f(&mut k);
        k.evaluate(NOW, Some(10_000.0))
    };
    assert!(add(&with(&|k| k.state.positions.get_mut("ETH").unwrap().adds_count = 1)).is_some());
    assert!(add(&with(&|k| k.state.positions.get_mut("ETH").unwrap().adds_count = 2)).is_none());
    assert!(
        add(&with(&|k| k.state.positions.get_mut("ETH").unwrap().last_add_ms = NOW - 3_600_000)).is_some()
    );
    assert!(
        add(&with(&|k| k.state.positions.get_mut("ETH").unwrap().last_add_ms = NOW - 3_599_999)).is_none()
    );
    let mut c = medium();
    c.trade.add_min_confidence = Confidence::High;
    assert!(add(&pyramid(99.0, c, bull(), 10_000.0).1).is_none());
    let mut c = medium();
    c.trade.enable_pyramiding = false;
    assert!(add(&pyramid(99.0, c, bull(), 10_000.0).1).is_none());
}

#[test]
fn a_pyramid_add_respects_headroom_and_the_minimum_notional() {
    // The position (1 @ 99, 3x) holds 33 of margin.
    // Cap 1.33% of 10,000 = 133: headroom 100 < the 150 asked: notional 300.
    let mut c = medium();
    c.trade.max_total_margin_pct = 0.0133;
    let (_, out) = pyramid(99.0, c, bull(), 10_000.0);
    assert_close(add(&out).expect("capped add").notional_usd, 300.0, "capped add");
    // Cap 0.3% = 30 < 33 already used: no add.
    let mut c = medium();
    c.trade.max_total_margin_pct = 0.003;
    assert!(add(&pyramid(99.0, c, bull(), 10_000.0).1).is_none());

    // Equity 100: 100 * 3% * 0.5 = 1.5 margin, 4.5 notional < 10: no add ...
    assert!(add(&pyramid(99.0, medium(), bull(), 100.0).1).is_none());
    // ... unless bumped to 10 / 3x = 3.33 margin, within 60 - 33 = 27 of headroom ...
    let mut c = medium();
    c.trade.bump_to_min_notional = true;
    let (_, out) = pyramid(99.0, c.clone(), bull(), 100.0);
    assert_close(add(&out).expect("bumped add").notional_usd, 10.0, "bumped add");
    // ... and not when the headroom (35 - 33 = 2) is below the 3.33 needed.
    c.trade.max_total_margin_pct = 0.35;
    assert!(add(&pyramid(99.0, c, bull(), 100.0).1).is_none());
}

#[test]
fn pyramid_thresholds_at_their_exact_values() {
    // RSI exactly 65 is not extreme: the halved 0.25 ATR applies to a 0.3 ATR profit.
    let mut s = bull();
    s.rsi = 65.0;
    assert!(add(&pyramid(99.7, medium(), s, 10_000.0).1).is_some());
    // Exactly the full 0.5 ATR (entry 99.5, RSI 66 so no halving) is enough.
    s.rsi = 66.0;
    assert!(add(&pyramid(99.5, medium(), s, 10_000.0).1).is_some());
    // The size multiplier scales adds too: 10,000 * 3% * 0.5 * 2 = 300 margin, 900 at 3x.
    let mut c = medium();
    c.trade.size_multiplier = 2.0;
    assert_close(add(&pyramid(99.0, c, bull(), 10_000.0).1).expect("adds").notional_usd, 900.0, "x2");

    // An add of exactly the 10 USD minimum goes through unbumped: a 0.01 @ 99 position at 4x
    // (0.2475 margin), equity 10, allocation 50%: 10 * 0.5 * 0.5 = 2.5 margin, 10 notional.
    let mut c = medium();
    c.trade.allocation_pct = 0.5;
    let mut k = kernel_with(&[("ETH", bull())], c);
    k.apply_fill(long_fill("ETH", 0.01, 99.0, 4.0));
    let out = k.evaluate(NOW, Some(10.0));
    let i = add(&out).expect("10 USD is enough");
    assert_eq!((i.notional_usd, i.leverage), (10.0, 4.0));
}

#[test]
fn a_short_pyramid_treats_rsi_under_35_as_extreme() {
    // Short 1 @ 100.3, bear() sells at 100: 0.3 ATR of profit, enough only at the halved 0.25.
    let short_add = |rsi: f64| {
        let mut s = bear();
        s.rsi = rsi;
        let mut k = kernel_with(&[("ETH", s)], medium());
        k.apply_fill(Fill { side: Side::Short, ..long_fill("ETH", 1.0, 100.3, 3.0) });
        k.evaluate(NOW, Some(10_000.0))
    };
    let out = short_add(40.0);
    assert_eq!(add(&out).map(|i| i.side), Some(Side::Short), "{out:?}");
    assert!(add(&short_add(35.0)).is_some(), "35 is not extreme");
    assert!(add(&short_add(34.0)).is_none(), "34 is: the full 0.5 ATR is needed");
}
