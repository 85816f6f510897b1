//! Snapshots, positions and kernels shared by the integration tests (each test file is its own
//! crate, so not every helper is used by every file).
#![allow(dead_code)]

use aiq_config::{Confidence, StrategyConfig};
use aiq_indicators::IndicatorSnapshot;
use aiq_kernel::{Candle, FillMode, Kernel, Position, Side};

/// A warmed-up bullish bar that passes every default gate: price 100, fast EMA 99, slow 97.
pub fn bull() -> IndicatorSnapshot {
    let mut s = IndicatorSnapshot::empty();
    s.t = 3_600_000;
    s.open = 99.5;
    s.high = 100.5;
    s.low = 99.0;
    s.close = 100.0;
    s.volume = 10.0;
    s.ema_fast = 99.0;
    s.ema_slow = 97.0;
    s.ema_macro = 90.0;
    s.adx = 30.0;
    s.adx_pos = 30.0;
    s.adx_neg = 10.0;
    s.adx_slope = 1.0;
    s.bb_upper = 103.0;
    s.bb_middle = 100.0;
    s.bb_lower = 97.0;
    s.bb_width = 0.06;
    s.bb_width_avg = 0.05;
    s.bb_width_ratio = 1.2;
    s.atr = 1.0;
    s.atr_slope = 0.0;
    s.avg_atr = 1.0;
    s.rsi = 60.0;
    s.stoch_rsi_k = 0.5;
    s.stoch_rsi_d = 0.5;
    s.macd = 0.5;
    s.macd_signal = 0.3;
    s.macd_hist = 0.2;
    s.prev_macd_hist = 0.1;
    s.prev2_macd_hist = 0.05;
    s.prev3_macd_hist = 0.0;
    s.vol_sma = 8.0;
    s.vol_trend_sma = 9.0;
    s.vol_trend = true;
    s.prev_close = 99.5;
    s.prev_ema_fast = 98.9;
    s.prev_ema_slow = 96.9;
    s.ema_slow_slope_pct = 0.001;
    s.bar_count = 500;
    s.ready = true;
    s
}

pub fn prev_of(s: &IndicatorSnapshot) -> IndicatorSnapshot {
    let mut p = *s;
    p.t -= 3_600_000;
    p.adx = s.adx - 1.0;
    p.close = s.prev_close;
    p
}

pub fn long_pos(entry: f64, atr: f64) -> Position {
    Position {
        symbol: "ETH".into(),
        side: Side::Long,
        quantity: 10.0,
        avg_entry_price: entry,
        entry_atr: atr,
        leverage: 3.0,
        confidence: Confidence::Medium,
        opened_at_ms: 0,
        last_add_ms: 0,
        adds_count: 0,
        tp1_taken: false,
        trailing_sl: None,
        tp_mult: 4.0,
        entry_adx_threshold: 22.0,
        mae_usd: 0.0,
        mfe_usd: 0.0,
        funding_paid_usd: 0.0,
        fees_paid_usd: 0.0,
    }
}

/// A kernel with one stepped bar per symbol, whose snapshots are then replaced by crafted ones.
pub fn kernel_with(symbols: &[(&str, IndicatorSnapshot)], cfg: StrategyConfig) -> Kernel {
    let mut k = Kernel::new(cfg, 10_000.0, FillMode::Simulate);
    for (sym, snap) in symbols {
        k.step_candle(sym, Candle { t: 0, o: 100.0, h: 100.0, l: 100.0, c: 100.0, v: 1.0 }).unwrap();
        let st = k.state.symbols.get_mut(*sym).unwrap();
        st.set_snap(Some(*snap));
        st.set_prev(Some(prev_of(snap)));
        st.last_price = snap.close;
        st.dirty = true;
    }
    k
}
