//! Kernel entry points used by the backtester: `step_snapshot` (shared indicator series) and
//! `evaluate_sub_bar` (sub-bar entries).

use aiq_config::{StrategyConfig, StrategyName};
use aiq_indicators::IndicatorBank;
use aiq_kernel::{Candle, FillMode, Kernel, KernelError, Signal};

const STEP: i64 = 300_000;

/// A deterministic, trending and oscillating price path (enough crossings to trade often).
fn bars(n: usize) -> Vec<Candle> {
    (0..n)
        .map(|i| {
            let x = i as f64;
            let c = 100.0 + 0.01 * x + 3.0 * (x / 17.0).sin() + 1.5 * (x / 5.3).cos();
            let o = c - 0.3 * (x / 3.1).sin();
            Candle {
                t: i as i64 * STEP,
                o,
                h: o.max(c) + 0.2,
                l: o.min(c) - 0.2,
                c,
                v: 10.0 + (x / 7.0).sin().abs(),
            }
        })
        .collect()
}

fn cfg() -> StrategyConfig {
    let mut c = StrategyConfig::default();
    c.indicators.ema_fast_window = 8;
    c.indicators.ema_slow_window = 15;
    c.indicators.adx_window = 10;
    c.thresholds.entry.min_adx = 10.0;
    c.trade.entry_min_confidence = aiq_config::Confidence::Low;
    c.filters.enable_ranging_filter = false;
    c.filters.enable_anomaly_filter = false;
    c
}

#[test]
fn step_snapshot_gives_the_same_decisions_as_step_candle() {
    let bars = bars(3000);
    let mut own = Kernel::new(cfg(), 10_000.0, FillMode::Simulate);
    let mut shared = Kernel::new(cfg(), 10_000.0, FillMode::Simulate);
    let mut bank = IndicatorBank::from_config(&cfg());
    let series: Vec<_> = bars.iter().map(|c| bank.update(*c)).collect();
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    for (c, s) in bars.iter().zip(&series) {
        fa.extend(own.step_candle("BTC", *c).unwrap().fills);
        fb.extend(shared.step_snapshot("BTC", *c, *s).unwrap().fills);
        fa.extend(own.evaluate(c.t + STEP, None).fills);
        fb.extend(shared.evaluate(c.t + STEP, None).fills);
    }
    assert!(fa.len() >= 10, "too few fills to prove anything: {}", fa.len());
    assert_eq!(fa, fb);
    assert_eq!(own.state.cash_usd.to_bits(), shared.state.cash_usd.to_bits());
    // A snapshot for another bar is refused.
    let next = Candle { t: bars.len() as i64 * STEP, ..bars[0] };
    let err = shared.step_snapshot("BTC", next, series[0]).unwrap_err();
    assert!(matches!(err, KernelError::Invalid(ref m) if m.contains("not the candle's")), "{err}");
}

#[test]
fn evaluate_sub_bar_fills_at_the_sub_bar_price_and_restores_the_snapshot() {
    let mut c = cfg();
    c.strategy = StrategyName::EmaCross;
    c.trade.slippage_bps = 0.0;
    let bars = bars(3000);
    let mut k = Kernel::new(c, 10_000.0, FillMode::Simulate);
    // Step until the bar whose decision is a buy, without evaluating it at the main close.
    let mut probe = Kernel::new(k.config("BTC").clone(), 10_000.0, FillMode::Simulate);
    let mut buy_at = None;
    for (i, b) in bars.iter().enumerate() {
        probe.step_candle("BTC", *b).unwrap();
        let out = probe.evaluate(b.t + STEP, None);
        if probe.state.symbols["BTC"].last_decision.map(|d| d.signal) == Some(Signal::Buy)
            && !out.fills.is_empty()
        {
            buy_at = Some(i);
            break;
        }
    }
    let i = buy_at.expect("the path has a crossing");
    for b in &bars[..i] {
        k.step_candle("BTC", *b).unwrap();
        k.evaluate(b.t + STEP, None);
    }
    k.step_candle("BTC", bars[i]).unwrap();
    let main_close = bars[i].c;
    let tick = bars[i].t + STEP + 60_000;
    let out = k.evaluate_sub_bar(&[("BTC", 123.25)], tick, None).unwrap();
    assert_eq!(out.fills.len(), 1);
    assert_eq!(out.fills[0].price, 123.25);
    assert_eq!(out.fills[0].timestamp_ms, tick);
    assert_eq!(k.snapshot("BTC").unwrap().close, main_close);
    assert!(k.evaluate_sub_bar(&[("BTC", f64::NAN)], tick + 60_000, None).is_err());
}
