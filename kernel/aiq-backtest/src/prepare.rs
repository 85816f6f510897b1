//! Turn command-line inputs into a ready-to-run replay: merged configs, scoped data, timeline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aiq_kernel::KernelState;
use serde_json::Value;

use crate::config::{ConfigFile, ResolvedConfig};
use crate::data::{iso, parse_time, resolve_db_paths, CandleSet, FundingSet, Timeline};
use crate::report::Inputs;
use crate::BtError;

/// Options shared by `replay`, `sweep` and `dump-indicators`.
#[derive(Debug, Clone, Default)]
pub struct DataOpts {
    pub config: PathBuf,
    pub candles_db: Option<String>,
    pub interval: Option<String>,
    pub funding_db: Option<PathBuf>,
    pub symbols: Option<Vec<String>>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub initial_balance: f64,
    pub slippage_bps: Option<f64>,
    pub live: bool,
    pub strategy_mode: Option<String>,
    pub init_state: Option<PathBuf>,
    pub no_auto_scope: bool,
    pub quiet: bool,
}

/// Everything a run needs, built once (a sweep shares it across combos).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub file: ConfigFile,
    /// The base merged config JSON (no symbol section) after CLI overrides.
    pub base_json: Value,
    pub base: ResolvedConfig,
    /// Merged config JSON per replayed symbol (before typed parse), after CLI overrides.
    pub symbol_json: BTreeMap<String, Value>,
    pub symbols: BTreeMap<String, ResolvedConfig>,
    pub candles: CandleSet,
    pub funding: Option<FundingSet>,
    pub timeline: Timeline,
    pub inputs: Inputs,
    pub init_state: Option<KernelState>,
    pub initial_balance: f64,
}

fn note(quiet: bool, msg: &str) {
    if !quiet {
        eprintln!("{msg}");
    }
}

/// Apply command-line overrides (slippage) to a merged JSON config.
fn cli_overrides(v: &mut Value, o: &DataOpts) {
    if let Some(bps) = o.slippage_bps {
        v["trade"]["slippage_bps"] = serde_json::json!(bps);
    }
}

pub fn load_config(o: &DataOpts) -> Result<ConfigFile, BtError> {
    if !o.config.is_file() {
        return Err(BtError::new(format!(
            "--config {}: the file does not exist (a config file is required; there are no silent defaults)",
            o.config.display()
        )));
    }
    ConfigFile::load(&o.config)
}

pub fn prepare(o: &DataOpts) -> Result<Prepared, BtError> {
    if !(o.initial_balance.is_finite() && o.initial_balance > 0.0) {
        return Err(BtError::new("--initial-balance must be a positive number"));
    }
    if let Some(b) = o.slippage_bps {
        if !(b.is_finite() && b >= 0.0) {
            return Err(BtError::new("--slippage-bps must be a number >= 0"));
        }
    }
    let file = load_config(o)?;
    let mode = o.strategy_mode.as_deref();
    let mut base_json = file.merged_json(None, o.live, mode)?;
    cli_overrides(&mut base_json, o);
    let base = ResolvedConfig::from_json(base_json.clone(), &format!("{} (global)", file.path))?;
    let interval = o.interval.clone().unwrap_or_else(|| base.cfg.engine.interval.clone());
    let spec = o.candles_db.clone().ok_or_else(|| BtError::new("--candles-db is required"))?;
    let paths = resolve_db_paths(&spec, &interval)?;
    let symbols_filter = o.symbols.clone();
    let mut candles = CandleSet::load(&paths, &interval, symbols_filter.as_deref())?;
    if symbols_filter.is_none() && !base.cfg.watchlist_exclude.is_empty() {
        let keep: Vec<usize> = (0..candles.symbols.len())
            .filter(|&i| !base.cfg.watchlist_exclude.contains(&candles.symbols[i]))
            .collect();
        candles.symbols = keep.iter().map(|&i| candles.symbols[i].clone()).collect();
        candles.bars = keep.iter().map(|&i| candles.bars[i].clone()).collect();
    }
    let funding = match &o.funding_db {
        Some(p) => Some(FundingSet::load(p, &candles.symbols)?),
        None => None,
    };

    // Scope: the common range of every input, then --start/--end.
    let (c0, c1) = (candles.first_t().unwrap_or(0), candles.last_t().unwrap_or(0));
    let mut lo = c0;
    let mut hi = c1;
    let mut why = vec![format!("candles {}..{}", iso(c0), iso(c1))];
    if let Some(f) = &funding {
        match f.range() {
            Some((f0, f1)) => {
                why.push(format!("funding {}..{}", iso(f0), iso(f1)));
                if !o.no_auto_scope {
                    lo = lo.max(f0 - candles.interval_ms);
                    hi = hi.min(f1);
                }
                let missing: Vec<&String> =
                    candles.symbols.iter().filter(|s| !f.by_symbol.contains_key(*s)).collect();
                if !missing.is_empty() {
                    note(
                        o.quiet,
                        &format!(
                            "warning: no funding rows for {} in {}",
                            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                            o.funding_db.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
                        ),
                    );
                }
            }
            None => {
                return Err(BtError::new(format!(
                    "{}: no funding rows for the selected symbols",
                    o.funding_db.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
                )))
            }
        }
    }
    if let Some(s) = &o.start {
        lo = lo.max(parse_time(s)?);
    }
    if let Some(e) = &o.end {
        hi = hi.min(parse_time(e)?);
    }
    if lo > hi {
        return Err(BtError::new(format!(
            "the inputs have no common time range ({}; requested {}..{})",
            why.join(", "),
            iso(lo),
            iso(hi)
        )));
    }
    let before = candles.bar_count();
    candles.trim(lo, hi);
    let dropped = before - candles.bar_count();
    if o.start.is_some() || o.end.is_some() {
        why.push("--start/--end".to_string());
    }
    let how = if o.no_auto_scope { "no auto-scope" } else { "auto-scoped to the common range of" };
    let scope_msg = format!(
        "scope: {} .. {} by bar open time ({how}: {}); {} of {} bars outside dropped",
        iso(lo),
        iso(hi),
        why.join(", "),
        dropped,
        before
    );
    note(o.quiet, &scope_msg);
    if candles.bar_count() == 0 {
        return Err(BtError::new(format!("no bars left after scoping: {scope_msg}")));
    }

    let mut symbol_json = BTreeMap::new();
    let mut symbols = BTreeMap::new();
    for s in &candles.symbols {
        let mut j = file.merged_json(Some(s), o.live, mode)?;
        cli_overrides(&mut j, o);
        let r = ResolvedConfig::from_json(j.clone(), &format!("{} ({s})", file.path))?;
        symbol_json.insert(s.clone(), j);
        symbols.insert(s.clone(), r);
    }
    let init_state = match &o.init_state {
        Some(p) => Some(load_state(p)?),
        None => None,
    };
    let timeline = Timeline::build(&candles, funding.as_ref());
    let inputs = Inputs {
        candles: candles.fingerprints.clone(),
        funding: funding.as_ref().and_then(|f| f.fingerprint.clone()),
        interval: interval.clone(),
        symbols: candles.symbols.clone(),
        bars_per_symbol: candles
            .symbols
            .iter()
            .cloned()
            .zip(candles.bars.iter().map(|b| b.len() as u64))
            .collect(),
        first_bar_ms: candles.first_t().unwrap_or(0),
        last_bar_ms: candles.last_t().unwrap_or(0),
        first_bar: iso(candles.first_t().unwrap_or(0)),
        last_bar: iso(candles.last_t().unwrap_or(0)),
        auto_scope: Some(scope_msg),
        init_state: o.init_state.as_ref().map(|p| p.display().to_string()),
    };
    Ok(Prepared {
        file,
        base_json,
        base,
        symbol_json,
        symbols,
        candles,
        funding,
        timeline,
        inputs,
        init_state,
        initial_balance: o.initial_balance,
    })
}

/// A kernel state exported from paper or live (`Kernel.save_state()` text, or `{"state": ...}`).
pub fn load_state(p: &Path) -> Result<KernelState, BtError> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| BtError::new(format!("--init-state {}: cannot read: {e}", p.display())))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| BtError::new(format!("--init-state {}: not JSON: {e}", p.display())))?;
    let v = match v {
        Value::Object(mut m) if m.contains_key("state") && !m.contains_key("cash_usd") => {
            m.remove("state").unwrap_or(Value::Null)
        }
        other => other,
    };
    serde_json::from_value(v)
        .map_err(|e| BtError::new(format!("--init-state {}: not a kernel state: {e}", p.display())))
}

impl Prepared {
    pub fn symbol_cfgs(&self) -> BTreeMap<String, aiq_config::StrategyConfig> {
        self.symbols.iter().map(|(k, v)| (k.clone(), v.cfg.clone())).collect()
    }
}
