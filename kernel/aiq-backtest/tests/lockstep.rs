//! The sweep runs combos on the same shared series as lockstep groups (`sim::run_group`: each
//! block of steps has its snapshots assembled once, then every run of the group advances over
//! it). Each run must decide exactly what it decides alone: this suite runs groups of random
//! decision-parameter combos (pyramiding, partial take profit, reverse, the BTC regime gate,
//! funding; 5m bars, and 15m bars with 5m entry and exit sub-bars) both ways and requires every
//! fill, round trip, entry block and the final equity to be identical.

mod common;

use std::collections::BTreeMap;

use aiq_backtest::config::ResolvedConfig;
use aiq_backtest::prepare::Prepared;
use aiq_backtest::sim::{make_kernel, run_group, run_with, Record};
use aiq_backtest::sweep::{lockstep_groups, ComboConfig, IndicatorCache};
use aiq_config::StrategyConfig;
use common::{decided, prepared, prepared_sub, Rng};

const COINS: &str = "BTC,ETH,SOL,DOGE,HYPE";
const BARS: usize = 6000;
const SEED: u64 = 0x5eed_10c4_2026_0003;

/// A group's indicator windows, then per member decision parameters only (the reads stay the
/// same, so the members share every series).
fn group(r: &mut Rng, first: u64, n: usize) -> Vec<ComboConfig> {
    let mut base = StrategyConfig::default();
    base.indicators.ema_fast_window = r.pick(&[8, 12, 20]);
    base.indicators.ema_slow_window = r.pick(&[30, 50]);
    base.indicators.adx_window = r.pick(&[10, 14]);
    base.filters.enable_ranging_filter = r.chance(0.5);
    base.market_regime.enable_regime_gate = r.chance(0.5);
    (0..n)
        .map(|j| {
            let mut c = base.clone();
            let t = &mut c.trade;
            t.sl_atr_mult = r.range(0.8, 3.0);
            t.trailing_start_atr = r.range(0.3, 2.0);
            t.trailing_distance_atr = r.range(0.2, 1.5);
            t.enable_pyramiding = r.chance(0.5);
            t.enable_partial_tp = r.chance(0.5);
            t.tp_partial_atr_mult = r.range(0.5, 2.0);
            t.allow_reverse = r.chance(0.5);
            t.leverage = r.pick(&[1.0, 3.0, 10.0]);
            t.max_open_positions = r.pick(&[1, 3, 20]);
            t.entry_cooldown_s = 0.0;
            t.exit_cooldown_s = 0.0;
            c.thresholds.entry.min_adx = r.range(10.0, 28.0);
            c.market_regime.regime_gate_btc_adx_min = r.range(15.0, 30.0);
            ComboConfig {
                combo: first + j as u64,
                base: ResolvedConfig { cfg: c, json: serde_json::Value::Null, config_id: String::new() },
                per_symbol: BTreeMap::new(),
                overrides: BTreeMap::new(),
            }
        })
        .collect()
}

/// Runs `groups` of combos alone and in lockstep; returns the fills seen.
fn same_alone_and_in_lockstep(p: &Prepared, groups: &[Vec<ComboConfig>]) -> usize {
    let rec = Record { fills: true, equity_curve: true };
    let mut fills = 0;
    for g in groups {
        let mut cache = IndicatorCache::new(512);
        cache.reads_only = true;
        let shared = cache.prepare(p, g);
        // The premise of a group: its members share every series (one group on one thread).
        assert_eq!(lockstep_groups(&shared, 1), vec![(0..g.len()).collect::<Vec<_>>()]);
        let snaps = shared[0].as_deref().expect("series fit the budget");
        let kernels = g
            .iter()
            .map(|cc| make_kernel(&cc.base.cfg, &cc.per_symbol, 10_000.0, None).expect("kernel"))
            .collect();
        let together = run_group(kernels, &p.timeline, rec, 10_000.0, snaps).expect("lockstep");
        assert_eq!(together.len(), g.len());
        for (cc, t) in g.iter().zip(&together) {
            let k = make_kernel(&cc.base.cfg, &cc.per_symbol, 10_000.0, None).expect("kernel");
            let alone = run_with(k, &p.timeline, rec, 10_000.0, Some(snaps)).expect("alone");
            assert_eq!(decided(t), decided(&alone), "combo {}: lockstep decided differently", cc.combo);
            assert_eq!(t.equity_curve, alone.equity_curve, "combo {}", cc.combo);
            assert_eq!((t.bars, t.steps, t.sub_ticks), (alone.bars, alone.steps, alone.sub_ticks));
            fills += t.fills.len();
        }
    }
    fills
}

#[test]
fn lockstep_groups_decide_like_runs_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = prepared(tmp.path(), COINS, BARS);
    let mut r = Rng(SEED);
    let groups: Vec<Vec<ComboConfig>> = [1usize, 3, 8, 16].iter().map(|&n| group(&mut r, 0, n)).collect();
    let fills = same_alone_and_in_lockstep(&p, &groups);
    assert!(fills > 1000, "only {fills} fills: the groups barely trade");
}

#[test]
fn lockstep_groups_with_sub_bars_decide_like_runs_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = prepared_sub(tmp.path(), COINS, BARS, true, true);
    assert!(!p.timeline.sub.times.is_empty());
    let mut r = Rng(SEED ^ 1);
    let groups: Vec<Vec<ComboConfig>> = [2usize, 6].iter().map(|&n| group(&mut r, 0, n)).collect();
    let fills = same_alone_and_in_lockstep(&p, &groups);
    assert!(fills > 200, "only {fills} fills: the groups barely trade");
}

#[test]
fn groups_follow_the_series_and_are_cut_for_the_threads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = prepared(tmp.path(), COINS, 600);
    let mut r = Rng(SEED ^ 2);
    // Two indicator configs, interleaved: 0, 2, 4 share series, 1, 3, 5 share others.
    let (a, b) = (group(&mut r, 0, 3), group(&mut r, 0, 3));
    let mut combos: Vec<ComboConfig> = a.into_iter().zip(b).flat_map(|(x, y)| [x, y]).collect();
    combos[1].base.cfg.indicators.ema_fast_window = combos[0].base.cfg.indicators.ema_fast_window + 1;
    for i in [3, 5] {
        combos[i].base.cfg.indicators = combos[1].base.cfg.indicators.clone();
        combos[i].base.cfg.filters = combos[1].base.cfg.filters.clone();
        combos[i].base.cfg.market_regime.enable_regime_gate =
            combos[1].base.cfg.market_regime.enable_regime_gate;
    }
    let mut cache = IndicatorCache::new(512);
    cache.reads_only = true;
    let mut shared = cache.prepare(&p, &combos);
    assert_eq!(lockstep_groups(&shared, 1), vec![vec![0, 2, 4], vec![1, 3, 5]]);
    // Two threads: groups of at most 3 (6 combos / 2 threads).
    assert_eq!(lockstep_groups(&shared, 2), vec![vec![0, 2, 4], vec![1, 3, 5]]);
    assert_eq!(lockstep_groups(&shared, 3), vec![vec![0, 2], vec![4], vec![1, 3], vec![5]]);
    // A combo on its own banks (over the memory budget) is a group of its own.
    shared[2] = None;
    assert_eq!(lockstep_groups(&shared, 1), vec![vec![0, 4], vec![1, 3, 5], vec![2]]);
}
