//! Market-regime rules applied to entry candidates: breadth filter, auto-reverse and the global
//! regime gate (`market_regime` in the config, all off by default).
//!
//! They live in the kernel, not in the daemon, because they change which entries happen: a replay
//! or a sweep that skipped them would disagree with live trading whenever one is enabled.

use aiq_config::MarketRegimeConfig;
use aiq_indicators::IndicatorSnapshot;

use crate::types::{ReasonCode, Side};

/// Share (%) of ready snapshots whose fast EMA is above the slow one; `None` when none is ready.
pub fn breadth_pct<'a>(snaps: impl IntoIterator<Item = &'a IndicatorSnapshot>) -> Option<f64> {
    let (mut ready, mut bullish) = (0u32, 0u32);
    for s in snaps.into_iter().filter(|s| s.ready) {
        ready += 1;
        bullish += u32::from(s.ema_fast > s.ema_slow);
    }
    (ready > 0).then(|| 100.0 * f64::from(bullish) / f64::from(ready))
}

/// What the regime rules do to one entry candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegimeAction {
    /// Enter on this side (the candidate's own side, or the reversed one).
    Enter {
        side: Side,
        reversed: bool,
    },
    Block(ReasonCode),
}

/// True when any rule is on, so the kernel computes breadth only when it is needed.
pub fn any_enabled(r: &MarketRegimeConfig) -> bool {
    r.enable_auto_reverse || r.enable_regime_filter || r.enable_regime_gate
}

/// Apply, in the reference's order: auto-reverse inside the breadth band, then the breadth filter
/// on the (possibly reversed) side, then the global gate (chop band on breadth with a weak BTC
/// trend: ADX below the minimum or ATR/close below `regime_gate_btc_atr_pct_min`, a fraction like
/// `trade.min_atr_pct`). Missing breadth or BTC data blocks unless `regime_gate_fail_open`.
pub fn regime_action(
    side: Side,
    breadth: Option<f64>,
    r: &MarketRegimeConfig,
    btc: Option<&IndicatorSnapshot>,
) -> RegimeAction {
    let mut side = side;
    let mut reversed = false;
    if let (Some(b), true) = (breadth, r.enable_auto_reverse) {
        if (r.auto_reverse_breadth_low..=r.auto_reverse_breadth_high).contains(&b) {
            side = opposite(side);
            reversed = true;
        }
    }
    if let (Some(b), true) = (breadth, r.enable_regime_filter) {
        if side == Side::Long && b < r.breadth_block_long_below {
            return RegimeAction::Block(ReasonCode::BreadthLong);
        }
        if side == Side::Short && b > r.breadth_block_short_above {
            return RegimeAction::Block(ReasonCode::BreadthShort);
        }
    }
    if r.enable_regime_gate {
        match (breadth, btc.filter(|s| s.ready)) {
            (Some(b), Some(btc)) => {
                let atr_frac = if btc.close > 0.0 { btc.atr / btc.close } else { 0.0 };
                let chop = (r.regime_gate_breadth_low..=r.regime_gate_breadth_high).contains(&b);
                if chop && (btc.adx < r.regime_gate_btc_adx_min || atr_frac < r.regime_gate_btc_atr_pct_min) {
                    return RegimeAction::Block(ReasonCode::RegimeGate);
                }
            }
            _ if !r.regime_gate_fail_open => return RegimeAction::Block(ReasonCode::RegimeGateNoData),
            _ => {}
        }
    }
    RegimeAction::Enter { side, reversed }
}

fn opposite(side: Side) -> Side {
    match side {
        Side::Long => Side::Short,
        Side::Short => Side::Long,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(ready: bool, fast: f64, slow: f64) -> IndicatorSnapshot {
        IndicatorSnapshot {
            ready,
            ema_fast: fast,
            ema_slow: slow,
            close: 100.0,
            atr: 1.0,
            adx: 30.0,
            ..IndicatorSnapshot::empty()
        }
    }

    #[test]
    fn breadth_counts_ready_symbols_only() {
        let s = [snap(true, 2.0, 1.0), snap(true, 1.0, 2.0), snap(false, 2.0, 1.0), snap(true, 3.0, 1.0)];
        assert_eq!(breadth_pct(s.iter()), Some(100.0 * 2.0 / 3.0));
        assert_eq!(breadth_pct([snap(false, 2.0, 1.0)].iter()), None);
    }

    type Case<'a> = (Side, Option<f64>, Option<&'a IndicatorSnapshot>, RegimeAction);

    /// `regime_action` gives each case's action under `r`.
    fn check(r: &MarketRegimeConfig, cases: &[Case<'_>]) {
        for (i, &(side, breadth, btc, want)) in cases.iter().enumerate() {
            assert_eq!(
                regime_action(side, breadth, r, btc),
                want,
                "case {i}: {side:?} at breadth {breadth:?}"
            );
        }
    }

    const fn enter(side: Side, reversed: bool) -> RegimeAction {
        RegimeAction::Enter { side, reversed }
    }

    const fn block(code: ReasonCode) -> RegimeAction {
        RegimeAction::Block(code)
    }

    #[test]
    fn all_rules_off_pass_everything() {
        let r = MarketRegimeConfig::default();
        assert!(!any_enabled(&r));
        for b in [None, Some(0.0), Some(50.0), Some(100.0)] {
            check(&r, &[(Side::Long, b, None, enter(Side::Long, false))]);
        }
    }

    #[test]
    fn auto_reverse_inside_band_then_filter_on_reversed_side() {
        let r = MarketRegimeConfig {
            enable_auto_reverse: true,
            auto_reverse_breadth_low: 10.0,
            auto_reverse_breadth_high: 90.0,
            enable_regime_filter: true,
            breadth_block_long_below: 20.0,
            ..Default::default()
        };
        check(
            &r,
            &[
                (Side::Long, Some(50.0), None, enter(Side::Short, true)),
                // Outside the band: no reverse; the long is then filtered at breadth 5 < 20.
                (Side::Long, Some(5.0), None, block(ReasonCode::BreadthLong)),
                // A short reversed to long at breadth 15 (inside the band) is blocked as a long.
                (Side::Short, Some(15.0), None, block(ReasonCode::BreadthLong)),
            ],
        );
    }

    #[test]
    fn breadth_filter_bounds_are_strict() {
        let r = MarketRegimeConfig { enable_regime_filter: true, ..Default::default() };
        check(
            &r,
            &[
                (Side::Short, Some(90.0), None, enter(Side::Short, false)),
                (Side::Short, Some(90.1), None, block(ReasonCode::BreadthShort)),
                (Side::Long, Some(10.0), None, enter(Side::Long, false)),
                (Side::Long, Some(9.9), None, block(ReasonCode::BreadthLong)),
            ],
        );
    }

    #[test]
    fn regime_gate_blocks_chop_with_weak_btc_and_missing_data() {
        let r = MarketRegimeConfig { enable_regime_gate: true, ..Default::default() };
        let strong = IndicatorSnapshot {
            ready: true,
            close: 100.0,
            atr: 0.5,
            adx: 25.0,
            ..IndicatorSnapshot::empty()
        };
        let low_adx = IndicatorSnapshot { adx: 15.0, ..strong };
        let low_atr = IndicatorSnapshot { atr: 0.2, ..strong }; // 0.002 < 0.003
        let long = enter(Side::Long, false);
        check(
            &r,
            &[
                (Side::Long, Some(50.0), Some(&strong), long),
                (Side::Long, Some(50.0), Some(&low_adx), block(ReasonCode::RegimeGate)),
                (Side::Long, Some(50.0), Some(&low_atr), block(ReasonCode::RegimeGate)),
                // Trending breadth (outside the chop band) is not gated even with a weak BTC.
                (Side::Long, Some(85.0), Some(&low_adx), long),
                (Side::Long, Some(50.0), None, block(ReasonCode::RegimeGateNoData)),
                (Side::Long, None, Some(&strong), block(ReasonCode::RegimeGateNoData)),
            ],
        );
        let open = MarketRegimeConfig { regime_gate_fail_open: true, ..r };
        check(&open, &[(Side::Long, None, None, long)]);
    }
}
