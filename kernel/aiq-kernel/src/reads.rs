//! What the kernel's decisions read of a symbol's indicator snapshot, per config: the replay
//! and the sweep build their indicator banks from it (`IndicatorBank::from_config_reading`) and
//! skip the rest. The daemon keeps full banks: its audit records every gate value.
//!
//! One list, next to the code it describes; `tests/reads.rs` (aiq-backtest) checks it by
//! running real-data configs with the skipped groups NaN and comparing every fill with full
//! banks. Reads, by decision path:
//! - every symbol: `ema_fast`, `ema_slow` (`ema_cross`; Mei Alpha's alignment, extension and
//!   anomaly gates, trend-breakdown exit; and, for other symbols, market breadth and the BTC
//!   alignment filter, which read them from any symbol's snapshot);
//! - Mei Alpha, always: `adx` (gates, ranking score, exits, sizing, PESC, take-profit mult),
//!   `atr` (sizing, stops, trailing, stagnation, glitch guard, entry ATR), `rsi` (entry limits,
//!   trailing floor, REEF, pyramiding), `macd` (TSME and MMDE exits), volume SMAs (confidence);
//! - Mei Alpha, when enabled: `avg_atr` (`thresholds.entry.ave_enabled`), `ema_macro`
//!   (`filters.require_macro_alignment`), Bollinger (`filters.enable_ranging_filter` or
//!   `trade.enable_vol_buffered_trailing`), StochRSI (`filters.use_stoch_rsi_filter`),
//!   `ema_slow_slope_pct` (`thresholds.entry.enable_slow_drift_entries`);
//! - BTC, when any config enables `market_regime.enable_regime_gate`: `adx`, `atr`.
//!
//! `ready` never depends on the selection. An `ema_cross` position records `entry_atr` and
//! `tp_mult` from `atr` / `adx` when it opens; nothing reads them for `ema_cross` (no exits, no
//! pyramiding, not in fills), so with a reads-only bank those two recorded fields differ.

use aiq_config::{StrategyConfig, StrategyName};
use aiq_indicators::Outputs;

/// What every strategy reads of every symbol (breadth and the BTC filter read them too).
pub const ALWAYS: Outputs = Outputs::EMA_FAST.union(Outputs::EMA_SLOW);

/// What the market-regime gate reads of BTC's snapshot.
pub const BTC_REGIME_GATE: Outputs = Outputs::ADX.union(Outputs::ATR);

/// The groups a symbol's own decisions read under `cfg`.
pub fn strategy_reads(cfg: &StrategyConfig) -> Outputs {
    let mut o = ALWAYS;
    if cfg.strategy == StrategyName::EmaCross {
        return o;
    }
    o |= Outputs::ADX | Outputs::ATR | Outputs::RSI | Outputs::MACD | Outputs::VOL;
    let (f, e) = (&cfg.filters, &cfg.thresholds.entry);
    if e.ave_enabled {
        o |= Outputs::AVG_ATR;
    }
    if f.require_macro_alignment {
        o |= Outputs::EMA_MACRO;
    }
    if f.enable_ranging_filter || cfg.trade.enable_vol_buffered_trailing {
        o |= Outputs::BB;
    }
    if f.use_stoch_rsi_filter {
        o |= Outputs::STOCH_RSI;
    }
    if e.enable_slow_drift_entries {
        o |= Outputs::EMA_SLOPE;
    }
    o
}

/// The groups a kernel reads of `symbol`'s snapshot: its own config's, plus BTC's regime-gate
/// inputs when any of `configs` (every config of the kernel) enables the gate.
pub fn symbol_reads<'a>(
    symbol: &str,
    cfg: &StrategyConfig,
    mut configs: impl Iterator<Item = &'a StrategyConfig>,
) -> Outputs {
    let mut o = strategy_reads(cfg);
    if symbol == "BTC" && configs.any(|c| c.market_regime.enable_regime_gate) {
        o |= BTC_REGIME_GATE;
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_cross_reads_two_emas_and_mei_alpha_skips_disabled_blocks() {
        let mut c = StrategyConfig { strategy: StrategyName::EmaCross, ..Default::default() };
        assert_eq!(strategy_reads(&c).names(), ["ema_fast", "ema_slow"]);
        c.strategy = StrategyName::MeiAlphaV1;
        assert!(strategy_reads(&c).contains(Outputs::STOCH_RSI));
        c.filters.use_stoch_rsi_filter = false;
        c.filters.enable_ranging_filter = false;
        c.trade.enable_vol_buffered_trailing = false;
        c.thresholds.entry.ave_enabled = false;
        let o = strategy_reads(&c);
        for g in [Outputs::STOCH_RSI, Outputs::BB, Outputs::AVG_ATR, Outputs::EMA_MACRO, Outputs::EMA_SLOPE] {
            assert!(!o.contains(g), "{:?}", o.names());
        }
        let mut gate = c.clone();
        gate.market_regime.enable_regime_gate = true;
        let ema = StrategyConfig { strategy: StrategyName::EmaCross, ..Default::default() };
        assert!(symbol_reads("BTC", &ema, [&ema, &gate].into_iter()).contains(BTC_REGIME_GATE));
        assert!(!symbol_reads("ETH", &ema, [&ema, &gate].into_iter()).contains(Outputs::ADX));
        assert!(!symbol_reads("BTC", &ema, [&ema, &c].into_iter()).contains(Outputs::ADX));
    }
}
