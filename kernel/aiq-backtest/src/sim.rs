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
            count(&mut self.r.blocked, code);
            match self.r.blocked_by_symbol.get_mut(&b.symbol) {
                Some(m) => count(m, code),
                None => count(self.r.blocked_by_symbol.entry(b.symbol.clone()).or_default(), code),
            }
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

/// One more of `key` (allocating its name only the first time: blocks are counted per bar).
fn count(m: &mut BTreeMap<String, u64>, key: &str) {
    match m.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            m.insert(key.to_string(), 1);
        }
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
    /// A block of steps assembled once for a group of runs ([`run_group`]).
    Group(&'a GroupBlock),
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
    if kernel.state.symbols.values().any(|s| s.snap().is_some()) {
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
                buf.push(banks[*s as usize].update(*c));
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
    kernel: Kernel,
    tl: &Timeline,
    rec: Record,
    initial_equity: f64,
    mut src: Source<'_>,
) -> Result<RunResult, BtError> {
    let mut run = Replay::new(kernel, tl, rec, initial_equity, !matches!(src, Source::Own))?;
    run.advance(tl.times.len(), &mut src)?;
    Ok(run.finish())
}

/// One run in progress: the kernel and everything the replay loop carries from step to step, so
/// a run can advance over the timeline a range of steps at a time ([`Replay::advance`]). The
/// sweep advances a group of combos in lockstep over blocks of steps whose snapshots are
/// assembled once for the group ([`run_group`]); a whole replay is one call.
pub struct Replay<'a> {
    kernel: Kernel,
    tl: &'a Timeline,
    r: Recorder,
    stats: EquityStats,
    /// Latest price per symbol (main close, or a later sub-bar close); funding is booked at it.
    last_px: Vec<f64>,
    /// Bars stepped per timeline symbol (the index of its next bar in shared series).
    bar_idx: Vec<usize>,
    /// Bars a restored state has already seen (per symbol).
    seen: Vec<i64>,
    any_seen: bool,
    /// Kernel symbol index of each timeline symbol: the per-bar calls go by index.
    idx: Vec<usize>,
    sub_j: usize,
    /// Decision time of the last evaluated main step (sub-bar ticks run strictly after it).
    last_eval: Option<i64>,
    fcur: usize,
    prices: Vec<(usize, f64)>,
    /// The per-bar step's output, reused (empty between bars).
    out: StepOutput,
    /// The next timeline step.
    k: usize,
}

impl<'a> Replay<'a> {
    /// `shared`: the run will step with snapshots computed elsewhere (not its own banks).
    pub fn new(
        mut kernel: Kernel,
        tl: &'a Timeline,
        rec: Record,
        initial_equity: f64,
        shared: bool,
    ) -> Result<Self, BtError> {
        let seen: Vec<i64> = tl
            .symbols
            .iter()
            .map(|s| {
                kernel.snapshot(s).map_or(i64::MIN, |snap| if snap.bar_count > 0 { snap.t } else { i64::MIN })
            })
            .collect();
        let any_seen = seen.iter().any(|&t| t != i64::MIN);
        let idx: Vec<usize> = tl.symbols.iter().map(|s| kernel.symbol_index(s)).collect();
        if any_seen && shared {
            return Err(BtError::new("shared indicator snapshots cannot be used with --init-state"));
        }
        if tl.times.is_empty() {
            return Err(BtError::new("no bars to replay in the selected range"));
        }
        let mut r = Recorder { rec, r: RunResult::default(), open: BTreeMap::new(), next_trade: 0 };
        r.r.first_close_ms = tl.times[0] + tl.interval_ms;
        Ok(Replay {
            kernel,
            tl,
            r,
            stats: EquityStats::new(initial_equity),
            last_px: vec![0.0; tl.symbols.len()],
            bar_idx: vec![0; tl.symbols.len()],
            seen,
            any_seen,
            idx,
            sub_j: 0,
            last_eval: None,
            fcur: 0,
            prices: Vec::new(),
            out: StepOutput::default(),
            k: 0,
        })
    }

    /// Run the timeline's steps up to (not including) `k_end`, with snapshots from `src`.
    fn advance(&mut self, k_end: usize, src: &mut Source<'_>) -> Result<(), BtError> {
        let tl = self.tl;
        let sub = &tl.sub;
        let rec = self.r.rec;
        while self.k < k_end {
            let k = self.k;
            self.k += 1;
            let t = tl.times[k];
            let t_close = t + tl.interval_ms;
            let fb = tl.fund_start[k + 1] as usize;
            self.fcur = self.fcur.max(tl.fund_start[k] as usize);
            // Sub-bar ticks of the forward window (last decision, t_close): the tick at t_close
            // itself is this main step's own evaluate.
            while self.sub_j < sub.times.len() && sub.times[self.sub_j] < t_close {
                let tau = sub.times[self.sub_j];
                if self.last_eval.is_some_and(|le| tau > le) {
                    self.sub_tick(tau, fb)?;
                }
                self.sub_j += 1;
            }
            let (a, b) = (tl.step_start[k] as usize, tl.step_start[k + 1] as usize);
            let mut stepped = 0;
            for (s, c) in &tl.step_items[a..b] {
                let si = *s as usize;
                if self.any_seen && c.t <= self.seen[si] {
                    continue;
                }
                let ki = self.idx[si];
                let i = self.bar_idx[si];
                self.bar_idx[si] += 1;
                let kernel = &mut self.kernel;
                let out = &mut self.out;
                match src {
                    Source::Own => kernel.step_candle_at(ki, *c).map(|o| *out = o),
                    Source::Shared { srcs, blocks, starts } => {
                        let (block, start) = (&mut blocks[si], &mut starts[si]);
                        if i < *start || i >= *start + block.len() {
                            let end = (i + SHARED_BLOCK).min(srcs[si].base.len());
                            block.clear();
                            block.extend((i..end).map(|j| srcs[si].snapshot(j)));
                            *start = i;
                        }
                        kernel.step_snapshot_into(ki, *c, &block[i - *start], out)
                    }
                    Source::Group(g) => kernel.step_snapshot_into(ki, *c, g.get(si, i), out),
                    Source::Stream { rx, buf, pos } => {
                        if *pos == buf.len() {
                            *buf = rx.recv().map_err(|_| BtError::new("indicator thread stopped"))?;
                            *pos = 0;
                        }
                        *pos += 1;
                        kernel.step_snapshot_into(ki, *c, &buf[*pos - 1], out)
                    }
                }
                .map_err(|e| ctx(e, tl))?;
                self.last_px[si] = c.c;
                stepped += 1;
                if !self.out.fills.is_empty() || !self.out.blocked.is_empty() {
                    self.r.on_output(&self.out, &self.kernel);
                }
                if !self.out.fills.is_empty() || !self.out.blocked.is_empty() || !self.out.intents.is_empty()
                {
                    self.out.fills.clear();
                    self.out.blocked.clear();
                    self.out.intents.clear();
                }
            }
            if stepped == 0 {
                continue;
            }
            self.r.r.bars += stepped;
            while self.fcur < fb {
                let (s, ft, rate) = tl.fund_items[self.fcur];
                let px = self.last_px[s as usize];
                apply_funding(&mut self.kernel, &mut self.r, tl, &self.idx, s, ft, rate, px)?;
                self.fcur += 1;
            }
            let out = self.kernel.evaluate(t_close, None);
            self.last_eval = Some(t_close);
            if !out.fills.is_empty() || !out.blocked.is_empty() {
                self.r.on_output(&out, &self.kernel);
            }
            if rec.fills {
                for (s, _) in &tl.step_items[a..b] {
                    match self
                        .kernel
                        .symbol_at(self.idx[*s as usize])
                        .and_then(|st| st.last_decision.as_ref())
                        .map(|d| d.signal)
                    {
                        Some(aiq_kernel::Signal::Buy) => self.r.r.signals.0 += 1,
                        Some(aiq_kernel::Signal::Sell) => self.r.r.signals.1 += 1,
                        _ => {}
                    }
                }
            }
            self.r.r.steps += 1;
            if !self.kernel.state.positions.is_empty() {
                self.r.r.exposure_steps += 1;
            }
            let eq = self.kernel.equity();
            self.stats.push(eq);
            if rec.equity_curve {
                self.r.r.equity_curve.push((t_close, eq));
            }
            self.r.r.last_close_ms = t_close;
        }
        Ok(())
    }

    /// One sub-bar tick at `tau`: funding due by then, exits at exit sub-bar closes, entries at
    /// entry sub-bar closes.
    fn sub_tick(&mut self, tau: i64, fb: usize) -> Result<(), BtError> {
        let tl = self.tl;
        let sub = &tl.sub;
        let j = self.sub_j;
        let items = &sub.items[sub.start[j] as usize..sub.start[j + 1] as usize];
        while self.fcur < fb && tl.fund_items[self.fcur].1 <= tau {
            let (s, ft, rate) = tl.fund_items[self.fcur];
            let px = self.last_px[s as usize];
            apply_funding(&mut self.kernel, &mut self.r, tl, &self.idx, s, ft, rate, px)?;
            self.fcur += 1;
        }
        for it in items.iter().filter(|it| !it.exit_px.is_nan()) {
            let si = it.symbol as usize;
            self.last_px[si] = it.exit_px;
            if self.kernel.position_at(self.idx[si]).is_some() {
                let out = self.kernel.on_mid_at(self.idx[si], it.exit_px, tau).map_err(|e| ctx(e, tl))?;
                if !out.fills.is_empty() || !out.blocked.is_empty() {
                    self.r.on_output(&out, &self.kernel);
                }
            }
        }
        self.prices.clear();
        for it in items.iter().filter(|it| !it.entry_px.is_nan()) {
            self.last_px[it.symbol as usize] = it.entry_px;
            self.prices.push((self.idx[it.symbol as usize], it.entry_px));
        }
        if !self.prices.is_empty() {
            let out = self.kernel.evaluate_sub_bar_at(&self.prices, tau, None).map_err(|e| ctx(e, tl))?;
            if !out.fills.is_empty() || !out.blocked.is_empty() {
                self.r.on_output(&out, &self.kernel);
            }
        }
        self.r.r.sub_ticks += 1;
        Ok(())
    }

    /// The run's result (positions still open at the end stay open: their trips are reported
    /// as open).
    pub fn finish(self) -> RunResult {
        let kernel = self.kernel;
        let mut res = self.r.r;
        res.stats = self.stats;
        res.cash = kernel.state.cash_usd;
        res.equity = kernel.equity();
        res.fees = kernel.state.fees_usd;
        res.funding = kernel.state.funding_usd;
        res.realized = kernel.state.realized_pnl_usd;
        res.open_positions = kernel.state.positions.len();
        if self.r.rec.fills {
            res.final_state = Some(kernel.state);
        }
        res
    }
}

/// Snapshots of a block of timeline steps, for every symbol, assembled once and read by every
/// run of a group ([`run_group`]).
pub struct GroupBlock {
    /// Per timeline symbol: its snapshots in the block, the first one being its bar `start[s]`.
    snaps: Vec<Vec<IndicatorSnapshot>>,
    start: Vec<usize>,
}

impl GroupBlock {
    #[inline]
    fn get(&self, s: usize, bar: usize) -> &IndicatorSnapshot {
        &self.snaps[s][bar - self.start[s]]
    }
}

/// Timeline steps per lockstep block: the block's snapshots (steps x symbols x ~400 bytes) stay
/// in L2 while every run of the group reads them.
const GROUP_STEPS: usize = 24;

/// Run `kernels` over the whole timeline on the same shared series (`snaps`), in lockstep: each
/// block of steps has its snapshots assembled once for the group, then every run advances over
/// it. Each run computes exactly what [`run_with`] computes for it (results in `kernels` order).
pub fn run_group(
    kernels: Vec<Kernel>,
    tl: &Timeline,
    rec: Record,
    initial_equity: f64,
    snaps: &SharedSnapshots,
) -> Result<Vec<RunResult>, BtError> {
    let srcs: Vec<aiq_indicators::SnapshotSource<'_>> = snaps.iter().map(SymbolSeries::source).collect();
    let mut runs: Vec<Replay<'_>> = kernels
        .into_iter()
        .map(|k| Replay::new(k, tl, rec, initial_equity, true))
        .collect::<Result<_, _>>()?;
    let nsym = tl.symbols.len();
    let mut block = GroupBlock { snaps: vec![Vec::new(); nsym], start: vec![0; nsym] };
    let mut next_bar = vec![0usize; nsym];
    let mut k0 = 0;
    while k0 < tl.times.len() {
        let k1 = (k0 + GROUP_STEPS).min(tl.times.len());
        for (s, v) in block.snaps.iter_mut().enumerate() {
            v.clear();
            block.start[s] = next_bar[s];
        }
        let (a, b) = (tl.step_start[k0] as usize, tl.step_start[k1] as usize);
        for (s, _) in &tl.step_items[a..b] {
            let s = *s as usize;
            block.snaps[s].push(srcs[s].snapshot(next_bar[s]));
            next_bar[s] += 1;
        }
        let mut src = Source::Group(&block);
        for run in &mut runs {
            run.advance(k1, &mut src)?;
        }
        k0 = k1;
    }
    Ok(runs.into_iter().map(Replay::finish).collect())
}
