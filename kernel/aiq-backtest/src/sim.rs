//! The replay loop: the shared kernel driven over a [`Timeline`], exactly as the daemon drives it.
//!
//! Calling convention (the same as `bt_runtime.Kernel` from Python, see docs/backtester.md):
//! for each distinct bar open time `t`, ascending:
//! 1. `step_candle(symbol, candle)` for every symbol with a bar at `t`, symbols in name order;
//! 2. `on_funding(symbol, rate, last_close, F)` for each funding event due at this step
//!    (`F` in `(t_close - interval, t_close]`, at most once each) on symbols holding a position;
//! 3. `evaluate(t_close, None)` once, with `t_close = t + interval_ms`;
//! 4. record equity (`Kernel::equity`) at `t_close`.

use std::collections::BTreeMap;

use aiq_config::{Confidence, StrategyConfig};
use aiq_kernel::{Fill, FillMode, IntentKind, Kernel, KernelState, ReasonCode, Side, StepOutput};
use serde::Serialize;

use crate::data::Timeline;
use crate::metrics::EquityStats;
use crate::BtError;
use aiq_indicators::{IndicatorBank, IndicatorSnapshot};

/// What to keep while running (a sweep keeps only the summary).
#[derive(Debug, Clone, Copy, Default)]
pub struct Record {
    pub fills: bool,
    pub equity_curve: bool,
}

/// One execution, as exported to the trades CSV.
#[derive(Debug, Clone, Serialize)]
pub struct FillRow {
    pub trade_id: u64,
    pub fill: Fill,
    /// Cash after the fill.
    pub cash_after: f64,
}

/// A round trip: from the open of a position to its full close (reverse, close or liquidation).
#[derive(Debug, Clone, Serialize)]
pub struct RoundTrip {
    pub trade_id: u64,
    pub symbol: String,
    pub side: Side,
    pub confidence: Confidence,
    pub opened_ms: i64,
    pub closed_ms: i64,
    pub entry_price: f64,
    pub exit_price: f64,
    pub max_quantity: f64,
    pub adds: u32,
    pub realized_pnl: f64,
    pub fees: f64,
    pub funding: f64,
    /// realized_pnl - fees + funding.
    pub net_pnl: f64,
    pub exit_reason: ReasonCode,
}

#[derive(Debug, Clone)]
struct OpenTrip {
    trip: RoundTrip,
    qty: f64,
}

/// Aggregated counts of one kind of entry block or exit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExitStat {
    pub fills: u64,
    pub pnl: f64,
    pub fees: f64,
}

/// Everything a run produces.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    pub fills: Vec<FillRow>,
    pub trips: Vec<RoundTrip>,
    pub equity_curve: Vec<(i64, f64)>,
    pub stats: EquityStats,
    /// Entry blocks by reason code.
    pub blocked: BTreeMap<String, u64>,
    /// Entry blocks by symbol and reason code.
    pub blocked_by_symbol: BTreeMap<String, BTreeMap<String, u64>>,
    /// Every closing fill (partials included) by reason code.
    pub exits_by_reason: BTreeMap<String, ExitStat>,
    /// Non-neutral entry signals seen by `evaluate` (buy, sell).
    pub signals: (u64, u64),
    pub entries: u64,
    pub adds: u64,
    pub liquidations: u64,
    pub liquidation_pnl: f64,
    pub bars: u64,
    pub steps: u64,
    /// Sub-bar ticks run (`--entry-interval` / `--exit-interval`).
    pub sub_ticks: u64,
    /// Steps with at least one open position.
    pub exposure_steps: u64,
    pub final_state: Option<KernelState>,
    pub cash: f64,
    pub equity: f64,
    pub fees: f64,
    pub funding: f64,
    pub realized: f64,
    pub open_positions: usize,
    pub first_close_ms: i64,
    pub last_close_ms: i64,
}

/// Build the kernel for a run.
pub fn make_kernel(
    base: &StrategyConfig,
    per_symbol: &BTreeMap<String, StrategyConfig>,
    initial_balance: f64,
    init_state: Option<&KernelState>,
) -> Result<Kernel, BtError> {
    let mut k = Kernel::new(base.clone(), initial_balance, FillMode::Simulate);
    // Banks compute only what the decisions read (same fills; see `aiq_kernel::reads`). A run
    // whose state is exported turns this off (`Kernel::set_reads_only_banks`).
    k.set_reads_only_banks(true);
    for (s, c) in per_symbol {
        if c != base {
            k.set_symbol_config(s, c.clone());
        }
    }
    if let Some(st) = init_state {
        let mut st = st.clone();
        st.fill_mode = FillMode::Simulate;
        k.load_state(st).map_err(|e| BtError::new(format!("--init-state: {e}")))?;
    }
    Ok(k)
}

struct Recorder {
    rec: Record,
    r: RunResult,
    open: BTreeMap<String, OpenTrip>,
    next_trade: u64,
}

impl Recorder {
    fn on_output(&mut self, out: &StepOutput, kernel: &Kernel) {
        for f in &out.fills {
            self.on_fill(f, kernel.state.cash_usd);
        }
        for b in &out.blocked {
            let code = b.reason_code.as_str();
            *self.r.blocked.entry(code.to_string()).or_default() += 1;
            *self
                .r
                .blocked_by_symbol
                .entry(b.symbol.clone())
                .or_default()
                .entry(code.to_string())
                .or_default() += 1;
        }
    }

    fn on_fill(&mut self, f: &Fill, cash_after: f64) {
        let closing = matches!(f.kind, IntentKind::Close | IntentKind::Reduce | IntentKind::Reverse);
        let trade_id;
        if closing {
            let e = self.r.exits_by_reason.entry(f.reason_code.as_str().to_string()).or_default();
            e.fills += 1;
            e.pnl += f.pnl_usd;
            e.fees += f.fee_usd;
            if f.reason_code == ReasonCode::Liquidation {
                self.r.liquidations += 1;
                self.r.liquidation_pnl += f.pnl_usd - f.fee_usd;
            }
            let full = f.kind != IntentKind::Reduce;
            match self.open.get_mut(&f.symbol) {
                Some(o) => {
                    trade_id = o.trip.trade_id;
                    o.trip.realized_pnl += f.pnl_usd;
                    o.trip.fees += f.fee_usd;
                    o.trip.exit_price = f.price;
                    o.trip.closed_ms = f.timestamp_ms;
                    o.trip.exit_reason = f.reason_code;
                    o.qty -= f.quantity;
                    if full {
                        let mut o = self.open.remove(&f.symbol).expect("present");
                        o.trip.net_pnl = o.trip.realized_pnl - o.trip.fees + o.trip.funding;
                        self.r.trips.push(o.trip);
                    }
                }
                None => {
                    // A position restored from --init-state: its trip starts here.
                    trade_id = self.new_trade_id();
                    let trip = RoundTrip {
                        trade_id,
                        symbol: f.symbol.clone(),
                        side: f.side.opposite(),
                        confidence: f.confidence,
                        opened_ms: f.timestamp_ms,
                        closed_ms: f.timestamp_ms,
                        entry_price: f.price,
                        exit_price: f.price,
                        max_quantity: f.quantity,
                        adds: 0,
                        realized_pnl: f.pnl_usd,
                        fees: f.fee_usd,
                        funding: 0.0,
                        net_pnl: f.pnl_usd - f.fee_usd,
                        exit_reason: f.reason_code,
                    };
                    if full {
                        self.r.trips.push(trip);
                    } else {
                        self.open.insert(f.symbol.clone(), OpenTrip { trip, qty: 0.0 });
                    }
                }
            }
        } else {
            match self.open.get_mut(&f.symbol) {
                Some(o) => {
                    trade_id = o.trip.trade_id;
                    o.trip.fees += f.fee_usd;
                    o.trip.adds += 1;
                    o.qty += f.quantity;
                    o.trip.max_quantity = o.trip.max_quantity.max(o.qty);
                    self.r.adds += 1;
                }
                None => {
                    trade_id = self.new_trade_id();
                    self.r.entries += 1;
                    let trip = RoundTrip {
                        trade_id,
                        symbol: f.symbol.clone(),
                        side: f.side,
                        confidence: f.confidence,
                        opened_ms: f.timestamp_ms,
                        closed_ms: 0,
                        entry_price: f.price,
                        exit_price: 0.0,
                        max_quantity: f.quantity,
                        adds: 0,
                        realized_pnl: 0.0,
                        fees: f.fee_usd,
                        funding: 0.0,
                        net_pnl: 0.0,
                        exit_reason: ReasonCode::EntrySignal,
                    };
                    self.open.insert(f.symbol.clone(), OpenTrip { trip, qty: f.quantity });
                }
            }
        }
        if self.rec.fills {
            self.r.fills.push(FillRow { trade_id, fill: f.clone(), cash_after });
        }
    }

    fn new_trade_id(&mut self) -> u64 {
        self.next_trade += 1;
        self.next_trade
    }
}

/// Book one funding event on a symbol that holds a position (at its latest price).
#[allow(clippy::too_many_arguments)]
fn apply_funding(
    kernel: &mut Kernel,
    r: &mut Recorder,
    tl: &Timeline,
    idx: &[usize],
    s: u32,
    ft: i64,
    rate: f64,
    px: f64,
) -> Result<(), BtError> {
    let ki = idx[s as usize];
    if px > 0.0 && kernel.position_at(ki).is_some() {
        let paid = kernel.on_funding_at(ki, rate, px, ft).map_err(|e| ctx(e, tl))?;
        if let Some(o) = r.open.get_mut(&tl.symbols[s as usize]) {
            o.trip.funding += paid;
        }
    }
    Ok(())
}

fn ctx(e: aiq_kernel::KernelError, tl: &Timeline) -> BtError {
    BtError::new(format!("replay stopped: {e} (interval {} ms)", tl.interval_ms))
}

/// Run `kernel` over the whole timeline.
pub fn run(kernel: Kernel, tl: &Timeline, rec: Record, initial_equity: f64) -> Result<RunResult, BtError> {
    run_with(kernel, tl, rec, initial_equity, None)
}

/// One symbol's precomputed indicator series for one config (shared read-only by sweep combos);
/// [`SymbolSeries::source`] turns them back into the bank's snapshots, bar by bar.
#[derive(Clone)]
pub struct SymbolSeries {
    pub base: std::sync::Arc<aiq_indicators::BaseSeries>,
    pub ready_index: u64,
    /// In the order of [`aiq_indicators::SeriesSet::keys`].
    pub series: [std::sync::Arc<Vec<f64>>; 12],
}

impl SymbolSeries {
    pub fn source(&self) -> aiq_indicators::SnapshotSource<'_> {
        aiq_indicators::SnapshotSource {
            base: &self.base,
            ready_index: self.ready_index,
            series: std::array::from_fn(|i| self.series[i].as_slice()),
        }
    }
}

/// Precomputed indicator series per timeline symbol (snapshots in bar order); see
/// [`Kernel::step_snapshot`].
pub type SharedSnapshots = [SymbolSeries];

/// [`run`], optionally stepping with precomputed indicator snapshots instead of the kernel's own
/// indicator banks (`snaps[symbol index][bar index]`). Decisions are identical either way.
pub fn run_with(
    kernel: Kernel,
    tl: &Timeline,
    rec: Record,
    initial_equity: f64,
    snaps: Option<&SharedSnapshots>,
) -> Result<RunResult, BtError> {
    let sources: Vec<aiq_indicators::SnapshotSource<'_>>;
    let src = match snaps {
        Some(sn) => {
            sources = sn.iter().map(SymbolSeries::source).collect();
            Source::Shared {
                srcs: &sources,
                blocks: vec![Vec::new(); sources.len()],
                starts: vec![0; sources.len()],
            }
        }
        None => Source::Own,
    };
    run_src(kernel, tl, rec, initial_equity, src)
}

/// Where a run's indicator snapshots come from.
enum Source<'a> {
    /// The kernel's own banks (`step_candle`).
    Own,
    /// Precomputed series per symbol (sweep sharing), assembled into snapshots a block of bars
    /// at a time (each series read sequentially: a per-bar gather over a dozen series per
    /// symbol defeats the prefetcher).
    Shared {
        srcs: &'a [aiq_indicators::SnapshotSource<'a>],
        blocks: Vec<Vec<IndicatorSnapshot>>,
        /// Bar index of `blocks[s][0]`.
        starts: Vec<usize>,
    },
    /// A producer thread computing them in timeline order, in chunks.
    Stream { rx: std::sync::mpsc::Receiver<Vec<IndicatorSnapshot>>, buf: Vec<IndicatorSnapshot>, pos: usize },
}

const STREAM_CHUNK: usize = 4096;
/// Bars per symbol assembled at a time from shared series (about 40 KB of snapshots).
const SHARED_BLOCK: usize = 128;

/// [`run`] with the indicator banks advanced on a second thread, pipelined with the kernel
/// (`Kernel::step_snapshot`): the same decisions and the same final state (the producer's banks
/// are put back into it), in less wall time when a second core is free. Falls back to [`run`]
/// for a kernel restored from a state (its banks are already warm).
pub fn run_pipelined(
    kernel: Kernel,
    tl: &Timeline,
    rec: Record,
    initial_equity: f64,
) -> Result<RunResult, BtError> {
    if kernel.state.symbols.values().any(|s| s.snap.is_some()) {
        return run(kernel, tl, rec, initial_equity);
    }
    let cfgs: Vec<(aiq_config::StrategyConfig, aiq_indicators::Outputs)> =
        tl.symbols.iter().map(|s| (kernel.config(s).clone(), kernel.bank_outputs(s))).collect();
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<IndicatorSnapshot>>(8);
        let producer = scope.spawn(move || {
            let mut banks: Vec<IndicatorBank> =
                cfgs.iter().map(|(c, o)| IndicatorBank::from_config_reading(c, *o)).collect();
            let mut buf = Vec::with_capacity(STREAM_CHUNK);
            for (s, c) in &tl.step_items {
                buf.push(banks[*s as usize].update(c.t, c.o, c.h, c.l, c.c, c.v));
                if buf.len() == STREAM_CHUNK {
                    let full = std::mem::replace(&mut buf, Vec::with_capacity(STREAM_CHUNK));
                    if tx.send(full).is_err() {
                        break; // the run stopped early
                    }
                }
            }
            if !buf.is_empty() {
                let _ = tx.send(buf);
            }
            banks
        });
        let res = run_src(kernel, tl, rec, initial_equity, Source::Stream { rx, buf: Vec::new(), pos: 0 });
        let banks = producer.join().map_err(|_| BtError::new("indicator thread panicked"))?;
        res.map(|mut r| {
            if let Some(st) = r.final_state.as_mut() {
                for (name, bank) in tl.symbols.iter().zip(banks) {
                    if let Some(ss) = st.symbols.get_mut(name) {
                        ss.bank = bank;
                    }
                }
            }
            r
        })
    })
}

fn run_src(
    mut kernel: Kernel,
    tl: &Timeline,
    rec: Record,
    initial_equity: f64,
    mut src: Source<'_>,
) -> Result<RunResult, BtError> {
    let mut r = Recorder { rec, r: RunResult::default(), open: BTreeMap::new(), next_trade: 0 };
    let mut stats = EquityStats::new(initial_equity);
    // Latest price per symbol (main close, or a later sub-bar close); funding is booked at it.
    let mut last_px = vec![0.0f64; tl.symbols.len()];
    let mut bar_idx = vec![0usize; tl.symbols.len()];
    // Skip bars a restored state has already seen (per symbol).
    let seen: Vec<i64> = tl
        .symbols
        .iter()
        .map(|s| {
            kernel.snapshot(s).map_or(i64::MIN, |snap| if snap.bar_count > 0 { snap.t } else { i64::MIN })
        })
        .collect();
    let any_seen = seen.iter().any(|&t| t != i64::MIN);
    // Kernel symbol index of each timeline symbol: the per-bar calls below go by index.
    let idx: Vec<usize> = tl.symbols.iter().map(|s| kernel.symbol_index(s)).collect();
    if any_seen && !matches!(src, Source::Own) {
        return Err(BtError::new("shared indicator snapshots cannot be used with --init-state"));
    }
    if tl.times.is_empty() {
        return Err(BtError::new("no bars to replay in the selected range"));
    }
    r.r.first_close_ms = tl.times[0] + tl.interval_ms;
    let sub = &tl.sub;
    let mut sub_j = 0usize;
    // Decision time of the last evaluated main step (sub-bar ticks run strictly after it).
    let mut last_eval: Option<i64> = None;
    let mut fcur = 0usize;
    let mut prices: Vec<(usize, f64)> = Vec::new();
    for (k, &t) in tl.times.iter().enumerate() {
        let t_close = t + tl.interval_ms;
        let fb = tl.fund_start[k + 1] as usize;
        fcur = fcur.max(tl.fund_start[k] as usize);
        // Sub-bar ticks of the forward window (last decision, t_close): the tick at t_close itself
        // is this main step's own evaluate.
        while sub_j < sub.times.len() && sub.times[sub_j] < t_close {
            let tau = sub.times[sub_j];
            if last_eval.is_some_and(|le| tau > le) {
                let items = &sub.items[sub.start[sub_j] as usize..sub.start[sub_j + 1] as usize];
                while fcur < fb && tl.fund_items[fcur].1 <= tau {
                    let (s, ft, rate) = tl.fund_items[fcur];
                    apply_funding(&mut kernel, &mut r, tl, &idx, s, ft, rate, last_px[s as usize])?;
                    fcur += 1;
                }
                for it in items.iter().filter(|it| !it.exit_px.is_nan()) {
                    let si = it.symbol as usize;
                    last_px[si] = it.exit_px;
                    if kernel.position_at(idx[si]).is_some() {
                        let out = kernel.on_mid_at(idx[si], it.exit_px, tau).map_err(|e| ctx(e, tl))?;
                        if !out.fills.is_empty() || !out.blocked.is_empty() {
                            r.on_output(&out, &kernel);
                        }
                    }
                }
                prices.clear();
                for it in items.iter().filter(|it| !it.entry_px.is_nan()) {
                    last_px[it.symbol as usize] = it.entry_px;
                    prices.push((idx[it.symbol as usize], it.entry_px));
                }
                if !prices.is_empty() {
                    let out = kernel.evaluate_sub_bar_at(&prices, tau, None).map_err(|e| ctx(e, tl))?;
                    if !out.fills.is_empty() || !out.blocked.is_empty() {
                        r.on_output(&out, &kernel);
                    }
                }
                r.r.sub_ticks += 1;
            }
            sub_j += 1;
        }
        let (a, b) = (tl.step_start[k] as usize, tl.step_start[k + 1] as usize);
        let mut stepped = 0;
        for (s, c) in &tl.step_items[a..b] {
            let si = *s as usize;
            if any_seen && c.t <= seen[si] {
                continue;
            }
            let ki = idx[si];
            let out = match &mut src {
                Source::Own => kernel.step_candle_at(ki, *c),
                Source::Shared { srcs, blocks, starts } => {
                    let i = bar_idx[si];
                    bar_idx[si] += 1;
                    let (block, start) = (&mut blocks[si], &mut starts[si]);
                    if i < *start || i >= *start + block.len() {
                        let end = (i + SHARED_BLOCK).min(srcs[si].base.len());
                        block.clear();
                        block.extend((i..end).map(|j| srcs[si].snapshot(j)));
                        *start = i;
                    }
                    kernel.step_snapshot_at(ki, *c, block[i - *start])
                }
                Source::Stream { rx, buf, pos } => {
                    if *pos == buf.len() {
                        *buf = rx.recv().map_err(|_| BtError::new("indicator thread stopped"))?;
                        *pos = 0;
                    }
                    *pos += 1;
                    kernel.step_snapshot_at(ki, *c, buf[*pos - 1])
                }
            }
            .map_err(|e| ctx(e, tl))?;
            last_px[si] = c.c;
            stepped += 1;
            if !out.fills.is_empty() || !out.blocked.is_empty() {
                r.on_output(&out, &kernel);
            }
        }
        if stepped == 0 {
            continue;
        }
        r.r.bars += stepped;
        while fcur < fb {
            let (s, ft, rate) = tl.fund_items[fcur];
            apply_funding(&mut kernel, &mut r, tl, &idx, s, ft, rate, last_px[s as usize])?;
            fcur += 1;
        }
        let out = kernel.evaluate(t_close, None);
        last_eval = Some(t_close);
        if !out.fills.is_empty() || !out.blocked.is_empty() {
            r.on_output(&out, &kernel);
        }
        if rec.fills {
            for (s, _) in &tl.step_items[a..b] {
                match kernel
                    .symbol_at(idx[*s as usize])
                    .and_then(|st| st.last_decision.as_ref())
                    .map(|d| d.signal)
                {
                    Some(aiq_kernel::Signal::Buy) => r.r.signals.0 += 1,
                    Some(aiq_kernel::Signal::Sell) => r.r.signals.1 += 1,
                    _ => {}
                }
            }
        }
        r.r.steps += 1;
        if !kernel.state.positions.is_empty() {
            r.r.exposure_steps += 1;
        }
        let eq = kernel.equity();
        stats.push(eq);
        if rec.equity_curve {
            r.r.equity_curve.push((t_close, eq));
        }
        r.r.last_close_ms = t_close;
    }
    // Positions still open at the end stay open: their trips are reported as open.
    let mut res = r.r;
    res.stats = stats;
    res.cash = kernel.state.cash_usd;
    res.equity = kernel.equity();
    res.fees = kernel.state.fees_usd;
    res.funding = kernel.state.funding_usd;
    res.realized = kernel.state.realized_pnl_usd;
    res.open_positions = kernel.state.positions.len();
    if rec.fills {
        res.final_state = Some(kernel.state);
    }
    Ok(res)
}
