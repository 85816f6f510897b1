//! Reads-only indicator banks (`aiq_kernel::reads`): the replay and the sweep compute only the
//! indicator groups the configured strategy and its enabled gates and exits read; every other
//! snapshot field is NaN. If any decision path read a group the reads-set omits, NaN would reach
//! a comparison, and over many configs some decision would change: this suite runs random
//! real-data configs (both strategies, every read-gating switch on and off, per-symbol
//! strategies, the BTC regime gate) with full banks and with reads-only banks, through each
//! path that builds banks (the kernel's own banks, the pipelined producer, the sweep's shared
//! series), and requires every fill, round trip, entry block and the final equity to be
//! identical.
//!
//! Data: `$AI_QUANT_SHARED_DATA` (else `../shared/data` beside the repository), converted to the
//! backtester's SQLite tables by tests/backtest/bt_helpers.py with the project's venv.

mod common;

use common::{decided, prepared, Rng};

use std::collections::BTreeMap;

use aiq_backtest::config::ResolvedConfig;
use aiq_backtest::sim::{make_kernel, run, run_pipelined, Record};
use aiq_backtest::sweep::{run_config_with, ComboConfig, IndicatorCache, SweepSpec};
use aiq_config::{MacdMode, StrategyConfig, StrategyName};
use aiq_indicators::Outputs;

const COINS: &str = "BTC,ETH,SOL,DOGE,HYPE";
const BARS: usize = 6000;
const CONFIGS: usize = 48;
const SEED: u64 = 0x5eed_0e4d_2026_0002;

/// A random Mei Alpha v1 config: every switch that changes what is read, on or off, with
/// loose entries so that positions open, add, trail and exit.
fn mei(r: &mut Rng) -> StrategyConfig {
    let mut c = StrategyConfig::default();
    let i = &mut c.indicators;
    i.ema_fast_window = r.pick(&[8, 12, 20]);
    i.ema_slow_window = r.pick(&[30, 50]);
    i.ema_macro_window = r.pick(&[100, 200]);
    i.adx_window = r.pick(&[10, 14]);
    let f = &mut c.filters;
    f.enable_ranging_filter = r.chance(0.5);
    f.enable_anomaly_filter = r.chance(0.5);
    f.enable_extension_filter = r.chance(0.5);
    f.require_adx_rising = r.chance(0.5);
    f.require_volume_confirmation = r.chance(0.5);
    f.vol_confirm_include_prev = r.chance(0.5);
    f.use_stoch_rsi_filter = r.chance(0.5);
    f.require_btc_alignment = r.chance(0.5);
    f.require_macro_alignment = r.chance(0.5);
    let e = &mut c.thresholds.entry;
    e.min_adx = r.range(10.0, 28.0);
    e.ave_enabled = r.chance(0.5);
    e.macd_hist_entry_mode = r.pick(&[MacdMode::Accel, MacdMode::Sign, MacdMode::None]);
    e.enable_pullback_entries = r.chance(0.5);
    e.pullback_require_macd_sign = r.chance(0.5);
    e.enable_slow_drift_entries = r.chance(0.5);
    e.slow_drift_min_slope_pct = r.range(0.0, 0.002);
    e.slow_drift_min_adx = r.range(5.0, 20.0);
    e.slow_drift_require_macd_sign = r.chance(0.5);
    let t = &mut c.trade;
    t.enable_vol_buffered_trailing = r.chance(0.5);
    t.enable_reef_filter = r.chance(0.5);
    t.enable_ssf_filter = r.chance(0.5);
    t.enable_pyramiding = r.chance(0.5);
    t.enable_partial_tp = r.chance(0.5);
    t.allow_reverse = r.chance(0.5);
    t.block_exits_on_extreme_dev = r.chance(0.5);
    t.enable_breakeven_stop = r.chance(0.5);
    t.enable_rsi_overextension_exit = r.chance(0.5);
    t.enable_dynamic_sizing = r.chance(0.5);
    t.sl_atr_mult = r.range(0.8, 3.0);
    t.trailing_start_atr = r.range(0.3, 2.0);
    t.trailing_distance_atr = r.range(0.2, 1.5);
    t.entry_cooldown_s = 0.0;
    t.exit_cooldown_s = 0.0;
    let m = &mut c.market_regime;
    m.enable_regime_gate = r.chance(0.3);
    m.regime_gate_fail_open = r.chance(0.5);
    m.regime_gate_btc_adx_min = r.range(15.0, 30.0);
    m.enable_regime_filter = r.chance(0.2);
    m.enable_auto_reverse = r.chance(0.2);
    c
}

fn ema_cross(r: &mut Rng) -> StrategyConfig {
    let mut c = StrategyConfig { strategy: StrategyName::EmaCross, ..Default::default() };
    c.indicators.ema_fast_window = r.pick(&[5, 9, 12]);
    c.indicators.ema_slow_window = r.pick(&[20, 30, 60]);
    c
}

fn combo(n: u64, base: StrategyConfig, per_symbol: BTreeMap<String, StrategyConfig>) -> ComboConfig {
    ComboConfig {
        combo: n,
        base: ResolvedConfig { cfg: base, json: serde_json::Value::Null, config_id: String::new() },
        per_symbol,
        overrides: BTreeMap::new(),
    }
}

#[test]
fn reads_only_banks_decide_fill_for_fill_like_full_banks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = prepared(tmp.path(), COINS, BARS);
    let symbols = p.timeline.symbols.clone();
    assert!(symbols.len() >= 4 && symbols.iter().any(|s| s == "BTC"));
    let spec = SweepSpec { axes: Vec::new(), initial_balance: Some(10_000.0), lookback: None, points: None };
    let rec = Record { fills: true, equity_curve: false };
    let mut r = Rng(SEED);
    let mut skipped: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut fills = 0usize;
    for n in 0..CONFIGS as u64 {
        let base = if r.chance(0.2) { ema_cross(&mut r) } else { mei(&mut r) };
        let mut per_symbol = BTreeMap::new();
        if r.chance(0.4) {
            // Mixed kernels: another strategy or other switches for some symbols (BTC too,
            // whose ADX and ATR the regime gate of the others may read).
            for s in &symbols {
                if r.chance(0.5) {
                    per_symbol.insert(s.clone(), if r.chance(0.5) { ema_cross(&mut r) } else { mei(&mut r) });
                }
            }
        }
        let cc = combo(n, base, per_symbol);
        let kernel = |reads_only: bool| {
            let mut k = make_kernel(&cc.base.cfg, &cc.per_symbol, 10_000.0, None).expect("kernel");
            k.set_reads_only_banks(reads_only);
            k
        };
        // The daemon's kernel (`Kernel::new`, as bt_runtime builds it) keeps full banks.
        let daemon = aiq_kernel::Kernel::new(cc.base.cfg.clone(), 10_000.0, aiq_kernel::FillMode::External);
        for s in &symbols {
            assert!(daemon.bank_outputs(s).is_all() && kernel(false).bank_outputs(s).is_all());
            let o = kernel(true).bank_outputs(s);
            for (name, g) in Outputs::GROUPS {
                if !o.contains(g) {
                    *skipped.entry(name).or_default() += 1;
                }
            }
        }
        let full = run(kernel(false), &p.timeline, rec, 10_000.0).expect("full banks");
        let want = decided(&full);
        fills += full.fills.len();
        let own = run(kernel(true), &p.timeline, rec, 10_000.0).expect("reads-only banks");
        assert_eq!(decided(&own), want, "config {n}: the kernel's reads-only banks decided differently");
        let piped = run_pipelined(kernel(true), &p.timeline, rec, 10_000.0).expect("pipelined");
        assert_eq!(decided(&piped), want, "config {n}: the pipelined reads-only banks decided differently");
        // The CPU sweep: shared series of what is read (NaN series for the rest).
        let mut cache = IndicatorCache::new(256);
        cache.reads_only = true;
        let shared = cache.prepare(&p, std::slice::from_ref(&cc));
        let snaps = shared[0].as_deref().expect("series fit the budget");
        let (_, swept) = run_config_with(&p, &spec, &cc, "reads", Some(snaps), rec).expect("sweep");
        assert_eq!(decided(&swept), want, "config {n}: the sweep's reads-only series decided differently");
    }
    // The suite exercises what it claims: real trading, and every optional group skipped often.
    assert!(fills > 20 * CONFIGS, "only {fills} fills over {CONFIGS} configs");
    // `ema_fast` and `ema_slow` are read by every strategy (`aiq_kernel::reads::ALWAYS`).
    for (name, _) in Outputs::GROUPS.into_iter().filter(|(_, g)| !aiq_kernel::reads::ALWAYS.contains(*g)) {
        let min = match name {
            "adx" | "atr" | "rsi" | "macd" | "vol" => 10, // read by every Mei Alpha config
            _ => 30,
        };
        assert!(skipped.get(name).copied().unwrap_or(0) >= min, "{name} skipped too rarely: {skipped:?}");
    }
}
