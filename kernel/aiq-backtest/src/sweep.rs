//! `sweep`: a grid of config overrides run in parallel (rayon), streamed to JSONL in combo order,
//! with a bounded top-K heap so memory stays flat however many combos run.
//!
//! Spec YAML: `{axes: [{path, values: [f64...], gate?: {path, eq}}], initial_balance?}`.
//! A gated axis expands only when its gate equals `eq` (the gate is a swept axis listed earlier,
//! or else the base config's value); otherwise it stays at its first value.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::{BufRead, Write};
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{apply_override, canonical_json, config_id, ResolvedConfig};
use crate::metrics::periods_per_year;
use crate::prepare::Prepared;
use crate::sim::{make_kernel, run, Record};
use crate::BtError;

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
        for (i, a) in self.axes.iter().enumerate() {
            if a.values.is_empty() {
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

/// Expand the grid in a fixed order (first axis slowest).
pub fn expand(spec: &SweepSpec, base: &Value) -> Result<Vec<Vec<f64>>, BtError> {
    let mut out = vec![Vec::with_capacity(spec.axes.len())];
    for (i, a) in spec.axes.iter().enumerate() {
        let gate_fixed = match &a.gate {
            Some(g) if !spec.axes[..i].iter().any(|b| b.path == g.path) => {
                Some(numeric_at(base, &g.path)? == g.eq)
            }
            _ => None,
        };
        let gate_idx = a.gate.as_ref().and_then(|g| spec.axes[..i].iter().position(|b| b.path == g.path));
        let mut next = Vec::new();
        for combo in out {
            let open = match (&a.gate, gate_fixed, gate_idx) {
                (None, _, _) => true,
                (Some(_), Some(f), _) => f,
                (Some(g), None, Some(j)) => combo[j] == g.eq,
                _ => true,
            };
            let vals: &[f64] = if open { &a.values } else { &a.values[..1] };
            for &v in vals {
                let mut c = combo.clone();
                c.push(v);
                next.push(c);
            }
        }
        out = next;
        if out.len() > 50_000_000 {
            return Err(BtError::new("the sweep grid has more than 50 million combos"));
        }
    }
    Ok(out)
}

/// Check every axis path exists and every value is valid for its field (`--verify-overrides`).
/// Also reports axes whose values never change the base config.
pub fn verify(spec: &SweepSpec, p: &Prepared) -> Result<Vec<String>, BtError> {
    let mut notes = Vec::new();
    for a in &spec.axes {
        let mut changes = false;
        for &v in &a.values {
            let mut j = p.base_json.clone();
            apply_override(&mut j, &a.path, v)?;
            ResolvedConfig::from_json(j.clone(), &format!("override {} = {v}", a.path))?;
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
}

/// Run one combo. The overrides apply to the base config and to every symbol's config.
pub fn run_combo(
    p: &Prepared,
    spec: &SweepSpec,
    combo: u64,
    values: &[f64],
    sweep_id: &str,
) -> Result<SweepRow, BtError> {
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
    let initial = spec.initial_balance.unwrap_or(p.initial_balance);
    let kernel = make_kernel(&base.cfg, &per_symbol, initial, None)?;
    let r = run(kernel, &p.timeline, Record::default(), initial)?;
    let (mut wins, mut gp, mut gl) = (0u64, 0.0, 0.0);
    for t in &r.trips {
        if t.net_pnl > 0.0 {
            wins += 1;
            gp += t.net_pnl;
        } else {
            gl -= t.net_pnl;
        }
    }
    let n = r.trips.len() as u64;
    Ok(SweepRow {
        combo,
        id: format!("sweep_{combo:06}"),
        sweep_id: sweep_id.to_string(),
        config_id: base.config_id,
        overrides,
        total_pnl: r.equity - initial,
        final_equity: r.equity,
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
        max_drawdown_pct: r.stats.max_dd_frac * 100.0,
        sharpe_ratio: r.stats.sharpe(periods_per_year(p.timeline.interval_ms)),
        total_fees: r.fees,
        total_funding: r.funding,
        liquidations: r.liquidations,
        bars: r.bars,
    })
}

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
        if row.combo != rows.len() as u64 {
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
    let combos = expand(spec, &p.base_json)?;
    let total = combos.len() as u64;
    let sid = sweep_id(spec, p);
    // Fail fast on a bad path or value before any work.
    verify(spec, p)?;
    let mut top = TopK::new(o.top_k);
    let mut start = 0usize;
    let file = if o.resume {
        let (rows, keep) = read_resume(&o.output, &sid)?;
        start = rows.len();
        for r in rows {
            top.push(r);
        }
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
        if start > 0 {
            eprintln!("resume: {start} of {total} combos already in {}", o.output);
        }
        f
    } else {
        std::fs::File::create(&o.output)
            .map_err(|e| BtError::new(format!("{}: cannot create: {e}", o.output)))?
    };
    let mut w = std::io::BufWriter::new(file);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(o.threads)
        .build()
        .map_err(|e| BtError::new(format!("thread pool: {e}")))?;
    let bar = if o.progress && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} combos ({per_sec}, ETA {eta})",
            )
            .expect("template"),
        );
        b.set_position(start as u64);
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let chunk = (o.threads.max(1) * 4).max(8);
    let mut i = start;
    let mut ran = 0u64;
    while i < combos.len() {
        let j = (i + chunk).min(combos.len());
        let rows: Vec<Result<SweepRow, BtError>> = pool.install(|| {
            (i..j).into_par_iter().map(|c| run_combo(p, spec, c as u64, &combos[c], &sid)).collect()
        });
        for r in rows {
            let row = r?;
            let line = serde_json::to_string(&row).map_err(|e| BtError::new(e.to_string()))?;
            writeln!(w, "{line}").map_err(|e| BtError::new(format!("{}: write failed: {e}", o.output)))?;
            top.push(row);
            ran += 1;
        }
        w.flush().map_err(|e| BtError::new(format!("{}: write failed: {e}", o.output)))?;
        bar.inc((j - i) as u64);
        i = j;
    }
    bar.finish_and_clear();
    let best = top.into_sorted();
    let text = serde_json::to_string_pretty(&serde_json::json!({
        "sweep_id": sid,
        "combos": total,
        "top_k": o.top_k,
        "rows": best,
    }))
    .map_err(|e| BtError::new(e.to_string()))?;
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
    }
}
