//! Differential suite: the decision core in C++ (cuda/aiq_core.h, host build) against the live
//! Rust sweep path (`run_config_with` on the same shared indicator snapshots), over random
//! Mei Alpha v1 and ema_cross combos on real Hyperliquid 5m bars.
//!
//! Per combo: every fill (time, symbol, kind, side, reason, quantity, price, fee, PnL, cash after)
//! and the count of every entry block by reason must be identical, and so must the sweep row.
//! Across the suite, every `ReasonCode` must fire at least `MIN_HITS` times (fills or blocks),
//! so a path the port lacks cannot hide. Because the Rust side is the live code, a decision
//! change in the kernel that the C++ does not follow fails this test.
//!
//! Data: `$AI_QUANT_SHARED_DATA` (else `../shared/data` beside the repository), converted to the
//! backtester's SQLite tables by tests/backtest/bt_helpers.py with the project's venv.

mod common;

use common::{prepared, prepared_sub, Rng};

use std::collections::BTreeMap;

use aiq_backtest::config::{apply_override, ResolvedConfig};
use aiq_backtest::core_sweep::{build_inputs, combo_series, core_rows, run_core_sweep, sweep_row};
use aiq_backtest::prepare::Prepared;
use aiq_backtest::sim::Record;
use aiq_backtest::sweep::{
    combo_config, run_config_with, run_sweep, sweep_id, ComboConfig, Grid, IndicatorCache, SweepOpts,
    SweepSpec,
};
use aiq_cuda::abi::EVENT_BLOCK;
use aiq_cuda::host::run_logged;
use aiq_cuda::HostBackend;
use aiq_kernel::{IntentKind, ReasonCode, Side};
use rayon::prelude::*;
use serde_json::Value;

const COINS: &str = "BTC,ETH,SOL,DOGE";
/// 5m bars per coin (the first ones of the shared files: 2025-03-14 onwards).
const BARS: usize = 4000;
const MEI_COMBOS: usize = 460;
const EMA_CROSS_COMBOS: usize = 60;
const MIN_HITS: u64 = 20;
/// Mei Alpha v1 combos whose entry gates are counted (every bar of every coin).
const GATE_COMBOS: usize = 150;
const SEED: u64 = 0x5eed_a1c0_2026_0001;

/// Every `ReasonCode`, in declaration order (the core's `AIQ_RC_*` numbering).
const ALL_CODES: [ReasonCode; 30] = [
    ReasonCode::EntrySignal,
    ReasonCode::PyramidAdd,
    ReasonCode::SignalFlip,
    ReasonCode::StopLoss,
    ReasonCode::BreakevenStop,
    ReasonCode::TrailingStop,
    ReasonCode::TakeProfitPartial,
    ReasonCode::TakeProfit,
    ReasonCode::TrendBreakdown,
    ReasonCode::AdxExhaustion,
    ReasonCode::MacroBreakdown,
    ReasonCode::Stagnation,
    ReasonCode::Tsme,
    ReasonCode::Mmde,
    ReasonCode::RsiOverextension,
    ReasonCode::Liquidation,
    ReasonCode::EmaCrossDown,
    ReasonCode::LowConfidence,
    ReasonCode::Reef,
    ReasonCode::Ssf,
    ReasonCode::EntryCooldown,
    ReasonCode::Pesc,
    ReasonCode::MaxPositions,
    ReasonCode::MarginCap,
    ReasonCode::MinNotional,
    ReasonCode::NotReady,
    ReasonCode::BreadthLong,
    ReasonCode::BreadthShort,
    ReasonCode::RegimeGate,
    ReasonCode::RegimeGateNoData,
];

/// The core's number for a code. Exhaustive on purpose: a new `ReasonCode` does not compile
/// here until it is numbered (and then the coverage check wants it to fire).
fn code_index(rc: ReasonCode) -> usize {
    match rc {
        ReasonCode::EntrySignal => 0,
        ReasonCode::PyramidAdd => 1,
        ReasonCode::SignalFlip => 2,
        ReasonCode::StopLoss => 3,
        ReasonCode::BreakevenStop => 4,
        ReasonCode::TrailingStop => 5,
        ReasonCode::TakeProfitPartial => 6,
        ReasonCode::TakeProfit => 7,
        ReasonCode::TrendBreakdown => 8,
        ReasonCode::AdxExhaustion => 9,
        ReasonCode::MacroBreakdown => 10,
        ReasonCode::Stagnation => 11,
        ReasonCode::Tsme => 12,
        ReasonCode::Mmde => 13,
        ReasonCode::RsiOverextension => 14,
        ReasonCode::Liquidation => 15,
        ReasonCode::EmaCrossDown => 16,
        ReasonCode::LowConfidence => 17,
        ReasonCode::Reef => 18,
        ReasonCode::Ssf => 19,
        ReasonCode::EntryCooldown => 20,
        ReasonCode::Pesc => 21,
        ReasonCode::MaxPositions => 22,
        ReasonCode::MarginCap => 23,
        ReasonCode::MinNotional => 24,
        ReasonCode::NotReady => 25,
        ReasonCode::BreadthLong => 26,
        ReasonCode::BreadthShort => 27,
        ReasonCode::RegimeGate => 28,
        ReasonCode::RegimeGateNoData => 29,
    }
}

/// Codes no replay can produce, with the reason (the coverage check skips only these).
const UNREACHABLE: &[(ReasonCode, &str)] = &[(
    ReasonCode::NotReady,
    "try_open only sees candidates whose symbol has a snapshot (evaluate skips the others)",
)];

fn kind_index(k: IntentKind) -> u32 {
    match k {
        IntentKind::Open => 0,
        IntentKind::Add => 1,
        IntentKind::Reduce => 2,
        IntentKind::Close => 3,
        IntentKind::Reverse => 4,
    }
}

fn side_index(s: Side) -> u32 {
    match s {
        Side::Long => 0,
        Side::Short => 1,
    }
}

// ---- data -----------------------------------------------------------------------------------

/// Random Mei Alpha v1 overrides: ranges chosen so every exit, gate and block fires.
fn mei_overrides(r: &mut Rng) -> Vec<(&'static str, f64)> {
    let mut o = vec![
        ("indicators.ema_fast_window", r.pick(&[8.0, 12.0, 20.0])),
        ("indicators.ema_slow_window", r.pick(&[30.0, 50.0])),
        ("indicators.ema_macro_window", r.pick(&[100.0, 200.0])),
        ("indicators.adx_window", r.pick(&[10.0, 14.0])),
        ("indicators.atr_window", r.pick(&[10.0, 14.0])),
        ("trade.allocation_pct", r.range(0.02, 0.5)),
        ("trade.leverage_low", r.range(1.0, 5.0)),
        ("trade.leverage_medium", r.range(1.0, 10.0)),
        ("trade.leverage_high", if r.chance(0.2) { r.range(20.0, 50.0) } else { r.range(1.0, 10.0) }),
        ("trade.slippage_bps", r.range(0.0, 20.0)),
        ("trade.taker_fee_bps", r.range(0.0, 10.0)),
        ("trade.min_notional_usd", r.pick(&[0.0, 10.0, 500.0, 5000.0])),
        ("trade.bump_to_min_notional", r.flag(0.5)),
        ("trade.max_total_margin_pct", r.range(0.05, 1.0)),
        ("trade.enable_dynamic_sizing", r.flag(0.5)),
        ("trade.maintenance_margin_pct", if r.chance(0.2) { r.range(0.05, 0.3) } else { 0.0125 }),
        ("trade.enable_funding", r.flag(0.7)),
        ("trade.entry_min_confidence", r.pick(&[0.0, 0.0, 1.0, 2.0])),
        ("trade.add_min_confidence", r.pick(&[0.0, 1.0, 2.0])),
        ("trade.enable_pyramiding", r.flag(0.5)),
        ("trade.max_adds_per_symbol", r.pick(&[1.0, 2.0, 4.0])),
        ("trade.add_fraction_of_base_margin", r.range(0.1, 1.0)),
        ("trade.add_cooldown_minutes", r.pick(&[0.0, 15.0, 60.0])),
        ("trade.add_min_profit_atr", r.range(0.0, 1.5)),
        ("trade.allow_reverse", r.flag(0.5)),
        ("trade.sl_atr_mult", r.range(0.5, 4.0)),
        ("trade.tp_atr_mult", r.range(1.0, 8.0)),
        ("trade.enable_partial_tp", r.flag(0.5)),
        ("trade.tp_partial_pct", r.range(0.2, 0.8)),
        ("trade.tp_partial_atr_mult", if r.chance(0.5) { 0.0 } else { r.range(0.5, 3.0) }),
        ("trade.tp_partial_min_notional_usd", r.pick(&[0.0, 10.0, 1000.0])),
        ("trade.trailing_start_atr", r.range(0.3, 3.0)),
        ("trade.trailing_distance_atr", r.range(0.2, 2.0)),
        ("trade.trailing_start_atr_low_conf", if r.chance(0.5) { 0.0 } else { r.range(0.3, 3.0) }),
        ("trade.trailing_distance_atr_low_conf", if r.chance(0.5) { 0.0 } else { r.range(0.2, 2.0) }),
        ("trade.enable_vol_buffered_trailing", r.flag(0.5)),
        ("trade.enable_breakeven_stop", r.flag(0.5)),
        ("trade.breakeven_start_atr", r.range(0.2, 2.0)),
        ("trade.breakeven_buffer_atr", r.range(0.0, 0.5)),
        ("trade.enable_rsi_overextension_exit", r.flag(0.5)),
        ("trade.rsi_exit_profit_atr_switch", r.range(0.5, 3.0)),
        ("trade.smart_exit_adx_exhaustion_lt", r.range(0.0, 25.0)),
        ("trade.smart_exit_adx_exhaustion_lt_low_conf", if r.chance(0.5) { 0.0 } else { r.range(0.0, 25.0) }),
        ("trade.tsme_min_profit_atr", r.range(0.0, 2.0)),
        ("trade.tsme_require_adx_slope_negative", r.flag(0.5)),
        ("trade.block_exits_on_extreme_dev", r.flag(0.3)),
        ("trade.glitch_price_dev_pct", r.range(0.001, 0.05)),
        ("trade.glitch_atr_mult", r.range(0.5, 10.0)),
        ("trade.enable_reef_filter", r.flag(0.5)),
        ("trade.reef_long_rsi_block_gt", r.range(50.0, 80.0)),
        ("trade.reef_short_rsi_block_lt", r.range(20.0, 50.0)),
        ("trade.reef_adx_threshold", r.range(20.0, 50.0)),
        ("trade.enable_ssf_filter", r.flag(0.5)),
        ("trade.min_atr_pct", r.range(0.0, 0.01)),
        ("trade.reverse_entry_signal", r.flag(0.15)),
        ("trade.max_open_positions", r.pick(&[1.0, 2.0, 4.0, 20.0])),
        ("trade.entry_cooldown_s", r.pick(&[0.0, 20.0, 600.0, 3600.0])),
        ("trade.exit_cooldown_s", r.pick(&[0.0, 15.0, 600.0])),
        ("trade.max_entry_orders_per_loop", r.pick(&[1.0, 2.0, 6.0])),
        ("filters.enable_ranging_filter", r.flag(0.5)),
        ("filters.enable_anomaly_filter", r.flag(0.5)),
        ("filters.enable_extension_filter", r.flag(0.5)),
        ("filters.require_adx_rising", r.flag(0.5)),
        ("filters.adx_rising_saturation", r.range(20.0, 60.0)),
        ("filters.require_volume_confirmation", r.flag(0.4)),
        ("filters.vol_confirm_include_prev", r.flag(0.5)),
        ("filters.use_stoch_rsi_filter", r.flag(0.5)),
        ("filters.require_btc_alignment", r.flag(0.5)),
        ("filters.require_macro_alignment", r.flag(0.5)),
        ("thresholds.entry.min_adx", r.range(10.0, 35.0)),
        ("thresholds.entry.high_conf_volume_mult", r.range(1.0, 3.0)),
        ("thresholds.entry.btc_adx_override", r.range(20.0, 60.0)),
        ("thresholds.entry.max_dist_ema_fast", r.range(0.002, 0.05)),
        ("thresholds.entry.ave_enabled", r.flag(0.5)),
        ("thresholds.entry.macd_hist_entry_mode", r.pick(&[0.0, 1.0, 2.0])),
        ("thresholds.entry.enable_pullback_entries", r.flag(0.5)),
        ("thresholds.entry.pullback_confidence", r.pick(&[0.0, 1.0, 2.0])),
        ("thresholds.entry.pullback_min_adx", r.range(10.0, 30.0)),
        ("thresholds.entry.enable_slow_drift_entries", r.flag(0.5)),
        ("thresholds.entry.slow_drift_min_slope_pct", r.range(0.0001, 0.002)),
        ("thresholds.entry.slow_drift_min_adx", r.range(5.0, 25.0)),
        ("thresholds.ranging.min_signals", r.pick(&[1.0, 2.0, 3.0])),
        ("thresholds.anomaly.price_change_pct_gt", r.range(0.002, 0.03)),
        ("thresholds.anomaly.ema_fast_dev_pct_gt", r.range(0.005, 0.05)),
        ("thresholds.tp_and_momentum.adx_strong_gt", r.range(30.0, 50.0)),
        ("thresholds.tp_and_momentum.adx_weak_lt", r.range(10.0, 25.0)),
    ];
    let lo = r.range(0.0, 60.0);
    o.push(("trade.reentry_cooldown_min_mins", lo));
    o.push(("trade.reentry_cooldown_max_mins", lo + r.range(0.0, 180.0)));
    if r.chance(0.35) {
        o.push(("market_regime.enable_regime_filter", r.flag(0.6)));
        o.push(("market_regime.breadth_block_long_below", r.range(0.0, 60.0)));
        o.push(("market_regime.breadth_block_short_above", r.range(40.0, 100.0)));
        o.push(("market_regime.enable_auto_reverse", r.flag(0.4)));
        let a = r.range(0.0, 60.0);
        o.push(("market_regime.auto_reverse_breadth_low", a));
        o.push(("market_regime.auto_reverse_breadth_high", a + r.range(0.0, 40.0)));
        o.push(("market_regime.enable_regime_gate", r.flag(0.6)));
        let g = r.range(0.0, 50.0);
        o.push(("market_regime.regime_gate_breadth_low", g));
        o.push(("market_regime.regime_gate_breadth_high", g + r.range(10.0, 60.0)));
        o.push(("market_regime.regime_gate_btc_adx_min", r.range(10.0, 40.0)));
        o.push(("market_regime.regime_gate_btc_atr_pct_min", r.range(0.0, 0.006)));
        o.push(("market_regime.regime_gate_fail_open", r.flag(0.3)));
    }
    o
}

fn ema_cross_overrides(r: &mut Rng) -> Vec<(&'static str, f64)> {
    vec![
        ("strategy", 1.0),
        ("indicators.ema_fast_window", r.pick(&[5.0, 9.0, 12.0])),
        ("indicators.ema_slow_window", r.pick(&[21.0, 30.0])),
        ("trade.allocation_pct", r.range(0.05, 1.0)),
        ("trade.leverage", if r.chance(0.3) { r.range(20.0, 50.0) } else { r.range(1.0, 5.0) }),
        ("trade.slippage_bps", r.range(0.0, 20.0)),
        ("trade.taker_fee_bps", r.range(0.0, 10.0)),
        ("trade.enable_funding", r.flag(0.7)),
        ("trade.maintenance_margin_pct", if r.chance(0.3) { r.range(0.02, 0.3) } else { 0.0125 }),
    ]
}

/// Per-symbol overrides (`symbols.<SYM>`): BTC warms up later (a longer macro EMA: its BTC
/// alignment and regime gate see no ready BTC meanwhile) or a coin trades differently.
fn symbol_overrides(r: &mut Rng) -> Vec<(&'static str, Vec<(&'static str, f64)>)> {
    let mut v = Vec::new();
    if r.chance(0.3) {
        v.push((
            "BTC",
            vec![("indicators.ema_macro_window", 1500.0), ("trade.sl_atr_mult", r.range(0.5, 4.0))],
        ));
    }
    if r.chance(0.2) {
        v.push(("SOL", vec![("trade.allocation_pct", r.range(0.02, 0.5)), ("indicators.adx_window", 20.0)]));
    }
    v
}

fn merged(base: &Value, over: &[(&str, f64)]) -> Option<(Value, aiq_config::StrategyConfig)> {
    let mut j = base.clone();
    for (path, v) in over {
        apply_override(&mut j, path, *v).unwrap_or_else(|e| panic!("{e}"));
    }
    let cfg = aiq_config::from_json_value(j.clone()).ok()?;
    Some((j, cfg))
}

/// `n` valid combos (invalid draws are redrawn), numbered from `first`.
fn random_combos(r: &mut Rng, n: usize, first: u64, ema_cross: bool) -> Vec<ComboConfig> {
    let defaults = aiq_config::defaults_json();
    let mut out = Vec::new();
    let mut draws = 0;
    while out.len() < n {
        draws += 1;
        assert!(draws < n * 20, "too many invalid random configs");
        let over = if ema_cross { ema_cross_overrides(r) } else { mei_overrides(r) };
        let Some((j, cfg)) = merged(&defaults, &over) else { continue };
        let mut per_symbol = BTreeMap::new();
        let mut ok = true;
        if !ema_cross {
            for (sym, extra) in symbol_overrides(r) {
                match merged(&j, &extra) {
                    Some((_, c)) => {
                        per_symbol.insert(sym.to_string(), c);
                    }
                    None => ok = false,
                }
            }
        }
        if !ok {
            continue;
        }
        let overrides = over.iter().map(|(p, v)| (p.to_string(), *v)).collect();
        out.push(ComboConfig {
            combo: first + out.len() as u64,
            base: ResolvedConfig::from_cfg(cfg),
            per_symbol,
            overrides,
        });
    }
    out
}

// ---- comparison --------------------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    combos: usize,
    fills: u64,
    blocks: u64,
    bars: u64,
    /// Fills and blocks by code index.
    hits: [u64; 30],
    max_rel_err: f64,
    bit_identical: bool,
}

fn rel_err(a: f64, b: f64) -> f64 {
    // Equal bits, or +0 against -0.
    if a.to_bits() == b.to_bits() || a == b {
        0.0
    } else {
        (a - b).abs() / a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
    }
}

/// Compare one combo; returns its tally or the first difference.
fn compare(
    p: &Prepared,
    spec: &SweepSpec,
    cc: &ComboConfig,
    series: &[aiq_backtest::sim::SymbolSeries],
    inputs: &aiq_cuda::CoreInputs,
    i: u32,
) -> Result<Tally, String> {
    let rec = Record { fills: true, equity_curve: false };
    let (row, rr) = run_config_with(p, spec, cc, "sid", Some(series), rec).map_err(|e| e.to_string())?;
    let cap = 1 << 16;
    let (res, events, written) = run_logged(inputs, i, cap).map_err(|e| e.to_string())?;
    let ctx = |m: String| format!("combo {} ({:?}): {m}", cc.combo, cc.overrides);
    if written > cap {
        return Err(ctx(format!("event log overflow: {written} events")));
    }
    let mut t = Tally { combos: 1, bit_identical: true, bars: rr.bars, ..Default::default() };
    let fills: Vec<_> = events.iter().filter(|e| e.kind != EVENT_BLOCK).collect();
    if fills.len() != rr.fills.len() {
        return Err(ctx(format!("{} fills in C++, {} in Rust", fills.len(), rr.fills.len())));
    }
    let syms = &p.timeline.symbols;
    for (k, (e, f)) in fills.iter().zip(&rr.fills).enumerate() {
        let g = &f.fill;
        let same_keys = e.t == g.timestamp_ms
            && syms[e.symbol as usize] == g.symbol
            && e.kind == kind_index(g.kind)
            && e.side == side_index(g.side)
            && e.reason as usize == code_index(g.reason_code);
        if !same_keys {
            return Err(ctx(format!(
                "fill {k}: C++ t={} {} kind={} side={} reason={:?}; Rust t={} {} {:?} {:?} {:?}",
                e.t,
                syms[e.symbol as usize],
                e.kind,
                e.side,
                ALL_CODES.get(e.reason as usize),
                g.timestamp_ms,
                g.symbol,
                g.kind,
                g.side,
                g.reason_code
            )));
        }
        // Rust records the cash after the whole kernel call that made a fill; the core after
        // each fill. They meet at the last fill of a call: the last one at its timestamp.
        let call_end = fills.get(k + 1).is_none_or(|n| n.t != e.t);
        let cash = if call_end { (e.cash_after, f.cash_after) } else { (0.0, 0.0) };
        for (name, a, b) in [
            ("quantity", e.quantity, g.quantity),
            ("price", e.price, g.price),
            ("fee", e.fee, g.fee_usd),
            ("pnl", e.pnl, g.pnl_usd),
            ("cash_after", cash.0, cash.1),
        ] {
            let err = rel_err(a, b);
            t.bit_identical &= a.to_bits() == b.to_bits();
            t.max_rel_err = t.max_rel_err.max(err);
            if err > 1e-12 {
                return Err(ctx(format!("fill {k} {name}: C++ {a:e}, Rust {b:e}")));
            }
        }
        t.hits[e.reason as usize] += 1;
        t.fills += 1;
    }
    let mut blocks: BTreeMap<String, u64> = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == EVENT_BLOCK) {
        *blocks.entry(ALL_CODES[e.reason as usize].as_str().to_string()).or_default() += 1;
        t.hits[e.reason as usize] += 1;
        t.blocks += 1;
    }
    if blocks != rr.blocked {
        return Err(ctx(format!("entry blocks: C++ {blocks:?}, Rust {:?}", rr.blocked)));
    }
    let core_row = sweep_row(p, spec, cc, "sid", &res).map_err(|e| e.to_string())?;
    let (a, b) = (serde_json::to_value(&core_row).expect("row"), serde_json::to_value(&row).expect("row"));
    if a != b {
        return Err(ctx(format!("sweep row: C++ {a}, Rust {b}")));
    }
    for (x, y) in [
        (core_row.final_equity, row.final_equity),
        (core_row.sharpe_ratio, row.sharpe_ratio),
        (core_row.max_drawdown_pct, row.max_drawdown_pct),
        (core_row.total_fees, row.total_fees),
        (core_row.total_funding, row.total_funding),
    ] {
        t.bit_identical &= x.to_bits() == y.to_bits();
        t.max_rel_err = t.max_rel_err.max(rel_err(x, y));
    }
    if rel_err(core_row.final_equity, row.final_equity) > 1e-12 {
        return Err(ctx("final equity differs".into()));
    }
    if res.entries != rr.entries || res.adds != rr.adds || res.open_positions as usize != rr.open_positions {
        return Err(ctx("entries, adds or open positions differ".into()));
    }
    Ok(t)
}

fn run_suite(p: &Prepared, combos: &[ComboConfig]) -> Tally {
    let spec = SweepSpec { axes: Vec::new(), initial_balance: None, lookback: None, points: None };
    let mut cache = IndicatorCache::new(256);
    let series = combo_series(&mut cache, p, combos);
    let inputs = build_inputs(p, p.initial_balance, combos, &series).expect("core inputs");
    let results: Vec<Result<Tally, String>> = (0..combos.len())
        .into_par_iter()
        .map(|i| compare(p, &spec, &combos[i], &series[i], &inputs, i as u32))
        .collect();
    let mut total = Tally { bit_identical: true, ..Default::default() };
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(t) => {
                total.combos += t.combos;
                total.fills += t.fills;
                total.blocks += t.blocks;
                total.bars += t.bars;
                for (a, b) in total.hits.iter_mut().zip(t.hits) {
                    *a += b;
                }
                total.max_rel_err = total.max_rel_err.max(t.max_rel_err);
                total.bit_identical &= t.bit_identical;
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} combos differ between the C++ core and the Rust sweep; first: {}",
        failures.len(),
        combos.len(),
        failures[0]
    );
    total
}

// ---- entry-gate coverage ------------------------------------------------------------------------

type Toggle = fn(&mut aiq_config::StrategyConfig);

/// The entry gates of `signal::analyze`, each with the change that switches it off. A gate is
/// decisive on a bar when switching it off changes that bar's (signal, confidence).
const GATES: &[(&str, Toggle)] = &[
    ("ranging_filter", |c| c.filters.enable_ranging_filter = false),
    ("anomaly_filter", |c| c.filters.enable_anomaly_filter = false),
    ("extension_filter", |c| c.filters.enable_extension_filter = false),
    ("adx_rising", |c| c.filters.require_adx_rising = false),
    ("volume_confirmation", |c| c.filters.require_volume_confirmation = false),
    ("stoch_rsi_filter", |c| c.filters.use_stoch_rsi_filter = false),
    ("btc_alignment", |c| c.filters.require_btc_alignment = false),
    ("macro_alignment", |c| c.filters.require_macro_alignment = false),
    ("min_adx", |c| c.thresholds.entry.min_adx = 0.0),
    ("ave_adx_mult", |c| c.thresholds.entry.ave_enabled = false),
    ("macd_entry_mode", |c| c.thresholds.entry.macd_hist_entry_mode = aiq_config::MacdMode::None),
    ("rsi_limits", |c| {
        let t = &mut c.thresholds.tp_and_momentum;
        (t.rsi_long_weak, t.rsi_long_strong, t.rsi_short_weak, t.rsi_short_strong) = (0.0, 0.0, 100.0, 100.0);
    }),
    ("high_confidence_volume", |c| c.thresholds.entry.high_conf_volume_mult = f64::INFINITY),
    ("pullback_entries", |c| c.thresholds.entry.enable_pullback_entries = false),
    ("slow_drift_entries", |c| c.thresholds.entry.enable_slow_drift_entries = false),
    ("reverse_entry_signal", |c| c.trade.reverse_entry_signal = false),
];

/// Decisive firings of each gate over `combos` (Mei Alpha v1) on their shared snapshots.
fn gate_hits(
    p: &Prepared,
    combos: &[ComboConfig],
    series: &[Vec<aiq_backtest::sim::SymbolSeries>],
) -> Vec<u64> {
    let syms = &p.timeline.symbols;
    let btc = syms.iter().position(|s| s == "BTC").expect("BTC in the coins");
    let n = p.candles.bars[0].len();
    assert!(p.candles.bars.iter().all(|b| b.len() == n), "the coins' bars are aligned");
    let per_combo: Vec<Vec<u64>> = combos
        .par_iter()
        .zip(series)
        .map(|(cc, ser)| {
            let mut hits = vec![0u64; GATES.len()];
            let snaps: Vec<Vec<aiq_indicators::IndicatorSnapshot>> =
                ser.iter().map(|s| (0..n).map(|j| s.source().snapshot(j)).collect()).collect();
            for (si, sym) in syms.iter().enumerate() {
                let cfg = cc.per_symbol.get(sym).unwrap_or(&cc.base.cfg);
                let toggled: Vec<aiq_config::StrategyConfig> = GATES
                    .iter()
                    .map(|(_, off)| {
                        let mut c = cfg.clone();
                        off(&mut c);
                        c
                    })
                    .collect();
                for j in 1..n {
                    let b = &snaps[btc][j];
                    let btc_bullish = b.ready.then_some(b.ema_fast > b.ema_slow);
                    let (s, prev) = (&snaps[si][j], &snaps[si][j - 1]);
                    let d = aiq_kernel::signal::analyze(s, prev, cfg, sym, btc_bullish);
                    for (g, c) in toggled.iter().enumerate() {
                        let e = aiq_kernel::signal::analyze(s, prev, c, sym, btc_bullish);
                        hits[g] += u64::from((e.signal, e.confidence) != (d.signal, d.confidence));
                    }
                }
            }
            hits
        })
        .collect();
    (0..GATES.len()).map(|g| per_combo.iter().map(|h| h[g]).sum()).collect()
}

#[test]
fn reason_codes_are_numbered_in_declaration_order() {
    for (i, c) in ALL_CODES.iter().enumerate() {
        assert_eq!(code_index(*c), i, "{c:?}");
    }
}

/// The suite: random combos, C++ core vs Rust, then coverage of every reason code.
#[test]
fn core_matches_the_rust_sweep_on_random_combos() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = prepared(dir.path(), COINS, BARS);
    assert_eq!(p.timeline.symbols.len(), 4, "{:?}", p.timeline.symbols);
    let mut rng = Rng(SEED);
    let mut combos = random_combos(&mut rng, MEI_COMBOS, 0, false);
    combos.extend(random_combos(&mut rng, EMA_CROSS_COMBOS, MEI_COMBOS as u64, true));
    let started = std::time::Instant::now();
    let t = run_suite(&p, &combos);
    eprintln!(
        "core differential: {} combos ({} mei_alpha_v1, {} ema_cross) over {} ({} bars each, {} symbol-bars \
         per combo): {} fills and {} entry blocks identical; max relative error {:e}; bit-identical: {}; {:.1} s",
        t.combos,
        MEI_COMBOS,
        EMA_CROSS_COMBOS,
        COINS,
        BARS,
        t.bars / t.combos as u64,
        t.fills,
        t.blocks,
        t.max_rel_err,
        t.bit_identical,
        started.elapsed().as_secs_f64()
    );
    let mut line = Vec::new();
    let mut missing = Vec::new();
    for (i, c) in ALL_CODES.iter().enumerate() {
        line.push(format!("{} {}", c.as_str(), t.hits[i]));
        let exempt = UNREACHABLE.iter().any(|(u, _)| u == c);
        if !exempt && t.hits[i] < MIN_HITS {
            missing.push(format!("{} ({} < {MIN_HITS})", c.as_str(), t.hits[i]));
        }
    }
    eprintln!("coverage: {}", line.join(", "));
    assert!(missing.is_empty(), "reason codes the suite does not exercise enough: {}", missing.join(", "));
    // Entry gates: each must decide some bars' signal in the Mei Alpha v1 combos.
    let mei = &combos[..GATE_COMBOS];
    let series = combo_series(&mut IndicatorCache::new(256), &p, mei);
    let hits = gate_hits(&p, mei, &series);
    let line: Vec<String> = GATES.iter().zip(&hits).map(|((g, _), h)| format!("{g} {h}")).collect();
    eprintln!("entry gates decisive (first {GATE_COMBOS} combos): {}", line.join(", "));
    let weak: Vec<&str> =
        GATES.iter().zip(&hits).filter(|(_, h)| **h < MIN_HITS).map(|((g, _), _)| *g).collect();
    assert!(weak.is_empty(), "entry gates the suite does not exercise enough: {}", weak.join(", "));
    assert!(
        t.bit_identical,
        "results agree within 1e-12 but are not bit-identical (max {:e})",
        t.max_rel_err
    );
}

/// `run_core_sweep` on the host backend writes the same JSONL rows and top-K as `run_sweep`.
#[test]
fn core_sweep_writes_the_rows_the_cpu_sweep_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = prepared(dir.path(), COINS, BARS);
    let spec: SweepSpec = serde_norway::from_str(
        r"
axes:
  - {path: indicators.ema_fast_window, values: [8, 20]}
  - {path: trade.sl_atr_mult, values: [1.0, 2.5]}
  - {path: trade.enable_pyramiding, values: [0, 1]}
  - {path: trade.allocation_pct, values: [0.1, 0.4]}
",
    )
    .expect("spec");
    let opts = |name: &str| SweepOpts {
        output: dir.path().join(format!("{name}.jsonl")).display().to_string(),
        top_output: dir.path().join(format!("{name}_top.json")).display().to_string(),
        top_k: 5,
        threads: 2,
        resume: false,
        progress: false,
        indicator_cache_mib: 64,
        limit: None,
        verbose: false,
        skip_invalid: false,
    };
    let (cpu_o, core_o) = (opts("cpu"), opts("core"));
    let (n1, total1, top1) = run_sweep(&p, &spec, &cpu_o).expect("cpu sweep");
    let mut backend = HostBackend::new(2);
    let (n2, total2, top2) = run_core_sweep(&p, &spec, &core_o, &mut backend).expect("core sweep");
    assert_eq!((n1, total1), (16, 16));
    assert_eq!((n2, total2), (n1, total1));
    let read = |f: &str| std::fs::read_to_string(f).expect("output");
    assert_eq!(read(&core_o.output), read(&cpu_o.output));
    assert_eq!(serde_json::to_string(&top2).unwrap(), serde_json::to_string(&top1).unwrap());
    assert!(top1.iter().any(|r| r.total_trades > 0), "the grid trades");
    // The same rows when every backend call gets one combo (a snapshot budget of 1 byte).
    let grid = Grid::new(&spec, &p.base_json).expect("grid");
    let cfgs: Vec<ComboConfig> =
        grid.iter_from(0).map(|(c, v)| combo_config(&p, &spec, c, &v).expect("combo")).collect();
    let sid = sweep_id(&spec, &p);
    let mut cache = IndicatorCache::new(64);
    let rows = core_rows(&p, &spec, &cfgs, &sid, &mut cache, 1, &mut backend).expect("core rows");
    let text: String = rows.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect();
    assert_eq!(text, read(&cpu_o.output));
}

/// Sub-bar entries (`evaluate_sub_bar`) and exits (`on_mid`): 15m main bars with 5m sub-bars,
/// entry and exit sub-bars together and each alone.
#[test]
fn core_matches_the_rust_sweep_with_sub_bars() {
    let mut rng = Rng(SEED ^ 0x50b);
    let mut hits = [0u64; 30];
    for (entry, exit, n) in [(true, true, 60), (true, false, 30), (false, true, 30)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = prepared_sub(dir.path(), COINS, BARS, entry, exit);
        assert!(!p.timeline.sub.times.is_empty(), "no sub-bar ticks");
        let mut combos = random_combos(&mut rng, n, 0, false);
        combos.extend(random_combos(&mut rng, 6, n as u64, true));
        let t = run_suite(&p, &combos);
        for (a, b) in hits.iter_mut().zip(t.hits) {
            *a += b;
        }
        eprintln!(
            "sub-bars (entry {entry}, exit {exit}): {} combos, {} ticks, {} fills and {} entry blocks identical; \
             max relative error {:e}; bit-identical: {}",
            t.combos,
            p.timeline.sub.times.len(),
            t.fills,
            t.blocks,
            t.max_rel_err,
            t.bit_identical
        );
        assert!(t.bit_identical, "sub-bar results are not bit-identical (max {:e})", t.max_rel_err);
        assert!(t.fills > 0, "the sub-bar combos trade");
    }
    let line: Vec<String> =
        ALL_CODES.iter().enumerate().map(|(i, c)| format!("{} {}", c.as_str(), hits[i])).collect();
    eprintln!("sub-bar coverage: {}", line.join(", "));
}
