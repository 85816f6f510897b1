//! The kernel's books: fills, funding, equity, margin and liquidation, with every expected value
//! worked out by hand in the comments. Written from the cargo-mutants run over the accounting
//! functions (docs/mutation.md): each test states a rule of the books, not a line of code.
//!
//! Prices and sizes are chosen so that the arithmetic is exact in binary floating point
//! (multiples of powers of two) wherever a test compares with `assert_eq!`.

mod common;

use aiq_config::{Confidence, StrategyConfig};
use aiq_kernel::{Candle, Fill, FillMode, IntentKind, Kernel, KernelError, ReasonCode, Side};
use common::{bull, kernel_with};

/// An execution as a venue would report it (the kernel fills in `pnl_usd`).
fn fill(symbol: &str, side: Side, quantity: f64, price: f64, fee_usd: f64, t: i64) -> Fill {
    Fill {
        intent_id: 0,
        symbol: symbol.into(),
        kind: IntentKind::Open,
        side,
        quantity,
        price,
        notional_usd: quantity * price,
        fee_usd,
        pnl_usd: 0.0,
        reason_code: ReasonCode::StopLoss,
        timestamp_ms: t,
        confidence: Confidence::Medium,
        leverage: 4.0,
    }
}

fn assert_close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "{what}: got {got}, want {want}");
}

#[test]
fn open_add_reduce_and_close_a_long_book_cash_pnl_and_fees() {
    let mut k = kernel_with(&[("ETH", bull())], StrategyConfig::default());

    // Open 2 @ 100, fee 0.5: cash 10,000 - 0.5.
    let f = k.apply_fill(fill("ETH", Side::Long, 2.0, 100.0, 0.5, 1_000));
    assert_eq!(f.pnl_usd, 0.0);
    assert_eq!(k.state.cash_usd, 9_999.5);
    let p = &k.state.positions["ETH"];
    assert_eq!((p.side, p.quantity, p.avg_entry_price, p.fees_paid_usd), (Side::Long, 2.0, 100.0, 0.5));
    assert_eq!((p.opened_at_ms, p.last_add_ms, p.adds_count), (1_000, 1_000, 0));
    // bull(): ATR 1.0 (above the 0.3 floor of 0.3% of 100), ADX 30 is neither strong (> 40)
    // nor weak (< 30), so the take profit is the plain tp_atr_mult 4.
    assert_eq!((p.entry_atr, p.tp_mult, p.entry_adx_threshold), (1.0, 4.0, 22.0));
    assert_eq!(k.state.symbols["ETH"].last_entry_ms, Some(1_000));

    // Add 1 @ 130, fee 0.25: average (2*100 + 1*130)/3 = 110.
    k.apply_fill(fill("ETH", Side::Long, 1.0, 130.0, 0.25, 2_000));
    let p = &k.state.positions["ETH"];
    assert_eq!((p.quantity, p.avg_entry_price, p.adds_count, p.last_add_ms), (3.0, 110.0, 1, 2_000));
    assert_eq!((p.opened_at_ms, p.fees_paid_usd), (1_000, 0.75));
    assert_eq!(k.state.cash_usd, 9_999.25);
    assert_eq!(k.state.symbols["ETH"].last_entry_ms, Some(2_000));

    // Sell 1 @ 120, fee 0.125: realises (120 - 110) * 1 = +10 on the part closed only.
    let f = k.apply_fill(fill("ETH", Side::Short, 1.0, 120.0, 0.125, 3_000));
    assert_eq!(f.pnl_usd, 10.0);
    assert_eq!(k.state.cash_usd, 9_999.25 - 0.125 + 10.0);
    let p = &k.state.positions["ETH"];
    assert_eq!((p.quantity, p.avg_entry_price, p.fees_paid_usd), (2.0, 110.0, 0.875));
    let st = &k.state.symbols["ETH"];
    assert_eq!((st.last_exit_ms, st.last_close.is_none()), (Some(3_000), true), "a reduce is not a close");

    // Sell 5 @ 105 against the 2 left: only 2 close, (105 - 110) * 2 = -10; the position is gone.
    let f = k.apply_fill(fill("ETH", Side::Short, 5.0, 105.0, 0.5, 4_000));
    assert_eq!(f.pnl_usd, -10.0);
    assert!(k.state.positions.is_empty());
    // 10,000 + realised (10 - 10) - fees (0.5 + 0.25 + 0.125 + 0.5 = 1.375).
    assert_eq!((k.state.cash_usd, k.state.realized_pnl_usd, k.state.fees_usd), (9_998.625, 0.0, 1.375));
    let st = &k.state.symbols["ETH"];
    assert_eq!(st.last_exit_ms, Some(4_000));
    let close = st.last_close.as_ref().expect("a full close is recorded for PESC");
    assert_eq!(
        (close.timestamp_ms, close.side, close.reason_code),
        (4_000, Side::Long, ReasonCode::StopLoss)
    );
}

#[test]
fn a_short_gains_when_the_price_falls() {
    let mut k = Kernel::new(StrategyConfig::default(), 1_000.0, FillMode::External);
    k.apply_fill(fill("SOL", Side::Short, 4.0, 50.0, 0.0, 0));
    // Buy back 4 @ 40: -1 * (40 - 50) * 4 = +40.
    let f = k.apply_fill(fill("SOL", Side::Long, 4.0, 40.0, 0.0, 1));
    assert_eq!(f.pnl_usd, 40.0);
    assert_eq!((k.state.cash_usd, k.state.realized_pnl_usd), (1_040.0, 40.0));
    assert!(k.state.positions.is_empty());
}

#[test]
fn a_position_opened_before_any_bar_uses_the_defaults_for_atr_and_take_profit() {
    // No snapshot yet: entry ATR 0 (no ATR exits), tp_mult from ADX 0, i.e. the weak-trend 3.
    let mut k = Kernel::new(StrategyConfig::default(), 1_000.0, FillMode::External);
    k.apply_fill(fill("SOL", Side::Long, 1.0, 50.0, 0.0, 0));
    let p = &k.state.positions["SOL"];
    assert_eq!((p.entry_atr, p.tp_mult, p.entry_adx_threshold), (0.0, 3.0, 22.0));
    assert_eq!(p.profit_atr(60.0), 0.0, "no ATR, no profit in ATR units");
}

#[test]
fn the_entry_atr_is_floored_at_min_atr_pct_of_the_price() {
    let mut quiet = bull();
    quiet.atr = 0.1; // below 0.3% of 100 = 0.3
    let mut k = kernel_with(&[("ETH", quiet)], StrategyConfig::default());
    k.apply_fill(fill("ETH", Side::Long, 1.0, 100.0, 0.0, 0));
    assert_close(k.state.positions["ETH"].entry_atr, 100.0 * 0.003, "entry_atr");
}

#[test]
fn dust_left_by_a_close_is_removed_but_a_small_position_at_a_high_price_is_kept() {
    let mut k = kernel_with(&[("BTC", bull())], StrategyConfig::default());
    // 1e-12 BTC left at 100 is 1e-10 USD (< 1e-9): the position is closed.
    k.apply_fill(fill("BTC", Side::Long, 1.0 + 1e-12, 100.0, 0.0, 0));
    k.apply_fill(fill("BTC", Side::Short, 1.0, 100.0, 0.0, 1));
    assert!(k.state.positions.is_empty(), "{:?}", k.state.positions);
    assert!(k.state.symbols["BTC"].last_close.is_some());

    // 0.00001 BTC left at 100,000 is 1 USD: a real position.
    k.apply_fill(fill("BTC", Side::Long, 0.00003, 100_000.0, 0.0, 2));
    k.apply_fill(fill("BTC", Side::Short, 0.00002, 100_000.0, 0.0, 3));
    assert_close(k.state.positions["BTC"].quantity, 0.00001, "quantity left");
}

#[test]
fn funding_is_paid_by_longs_and_received_by_shorts_when_the_rate_is_positive() {
    // 2^-10 per period on 2 units at 128: 256 USD notional * 2^-10 = 0.25 USD.
    let rate = 1.0 / 1024.0;
    let mut k = Kernel::new(StrategyConfig::default(), 1_000.0, FillMode::External);
    k.apply_fill(fill("ETH", Side::Long, 2.0, 100.0, 0.0, 0));
    k.apply_fill(fill("SOL", Side::Short, 2.0, 100.0, 0.0, 0));

    assert_eq!(k.on_funding("ETH", rate, 128.0, 5_000), Ok(-0.25));
    assert_eq!((k.state.cash_usd, k.state.funding_usd), (999.75, -0.25));
    assert_eq!(k.state.positions["ETH"].funding_paid_usd, 0.25);
    assert_eq!(k.state.timestamp_ms, 5_000);

    assert_eq!(k.on_funding("SOL", rate, 128.0, 4_000), Ok(0.25));
    assert_eq!((k.state.cash_usd, k.state.funding_usd), (1_000.0, 0.0));
    assert_eq!(k.state.positions["SOL"].funding_paid_usd, -0.25);
    assert_eq!(k.state.timestamp_ms, 5_000, "an older funding time does not move the clock back");

    // A negative rate reverses both: the long receives.
    assert_eq!(k.on_funding("ETH", -rate, 128.0, 6_000), Ok(0.25));
    assert_eq!(k.state.positions["ETH"].funding_paid_usd, 0.0);

    // No position: nothing is paid and nothing moves.
    assert_eq!(k.on_funding("BTC", rate, 128.0, 7_000), Ok(0.0));
    assert_eq!(k.state.cash_usd, 1_000.25);
}

#[test]
fn funding_can_be_switched_off() {
    let mut c = StrategyConfig::default();
    c.trade.enable_funding = false;
    let mut k = Kernel::new(c, 1_000.0, FillMode::External);
    k.apply_fill(fill("ETH", Side::Long, 2.0, 100.0, 0.0, 0));
    assert_eq!(k.on_funding("ETH", 0.01, 100.0, 1), Ok(0.0));
    assert_eq!((k.state.cash_usd, k.state.funding_usd), (1_000.0, 0.0));
    assert_eq!(k.state.positions["ETH"].funding_paid_usd, 0.0);
}

#[test]
fn funding_with_a_bad_rate_or_price_is_refused_and_books_nothing() {
    let mut k = Kernel::new(StrategyConfig::default(), 1_000.0, FillMode::External);
    k.apply_fill(fill("ETH", Side::Long, 2.0, 100.0, 0.0, 0));
    for (rate, px) in [
        (f64::NAN, 100.0),
        (f64::INFINITY, 100.0),
        (0.001, f64::NAN),
        (0.001, f64::INFINITY),
        (0.001, 0.0),
        (0.001, -100.0),
    ] {
        let r = k.on_funding("ETH", rate, px, 1);
        assert!(matches!(r, Err(KernelError::Invalid(_))), "rate {rate} px {px}: {r:?}");
    }
    assert_eq!((k.state.cash_usd, k.state.funding_usd, k.state.timestamp_ms), (1_000.0, 0.0, 0));
}

#[test]
fn equity_is_cash_plus_unrealised_pnl_at_the_last_price() {
    let mut k = Kernel::new(StrategyConfig::default(), 1_000.0, FillMode::External);
    k.apply_fill(fill("ETH", Side::Long, 2.0, 100.0, 0.0, 0));
    k.apply_fill(fill("SOL", Side::Short, 1.0, 100.0, 0.0, 0));
    // No price seen for either symbol yet: both are valued at entry.
    assert_eq!(k.equity(), 1_000.0);
    k.on_mid("ETH", 110.0, 1).unwrap(); // long 2: +20
    k.on_mid("SOL", 90.0, 1).unwrap(); // short 1: +10
    assert_eq!(k.equity(), 1_030.0);
    k.on_mid("SOL", 104.0, 2).unwrap(); // short 1: -4
    assert_eq!(k.equity(), 1_016.0);
}

#[test]
fn used_margin_is_entry_notional_over_leverage_summed() {
    let mut k = Kernel::new(StrategyConfig::default(), 1_000.0, FillMode::External);
    assert_eq!(k.used_margin(), 0.0);
    k.apply_fill(fill("ETH", Side::Long, 2.0, 100.0, 0.0, 0)); // 200 / 4 = 50
    let mut f = fill("SOL", Side::Short, 3.0, 40.0, 0.0, 0);
    f.leverage = 2.0; // 120 / 2 = 60
    k.apply_fill(f);
    assert_eq!(k.used_margin(), 110.0);
}

/// Kernel with cash `cash` and a 1-unit long at 100 on ETH; maintenance margin 25% (exact).
fn liquidation_kernel(cash: f64, mode: FillMode) -> Kernel {
    let mut c = StrategyConfig::default();
    c.trade.maintenance_margin_pct = 0.25;
    let mut k = Kernel::new(c, cash, mode);
    k.apply_fill(fill("ETH", Side::Long, 1.0, 100.0, 0.0, 0));
    k
}

#[test]
fn liquidation_fires_below_maintenance_and_not_at_it() {
    // Cash 40, long 1 @ 100 marked at 80: equity 40 - 20 = 20 = maintenance 80 * 25%: kept.
    let mut k = liquidation_kernel(40.0, FillMode::Simulate);
    let out = k.on_mid("ETH", 80.0, 1_000).unwrap();
    assert!(out.intents.is_empty() && k.state.positions.contains_key("ETH"), "{out:?}");

    // At 79.5: equity 19.5 < maintenance 19.875: closed in full at the mid, as a taker.
    let out = k.on_mid("ETH", 79.5, 2_000).unwrap();
    assert_eq!(out.intents.len(), 1);
    let (i, f) = (&out.intents[0], &out.fills[0]);
    assert_eq!((i.side, i.quantity, i.price, i.reduce_only), (Side::Short, 1.0, 79.5, true));
    assert_eq!((i.kind, i.reason_code), (IntentKind::Close, ReasonCode::Liquidation));
    // Sell at 79.5 less 10 bps slippage = 79.4205; fee 4.5 bps of that.
    assert_close(f.price, 79.4205, "fill price");
    assert_close(f.fee_usd, 79.4205 * 4.5e-4, "fee");
    assert_close(f.pnl_usd, 79.4205 - 100.0, "pnl");
    assert!(k.state.positions.is_empty());
    assert_close(k.state.cash_usd, 40.0 + (79.4205 - 100.0) - 79.4205 * 4.5e-4, "cash");
}

#[test]
fn a_liquidation_counts_and_closes_every_position_at_its_own_last_price() {
    // BTC long 1 @ 100, last seen at 90 (-10); ETH long 1 @ 100. Cash 65.
    let mut k = liquidation_kernel(65.0, FillMode::External);
    k.apply_fill(fill("BTC", Side::Long, 1.0, 100.0, 0.0, 0));
    // BTC at 90 while ETH has no price (valued at entry 100): equity 65 - 10 = 55,
    // maintenance (90 + 100) * 25% = 47.5: kept.
    assert!(k.on_mid("BTC", 90.0, 1).unwrap().intents.is_empty());
    // ETH at 90: equity 65 - 10 - 10 = 45 = maintenance (90 + 90) * 25%: kept.
    assert!(k.on_mid("ETH", 90.0, 2).unwrap().intents.is_empty());
    // ETH at 89.5: equity 44.5 < maintenance 44.875: both positions are closed, BTC at its 90.
    let out = k.on_mid("ETH", 89.5, 3).unwrap();
    let closes: Vec<_> = out.intents.iter().map(|i| (i.symbol.as_str(), i.price, i.reason_code)).collect();
    assert_eq!(closes, [("BTC", 90.0, ReasonCode::Liquidation), ("ETH", 89.5, ReasonCode::Liquidation)]);
}

#[test]
fn a_bar_low_below_maintenance_liquidates_a_long_but_a_high_does_not() {
    // Cash 40, long 1 @ 100: liquidated below 80 (see above). The bar's low is the long's worst.
    let mut k = liquidation_kernel(40.0, FillMode::Simulate);
    let bar = |t, l, h| Candle { t, o: 90.0, h, l, c: 90.0, v: 1.0 };
    assert!(k.step_candle("ETH", bar(0, 85.0, 120.0)).unwrap().fills.is_empty());
    let p = &k.state.positions["ETH"];
    assert_eq!((p.mae_usd, p.mfe_usd), (-15.0, 20.0), "worst and best of the bar");
    let out = k.step_candle("ETH", bar(3_600_000, 79.0, 95.0)).unwrap();
    assert_eq!(out.fills.len(), 1);
    assert_eq!(out.intents[0].price, 79.0, "closed at the adverse extreme");
}

#[test]
fn simulated_entries_and_exits_pay_slippage_and_the_taker_fee() {
    let mut c = StrategyConfig::default();
    c.trade.entry_min_confidence = Confidence::Medium;
    let mut k = kernel_with(&[("ETH", bull())], c);
    let out = k.evaluate(7_200_000, None);
    // Sizing (bull(): ADX 30, ATR 1 = 1% of 100, medium confidence, 3x):
    // k = 0.7 (medium) * 0.75 (ADX 30/40) * 1.0 (1% baseline / 1% ATR) = 0.525;
    // margin = 10,000 * 3% * 0.525 = 157.5; notional 472.5; quantity 4.725 at 100.
    let (i, f) = (&out.intents[0], &out.fills[0]);
    assert_eq!(
        (i.kind, i.side, i.reason_code, i.leverage),
        (IntentKind::Open, Side::Long, ReasonCode::EntrySignal, 3.0)
    );
    assert_close(i.notional_usd, 472.5, "notional");
    assert_close(i.quantity, 4.725, "quantity");
    // Buy at 100 + 10 bps = 100.1; fee 4.725 * 100.1 * 4.5 bps = 0.212837625.
    assert_close(f.price, 100.1, "entry fill price");
    assert_close(f.notional_usd, 4.725 * 100.1, "entry fill notional");
    assert_close(f.fee_usd, 0.212837625, "entry fee");
    assert_close(k.state.cash_usd, 10_000.0 - 0.212837625, "cash after entry");

    // Stop: entry 100.1 - 2 ATR = 98.1. A mid at 98 sells at 98 - 10 bps = 97.902.
    let out = k.on_mid("ETH", 98.0, 7_200_000 + 15_000).unwrap();
    let (i, f) = (&out.intents[0], &out.fills[0]);
    assert_eq!((i.kind, i.side, i.reason_code), (IntentKind::Close, Side::Short, ReasonCode::StopLoss));
    assert_close(f.price, 97.902, "exit fill price");
    // Fee 4.725 * 97.902 * 4.5 bps = 0.2081641275; PnL (97.902 - 100.1) * 4.725 = -10.38555.
    assert_close(f.fee_usd, 0.2081641275, "exit fee");
    assert_close(f.pnl_usd, -10.38555, "exit pnl");
    assert_close(k.state.cash_usd, 10_000.0 - 0.212837625 - 0.2081641275 - 10.38555, "cash after exit");
    assert_close(k.state.fees_usd, 0.212837625 + 0.2081641275, "fees");
}

#[test]
fn a_short_entry_fills_below_the_reference_price() {
    let mut c = StrategyConfig::default();
    c.trade.entry_min_confidence = Confidence::Medium;
    c.trade.reverse_entry_signal = true; // the bullish bar now sells
    c.trade.enable_ssf_filter = false;
    let mut k = kernel_with(&[("ETH", bull())], c);
    let out = k.evaluate(7_200_000, None);
    assert_eq!(out.fills[0].side, Side::Short, "{out:?}");
    assert_close(out.fills[0].price, 99.9, "sell at 100 - 10 bps");
}

#[test]
fn a_partial_take_profit_sells_half_and_keeps_the_rest_open() {
    // Long 10 @ 100 on a bull() bar (entry ATR 1, tp_mult 4): the target is 104.
    let mut k = kernel_with(&[("ETH", bull())], StrategyConfig::default());
    let mut f = fill("ETH", Side::Long, 10.0, 100.0, 0.0, 0);
    f.leverage = 3.0;
    k.apply_fill(f);
    let out = k.on_mid("ETH", 104.0, 3_600_000).unwrap();
    let (i, f) = (&out.intents[0], &out.fills[0]);
    // Half of 10 (tp_partial_pct 0.5) at 104: a reduce of 5, 520 USD.
    assert_eq!(
        (i.kind, i.side, i.reason_code),
        (IntentKind::Reduce, Side::Short, ReasonCode::TakeProfitPartial)
    );
    assert_eq!((i.quantity, i.price, i.notional_usd), (5.0, 104.0, 520.0));
    assert_eq!(i.reason, "exit: take_profit_partial");
    // Sold at 104 - 10 bps = 103.896: 519.48 USD, fee 0.233766, PnL 5 * 3.896 = 19.48.
    assert_close(f.price, 103.896, "fill price");
    assert_close(f.notional_usd, 519.48, "fill notional");
    assert_close(f.fee_usd, 0.233766, "fee");
    assert_close(f.pnl_usd, 19.48, "pnl");
    assert_close(k.state.cash_usd, 10_000.0 - 0.233766 + 19.48, "cash");
    // 5 left, marked as past the first target; the trailing stop armed at 4 ATR profit is
    // 104 - 0.7 ATR = 103.3 (above the 100.05 breakeven the partial would set).
    let p = &k.state.positions["ETH"];
    assert_eq!((p.quantity, p.tp1_taken), (5.0, true));
    assert_close(p.trailing_sl.unwrap(), 103.3, "trailing stop");
}
