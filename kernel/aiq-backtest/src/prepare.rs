//! Turn command-line inputs into a ready-to-run replay: merged configs, scoped data, timeline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aiq_kernel::KernelState;
use serde_json::Value;

use crate::config::{ConfigFile, ResolvedConfig};
use crate::data::{iso, parse_time, resolve_db_paths, CandleSet, FundingSet, SubTicks, Timeline};
use crate::report::{Inputs, SubInputs};
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
    /// Sub-bar entries: interval and DB (default DB: `--candles-db`).
    pub entry_interval: Option<String>,
    pub entry_candles_db: Option<String>,
    /// Sub-bar exits: interval and DB (default DB: `--candles-db`).
    pub exit_interval: Option<String>,
    pub exit_candles_db: Option<String>,
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
    /// Sub-bar candles (`--entry-interval`, `--exit-interval`), scoped like the main candles.
    pub entry_candles: Option<CandleSet>,
    pub exit_candles: Option<CandleSet>,
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

    let sub_what = [
        ("entry", &o.entry_interval, &o.entry_candles_db, &base.cfg.engine.entry_interval),
        ("exit", &o.exit_interval, &o.exit_candles_db, &base.cfg.engine.exit_interval),
    ];
    let mut subs: Vec<Option<CandleSet>> = Vec::new();
    for (what, iv, db, cfg_iv) in sub_what {
        subs.push(load_sub(what, iv, db, cfg_iv, &spec, &interval, candles.interval_ms, &candles.symbols)?);
    }
    let mut exit_candles = subs.pop().flatten();
    let mut entry_candles = subs.pop().flatten();

    // Scope: the common range of every input, then --start/--end.
    let (c0, c1) = (candles.first_t().unwrap_or(0), candles.last_t().unwrap_or(0));
    let mut lo = c0;
    let mut hi = c1;
    let mut why = vec![format!("candles {}..{}", iso(c0), iso(c1))];
    for (what, set) in [("entry", &entry_candles), ("exit", &exit_candles)] {
        if let Some(set) = set {
            let (s0, s1) = (set.first_t().unwrap_or(0), set.last_t().unwrap_or(0));
            why.push(format!("{what} sub-bars ({}) {}..{}", set.interval, iso(s0), iso(s1)));
            if !o.no_auto_scope {
                // Sub-bars must cover every main bar's window: from its open to its close.
                lo = lo.max(s0);
                hi = hi.min(s1 + set.interval_ms - candles.interval_ms);
            }
        }
    }
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
    for set in [&mut entry_candles, &mut exit_candles].into_iter().flatten() {
        // Sub-bars that close inside the scoped main bars' windows: open in [lo, hi + interval).
        set.trim(lo, hi + candles.interval_ms - set.interval_ms);
    }
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
    let mut timeline = Timeline::build(&candles, funding.as_ref());
    if entry_candles.is_some() || exit_candles.is_some() {
        timeline.sub = SubTicks::build(&candles.symbols, entry_candles.as_ref(), exit_candles.as_ref());
        note(
            o.quiet,
            &format!(
                "sub-bars: {} ticks ({} entry, {} exit sub-bars)",
                timeline.sub.times.len(),
                entry_candles.as_ref().map_or(0, CandleSet::bar_count),
                exit_candles.as_ref().map_or(0, CandleSet::bar_count)
            ),
        );
    }
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
        entry_sub_bars: entry_candles.as_ref().map(SubInputs::of),
        exit_sub_bars: exit_candles.as_ref().map(SubInputs::of),
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
        entry_candles,
        exit_candles,
        inputs,
        init_state,
        initial_balance: o.initial_balance,
    })
}

/// Load the entry or exit sub-bar candles when asked for (`--{what}-interval` or
/// `--{what}-candles-db`; the interval defaults to `engine.{what}_interval`, the DB to
/// `--candles-db`).
#[allow(clippy::too_many_arguments)]
fn load_sub(
    what: &str,
    interval: &Option<String>,
    db: &Option<String>,
    cfg_interval: &str,
    main_spec: &str,
    main_interval: &str,
    main_ms: i64,
    symbols: &[String],
) -> Result<Option<CandleSet>, BtError> {
    if interval.is_none() && db.is_none() {
        return Ok(None);
    }
    let iv = match interval {
        Some(i) => i.clone(),
        None if !cfg_interval.is_empty() => cfg_interval.to_string(),
        None => {
            return Err(BtError::new(format!(
                "--{what}-candles-db needs --{what}-interval (or engine.{what}_interval in the config)"
            )))
        }
    };
    let ms = aiq_config::interval_ms(&iv)
        .ok_or_else(|| BtError::new(format!("--{what}-interval: unknown interval {iv:?}")))?;
    if ms > main_ms || main_ms % ms != 0 {
        return Err(BtError::new(format!(
            "--{what}-interval {iv} must divide the main interval {main_interval}"
        )));
    }
    let spec = db.clone().unwrap_or_else(|| main_spec.to_string());
    let paths = resolve_db_paths(&spec, &iv)?;
    let set = CandleSet::load(&paths, &iv, Some(symbols))
        .map_err(|e| BtError::new(format!("--{what}-candles-db: {e}")))?;
    Ok(Some(set))
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
