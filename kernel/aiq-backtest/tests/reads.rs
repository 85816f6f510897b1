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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aiq_backtest::config::ResolvedConfig;
use aiq_backtest::prepare::{prepare, DataOpts, Prepared};
use aiq_backtest::sim::{make_kernel, run, run_pipelined, Record, RunResult};
use aiq_backtest::sweep::{run_config_with, ComboConfig, IndicatorCache, SweepSpec};
use aiq_config::{MacdMode, StrategyConfig, StrategyName};
use aiq_indicators::Outputs;

const COINS: &str = "BTC,ETH,SOL,DOGE,HYPE";
const BARS: usize = 6000;
const CONFIGS: usize = 48;
const SEED: u64 = 0x5eed_0e4d_2026_0002;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

fn prepared(dir: &Path) -> Prepared {
    let root = repo_root();
    let data = match std::env::var_os("AI_QUANT_SHARED_DATA") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => root.parent().expect("parent of the repository").join("shared").join("data"),
    };
    assert!(
        data.join("hyperliquid/futures/BTC_USDC_USDC-5m-futures.feather").is_file(),
        "shared market data not found under {} (set AI_QUANT_SHARED_DATA)",
        data.display()
    );
    let venv = root.join(".venv/bin/python");
    let python = if venv.is_file() { venv } else { PathBuf::from("python3") };
    let (candles, funding) = (dir.join("candles_5m.db"), dir.join("funding.db"));
    let script = r#"
import sys
sys.path.insert(0, "tests/backtest")
from pathlib import Path
from bt_helpers import hl_frames, hl_funding, write_candles_db, write_funding_db
coins = sys.argv[3].split(",")
write_candles_db(Path(sys.argv[1]), hl_frames(coins, "5m", int(sys.argv[4])), "5m")
write_funding_db(Path(sys.argv[2]), hl_funding(coins))
"#;
    let out = std::process::Command::new(&python)
        .current_dir(&root)
        .env("AI_QUANT_SHARED_DATA", &data)
        .args(["-c", script])
        .arg(&candles)
        .arg(&funding)
        .arg(COINS)
        .arg(BARS.to_string())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    assert!(
        out.status.success(),
        "converting the shared data failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = dir.join("config.yaml");
    std::fs::write(&cfg, "global: {}\n").expect("config");
    prepare(&DataOpts {
        config: cfg,
        candles_db: Some(candles.display().to_string()),
        interval: Some("5m".into()),
        funding_db: Some(funding),
        initial_balance: 10_000.0,
        quiet: true,
        ..Default::default()
    })
    .expect("prepare")
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

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

/// Everything a run decided, as text (Debug prints every f64 exactly).
fn decided(r: &RunResult) -> String {
    format!(
        "fills {:?}\ntrips {:?}\nblocked {:?}\nsignals {:?} entries {} adds {} liquidations {}\nequity {:?} cash {:?}",
        r.fills, r.trips, r.blocked_by_symbol, r.signals, r.entries, r.adds, r.liquidations, r.equity, r.cash
    )
}

#[test]
fn reads_only_banks_decide_fill_for_fill_like_full_banks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = prepared(tmp.path());
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
