//! `sweep`: a grid of config overrides run in parallel (rayon), streamed to JSONL in combo order,
//! with a bounded top-K heap so memory stays flat however many combos run.
//!
//! Spec YAML: `{axes: [{path, values: [f64...], gate?: {path, eq}}], initial_balance?}`.
//! A gated axis expands only when its gate equals `eq` (the gate is a swept axis listed earlier,
//! or else the base config's value); otherwise it stays at its first value.
//! With `points: [[f64...]]` the combos are those rows instead of a grid (one value per axis, in
//! axis order; the axes then list no values): how a batch of optimiser trials runs as one sweep.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::{BufRead, Write};
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{apply_override, canonical_json, config_id, ResolvedConfig};
use crate::metrics::{periods_per_year, EquityStats};
use crate::prepare::Prepared;
use crate::sim::{make_kernel, run_group, run_with, Record, RunResult, SharedSnapshots, SymbolSeries};
use crate::BtError;
use aiq_indicators::{BaseSeries, IndicatorBank, SeriesKey, SeriesSet};
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub path: String,
    pub eq: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    pub path: String,
    #[serde(default)]
    pub values: Vec<f64>,
    #[serde(default)]
    pub gate: Option<Gate>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    pub axes: Vec<Axis>,
    #[serde(default)]
    pub initial_balance: Option<f64>,
    /// Accepted for compatibility; the kernel warms up on its own bars (unused).
    #[serde(default)]
    pub lookback: Option<u32>,
    /// Explicit combos instead of the grid: one value per axis each, in axis order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<Vec<Vec<f64>>>,
}

impl SweepSpec {
    pub fn load(path: &Path) -> Result<Self, BtError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BtError::new(format!("--sweep-spec {}: cannot read: {e}", path.display())))?;
        let spec: SweepSpec = serde_norway::from_str(&text)
            .map_err(|e| BtError::new(format!("--sweep-spec {}: {e}", path.display())))?;
        spec.check(&path.display().to_string())?;
        Ok(spec)
    }

    fn check(&self, origin: &str) -> Result<(), BtError> {
        if self.axes.is_empty() {
            return Err(BtError::new(format!("{origin}: `axes` is empty")));
        }
        if let Some(points) = &self.points {
            if points.is_empty() {
                return Err(BtError::new(format!("{origin}: `points` is empty")));
            }
            for a in &self.axes {
                if !a.values.is_empty() || a.gate.is_some() {
                    return Err(BtError::new(format!(
                        "{origin}: axis {}: with `points` the values are in the points (no values, no gate)",
                        a.path
                    )));
                }
            }
            if let Some((j, p)) = points.iter().enumerate().find(|(_, p)| p.len() != self.axes.len()) {
                return Err(BtError::new(format!(
                    "{origin}: point {j} has {} values for {} axes",
                    p.len(),
                    self.axes.len()
                )));
            }
        }
        for (i, a) in self.axes.iter().enumerate() {
            if a.values.is_empty() && self.points.is_none() {
                return Err(BtError::new(format!("{origin}: axis {} has no values", a.path)));
            }
            if self.axes[..i].iter().any(|b| b.path == a.path) {
                return Err(BtError::new(format!("{origin}: axis {} is listed twice", a.path)));
            }
            if let Some(g) = &a.gate {
                if self.axes[i + 1..].iter().any(|b| b.path == g.path) {
                    return Err(BtError::new(format!(
                        "{origin}: axis {} is gated on {}, which must be listed before it",
                        a.path, g.path
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The numeric value of a config field (booleans 0/1, enums by index), for gates.
fn numeric_at(cfg: &Value, path: &str) -> Result<f64, BtError> {
    let mut v = cfg;
    for part in path.split('.') {
        v = v
            .get(part)
            .ok_or_else(|| BtError::new(format!("gate path {path:?} does not exist in the config schema")))?;
    }
    let leaf = path.rsplit('.').next().unwrap_or(path);
    Ok(match v {
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => {
            let names: &[&str] = if leaf.ends_with("confidence") {
                &["low", "medium", "high"]
            } else if leaf == "macd_hist_entry_mode" {
                &["accel", "sign", "none"]
            } else {
                &["mei_alpha_v1", "ema_cross"]
            };
            names.iter().position(|n| n == s).map_or(f64::NAN, |i| i as f64)
        }
        _ => f64::NAN,
    })
}

/// The grid, expanded lazily: combos come in a fixed order (first axis slowest) without the grid
/// being materialised; counting and indexing (`nth_digits`) use a count memoised on the digits
/// of gate axes only, so memory does not grow with the number of combos.
pub struct Grid {
    values: Vec<Vec<f64>>,
    gates: Vec<Option<GateRef>>,
    /// Axes that gate a later axis (their digit matters to the count of what follows).
    is_gate: Vec<bool>,
    memo: std::cell::RefCell<std::collections::HashMap<(usize, Vec<u32>), u128>>,
    total: u64,
    /// The spec's explicit combos (then the grid fields are empty).
    points: Option<Vec<Vec<f64>>>,
}

/// A gated axis is open on the base config's value (`Fixed`) or when axis `j` equals `eq`.
#[derive(Clone, Copy)]
enum GateRef {
    Fixed(bool),
    Axis(usize, f64),
}

impl Grid {
    pub fn new(spec: &SweepSpec, base: &Value) -> Result<Self, BtError> {
        if let Some(points) = &spec.points {
            return Ok(Grid {
                values: Vec::new(),
                gates: Vec::new(),
                is_gate: Vec::new(),
                memo: Default::default(),
                total: points.len() as u64,
                points: Some(points.clone()),
            });
        }
        let mut gates = Vec::new();
        let mut is_gate = vec![false; spec.axes.len()];
        for (i, a) in spec.axes.iter().enumerate() {
            gates.push(match &a.gate {
                None => None,
                Some(g) => match spec.axes[..i].iter().position(|b| b.path == g.path) {
                    Some(j) => {
                        is_gate[j] = true;
                        Some(GateRef::Axis(j, g.eq))
                    }
                    None => Some(GateRef::Fixed(numeric_at(base, &g.path)? == g.eq)),
                },
            });
        }
        let mut grid = Grid {
            values: spec.axes.iter().map(|a| a.values.clone()).collect(),
            gates,
            is_gate,
            memo: Default::default(),
            total: 0,
            points: None,
        };
        let total = grid.count_from(0, &[]);
        grid.total = u64::try_from(total)
            .map_err(|_| BtError::new(format!("the sweep grid has {total} combos, more than 2^64 - 1")))?;
        Ok(grid)
    }

    /// Number of combos.
    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// How many values axis `i` takes given the digits of earlier axes.
    fn width(&self, i: usize, digits: &[u32]) -> usize {
        let open = match self.gates[i] {
            None => true,
            Some(GateRef::Fixed(b)) => b,
            Some(GateRef::Axis(j, eq)) => self.values[j][digits[j] as usize] == eq,
        };
        if open {
            self.values[i].len()
        } else {
            1
        }
    }

    /// Combos over axes `i..` given the digits of axes `..i`.
    fn count_from(&self, i: usize, digits: &[u32]) -> u128 {
        if i == self.values.len() {
            return 1;
        }
        let key: Vec<u32> =
            digits.iter().enumerate().filter(|(j, _)| self.is_gate[*j]).map(|(_, &d)| d).collect();
        if let Some(&c) = self.memo.borrow().get(&(i, key.clone())) {
            return c;
        }
        let w = self.width(i, digits);
        let mut d = digits.to_vec();
        d.push(0);
        let c = if self.is_gate[i] {
            let mut sum = 0u128;
            for v in 0..w {
                d[i] = v as u32;
                sum = sum.saturating_add(self.count_from(i + 1, &d));
            }
            sum
        } else {
            (w as u128).saturating_mul(self.count_from(i + 1, &d))
        };
        self.memo.borrow_mut().insert((i, key), c);
        c
    }

    /// Digits of combo `n` (0-based, grid order), `None` past the end (and for `points`).
    pub fn nth_digits(&self, n: u64) -> Option<Vec<u32>> {
        if n >= self.total || self.points.is_some() {
            return None;
        }
        let mut n = u128::from(n);
        let mut d: Vec<u32> = Vec::with_capacity(self.values.len());
        for i in 0..self.values.len() {
            let w = self.width(i, &d);
            d.push(0);
            for v in 0..w {
                d[i] = v as u32;
                let c = self.count_from(i + 1, &d);
                if n < c {
                    break;
                }
                n -= c;
            }
        }
        Some(d)
    }

    /// Step `d` to the next combo (last axis fastest); false at the end.
    pub fn advance(&self, d: &mut [u32]) -> bool {
        for i in (0..d.len()).rev() {
            if (d[i] as usize) + 1 < self.width(i, d) {
                d[i] += 1;
                d[i + 1..].iter_mut().for_each(|x| *x = 0);
                return true;
            }
        }
        false
    }

    pub fn values_of(&self, d: &[u32]) -> Vec<f64> {
        d.iter().enumerate().map(|(i, &x)| self.values[i][x as usize]).collect()
    }

    /// Combos `start..` as `(index, values)`.
    pub fn iter_from(&self, start: u64) -> Box<dyn Iterator<Item = (u64, Vec<f64>)> + '_> {
        if let Some(points) = &self.points {
            let skip = usize::try_from(start).unwrap_or(usize::MAX);
            return Box::new(points.iter().enumerate().skip(skip).map(|(i, v)| (i as u64, v.clone())));
        }
        let mut cur = self.nth_digits(start);
        let mut n = start;
        Box::new(std::iter::from_fn(move || {
            let d = cur.as_mut()?;
            let out = (n, self.values_of(d));
            n += 1;
            if !self.advance(d) {
                cur = None;
            }
            Some(out)
        }))
    }
}

/// Expand the whole grid (tests and small grids; the sweep iterates [`Grid`] lazily).
pub fn expand(spec: &SweepSpec, base: &Value) -> Result<Vec<Vec<f64>>, BtError> {
    Ok(Grid::new(spec, base)?.iter_from(0).map(|(_, v)| v).collect())
}

/// Check every axis path exists and every value fits its field's type (`--verify-overrides`).
/// Also reports axes whose values never change the base config. Whether a value is valid can
/// depend on other axes (`ema_fast_window < ema_slow_window`): that is [`check_combos`]'s job,
/// on each combo's merged config, not on the base config with one axis changed.
pub fn verify(spec: &SweepSpec, p: &Prepared) -> Result<Vec<String>, BtError> {
    let mut notes = Vec::new();
    for (i, a) in spec.axes.iter().enumerate() {
        let mut changes = false;
        let values: Vec<f64> = match &spec.points {
            Some(points) => {
                let mut v: Vec<f64> = points.iter().map(|p| p[i]).collect();
                v.sort_by(f64::total_cmp);
                v.dedup_by(|a, b| a.to_bits() == b.to_bits());
                v
            }
            None => a.values.clone(),
        };
        for &v in &values {
            let mut j = p.base_json.clone();
            apply_override(&mut j, &a.path, v)?;
            changes |= j != p.base_json;
        }
        if !changes {
            notes.push(format!("axis {} never changes the base config", a.path));
        }
        if let Some(g) = &a.gate {
            numeric_at(&p.base_json, &g.path)?;
        }
    }
    Ok(notes)
}

/// Why combo `values` is invalid (its merged base or symbol config fails validation), if it is.
pub fn combo_error(p: &Prepared, spec: &SweepSpec, values: &[f64]) -> Result<Option<String>, BtError> {
    let merged = |j: &Value| -> Result<Value, BtError> {
        let mut j = j.clone();
        for (a, &v) in spec.axes.iter().zip(values) {
            apply_override(&mut j, &a.path, v)?;
        }
        Ok(j)
    };
    if let Err(e) = aiq_config::from_json_value(merged(&p.base_json)?) {
        return Ok(Some(e.to_string()));
    }
    for (s, j) in &p.symbol_json {
        if let Err(e) = aiq_config::from_json_value(merged(j)?) {
            return Ok(Some(format!("symbol {s}: {e}")));
        }
    }
    Ok(None)
}

/// The result of validating each combo's merged config over a range of the grid.
#[derive(Debug, Default)]
pub struct InvalidCombos {
    /// Combos checked.
    pub checked: u64,
    /// Invalid combos among them.
    pub count: u64,
    /// The first few, in combo order: "combo N (path=value, ...): reason".
    pub first: Vec<String>,
}

/// How many invalid combos an error message names.
const NAMED_INVALID: usize = 3;

impl InvalidCombos {
    /// One line: how many, the first few, and what to do.
    pub fn message(&self) -> String {
        format!(
            "{} of {} combos have an invalid merged config; first: {}",
            self.count,
            self.checked,
            self.first.join("; ")
        )
    }
}

/// Validate the merged config of each combo in `start..end` (in parallel, streamed: memory does
/// not grow with the range).
pub fn check_combos(
    p: &Prepared,
    spec: &SweepSpec,
    grid: &Grid,
    start: u64,
    end: u64,
    pool: &rayon::ThreadPool,
) -> Result<InvalidCombos, BtError> {
    let mut out = InvalidCombos::default();
    let mut it = grid.iter_from(start);
    let mut i = start;
    while i < end {
        let j = (i + 4096).min(end);
        let batch: Vec<(u64, Vec<f64>)> = it.by_ref().take((j - i) as usize).collect();
        let errs: Vec<Option<String>> = pool
            .install(|| batch.par_iter().map(|(_, v)| combo_error(p, spec, v)).collect::<Result<_, _>>())?;
        for ((c, v), e) in batch.iter().zip(errs) {
            let Some(e) = e else { continue };
            out.count += 1;
            if out.first.len() < NAMED_INVALID {
                let vals: Vec<String> =
                    spec.axes.iter().zip(v).map(|(a, x)| format!("{}={x}", a.path)).collect();
                out.first.push(format!("combo {c} ({}): {e}", vals.join(", ")));
            }
        }
        out.checked += j - i;
        i = j;
    }
    Ok(out)
}

/// One line of the JSONL output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepRow {
    pub combo: u64,
    pub id: String,
    pub sweep_id: String,
    pub config_id: String,
    pub overrides: BTreeMap<String, f64>,
    pub total_pnl: f64,
    pub final_equity: f64,
    pub total_trades: u64,
    pub wins: u64,
    pub win_rate: f64,
    pub profit_factor: Option<f64>,
    pub max_drawdown_pct: f64,
    pub sharpe_ratio: f64,
    pub total_fees: f64,
    pub total_funding: f64,
    pub liquidations: u64,
    pub bars: u64,
}

/// What one combo's run adds up to: the Rust sweep and the decision-core backends both fill it, and
/// [`SweepRow::of_combo`] is the one place a row is derived from it.
pub struct ComboTotals {
    pub final_equity: f64,
    pub trades: u64,
    pub wins: u64,
    pub gross_profit: f64,
    pub gross_loss: f64,
    pub fees: f64,
    pub funding: f64,
    pub liquidations: u64,
    pub bars: u64,
}

impl SweepRow {
    pub fn of_combo(
        p: &Prepared,
        spec: &SweepSpec,
        cc: &ComboConfig,
        sweep_id: &str,
        t: &ComboTotals,
        stats: &EquityStats,
    ) -> Self {
        let initial = spec.initial_balance.unwrap_or(p.initial_balance);
        let (n, wins, gp, gl) = (t.trades, t.wins, t.gross_profit, t.gross_loss);
        SweepRow {
            combo: cc.combo,
            id: format!("sweep_{:06}", cc.combo),
            sweep_id: sweep_id.to_string(),
            config_id: cc.base.config_id.clone(),
            overrides: cc.overrides.clone(),
            total_pnl: t.final_equity - initial,
            final_equity: t.final_equity,
            total_trades: n,
            wins,
            win_rate: if n > 0 { wins as f64 / n as f64 } else { 0.0 },
            profit_factor: if gl > 0.0 {
                Some(gp / gl)
            } else if gp > 0.0 {
                None
            } else {
                Some(0.0)
            },
            max_drawdown_pct: stats.max_dd_frac * 100.0,
            sharpe_ratio: stats.sharpe(periods_per_year(p.timeline.interval_ms)),
            total_fees: t.fees,
            total_funding: t.funding,
            liquidations: t.liquidations,
            bars: t.bars,
        }
    }
}

/// Heap entry ordered so that the *worst* row is on top (min-heap of the best K).
struct Ranked(SweepRow);

impl Ranked {
    fn key(&self) -> (f64, u64) {
        (self.0.total_pnl, self.0.combo)
    }
}
impl PartialEq for Ranked {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ranked {
    // "Greater" = worse: lower PnL, then higher combo index.
    fn cmp(&self, o: &Self) -> Ordering {
        let (a, ai) = self.key();
        let (b, bi) = o.key();
        b.total_cmp(&a).then(ai.cmp(&bi))
    }
}

/// Bounded top-K by total PnL (ties: lower combo index first).
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Ranked>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        Self { k, heap: BinaryHeap::new() }
    }
    pub fn push(&mut self, row: SweepRow) {
        if self.k == 0 {
            return;
        }
        let r = Ranked(row);
        if self.heap.len() < self.k {
            self.heap.push(r);
        } else if let Some(worst) = self.heap.peek() {
            if r < *worst {
                self.heap.pop();
                self.heap.push(r);
            }
        }
    }
    pub fn into_sorted(self) -> Vec<SweepRow> {
        let mut v: Vec<Ranked> = self.heap.into_vec();
        v.sort();
        v.into_iter().map(|r| r.0).collect()
    }
    pub fn len(&self) -> usize {
        self.heap.len()
    }
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

pub struct SweepOpts {
    pub output: String,
    pub top_output: String,
    pub top_k: usize,
    pub threads: usize,
    pub resume: bool,
    pub progress: bool,
    /// Share indicator series across combos with the same indicator config (MiB budget; 0 = off).
    pub indicator_cache_mib: usize,
    /// Stop after this many combos of the grid (counted from combo 0; `--resume` continues).
    pub limit: Option<u64>,
    /// Print the indicator sharing figures on stderr.
    pub verbose: bool,
    /// Skip combos whose merged config is invalid (counted and named); otherwise refuse to run.
    pub skip_invalid: bool,
}

/// One combo's configs: the overrides applied to the base config and to every symbol's config.
pub struct ComboConfig {
    pub combo: u64,
    pub base: ResolvedConfig,
    pub per_symbol: BTreeMap<String, aiq_config::StrategyConfig>,
    pub overrides: BTreeMap<String, f64>,
}

pub fn combo_config(
    p: &Prepared,
    spec: &SweepSpec,
    combo: u64,
    values: &[f64],
) -> Result<ComboConfig, BtError> {
    let mut base = p.base_json.clone();
    let mut overrides = BTreeMap::new();
    for (a, &v) in spec.axes.iter().zip(values) {
        apply_override(&mut base, &a.path, v)?;
        overrides.insert(a.path.clone(), v);
    }
    let base = ResolvedConfig::from_json(base, "sweep base")?;
    let mut per_symbol = BTreeMap::new();
    for (s, j) in &p.symbol_json {
        let mut j = j.clone();
        for (a, &v) in spec.axes.iter().zip(values) {
            apply_override(&mut j, &a.path, v)?;
        }
        per_symbol.insert(s.clone(), ResolvedConfig::from_json(j, &format!("sweep {s}"))?.cfg);
    }
    Ok(ComboConfig { combo, base, per_symbol, overrides })
}

/// Run one combo (its own indicator banks).
pub fn run_combo(
    p: &Prepared,
    spec: &SweepSpec,
    combo: u64,
    values: &[f64],
    sweep_id: &str,
) -> Result<SweepRow, BtError> {
    let cc = combo_config(p, spec, combo, values)?;
    run_config(p, spec, &cc, sweep_id, None)
}

/// Run one combo's configs, optionally on shared indicator snapshots (one series per timeline
/// symbol, computed from that symbol's config in this combo).
pub fn run_config(
    p: &Prepared,
    spec: &SweepSpec,
    cc: &ComboConfig,
    sweep_id: &str,
    snaps: Option<&SharedSnapshots>,
) -> Result<SweepRow, BtError> {
    run_config_with(p, spec, cc, sweep_id, snaps, Record::default()).map(|(row, _)| row)
}

/// Indices of `shared` split into lockstep groups: combos with the same series (the same
/// `Arc`s) in one group, cut so there are at least `threads` groups when there are enough
/// combos. A combo without shared series is a group of its own.
pub fn lockstep_groups(shared: &[ComboSeries], threads: usize) -> Vec<Vec<usize>> {
    let same = |a: &[SymbolSeries], b: &[SymbolSeries]| {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.ready_index == y.ready_index
                    && Arc::ptr_eq(&x.base, &y.base)
                    && x.series.iter().zip(&y.series).all(|(u, v)| Arc::ptr_eq(u, v))
            })
    };
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (ci, sn) in shared.iter().enumerate() {
        let home = sn
            .as_ref()
            .and_then(|sn| groups.iter().position(|g| shared[g[0]].as_ref().is_some_and(|h| same(h, sn))));
        match home {
            Some(g) => groups[g].push(ci),
            None => groups.push(vec![ci]),
        }
    }
    // Cut large groups so the threads share the work.
    let size = shared.len().div_ceil(threads).max(1);
    groups.into_iter().flat_map(|g| g.chunks(size).map(<[usize]>::to_vec).collect::<Vec<_>>()).collect()
}

/// [`run_config`] for a group of combos on the same shared series, in lockstep
/// ([`crate::sim::run_group`]): the same rows as running each alone.
pub fn run_configs_grouped(
    p: &Prepared,
    spec: &SweepSpec,
    ccs: &[&ComboConfig],
    sweep_id: &str,
    snaps: &SharedSnapshots,
) -> Result<Vec<SweepRow>, BtError> {
    let initial = spec.initial_balance.unwrap_or(p.initial_balance);
    let kernels = ccs
        .iter()
        .map(|cc| make_kernel(&cc.base.cfg, &cc.per_symbol, initial, None))
        .collect::<Result<Vec<_>, _>>()?;
    let runs = run_group(kernels, &p.timeline, Record::default(), initial, snaps)?;
    Ok(ccs.iter().zip(&runs).map(|(cc, r)| row_of(p, spec, cc, sweep_id, r)).collect())
}

/// [`run_config`] that also returns the run (with what `rec` asks to keep).
pub fn run_config_with(
    p: &Prepared,
    spec: &SweepSpec,
    cc: &ComboConfig,
    sweep_id: &str,
    snaps: Option<&SharedSnapshots>,
    rec: Record,
) -> Result<(SweepRow, RunResult), BtError> {
    let initial = spec.initial_balance.unwrap_or(p.initial_balance);
    let kernel = make_kernel(&cc.base.cfg, &cc.per_symbol, initial, None)?;
    let r = run_with(kernel, &p.timeline, rec, initial, snaps)?;
    let row = row_of(p, spec, cc, sweep_id, &r);
    Ok((row, r))
}

/// A combo's sweep row from its run.
fn row_of(p: &Prepared, spec: &SweepSpec, cc: &ComboConfig, sweep_id: &str, r: &RunResult) -> SweepRow {
    let (mut wins, mut gp, mut gl) = (0u64, 0.0, 0.0);
    for t in &r.trips {
        if t.net_pnl > 0.0 {
            wins += 1;
            gp += t.net_pnl;
        } else {
            gl -= t.net_pnl;
        }
    }
    let totals = ComboTotals {
        final_equity: r.equity,
        trades: r.trips.len() as u64,
        wins,
        gross_profit: gp,
        gross_loss: gl,
        fees: r.fees,
        funding: r.funding,
        liquidations: r.liquidations,
        bars: r.bars,
    };
    SweepRow::of_combo(p, spec, cc, sweep_id, &totals, &r.stats)
}

/// The series a config's indicator bank reads, for one symbol.
pub(crate) fn series_set(cfg: &aiq_config::StrategyConfig) -> SeriesSet {
    SeriesSet::of_bank(&IndicatorBank::from_config(cfg))
}

/// [`series_set`] of the bank a combo's kernel builds for `symbol` (`make_kernel`: only what
/// the decisions read; the rest are NaN series, see `aiq_kernel::reads`).
pub(crate) fn series_set_reading(cc: &ComboConfig, symbol: &str) -> SeriesSet {
    let cfg = cc.per_symbol.get(symbol).unwrap_or(&cc.base.cfg);
    let all = std::iter::once(&cc.base.cfg).chain(cc.per_symbol.values());
    let reads = aiq_kernel::reads::symbol_reads(symbol, cfg, all);
    SeriesSet::of_bank(&IndicatorBank::from_config_reading(cfg, reads))
}

/// Indicator series shared across combos: each distinct (symbol, indicator kind, parameters) is
/// computed once and shared read-only by every combo that reads it (an EMA grid of 20 slow x 25
/// fast windows computes 45 EMA series per symbol, not 500 banks). Series a chunk of combos no
/// longer needs are dropped; a combo whose missing series do not fit in the memory budget runs
/// on its own banks (same results).
pub struct IndicatorCache {
    budget_bytes: usize,
    bases: Vec<Option<Arc<BaseSeries>>>,
    map: BTreeMap<CacheKey, Arc<Vec<f64>>>,
    /// Series computed, by kind.
    pub computed: BTreeMap<&'static str, u64>,
    /// Combos run on shared series.
    pub reused: u64,
    /// Only the series the decisions read ([`series_set_reading`]; the CPU sweep), or every
    /// series (the decision-core backends, which take whole snapshots).
    pub reads_only: bool,
}

impl IndicatorCache {
    pub fn new(budget_mib: usize) -> Self {
        Self {
            budget_bytes: budget_mib << 20,
            bases: Vec::new(),
            map: BTreeMap::new(),
            computed: BTreeMap::new(),
            reused: 0,
            reads_only: false,
        }
    }

    /// Series computed, all kinds.
    pub fn computed_total(&self) -> u64 {
        self.computed.values().sum()
    }

    /// Shared series for each combo of `chunk` (`None`: over the budget, it runs on its own banks).
    pub fn prepare(&mut self, p: &Prepared, chunk: &[ComboConfig]) -> Vec<ComboSeries> {
        let syms = &p.timeline.symbols;
        let nsym = syms.len();
        self.bases.resize(nsym, None);
        let reads_only = self.reads_only;
        let sets: Vec<Vec<SeriesSet>> = chunk
            .par_iter()
            .map(|cc| {
                syms.iter()
                    .map(|s| {
                        if reads_only {
                            series_set_reading(cc, s)
                        } else {
                            series_set(cc.per_symbol.get(s).unwrap_or(&cc.base.cfg))
                        }
                    })
                    .collect()
            })
            .collect();
        let accepted = |si: usize| p.candles.bars[si].len();
        let series_bytes = |si: usize, k: &SeriesKey| accepted(si) * k.width() * 8;
        // Keep what this chunk reads; drop the rest.
        let needed: std::collections::BTreeSet<(usize, SeriesKey)> = sets
            .iter()
            .flat_map(|v| v.iter().enumerate().flat_map(|(si, set)| set.keys().map(move |k| (si, k))))
            .collect();
        self.map.retain(|k, _| needed.contains(k));
        let mut used: usize = self.map.keys().map(|(si, k)| series_bytes(*si, k)).sum::<usize>()
            + self.bases.iter().flatten().map(|b| b.bytes()).sum::<usize>();
        let mut todo: std::collections::BTreeSet<(usize, SeriesKey)> = Default::default();
        let mut base_todo = vec![false; nsym];
        let mut shared = vec![false; chunk.len()];
        for (ci, set) in sets.iter().enumerate() {
            let mut extra = 0usize;
            let mut missing = Vec::new();
            let mut bases = Vec::new();
            for (si, ss) in set.iter().enumerate() {
                if self.bases[si].is_none() && !base_todo[si] && !bases.contains(&si) {
                    bases.push(si);
                    extra += accepted(si) * 52;
                }
                for k in ss.keys() {
                    if !self.map.contains_key(&(si, k))
                        && !todo.contains(&(si, k))
                        && !missing.contains(&(si, k))
                    {
                        extra += series_bytes(si, &k);
                        missing.push((si, k));
                    }
                }
            }
            if used + extra > self.budget_bytes {
                continue;
            }
            used += extra;
            shared[ci] = true;
            todo.extend(missing);
            for si in bases {
                base_todo[si] = true;
            }
        }
        let new_bases: Vec<(usize, Arc<BaseSeries>)> = (0..nsym)
            .into_par_iter()
            .filter(|&si| base_todo[si])
            .map(|si| {
                let bars = p.candles.bars[si].iter().map(|c| (c.t, c.o, c.h, c.l, c.c, c.v));
                (si, Arc::new(BaseSeries::new(bars)))
            })
            .collect();
        for (si, b) in new_bases {
            self.bases[si] = Some(b);
        }
        let bases = &self.bases;
        let computed: Vec<(CacheKey, Arc<Vec<f64>>)> = todo
            .par_iter()
            .map(|&(si, k)| ((si, k), Arc::new(k.compute(bases[si].as_ref().expect("base computed")))))
            .collect();
        for ((_, k), _) in computed.iter().filter(|((_, k), _)| !matches!(k, SeriesKey::Unread(_))) {
            *self.computed.entry(k.kind()).or_default() += 1;
        }
        self.map.extend(computed);
        sets.iter()
            .zip(shared)
            .map(|(set, ok)| {
                if !ok {
                    return None;
                }
                self.reused += 1;
                Some(
                    set.iter()
                        .enumerate()
                        .map(|(si, ss)| SymbolSeries {
                            base: Arc::clone(self.bases[si].as_ref().expect("base computed")),
                            ready_index: ss.ready_index,
                            series: ss.keys().map(|k| Arc::clone(&self.map[&(si, k)])),
                        })
                        .collect(),
                )
            })
            .collect()
    }

    /// "ema 45, adx 1, ..." (kinds in name order).
    pub fn by_kind(&self) -> String {
        self.computed.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
    }
}

/// A series of one timeline symbol (by index).
type CacheKey = (usize, SeriesKey);

/// Shared series for one combo, one per timeline symbol (`None`: it runs on its own banks).
pub type ComboSeries = Option<Vec<SymbolSeries>>;

/// An id for (spec, config, data), stored in each row so `--resume` refuses a different sweep.
pub fn sweep_id(spec: &SweepSpec, p: &Prepared) -> String {
    let v = serde_json::json!({
        "spec": serde_json::to_value(spec).unwrap_or(Value::Null),
        "base": p.base_json,
        "symbols": p.symbol_json,
        "inputs": serde_json::to_value(&p.inputs).unwrap_or(Value::Null),
        "initial_balance": p.initial_balance,
    });
    config_id(&v)[..16].to_string()
}

/// Read complete rows of a previous run; returns them and the byte length to keep.
fn read_resume(path: &str, sweep_id: &str) -> Result<(Vec<SweepRow>, u64), BtError> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(BtError::new(format!("--resume {path}: {e}"))),
    };
    let mut r = std::io::BufReader::new(f);
    let mut rows = Vec::new();
    let mut keep = 0u64;
    let mut line = String::new();
    loop {
        line.clear();
        let n = r.read_line(&mut line).map_err(|e| BtError::new(format!("--resume {path}: {e}")))?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        let Ok(row) = serde_json::from_str::<SweepRow>(line.trim_end()) else { break };
        if row.sweep_id != sweep_id {
            return Err(BtError::new(format!(
                "--resume {path}: the file belongs to another sweep (sweep_id {} != {sweep_id}); \
                 use another --output or remove the file",
                row.sweep_id
            )));
        }
        // Rows come in combo order; gaps are combos skipped as invalid (`--skip-invalid`).
        if rows.last().is_some_and(|l: &SweepRow| row.combo <= l.combo) {
            break;
        }
        keep += n as u64;
        rows.push(row);
    }
    Ok((rows, keep))
}

/// Run the sweep; returns (combos run now, combos total, the top-K rows).
pub fn run_sweep(
    p: &Prepared,
    spec: &SweepSpec,
    o: &SweepOpts,
) -> Result<(u64, u64, Vec<SweepRow>), BtError> {
    let chunk = (o.threads.max(1) * 4).max(32) as u64;
    let mut cache = IndicatorCache::new(o.indicator_cache_mib);
    cache.reads_only = true;
    let sid = sweep_id(spec, p);
    let out = run_sweep_with(p, spec, o, chunk, &mut |cfgs, pool| {
        pool.install(|| {
            let shared =
                if o.indicator_cache_mib > 0 { cache.prepare(p, cfgs) } else { vec![None; cfgs.len()] };
            // Combos on the same series run as lockstep groups (their snapshots are assembled
            // once per group); as many groups as threads at least, so every thread has work.
            let groups = lockstep_groups(&shared, o.threads.max(1));
            let rows: Vec<Result<Vec<SweepRow>, BtError>> = groups
                .par_iter()
                .map(|g| match &shared[g[0]] {
                    Some(sn) if g.len() > 1 => {
                        let ccs: Vec<&ComboConfig> = g.iter().map(|&ci| &cfgs[ci]).collect();
                        run_configs_grouped(p, spec, &ccs, &sid, sn)
                    }
                    sn => g.iter().map(|&ci| run_config(p, spec, &cfgs[ci], &sid, sn.as_deref())).collect(),
                })
                .collect();
            // Back in combo order; the first error in combo order.
            let mut by_combo: Vec<Option<Result<SweepRow, BtError>>> =
                (0..cfgs.len()).map(|_| None).collect();
            for (g, r) in groups.iter().zip(rows) {
                match r {
                    Ok(rs) => g.iter().zip(rs).for_each(|(&ci, row)| by_combo[ci] = Some(Ok(row))),
                    Err(e) => by_combo[g[0]] = Some(Err(e)),
                }
            }
            by_combo.into_iter().flatten().collect()
        })
    })?;
    if o.verbose && o.indicator_cache_mib > 0 {
        eprintln!(
            "indicators: {} series computed and shared by {} of {} combos (budget {} MiB){}",
            cache.computed_total(),
            cache.reused,
            out.0,
            o.indicator_cache_mib,
            if cache.computed.is_empty() { String::new() } else { format!("; by kind: {}", cache.by_kind()) }
        );
    }
    Ok(out)
}

/// The rows of a batch of combos (in their order), computed by some engine.
pub type RowsOf<'a> = dyn FnMut(&[ComboConfig], &rayon::ThreadPool) -> Result<Vec<SweepRow>, BtError> + 'a;

/// The sweep driver shared by the CPU sweep and the decision-core backends: grid, validation,
/// resume, JSONL output in combo order, top-K; `rows` runs each batch of at most `chunk` combos.
pub fn run_sweep_with(
    p: &Prepared,
    spec: &SweepSpec,
    o: &SweepOpts,
    chunk: u64,
    rows: &mut RowsOf<'_>,
) -> Result<(u64, u64, Vec<SweepRow>), BtError> {
    let grid = Grid::new(spec, &p.base_json)?;
    let total = grid.len();
    let end = o.limit.map_or(total, |l| l.min(total));
    let sid = sweep_id(spec, p);
    // Fail fast on a bad path or value before any work.
    verify(spec, p)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(o.threads)
        .build()
        .map_err(|e| BtError::new(format!("thread pool: {e}")))?;
    let mut top = TopK::new(o.top_k);
    let (resumed, keep) = if o.resume { read_resume(&o.output, &sid)? } else { (Vec::new(), 0) };
    let start = resumed.last().map_or(0, |r| r.combo + 1);
    // Every combo's merged config is checked before anything runs (or is written).
    let invalid = check_combos(p, spec, &grid, start.min(end), end, &pool)?;
    if invalid.count > 0 {
        if !o.skip_invalid {
            return Err(BtError::new(format!(
                "{}; fix the grid, or pass --skip-invalid to run only the valid combos",
                invalid.message()
            )));
        }
        eprintln!("warning: skipping invalid combos: {}", invalid.message());
    }
    let kept = resumed.len();
    for r in resumed {
        top.push(r);
    }
    let file = if o.resume {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&o.output)
            .map_err(|e| BtError::new(format!("{}: {e}", o.output)))?;
        f.set_len(keep).map_err(|e| BtError::new(format!("{}: {e}", o.output)))?;
        let mut f = f;
        use std::io::Seek;
        f.seek(std::io::SeekFrom::End(0)).map_err(|e| BtError::new(format!("{}: {e}", o.output)))?;
        if kept > 0 {
            eprintln!("resume: {kept} of {total} combos already in {}", o.output);
        }
        f
    } else {
        std::fs::File::create(&o.output)
            .map_err(|e| BtError::new(format!("{}: cannot create: {e}", o.output)))?
    };
    let mut w = std::io::BufWriter::new(file);
    let bar = if o.progress && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} combos ({per_sec}, ETA {eta})",
            )
            .expect("template"),
        );
        b.set_position(start);
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let chunk = chunk.max(1);
    let mut i = start;
    let mut ran = 0u64;
    let mut it = grid.iter_from(i);
    while i < end {
        let j = (i + chunk).min(end);
        let batch: Vec<(u64, Vec<f64>)> = it.by_ref().take((j - i) as usize).collect();
        let cfgs: Vec<ComboConfig> = pool.install(|| -> Result<_, BtError> {
            // Invalid combos were counted above; with --skip-invalid they are left out here.
            let cfgs: Vec<Option<ComboConfig>> = batch
                .par_iter()
                .map(|(c, v)| match combo_config(p, spec, *c, v) {
                    Ok(cc) => Ok(Some(cc)),
                    Err(_) if o.skip_invalid && combo_error(p, spec, v)?.is_some() => Ok(None),
                    Err(e) => Err(e),
                })
                .collect::<Result<_, BtError>>()?;
            Ok(cfgs.into_iter().flatten().collect())
        })?;
        for row in rows(&cfgs, &pool)? {
            let line = serde_json::to_string(&row).map_err(|e| BtError::new(e.to_string()))?;
            writeln!(w, "{line}").map_err(|e| BtError::new(format!("{}: write failed: {e}", o.output)))?;
            top.push(row);
            ran += 1;
        }
        w.flush().map_err(|e| BtError::new(format!("{}: write failed: {e}", o.output)))?;
        bar.inc(j - i);
        i = j;
    }
    bar.finish_and_clear();
    let best = top.into_sorted();
    let mut summary = serde_json::json!({
        "sweep_id": sid,
        "combos": total,
        "top_k": o.top_k,
        "rows": best,
    });
    if invalid.count > 0 {
        summary["skipped_invalid"] = Value::from(invalid.count);
    }
    let text = serde_json::to_string_pretty(&summary).map_err(|e| BtError::new(e.to_string()))?;
    std::fs::write(&o.top_output, text + "\n").map_err(|e| BtError::new(format!("{}: {e}", o.top_output)))?;
    let _ = canonical_json;
    Ok((ran, total, best))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(c: u64, pnl: f64) -> SweepRow {
        SweepRow {
            combo: c,
            id: String::new(),
            sweep_id: String::new(),
            config_id: String::new(),
            overrides: BTreeMap::new(),
            total_pnl: pnl,
            final_equity: 0.0,
            total_trades: 0,
            wins: 0,
            win_rate: 0.0,
            profit_factor: None,
            max_drawdown_pct: 0.0,
            sharpe_ratio: 0.0,
            total_fees: 0.0,
            total_funding: 0.0,
            liquidations: 0,
            bars: 0,
        }
    }

    #[test]
    fn topk_keeps_best_with_stable_ties() {
        let mut t = TopK::new(3);
        for (c, p) in [(0, 1.0), (1, 5.0), (2, 3.0), (3, 5.0), (4, -1.0), (5, 4.0)] {
            t.push(row(c, p));
        }
        let v: Vec<(u64, f64)> = t.into_sorted().iter().map(|r| (r.combo, r.total_pnl)).collect();
        assert_eq!(v, vec![(1, 5.0), (3, 5.0), (5, 4.0)]);
    }

    #[test]
    fn gated_expansion() {
        let spec: SweepSpec = serde_norway::from_str(
            r"
axes:
  - {path: trade.enable_pyramiding, values: [0, 1]}
  - {path: trade.max_adds_per_symbol, values: [1, 2, 3], gate: {path: trade.enable_pyramiding, eq: 1}}
  - {path: trade.sl_atr_mult, values: [1.5, 2.0]}
  - {path: trade.tp_atr_mult, values: [3, 4], gate: {path: trade.enable_partial_tp, eq: 0}}
",
        )
        .unwrap();
        let base = aiq_config::defaults_json();
        let c = expand(&spec, &base).unwrap();
        // pyramiding off: 1 x 2 (tp frozen, partial tp on by default); on: 3 x 2.
        assert_eq!(c.len(), 2 + 6);
        assert!(c.iter().all(|x| x[3] == 3.0));
        assert_eq!(c[0], vec![0.0, 1.0, 1.5, 3.0]);
        // Random access agrees with iteration, from any start.
        let g = Grid::new(&spec, &base).unwrap();
        assert_eq!(g.len(), 8);
        for n in 0..8u64 {
            assert_eq!(g.values_of(&g.nth_digits(n).unwrap()), c[n as usize]);
            let tail: Vec<Vec<f64>> = g.iter_from(n).map(|(_, v)| v).collect();
            assert_eq!(tail, c[n as usize..].to_vec());
        }
        assert!(g.nth_digits(8).is_none());
    }

    #[test]
    fn points_are_the_combos_in_order_and_checked() {
        let spec: SweepSpec = serde_norway::from_str(
            "axes: [{path: trade.sl_atr_mult}, {path: trade.leverage}]\npoints: [[1.5, 2], [3.0, 1], [1.5, 2]]\n",
        )
        .unwrap();
        spec.check("s").unwrap();
        let g = Grid::new(&spec, &aiq_config::defaults_json()).unwrap();
        assert_eq!(g.len(), 3);
        let all: Vec<(u64, Vec<f64>)> = g.iter_from(0).collect();
        assert_eq!(all, vec![(0, vec![1.5, 2.0]), (1, vec![3.0, 1.0]), (2, vec![1.5, 2.0])]);
        assert_eq!(g.iter_from(2).collect::<Vec<_>>(), vec![(2, vec![1.5, 2.0])]);
        assert_eq!(g.iter_from(9).count(), 0);
        // Without points the spec serialises as before (sweep_id of existing sweeps unchanged).
        let grid: SweepSpec = serde_norway::from_str("axes: [{path: a, values: [1]}]\n").unwrap();
        assert!(!serde_json::to_string(&grid).unwrap().contains("points"));
        for (text, needle) in [
            ("axes: [{path: a}]\npoints: [[1, 2]]\n", "point 0 has 2 values for 1 axes"),
            ("axes: [{path: a, values: [1]}]\npoints: [[1]]\n", "the values are in the points"),
            ("axes: [{path: a}]\npoints: []\n", "`points` is empty"),
            ("axes: [{path: a}]\n", "axis a has no values"),
        ] {
            let spec: SweepSpec = serde_norway::from_str(text).unwrap();
            let e = spec.check("s").unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn huge_gated_grid_is_counted_without_expanding() {
        let mut text = String::from("axes:\n  - {path: trade.enable_pyramiding, values: [0, 1]}\n");
        for i in 0..30 {
            let gate = if i % 2 == 0 { ", gate: {path: trade.enable_pyramiding, eq: 1}" } else { "" };
            text.push_str(&format!("  - {{path: trade.p{i}, values: [1, 2, 3, 4]{gate}}}\n"));
        }
        let spec: SweepSpec = serde_norway::from_str(&text).unwrap();
        let g = Grid::new(&spec, &aiq_config::defaults_json()).unwrap();
        // pyramiding off: 4^15; on: 4^30.
        assert_eq!(g.len(), 4u64.pow(15) + 4u64.pow(30));
        let last = g.nth_digits(g.len() - 1).unwrap();
        assert!(last.iter().skip(1).all(|&d| d == 3));
        let mut d = last.clone();
        assert!(!g.advance(&mut d));
        // The first combo past the "off" block is the first "on" combo.
        assert_eq!(g.nth_digits(4u64.pow(15)).unwrap(), {
            let mut v = vec![0u32; 31];
            v[0] = 1;
            v
        });
    }
}
