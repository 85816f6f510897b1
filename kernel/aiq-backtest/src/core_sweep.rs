//! The sweep on the decision core (aiq-cuda): builds [`CoreInputs`] from a [`Prepared`] and a
//! batch of combos (the indicator series shared exactly as the CPU sweep shares them), runs a
//! [`CoreBackend`] (the host-compiled C++ core, or the GPU) and turns its results into the same
//! [`SweepRow`]s [`run_config`](crate::sweep::run_config) writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aiq_cuda::{AiqParams, AiqResult, AiqSnap, CoreBackend, CoreInputs};
use aiq_indicators::{BaseSeries, SeriesKey, SeriesSet};

use crate::metrics::EquityStats;
use crate::prepare::Prepared;
use crate::sim::SymbolSeries;
use crate::sweep::{
    run_sweep_with, series_set, sweep_id, ComboConfig, ComboTotals, IndicatorCache, SweepOpts, SweepRow,
    SweepSpec,
};
use crate::BtError;

/// Combos per backend call in [`run_core_sweep`] (snapshot memory is bounded separately).
pub const CORE_CHUNK: u64 = 4096;

/// Each combo's series, one per timeline symbol: from `cache` when they fit its budget, else
/// computed for that combo alone (the same values either way).
pub fn combo_series(
    cache: &mut IndicatorCache,
    p: &Prepared,
    cfgs: &[ComboConfig],
) -> Vec<Vec<SymbolSeries>> {
    let shared = cache.prepare(p, cfgs);
    let mut bases: Vec<Option<Arc<BaseSeries>>> = vec![None; p.timeline.symbols.len()];
    shared
        .into_iter()
        .zip(cfgs)
        .map(|(s, cc)| match s {
            Some(v) => v,
            None => own_series(p, cc, &mut bases),
        })
        .collect()
}

/// Each timeline symbol's index and the series set of its config in `cc`.
fn symbol_sets<'a>(p: &'a Prepared, cc: &'a ComboConfig) -> impl Iterator<Item = (usize, SeriesSet)> + 'a {
    let symbols = p.timeline.symbols.iter().enumerate();
    symbols.map(move |(si, s)| (si, series_set(cc.per_symbol.get(s).unwrap_or(&cc.base.cfg))))
}

fn own_series(p: &Prepared, cc: &ComboConfig, bases: &mut [Option<Arc<BaseSeries>>]) -> Vec<SymbolSeries> {
    symbol_sets(p, cc)
        .map(|(si, set)| {
            let base = bases[si]
                .get_or_insert_with(|| {
                    let bars = p.candles.bars[si].iter().map(|c| (c.t, c.o, c.h, c.l, c.c, c.v));
                    Arc::new(BaseSeries::new(bars))
                })
                .clone();
            let series = set.keys().map(|k| Arc::new(k.compute(&base)));
            SymbolSeries { base, ready_index: set.ready_index, series }
        })
        .collect()
}

/// Identity of a symbol's snapshot series: (symbol, ready index, series keys).
type SnapKey = (usize, u64, [SeriesKey; 12]);

/// The snapshot series each combo reads, one key per timeline symbol.
fn snap_keys(p: &Prepared, cc: &ComboConfig) -> Vec<SnapKey> {
    symbol_sets(p, cc).map(|(si, set)| (si, set.ready_index, set.keys())).collect()
}

/// Split `cfgs` into consecutive runs whose distinct snapshot series fit `budget_bytes` (at
/// least one combo per run); returns the run ends.
fn split_by_snapshot_bytes(p: &Prepared, cfgs: &[ComboConfig], budget_bytes: u64) -> Vec<usize> {
    let bars = bars_per_symbol(p);
    let per_bar = std::mem::size_of::<AiqSnap>() as u64;
    let mut ends = Vec::new();
    let mut seen = std::collections::BTreeSet::<SnapKey>::new();
    let mut used = 0u64;
    for (i, cc) in cfgs.iter().enumerate() {
        let mut keys = snap_keys(p, cc);
        keys.sort();
        keys.dedup();
        let bytes = |ks: &[SnapKey]| ks.iter().map(|k| bars[k.0] * per_bar).sum::<u64>();
        let new: Vec<SnapKey> = keys.iter().filter(|k| !seen.contains(k)).copied().collect();
        if i > 0 && used + bytes(&new) > budget_bytes {
            // Start a new run with this combo.
            ends.push(i);
            seen.clear();
            used = bytes(&keys);
            seen.extend(keys);
        } else {
            used += bytes(&new);
            seen.extend(new);
        }
    }
    ends.push(cfgs.len());
    ends
}

fn bars_per_symbol(p: &Prepared) -> Vec<u64> {
    let mut bars = vec![0u64; p.timeline.symbols.len()];
    for (s, _) in &p.timeline.step_items {
        bars[*s as usize] += 1;
    }
    bars
}

/// The core's inputs for `cfgs` (combo `i` of the inputs is `cfgs[i]`), on `series[i]` (from
/// [`combo_series`]). Refuses what the core does not model: a restored kernel state.
pub fn build_inputs(
    p: &Prepared,
    initial_balance: f64,
    cfgs: &[ComboConfig],
    series: &[Vec<SymbolSeries>],
) -> Result<CoreInputs, BtError> {
    if p.init_state.is_some() {
        return Err(BtError::new("the decision-core sweep cannot start from --init-state"));
    }
    if series.len() != cfgs.len() {
        return Err(BtError::new("build_inputs: one series set per combo is required"));
    }
    let tl = &p.timeline;
    let ns = tl.symbols.len();
    let bars = bars_per_symbol(p);
    let mut name_order: Vec<u32> = (0..ns as u32).collect();
    name_order.sort_by(|&a, &b| tl.symbols[a as usize].as_bytes().cmp(tl.symbols[b as usize].as_bytes()));
    let mut inp = CoreInputs {
        symbols: tl.symbols.clone(),
        interval_ms: tl.interval_ms,
        initial_balance,
        times: tl.times.clone(),
        step_start: tl.step_start.clone(),
        step_symbol: tl.step_items.iter().map(|(s, _)| *s).collect(),
        fund_start: tl.fund_start.clone(),
        fund_symbol: tl.fund_items.iter().map(|f| f.0).collect(),
        fund_time: tl.fund_items.iter().map(|f| f.1).collect(),
        fund_rate: tl.fund_items.iter().map(|f| f.2).collect(),
        sub_times: tl.sub.times.clone(),
        sub_start: if tl.sub.times.is_empty() { Vec::new() } else { tl.sub.start.clone() },
        sub_symbol: tl.sub.items.iter().map(|i| i.symbol).collect(),
        sub_entry_px: tl.sub.items.iter().map(|i| i.entry_px).collect(),
        sub_exit_px: tl.sub.items.iter().map(|i| i.exit_px).collect(),
        name_order,
        ..Default::default()
    };
    let mut snap_at: BTreeMap<SnapKey, u64> = BTreeMap::new();
    let mut param_at: HashMap<Vec<u64>, u32> = HashMap::new();
    let mut param = |cfg: &aiq_config::StrategyConfig, params: &mut Vec<AiqParams>| -> u32 {
        let ap = AiqParams::from_config(cfg);
        *param_at.entry(ap.key()).or_insert_with(|| {
            params.push(ap);
            (params.len() - 1) as u32
        })
    };
    for (cc, ser) in cfgs.iter().zip(series) {
        if ser.len() != ns {
            return Err(BtError::new("build_inputs: one series per timeline symbol is required"));
        }
        let base_idx = param(&cc.base.cfg, &mut inp.params);
        inp.combo_params.push(base_idx);
        for (si, s) in tl.symbols.iter().enumerate() {
            let cfg = cc.per_symbol.get(s).unwrap_or(&cc.base.cfg);
            let idx = param(cfg, &mut inp.params);
            inp.combo_params.push(idx);
            let set = series_set(cfg);
            let key = (si, set.ready_index, set.keys());
            let off = match snap_at.get(&key) {
                Some(&o) => o,
                None => {
                    let src = ser[si].source();
                    if src.base.len() as u64 != bars[si] {
                        return Err(BtError::new(format!(
                            "{s}: {} indicator bars for {} timeline bars",
                            src.base.len(),
                            bars[si]
                        )));
                    }
                    let o = inp.snaps.len() as u64;
                    inp.snaps
                        .extend((0..bars[si] as usize).map(|j| AiqSnap::from_snapshot(&src.snapshot(j))));
                    snap_at.insert(key, o);
                    o
                }
            };
            inp.combo_snap_off.push(off);
        }
    }
    inp.validate().map_err(|e| BtError::new(e.to_string()))?;
    Ok(inp)
}

/// The [`SweepRow`] of combo `cc` from its core result: the reduction `run_config` makes.
pub fn sweep_row(
    p: &Prepared,
    spec: &SweepSpec,
    cc: &ComboConfig,
    sweep_id: &str,
    r: &AiqResult,
) -> Result<SweepRow, BtError> {
    if r.status != aiq_cuda::abi::status::OK {
        let why = match r.status {
            aiq_cuda::abi::status::FUNDING => "a funding event has a non-finite rate",
            aiq_cuda::abi::status::SUB_PRICE => "a sub-bar price is not a positive number",
            aiq_cuda::abi::status::ABI => "the core was built for another ABI version",
            _ => "unknown status",
        };
        return Err(BtError::new(format!("replay stopped: combo {}: {why}", cc.combo)));
    }
    let initial = spec.initial_balance.unwrap_or(p.initial_balance);
    let stats = EquityStats::from_accumulators(
        initial,
        r.eq_last,
        r.eq_peak,
        r.max_dd_usd,
        r.max_dd_frac,
        r.eq_n,
        r.eq_mean,
        r.eq_m2,
        r.eq_down_sq,
    );
    let totals = ComboTotals {
        final_equity: r.final_equity,
        trades: r.trades,
        wins: r.wins,
        gross_profit: r.gross_profit,
        gross_loss: r.gross_loss,
        fees: r.fees,
        funding: r.funding,
        liquidations: r.liquidations,
        bars: r.bars,
    };
    Ok(SweepRow::of_combo(p, spec, cc, sweep_id, &totals, &stats))
}

/// Rows for a batch of combos on `backend`, split so the snapshots of one call stay within
/// `budget_bytes` (at least one combo per call).
pub fn core_rows(
    p: &Prepared,
    spec: &SweepSpec,
    cfgs: &[ComboConfig],
    sweep_id: &str,
    cache: &mut IndicatorCache,
    budget_bytes: u64,
    backend: &mut dyn CoreBackend,
) -> Result<Vec<SweepRow>, BtError> {
    let initial = spec.initial_balance.unwrap_or(p.initial_balance);
    let mut rows = Vec::with_capacity(cfgs.len());
    let mut i = 0;
    for j in split_by_snapshot_bytes(p, cfgs, budget_bytes) {
        let part = &cfgs[i..j];
        let series = combo_series(cache, p, part);
        let inputs = build_inputs(p, initial, part, &series)?;
        drop(series);
        let mut out = vec![AiqResult::default(); part.len()];
        backend.run(&inputs, 0, &mut out).map_err(|e| BtError::new(format!("{}: {e}", backend.name())))?;
        for (cc, r) in part.iter().zip(&out) {
            rows.push(sweep_row(p, spec, cc, sweep_id, r)?);
        }
        i = j;
    }
    Ok(rows)
}

/// `sweep` on a decision-core backend: the same grid, validation, resume, JSONL rows and top-K
/// as [`crate::sweep::run_sweep`], every row computed by `backend`. Returns (combos run now,
/// combos total, the top-K rows).
pub fn run_core_sweep(
    p: &Prepared,
    spec: &SweepSpec,
    o: &SweepOpts,
    backend: &mut dyn CoreBackend,
) -> Result<(u64, u64, Vec<SweepRow>), BtError> {
    run_core_sweep_chunked(p, spec, o, backend, CORE_CHUNK)
}

/// [`run_core_sweep`] with `chunk` combos per backend call (a GPU wants many at once to fill the
/// device).
pub fn run_core_sweep_chunked(
    p: &Prepared,
    spec: &SweepSpec,
    o: &SweepOpts,
    backend: &mut dyn CoreBackend,
    chunk: u64,
) -> Result<(u64, u64, Vec<SweepRow>), BtError> {
    if p.init_state.is_some() {
        return Err(BtError::new(format!("--backend {}: --init-state is not supported", backend.name())));
    }
    let sid = sweep_id(spec, p);
    // The cache keeps series across batches; the snapshot budget bounds one backend call.
    let mib = o.indicator_cache_mib.max(64);
    let mut cache = IndicatorCache::new(mib);
    let budget = (mib as u64) << 20;
    // The backend owns its parallelism (threads or a GPU); indicator series use rayon's pool.
    run_sweep_with(p, spec, o, chunk, &mut |cfgs, _pool| {
        core_rows(p, spec, cfgs, &sid, &mut cache, budget, backend)
    })
}
