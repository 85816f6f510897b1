//! Decision logic on hand-built snapshots, each case traceable to docs/strategy/mei_alpha_v1.md.

use aiq_config::{Confidence, StrategyConfig};
use aiq_indicators::IndicatorSnapshot;
use aiq_kernel::exits::{check_exit, stop_loss_level};
use aiq_kernel::signal::analyze;
use aiq_kernel::{Candle, ReasonCode, Side, Signal};

mod common;
use common::{bull, kernel_with, long_pos, prev_of};

type Mutation = Box<dyn Fn(&mut IndicatorSnapshot)>;

fn cfg() -> StrategyConfig {
    StrategyConfig::default()
}

#[test]
fn bullish_bar_buys_with_medium_then_high_confidence() {
    let s = bull();
    let d = analyze(&s, &prev_of(&s), &cfg(), "ETH", None);
    assert_eq!((d.signal, d.confidence), (Signal::Buy, Confidence::Medium));
    let mut loud = bull();
    loud.volume = 8.0 * 2.5 + 0.01; // > vol_sma * high_conf_volume_mult
    let d = analyze(&loud, &prev_of(&loud), &cfg(), "ETH", None);
    assert_eq!((d.signal, d.confidence), (Signal::Buy, Confidence::High));
}

#[test]
fn each_gate_can_block_the_entry() {
    let base = bull();
    let cases: Vec<(&str, Mutation)> = vec![
        ("adx below min", Box::new(|s| s.adx = 20.0)),
        ("extended from ema_fast", Box::new(|s| s.ema_fast = 95.0)),
        ("rsi below dynamic limit", Box::new(|s| s.rsi = 53.0)),
        ("macd not accelerating", Box::new(|s| s.prev_macd_hist = 0.3)),
        ("stoch rsi overbought", Box::new(|s| s.stoch_rsi_k = 0.9)),
        ("close below ema_fast", Box::new(|s| s.close = 98.9)),
        ("no alignment", Box::new(|s| s.ema_slow = 99.5)),
        ("not warmed up", Box::new(|s| s.ready = false)),
    ];
    for (name, mutate) in cases {
        let mut s = base;
        mutate(&mut s);
        let d = analyze(&s, &prev_of(&base), &cfg(), "ETH", None);
        assert_eq!(d.signal, Signal::Neutral, "{name} should block");
    }
}

#[test]
fn ranging_needs_two_of_three_signals() {
    let mut s = bull();
    s.bb_width_ratio = 0.7; // one ranging signal: still trades
    assert_eq!(analyze(&s, &prev_of(&s), &cfg(), "ETH", None).signal, Signal::Buy);
    s.rsi = 50.0; // two signals -> ranging (also below the RSI limit, so check the gate itself)
    let d = analyze(&s, &prev_of(&s), &cfg(), "ETH", None);
    assert!(d.gates.is_ranging);
}

#[test]
fn btc_gate_blocks_against_a_bearish_btc_unless_adx_overrides() {
    let s = bull();
    assert_eq!(analyze(&s, &prev_of(&s), &cfg(), "ETH", Some(false)).signal, Signal::Neutral);
    assert_eq!(analyze(&s, &prev_of(&s), &cfg(), "BTC", Some(false)).signal, Signal::Buy);
    assert_eq!(analyze(&s, &prev_of(&s), &cfg(), "ETH", None).signal, Signal::Buy);
    let mut strong = bull();
    strong.adx = 41.0;
    assert_eq!(analyze(&strong, &prev_of(&strong), &cfg(), "ETH", Some(false)).signal, Signal::Buy);
}

#[test]
fn reverse_entry_signal_flips() {
    let mut c = cfg();
    c.trade.reverse_entry_signal = true;
    let s = bull();
    assert_eq!(analyze(&s, &prev_of(&s), &c, "ETH", None).signal, Signal::Sell);
}

#[test]
fn stop_loss_modifiers_and_breakeven() {
    let c = cfg();
    let pos = long_pos(100.0, 1.0);
    let mut s = bull();
    // Underwater with ADX falling: ASE tightens 2.0 ATR to 1.6 ATR.
    s.adx_slope = -1.0;
    let (sl, be) = stop_loss_level(&pos, &s, 99.0, &c);
    assert!((sl - 98.4).abs() < 1e-12 && !be, "{sl}");
    // Profitable, ADX 46: DASE 1.15 and SLB 1.10 widen; breakeven (profit 0.8 >= 0.7) wins.
    s.adx = 46.0;
    s.adx_slope = 1.0;
    let (sl, be) = stop_loss_level(&pos, &s, 100.8, &c);
    assert!(be && (sl - 100.05).abs() < 1e-12, "{sl}");
    let (d, _) = check_exit(&pos, &s, 100.04, &c);
    assert!(d.is_none(), "profit is below the breakeven trigger at 100.04, so the wide stop applies");
    let (d, _) = check_exit(&pos, &bull(), 97.9, &c);
    assert_eq!(d.map(|d| d.reason_code), Some(ReasonCode::StopLoss));
}

#[test]
fn trailing_stop_ratchets_and_fires() {
    let c = cfg();
    let mut pos = long_pos(100.0, 1.0);
    let s = bull(); // bb_width_ratio 1.2 is not > 1.2, adx 30 >= 25, rsi 60 favourable
    let (d, upd) = check_exit(&pos, &s, 101.5, &c);
    assert!(d.is_none());
    let tsl = upd.trailing_sl.expect("armed at 1.5 ATR profit");
    assert!((tsl - (101.5 - 0.8)).abs() < 1e-12, "{tsl}");
    pos.trailing_sl = Some(tsl);
    // Price falls back: the stop does not loosen, and fires at or below it.
    let (_, upd) = check_exit(&pos, &s, 101.2, &c);
    assert_eq!(upd.trailing_sl, Some(tsl));
    let (d, _) = check_exit(&pos, &s, 100.7, &c);
    assert_eq!(d.map(|d| d.reason_code), Some(ReasonCode::TrailingStop));
}

#[test]
fn partial_take_profit_then_trailing() {
    let c = cfg();
    let mut pos = long_pos(100.0, 1.0);
    pos.trailing_sl = Some(103.9); // keep the trailing check from firing first
    let s = bull();
    let (d, upd) = check_exit(&pos, &s, 104.0, &c);
    let d = d.expect("partial at tp_mult 4 ATR");
    assert_eq!(d.reason_code, ReasonCode::TakeProfitPartial);
    assert!((d.fraction - 0.5).abs() < 1e-12);
    assert!(upd.trailing_sl.unwrap() >= 100.05);
}

#[test]
fn smart_exits_in_priority_order() {
    let c = cfg();
    let pos = long_pos(100.0, 1.0);
    let mut s = bull();
    s.ema_fast = 96.0; // trend breakdown (not a weak cross)
    s.adx = 10.0; // also ADX exhaustion, which comes later
    let (d, _) = check_exit(&pos, &s, 99.5, &c);
    assert_eq!(d.map(|d| d.reason_code), Some(ReasonCode::TrendBreakdown));
    let mut s = bull();
    s.adx = 10.0;
    let (d, _) = check_exit(&pos, &s, 99.5, &c);
    assert_eq!(d.map(|d| d.reason_code), Some(ReasonCode::AdxExhaustion));
    let mut s = bull();
    s.rsi = 81.0;
    let (d, _) = check_exit(&pos, &s, 100.2, &c);
    assert_eq!(d.map(|d| d.reason_code), Some(ReasonCode::RsiOverextension));
}

#[test]
fn entries_are_ranked_by_score_then_symbol() {
    let mut c = cfg();
    c.trade.entry_min_confidence = Confidence::Medium;
    c.trade.max_entry_orders_per_loop = 2;
    let mut strong = bull();
    strong.adx = 35.0;
    let k_syms = [("SOL", bull()), ("ADA", bull()), ("ETH", strong)];
    let mut k = kernel_with(&k_syms, c);
    let out = k.evaluate(7_200_000, None);
    let opened: Vec<&str> = out.intents.iter().map(|i| i.symbol.as_str()).collect();
    // ETH has the highest ADX; ADA and SOL tie and ADA wins alphabetically; the limit is 2.
    assert_eq!(opened, vec!["ETH", "ADA"]);
    assert!(out.blocked.iter().any(|b| b.symbol == "SOL"));
}

#[test]
fn pesc_blocks_same_side_reentry_after_a_stop() {
    let mut c = cfg();
    c.trade.entry_min_confidence = Confidence::Medium;
    let mut k = kernel_with(&[("ETH", bull())], c);
    k.state.symbols.get_mut("ETH").unwrap().last_close = Some(aiq_kernel::CloseInfo {
        timestamp_ms: 7_000_000,
        side: Side::Long,
        reason_code: ReasonCode::StopLoss,
    });
    let out = k.evaluate(7_200_000, None);
    assert!(out.intents.is_empty());
    assert_eq!(out.blocked[0].reason_code, ReasonCode::Pesc);
}

#[test]
fn reef_and_ssf_block_new_entries() {
    let mut c = cfg();
    c.trade.entry_min_confidence = Confidence::Medium;
    let mut hot = bull();
    hot.rsi = 71.0; // REEF: long blocked above 70 while ADX < 45
    let mut k = kernel_with(&[("ETH", hot)], c.clone());
    assert_eq!(k.evaluate(7_200_000, None).blocked[0].reason_code, ReasonCode::Reef);
    let mut neg = bull();
    neg.macd_hist = -0.01;
    neg.prev_macd_hist = -0.02; // still accelerating, but below zero: SSF blocks the long
    let mut k = kernel_with(&[("ETH", neg)], c);
    assert_eq!(k.evaluate(7_200_000, None).blocked[0].reason_code, ReasonCode::Ssf);
}

#[test]
fn liquidation_at_maintenance_margin() {
    let mut c = cfg();
    c.trade.entry_min_confidence = Confidence::Medium;
    c.trade.allocation_pct = 1.0;
    c.trade.max_total_margin_pct = 1.0;
    c.trade.leverage_medium = 20.0;
    c.trade.enable_dynamic_sizing = false;
    let mut k = kernel_with(&[("ETH", bull())], c);
    let out = k.evaluate(7_200_000, None);
    assert_eq!(out.fills.len(), 1);
    // 20x long: a 5% adverse bar wipes the equity below maintenance.
    let out =
        k.step_candle("ETH", Candle { t: 7_200_000, o: 100.0, h: 100.0, l: 94.0, c: 95.0, v: 1.0 }).unwrap();
    assert_eq!(out.fills.len(), 1);
    assert_eq!(out.fills[0].reason_code, ReasonCode::Liquidation);
    assert!(k.state.positions.is_empty());
    assert!(k.state.cash_usd < 10_000.0 * 0.05, "cash {}", k.state.cash_usd);
}

fn regime_cfg() -> StrategyConfig {
    let mut c = cfg();
    c.trade.entry_min_confidence = Confidence::Medium;
    c
}

/// Market-regime rules act inside the kernel, so the replay, the sweep and the daemon agree.
#[test]
fn market_regime_rules_block_or_reverse_entries_from_breadth() {
    let mut bear = bull();
    bear.ema_fast = 96.0; // below ema_slow: counts against breadth, and this bar does not signal
    let syms = [("ADA", bull()), ("SOL", bear), ("XRP", bear), ("DOGE", bear)]; // breadth 25%

    // Off (the default): ADA's long goes through.
    let mut k = kernel_with(&syms, regime_cfg());
    let out = k.evaluate(7_200_000, None);
    assert_eq!(
        out.intents.iter().map(|i| (i.symbol.as_str(), i.side)).collect::<Vec<_>>(),
        [("ADA", Side::Long)]
    );

    // Breadth filter: longs blocked below 30% breadth.
    let mut c = regime_cfg();
    c.market_regime.enable_regime_filter = true;
    c.market_regime.breadth_block_long_below = 30.0;
    let mut k = kernel_with(&syms, c);
    let out = k.evaluate(7_200_000, None);
    assert!(out.intents.is_empty());
    assert!(out.blocked.iter().any(|b| b.symbol == "ADA" && b.reason_code == ReasonCode::BreadthLong));

    // Auto-reverse inside [20, 90]: the long becomes a short.
    let mut c = regime_cfg();
    c.market_regime.enable_auto_reverse = true;
    c.market_regime.auto_reverse_breadth_low = 20.0;
    c.trade.enable_ssf_filter = false; // the reversed short still meets the short-side gates (SSF would block it here)
    let mut k = kernel_with(&syms, c);
    let out = k.evaluate(7_200_000, None);
    assert_eq!(
        out.intents.iter().map(|i| (i.symbol.as_str(), i.side)).collect::<Vec<_>>(),
        [("ADA", Side::Short)],
        "{:?}",
        out.blocked
    );
    assert_eq!(k.state.positions["ADA"].side, Side::Short);

    // Regime gate without BTC in the watchlist: blocked unless fail-open.
    let mut c = regime_cfg();
    c.market_regime.enable_regime_gate = true;
    let mut k = kernel_with(&syms, c.clone());
    let out = k.evaluate(7_200_000, None);
    assert!(out.blocked.iter().any(|b| b.reason_code == ReasonCode::RegimeGateNoData));
    c.market_regime.regime_gate_fail_open = true;
    let mut k = kernel_with(&syms, c);
    assert_eq!(k.evaluate(7_200_000, None).intents.len(), 1);
}
