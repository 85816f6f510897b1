//! Test data and helpers shared by the backtester's integration suites: real Hyperliquid bars
//! and funding from `$AI_QUANT_SHARED_DATA` (else `../shared/data` beside the repository),
//! converted to the backtester's SQLite tables by tests/backtest/bt_helpers.py with the
//! project's venv, and a small seeded generator for random configs.
#![allow(dead_code)] // each suite uses its own part

use std::path::{Path, PathBuf};

use aiq_backtest::prepare::{prepare, DataOpts, Prepared};
use aiq_backtest::sim::RunResult;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

fn shared_data(root: &Path) -> PathBuf {
    match std::env::var_os("AI_QUANT_SHARED_DATA") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => root.parent().expect("parent of the repository").join("shared").join("data"),
    }
}

/// Run a Python snippet (with tests/backtest on its path) that writes `candles` and `funding`
/// for `coins` from the shared feather files; `bars` is the number of 5m bars taken.
fn convert(script: &str, candles: &Path, funding: &Path, coins: &str, bars: usize) {
    let root = repo_root();
    let data = shared_data(&root);
    assert!(
        data.join("hyperliquid/futures/BTC_USDC_USDC-5m-futures.feather").is_file(),
        "shared market data not found under {} (set AI_QUANT_SHARED_DATA)",
        data.display()
    );
    let venv = root.join(".venv/bin/python");
    let python = if venv.is_file() { venv } else { PathBuf::from("python3") };
    let out = std::process::Command::new(&python)
        .current_dir(&root)
        .env("AI_QUANT_SHARED_DATA", &data)
        .args(["-c", script])
        .arg(candles)
        .arg(funding)
        .arg(coins)
        .arg(bars.to_string())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    assert!(
        out.status.success(),
        "converting the shared data failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const PREAMBLE: &str = r#"
import sys
sys.path.insert(0, "tests/backtest")
from pathlib import Path
from bt_helpers import hl_frames, hl_funding, write_candles_db, write_funding_db
coins = sys.argv[3].split(",")
"#;

/// Candle and funding SQLite files for `coins` (their first `bars` 5m bars).
pub fn write_dbs(dir: &Path, coins: &str, bars: usize) -> (PathBuf, PathBuf) {
    let (candles, funding) = (dir.join("candles_5m.db"), dir.join("funding.db"));
    let script = format!(
        "{PREAMBLE}{}",
        r#"
write_candles_db(Path(sys.argv[1]), hl_frames(coins, "5m", int(sys.argv[4])), "5m")
write_funding_db(Path(sys.argv[2]), hl_funding(coins))
"#
    );
    convert(&script, &candles, &funding, coins, bars);
    (candles, funding)
}

/// 15m main bars with 5m sub-bars over the same span (the first `bars` 5m bars).
pub fn write_sub_dbs(dir: &Path, coins: &str, bars: usize) -> (PathBuf, PathBuf) {
    let (candles, funding) = (dir.join("candles_sub.db"), dir.join("funding.db"));
    let script = format!(
        "{PREAMBLE}{}",
        r#"
f5 = hl_frames(coins, "5m", int(sys.argv[4]))
t0 = max(int(df["t"].iloc[0]) for df in f5.values())
t1 = min(int(df["t"].iloc[-1]) for df in f5.values())
f15 = {c: df[(df["t"] >= t0) & (df["t"] <= t1)] for c, df in hl_frames(coins, "15m").items()}
write_candles_db(Path(sys.argv[1]), f15, "15m")
write_candles_db(Path(sys.argv[1]), f5, "5m")
write_funding_db(Path(sys.argv[2]), hl_funding(coins))
"#
    );
    convert(&script, &candles, &funding, coins, bars);
    (candles, funding)
}

fn prepared_with(
    dir: &Path,
    candles: PathBuf,
    funding: PathBuf,
    interval: &str,
    sub: Option<(bool, bool)>,
) -> Prepared {
    let cfg = dir.join("config.yaml");
    std::fs::write(&cfg, "global: {}\n").expect("config");
    let (entry, exit) = sub.unwrap_or((false, false));
    prepare(&DataOpts {
        config: cfg,
        candles_db: Some(candles.display().to_string()),
        interval: Some(interval.into()),
        funding_db: Some(funding),
        initial_balance: 10_000.0,
        quiet: true,
        entry_interval: entry.then(|| "5m".to_string()),
        exit_interval: exit.then(|| "5m".to_string()),
        ..Default::default()
    })
    .expect("prepare")
}

/// 5m bars of `coins` with their funding, an empty config (the defaults), 10,000 USD.
pub fn prepared(dir: &Path, coins: &str, bars: usize) -> Prepared {
    let (candles, funding) = write_dbs(dir, coins, bars);
    prepared_with(dir, candles, funding, "5m", None)
}

/// 15m main bars with 5m entry and/or exit sub-bars.
pub fn prepared_sub(dir: &Path, coins: &str, bars: usize, entry: bool, exit: bool) -> Prepared {
    let (candles, funding) = write_sub_dbs(dir, coins, bars);
    prepared_with(dir, candles, funding, "15m", Some((entry, exit)))
}

/// splitmix64: a small, seeded, dependency-free generator.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize]
    }
    /// 1.0 with probability `p`, else 0.0 (a boolean config override).
    pub fn flag(&mut self, p: f64) -> f64 {
        f64::from(u8::from(self.chance(p)))
    }
}

/// Everything a run decided, as text (Debug prints every f64 exactly).
pub fn decided(r: &RunResult) -> String {
    format!(
        "fills {:?}\ntrips {:?}\nblocked {:?}\nsignals {:?} entries {} adds {} liquidations {}\nequity {:?} cash {:?}",
        r.fills, r.trips, r.blocked_by_symbol, r.signals, r.entries, r.adds, r.liquidations, r.equity, r.cash
    )
}
