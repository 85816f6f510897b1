//! The kernel: per-symbol indicator state, positions and cash, driven by candles, mids and funding.
//!
//! Every method is deterministic: the same sequence of calls on the same state gives bit-identical
//! results, and [`KernelState`] round-trips through JSON mid-stream.

use std::collections::HashMap;
use std::sync::Arc;

use aiq_config::{Confidence, StrategyConfig, StrategyName};
pub use aiq_indicators::Candle;
use aiq_indicators::{IndicatorBank, IndicatorSnapshot};
use serde::{Deserialize, Serialize};

use crate::exits::check_exit;
use crate::regime::{self, RegimeAction};
use crate::signal::{analyze_for, SignalDecision};
use crate::sizing::{entry_margin, pesc_cooldown_minutes, tier_leverage};
use crate::symbol_map::SymbolMap;
use crate::types::{
    CloseInfo, Fill, IntentKind, OrderIntent, Position, ReasonCode, Side, Signal, SCHEMA_VERSION,
};

/// Whether the kernel fills its own intents (paper, replay, sweep) or waits for real fills (live).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillMode {
    Simulate,
    External,
}

/// Everything the kernel remembers about one symbol besides its position.
///
/// The latest and the previous indicator snapshot live in two slots and a new bar overwrites
/// the older one: one copy of a few hundred bytes per bar instead of two (the per-bar cost of a
/// sweep). The saved state keeps its fields `snap` and `prev` (see the serde impls below).
#[derive(Debug, Clone)]
pub struct SymbolState {
    pub bank: IndicatorBank,
    slots: [Option<IndicatorSnapshot>; 2],
    /// The slot of the latest snapshot.
    cur: usize,
    pub last_price: f64,
    pub last_entry_ms: Option<i64>,
    pub last_exit_ms: Option<i64>,
    pub last_close: Option<CloseInfo>,
    /// A candle arrived since the last `evaluate`.
    pub dirty: bool,
    pub last_decision: Option<SignalDecision>,
}

impl SymbolState {
    pub fn new(bank: IndicatorBank) -> Self {
        SymbolState {
            bank,
            slots: [None, None],
            cur: 0,
            last_price: 0.0,
            last_entry_ms: None,
            last_exit_ms: None,
            last_close: None,
            dirty: false,
            last_decision: None,
        }
    }

    /// The latest snapshot.
    #[inline]
    pub fn snap(&self) -> Option<&IndicatorSnapshot> {
        self.slots[self.cur].as_ref()
    }

    /// The snapshot before the latest.
    #[inline]
    pub fn prev(&self) -> Option<&IndicatorSnapshot> {
        self.slots[self.cur ^ 1].as_ref()
    }

    #[inline]
    pub fn snap_mut(&mut self) -> Option<&mut IndicatorSnapshot> {
        self.slots[self.cur].as_mut()
    }

    pub fn set_snap(&mut self, snap: Option<IndicatorSnapshot>) {
        self.slots[self.cur] = snap;
    }

    pub fn set_prev(&mut self, prev: Option<IndicatorSnapshot>) {
        self.slots[self.cur ^ 1] = prev;
    }

    /// A new bar: the latest snapshot becomes the previous one; returns the slot of the new one.
    #[inline]
    fn next_slot(&mut self) -> &mut Option<IndicatorSnapshot> {
        self.cur ^= 1;
        &mut self.slots[self.cur]
    }
}

/// The saved form of [`SymbolState`] (field names and order of the state schema).
#[derive(Serialize)]
struct SymbolStateOut<'a> {
    bank: &'a IndicatorBank,
    snap: Option<&'a IndicatorSnapshot>,
    prev: Option<&'a IndicatorSnapshot>,
    last_price: f64,
    last_entry_ms: Option<i64>,
    last_exit_ms: Option<i64>,
    last_close: &'a Option<CloseInfo>,
    dirty: bool,
    last_decision: &'a Option<SignalDecision>,
}

#[derive(Deserialize)]
struct SymbolStateIn {
    bank: IndicatorBank,
    snap: Option<IndicatorSnapshot>,
    prev: Option<IndicatorSnapshot>,
    last_price: f64,
    last_entry_ms: Option<i64>,
    last_exit_ms: Option<i64>,
    last_close: Option<CloseInfo>,
    dirty: bool,
    last_decision: Option<SignalDecision>,
}

impl Serialize for SymbolState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SymbolStateOut {
            bank: &self.bank,
            snap: self.snap(),
            prev: self.prev(),
            last_price: self.last_price,
            last_entry_ms: self.last_entry_ms,
            last_exit_ms: self.last_exit_ms,
            last_close: &self.last_close,
            dirty: self.dirty,
            last_decision: &self.last_decision,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SymbolState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = SymbolStateIn::deserialize(d)?;
        Ok(SymbolState {
            bank: v.bank,
            slots: [v.snap, v.prev],
            cur: 0,
            last_price: v.last_price,
            last_entry_ms: v.last_entry_ms,
            last_exit_ms: v.last_exit_ms,
            last_close: v.last_close,
            dirty: v.dirty,
            last_decision: v.last_decision,
        })
    }
}

/// The kernel's complete state: the single source of truth for simulated accounting.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelState {
    pub schema_version: u32,
    pub step: u64,
    pub timestamp_ms: i64,
    pub cash_usd: f64,
    pub next_intent_id: u64,
    pub positions: SymbolMap<Position>,
    pub symbols: SymbolMap<SymbolState>,
    pub fill_mode: FillMode,
    pub realized_pnl_usd: f64,
    pub fees_usd: f64,
    pub funding_usd: f64,
}

/// Why an entry candidate did not execute (diagnostics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryBlock {
    pub symbol: String,
    pub signal: Signal,
    pub reason_code: ReasonCode,
}

/// What one kernel call produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepOutput {
    pub intents: Vec<OrderIntent>,
    pub fills: Vec<Fill>,
    pub blocked: Vec<EntryBlock>,
}

impl StepOutput {
    /// Most calls return nothing: skip the three vector moves then (a per-bar cost).
    #[inline]
    fn extend(&mut self, other: StepOutput) {
        if other.intents.is_empty() && other.fills.is_empty() && other.blocked.is_empty() {
            return;
        }
        self.intents.extend(other.intents);
        self.fills.extend(other.fills);
        self.blocked.extend(other.blocked);
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KernelError {
    #[error("invalid candle for {symbol} at t={t}: {problem}")]
    InvalidCandle { symbol: String, t: i64, problem: String },
    #[error("out-of-order candle for {symbol}: t={t} is not after the last bar t={last}")]
    OutOfOrder { symbol: String, t: i64, last: i64 },
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("state schema_version {found} does not match kernel schema_version {expected}")]
    SchemaVersion { found: u32, expected: u32 },
}

/// The decision kernel.
///
/// Symbols are interned to dense indices ([`Kernel::symbol_index`]) when the kernel first sees
/// them; `state.symbols`, `state.positions` and the per-symbol configs are kept aligned to those
/// indices, so the per-bar paths (`*_at` entry points, `evaluate`) do no string comparison or
/// map lookup. The name-keyed methods stay for callers that hold names.
#[derive(Debug, Clone)]
pub struct Kernel {
    // Arc: decisions borrow a config while the kernel mutates its state, without copying it.
    base: Arc<StrategyConfig>,
    /// Symbol-specific configs by symbol index (`None`: the base config).
    per_symbol: Vec<Option<Arc<StrategyConfig>>>,
    /// Interned symbol names by index, and the way back.
    names: Vec<String>,
    index: HashMap<String, usize>,
    /// Index of "BTC" (the alignment filter and the regime rules read its snapshot).
    btc: Option<usize>,
    /// Some config (base or per symbol) enables a market-regime rule.
    any_regime: bool,
    /// Layout tags of `state.symbols` and `state.positions` when they were last aligned to
    /// `names`: a map whose tag differs was replaced or given a new name from outside.
    layouts: (u64, u64),
    scratch: Vec<usize>,
    /// Entry candidates of one `evaluate` (a reused buffer).
    candidates: Vec<Candidate>,
    sub_saved: Vec<(usize, f64)>,
    /// New symbols get banks computing only what the decisions read ([`crate::reads`]).
    reads_only: bool,
    pub state: KernelState,
}

#[derive(Debug, Clone)]
struct Candidate {
    idx: usize,
    side: Side,
    confidence: Confidence,
    score: f64,
}

impl Kernel {
    pub fn new(cfg: StrategyConfig, initial_cash: f64, fill_mode: FillMode) -> Self {
        let state = KernelState {
            schema_version: SCHEMA_VERSION,
            step: 0,
            timestamp_ms: 0,
            cash_usd: initial_cash,
            next_intent_id: 1,
            positions: SymbolMap::new(),
            symbols: SymbolMap::new(),
            fill_mode,
            realized_pnl_usd: 0.0,
            fees_usd: 0.0,
            funding_usd: 0.0,
        };
        Self {
            any_regime: regime::any_enabled(&cfg.market_regime),
            base: Arc::new(cfg),
            per_symbol: Vec::new(),
            names: Vec::new(),
            index: HashMap::new(),
            btc: None,
            layouts: (state.symbols.layout(), state.positions.layout()),
            scratch: Vec::new(),
            candidates: Vec::new(),
            sub_saved: Vec::new(),
            reads_only: false,
            state,
        }
    }

    /// Use a symbol-specific merged config (overrides from `symbols.<SYM>`).
    pub fn set_symbol_config(&mut self, symbol: &str, cfg: StrategyConfig) {
        let i = self.symbol_index(symbol);
        self.per_symbol[i] = Some(Arc::new(cfg));
        self.any_regime = regime::any_enabled(&self.base.market_regime)
            || self.per_symbol.iter().flatten().any(|c| regime::any_enabled(&c.market_regime));
    }

    pub fn config(&self, symbol: &str) -> &StrategyConfig {
        self.index.get(symbol).map_or(&self.base, |&i| self.cfg(i))
    }

    #[inline]
    fn cfg(&self, i: usize) -> &StrategyConfig {
        self.per_symbol[i].as_deref().unwrap_or(&self.base)
    }

    fn cfg_arc(&self, i: usize) -> Arc<StrategyConfig> {
        Arc::clone(self.per_symbol[i].as_ref().unwrap_or(&self.base))
    }

    /// The dense index of `symbol`, interning it if the kernel has not seen it yet. Indices are
    /// stable for the kernel's lifetime (also across `load_state`); use them with the `*_at`
    /// methods on the per-bar path.
    pub fn symbol_index(&mut self, symbol: &str) -> usize {
        self.sync();
        if let Some(&i) = self.index.get(symbol) {
            return i;
        }
        let i = self.push_name(symbol);
        let (s, p) = (self.state.symbols.intern(symbol), self.state.positions.intern(symbol));
        debug_assert!(s == i && p == i, "state maps aligned to the kernel's symbol indices");
        self.layouts = (self.state.symbols.layout(), self.state.positions.layout());
        i
    }

    /// The name of symbol index `i`.
    pub fn symbol_name(&self, i: usize) -> &str {
        &self.names[i]
    }

    fn push_name(&mut self, symbol: &str) -> usize {
        let i = self.names.len();
        self.names.push(symbol.to_string());
        self.index.insert(symbol.to_string(), i);
        self.per_symbol.push(None);
        if symbol == "BTC" {
            self.btc = Some(i);
        }
        i
    }

    #[inline]
    fn aligned(&self) -> bool {
        self.layouts == (self.state.symbols.layout(), self.state.positions.layout())
    }

    /// Re-align the state's maps to the kernel's symbol indices if they were replaced or given
    /// new names from outside (`state` is public, and `load_state` replaces it). O(1) otherwise.
    #[inline]
    fn sync(&mut self) {
        if !self.aligned() {
            self.realign();
        }
    }

    #[cold]
    fn realign(&mut self) {
        let mut extra: Vec<String> = self
            .state
            .symbols
            .names()
            .iter()
            .chain(self.state.positions.names())
            .filter(|n| !self.index.contains_key(n.as_str()))
            .cloned()
            .collect();
        extra.sort();
        extra.dedup();
        for n in &extra {
            self.push_name(n);
        }
        self.state.symbols = std::mem::take(&mut self.state.symbols).aligned_to(&self.names);
        self.state.positions = std::mem::take(&mut self.state.positions).aligned_to(&self.names);
        self.layouts = (self.state.symbols.layout(), self.state.positions.layout());
    }

    /// The symbol state at index `i` (also when the maps were changed from outside since the
    /// last call that aligned them).
    pub fn symbol_at(&self, i: usize) -> Option<&SymbolState> {
        if self.aligned() {
            self.state.symbols.at(i)
        } else {
            self.state.symbols.get(&self.names[i])
        }
    }

    /// The open position at symbol index `i`, if any (see [`Kernel::symbol_at`]).
    pub fn position_at(&self, i: usize) -> Option<&Position> {
        if self.aligned() {
            self.state.positions.at(i)
        } else {
            self.state.positions.get(&self.names[i])
        }
    }

    /// Replace the state (restore). Indicator windows in the state must match the config.
    pub fn load_state(&mut self, state: KernelState) -> Result<(), KernelError> {
        if state.schema_version != SCHEMA_VERSION {
            return Err(KernelError::SchemaVersion { found: state.schema_version, expected: SCHEMA_VERSION });
        }
        self.state = state;
        self.realign();
        Ok(())
    }

    fn check_index(&self, i: usize) -> Result<(), KernelError> {
        if i < self.names.len() {
            Ok(())
        } else {
            Err(KernelError::Invalid(format!("unknown symbol index {i}")))
        }
    }

    /// Build the indicator banks of symbols not seen yet from what the decisions read
    /// ([`crate::reads::symbol_reads`]; the other fields of their snapshots are NaN) instead of
    /// every indicator. For the replay and the sweep: the same fills, faster. Off by default:
    /// the daemon's audit records every gate value, and a saved state keeps its banks.
    pub fn set_reads_only_banks(&mut self, on: bool) {
        self.reads_only = on;
    }

    /// The indicator groups a new bank for `symbol` computes.
    pub fn bank_outputs(&self, symbol: &str) -> aiq_indicators::Outputs {
        if !self.reads_only {
            return aiq_indicators::Outputs::ALL;
        }
        let all = std::iter::once(&*self.base).chain(self.per_symbol.iter().flatten().map(|c| &**c));
        crate::reads::symbol_reads(symbol, self.config(symbol), all)
    }

    fn symbol_state(&mut self, i: usize) -> &mut SymbolState {
        if self.state.symbols.at(i).is_none() {
            let bank = IndicatorBank::from_config_reading(self.cfg(i), self.bank_outputs(&self.names[i]));
            self.state.symbols.put_at(i, SymbolState::new(bank));
        }
        self.state.symbols.at_mut(i).expect("inserted above")
    }

    /// Latest indicator snapshot of a symbol.
    pub fn snapshot(&self, symbol: &str) -> Option<&IndicatorSnapshot> {
        self.state.symbols.get(symbol).and_then(|s| s.snap())
    }

    /// Equity: cash plus unrealised PnL at the last known prices.
    pub fn equity(&self) -> f64 {
        // Positions in name order either way (the sum's order is part of the result).
        let upnl: f64 = if self.aligned() {
            self.state
                .positions
                .iter_indexed()
                .map(|(i, p)| {
                    let px = self.state.symbols.at(i).map_or(0.0, |s| s.last_price);
                    if px > 0.0 {
                        p.unrealized_pnl(px)
                    } else {
                        0.0
                    }
                })
                .sum()
        } else {
            self.state
                .positions
                .values()
                .map(|p| {
                    let px = self.state.symbols.get(&p.symbol).map_or(0.0, |s| s.last_price);
                    if px > 0.0 {
                        p.unrealized_pnl(px)
                    } else {
                        0.0
                    }
                })
                .sum()
        };
        self.state.cash_usd + upnl
    }

    pub fn used_margin(&self) -> f64 {
        self.state.positions.values().map(Position::margin).sum()
    }

    /// Feed one closed candle. Updates indicators, MAE/MFE, and checks liquidation on the bar's
    /// adverse extreme. Entry and exit decisions happen in [`Kernel::evaluate`].
    pub fn step_candle(&mut self, symbol: &str, candle: Candle) -> Result<StepOutput, KernelError> {
        let i = self.symbol_index(symbol);
        self.step_with(i, candle, None)
    }

    /// [`Kernel::step_candle`] by symbol index ([`Kernel::symbol_index`]).
    pub fn step_candle_at(&mut self, i: usize, candle: Candle) -> Result<StepOutput, KernelError> {
        self.sync();
        self.check_index(i)?;
        self.step_with(i, candle, None)
    }

    /// [`Kernel::step_candle`] with the bar's indicator snapshot computed elsewhere: the
    /// backtester computes one series per (symbol, indicator config) and shares it across sweep
    /// combos that differ only in trade parameters. `snap` must be what this symbol's
    /// `IndicatorBank` would return for `candle` (same config, same bar sequence); decisions are
    /// then bit-identical to `step_candle`. The symbol's indicator bank is not advanced, so a
    /// state saved from such a kernel cannot be continued with `step_candle`.
    pub fn step_snapshot(
        &mut self,
        symbol: &str,
        candle: Candle,
        snap: IndicatorSnapshot,
    ) -> Result<StepOutput, KernelError> {
        let i = self.symbol_index(symbol);
        self.step_snapshot_inner(i, candle, &snap)
    }

    /// [`Kernel::step_snapshot`] by symbol index ([`Kernel::symbol_index`]).
    pub fn step_snapshot_at(
        &mut self,
        i: usize,
        candle: Candle,
        snap: IndicatorSnapshot,
    ) -> Result<StepOutput, KernelError> {
        self.sync();
        self.check_index(i)?;
        self.step_snapshot_inner(i, candle, &snap)
    }

    /// [`Kernel::step_snapshot_at`] with the snapshot borrowed (it is copied once, into the
    /// symbol's state; a snapshot is a few hundred bytes) and the output appended to `out` (the
    /// caller reuses one buffer): the sweep's per-bar path.
    pub fn step_snapshot_into(
        &mut self,
        i: usize,
        candle: Candle,
        snap: &IndicatorSnapshot,
        out: &mut StepOutput,
    ) -> Result<(), KernelError> {
        self.sync();
        self.check_index(i)?;
        self.check_snapshot(i, &candle, snap)?;
        self.step_into(i, candle, Some(snap), out)
    }

    fn step_snapshot_inner(
        &mut self,
        i: usize,
        candle: Candle,
        snap: &IndicatorSnapshot,
    ) -> Result<StepOutput, KernelError> {
        self.check_snapshot(i, &candle, snap)?;
        self.step_with(i, candle, Some(snap))
    }

    fn check_snapshot(&self, i: usize, candle: &Candle, snap: &IndicatorSnapshot) -> Result<(), KernelError> {
        if snap.t != candle.t {
            return Err(KernelError::Invalid(format!(
                "snapshot for {} is for t={}, not the candle's t={}",
                self.names[i], snap.t, candle.t
            )));
        }
        Ok(())
    }

    fn step_with(
        &mut self,
        i: usize,
        candle: Candle,
        given: Option<&IndicatorSnapshot>,
    ) -> Result<StepOutput, KernelError> {
        let mut out = StepOutput::default();
        self.step_into(i, candle, given, &mut out)?;
        Ok(out)
    }

    fn step_into(
        &mut self,
        i: usize,
        candle: Candle,
        given: Option<&IndicatorSnapshot>,
        out: &mut StepOutput,
    ) -> Result<(), KernelError> {
        validate_candle(&self.names[i], &candle)?;
        self.symbol_state(i);
        let st = self.state.symbols.at_mut(i).expect("created above");
        if let Some(last) = st.snap().map(|s| s.t) {
            if candle.t <= last {
                return Err(KernelError::OutOfOrder { symbol: self.names[i].clone(), t: candle.t, last });
            }
        }
        match given {
            Some(s) => *st.next_slot() = Some(*s),
            None => {
                let s = st.bank.update(candle);
                *st.next_slot() = Some(s);
            }
        }
        st.last_price = candle.c;
        st.dirty = true;
        self.state.step += 1;
        self.state.timestamp_ms = self.state.timestamp_ms.max(candle.t);

        if let Some(pos) = self.state.positions.at_mut(i) {
            let (worst, best) = match pos.side {
                Side::Long => (candle.l, candle.h),
                Side::Short => (candle.h, candle.l),
            };
            pos.mae_usd = pos.mae_usd.min(pos.unrealized_pnl(worst));
            pos.mfe_usd = pos.mfe_usd.max(pos.unrealized_pnl(best));
            out.extend(self.check_liquidation(i, worst, candle.t));
        }
        Ok(())
    }

    /// Apply a funding payment for `symbol` at `rate` (per funding period) and mark price `px`.
    pub fn on_funding(&mut self, symbol: &str, rate: f64, px: f64, t: i64) -> Result<f64, KernelError> {
        if !rate.is_finite() || !px.is_finite() || px <= 0.0 {
            return Err(KernelError::Invalid(format!("funding for {symbol}: rate={rate} px={px}")));
        }
        let i = self.symbol_index(symbol);
        self.funding_inner(i, rate, px, t)
    }

    /// [`Kernel::on_funding`] by symbol index ([`Kernel::symbol_index`]).
    pub fn on_funding_at(&mut self, i: usize, rate: f64, px: f64, t: i64) -> Result<f64, KernelError> {
        self.sync();
        self.check_index(i)?;
        if !rate.is_finite() || !px.is_finite() || px <= 0.0 {
            return Err(KernelError::Invalid(format!("funding for {}: rate={rate} px={px}", self.names[i])));
        }
        self.funding_inner(i, rate, px, t)
    }

    fn funding_inner(&mut self, i: usize, rate: f64, px: f64, t: i64) -> Result<f64, KernelError> {
        if !self.cfg(i).trade.enable_funding {
            return Ok(0.0);
        }
        let Some(pos) = self.state.positions.at_mut(i) else { return Ok(0.0) };
        // A long pays when the rate is positive; a short receives.
        let payment = -pos.side.sign() * pos.quantity * px * rate;
        pos.funding_paid_usd -= payment;
        self.state.cash_usd += payment;
        self.state.funding_usd += payment;
        self.state.timestamp_ms = self.state.timestamp_ms.max(t);
        Ok(payment)
    }

    /// A new mid price: exits run at once for that symbol (stops, trailing, take profit).
    pub fn on_mid(&mut self, symbol: &str, px: f64, t: i64) -> Result<StepOutput, KernelError> {
        if !px.is_finite() || px <= 0.0 {
            return Err(KernelError::Invalid(format!("mid for {symbol}: {px}")));
        }
        let i = self.symbol_index(symbol);
        Ok(self.mid_inner(i, px, t))
    }

    /// [`Kernel::on_mid`] by symbol index ([`Kernel::symbol_index`]).
    pub fn on_mid_at(&mut self, i: usize, px: f64, t: i64) -> Result<StepOutput, KernelError> {
        self.sync();
        self.check_index(i)?;
        if !px.is_finite() || px <= 0.0 {
            return Err(KernelError::Invalid(format!("mid for {}: {px}", self.names[i])));
        }
        Ok(self.mid_inner(i, px, t))
    }

    fn mid_inner(&mut self, i: usize, px: f64, t: i64) -> StepOutput {
        let st = self.symbol_state(i);
        st.last_price = px;
        self.state.timestamp_ms = self.state.timestamp_ms.max(t);
        let mut out = self.check_liquidation(i, px, t);
        out.extend(self.run_exits(i, px, t));
        out
    }

    /// Exits, then ranked entries, for every symbol that received a candle since the last call.
    /// `equity_override` is the real account equity in live trading (sizing uses it).
    pub fn evaluate(&mut self, now_ms: i64, equity_override: Option<f64>) -> StepOutput {
        self.sync();
        self.evaluate_inner(now_ms, equity_override, true)
    }

    /// Entries on a sub-bar (the backtester's `--entry-interval`): for each `(symbol, price)`,
    /// the symbol's latest indicator snapshot with its close replaced by `price` (a hybrid
    /// snapshot: main-bar indicators, volume and prior bar; sub-bar price) goes through the same
    /// signal, flip, pyramid and ranked-entry logic as [`Kernel::evaluate`], filling at `price`.
    /// Protective exits are not run here (they belong to exit sub-bars, see [`Kernel::on_mid`]).
    /// The main snapshot's close is restored afterwards, so the next bar is unaffected.
    pub fn evaluate_sub_bar(
        &mut self,
        prices: &[(&str, f64)],
        now_ms: i64,
        equity_override: Option<f64>,
    ) -> Result<StepOutput, KernelError> {
        for &(symbol, px) in prices {
            if !px.is_finite() || px <= 0.0 {
                return Err(KernelError::Invalid(format!("sub-bar price for {symbol}: {px}")));
            }
        }
        self.sync();
        // Symbols the kernel does not know have no snapshot: skipped, as below.
        let at: Vec<(usize, f64)> =
            prices.iter().filter_map(|&(s, px)| self.index.get(s).map(|&i| (i, px))).collect();
        Ok(self.sub_bar_inner(&at, now_ms, equity_override))
    }

    /// [`Kernel::evaluate_sub_bar`] by symbol index ([`Kernel::symbol_index`]).
    pub fn evaluate_sub_bar_at(
        &mut self,
        prices: &[(usize, f64)],
        now_ms: i64,
        equity_override: Option<f64>,
    ) -> Result<StepOutput, KernelError> {
        self.sync();
        for &(i, px) in prices {
            self.check_index(i)?;
            if !px.is_finite() || px <= 0.0 {
                return Err(KernelError::Invalid(format!("sub-bar price for {}: {px}", self.names[i])));
            }
        }
        Ok(self.sub_bar_inner(prices, now_ms, equity_override))
    }

    fn sub_bar_inner(
        &mut self,
        prices: &[(usize, f64)],
        now_ms: i64,
        equity_override: Option<f64>,
    ) -> StepOutput {
        let mut saved = std::mem::take(&mut self.sub_saved);
        saved.clear();
        for &(i, px) in prices {
            let Some(st) = self.state.symbols.at_mut(i) else { continue };
            let Some(snap) = st.snap_mut() else { continue };
            saved.push((i, snap.close));
            snap.close = px;
            st.last_price = px;
            st.dirty = true;
        }
        self.state.timestamp_ms = self.state.timestamp_ms.max(now_ms);
        let out = self.evaluate_inner(now_ms, equity_override, false);
        for &(i, close) in &saved {
            if let Some(snap) = self.state.symbols.at_mut(i).and_then(|s| s.snap_mut()) {
                snap.close = close;
            }
        }
        self.sub_saved = saved;
        out
    }

    fn btc_snap(&self) -> Option<&IndicatorSnapshot> {
        self.btc.and_then(|b| self.state.symbols.at(b)).and_then(|s| s.snap())
    }

    fn evaluate_inner(&mut self, now_ms: i64, equity_override: Option<f64>, exits: bool) -> StepOutput {
        let mut out = StepOutput::default();
        // Indices of the symbols to evaluate, in name order, in a reused buffer.
        let mut dirty = std::mem::take(&mut self.scratch);
        dirty.clear();
        dirty.extend(self.state.symbols.iter_indexed().filter(|(_, s)| s.dirty).map(|(i, _)| i));
        let btc_bullish = self.btc_snap().filter(|s| s.ready).map(|s| s.ema_fast > s.ema_slow);

        // Pushed in name order, at most one per symbol.
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        for &i in &dirty {
            // Plain copies of what this loop reads of the config (an `Arc` clone per symbol per
            // bar was an atomic increment and decrement on the hot path); `analyze` borrows it.
            let (strategy, allow_reverse) = {
                let cfg = self.cfg(i);
                (cfg.strategy, cfg.trade.allow_reverse)
            };
            let Some(st) = self.state.symbols.at_mut(i) else { continue };
            st.dirty = false;
            let (Some(px), Some(adx)) = (st.snap().map(|s| s.close), st.snap().map(|s| s.adx)) else {
                continue;
            };
            if st.prev().is_none() {
                continue;
            }
            if exits {
                out.extend(self.run_exits(i, px, now_ms));
            }

            // The config, the name and the state are disjoint fields.
            let cfg: &StrategyConfig = self.per_symbol[i].as_deref().unwrap_or(&self.base);
            let Some(st) = self.state.symbols.at_mut(i) else { continue };
            let (Some(s), Some(p)) = (st.snap(), st.prev()) else { continue };
            let decision = match strategy {
                StrategyName::MeiAlphaV1 => analyze_for(s, p, cfg, self.btc == Some(i), btc_bullish),
                StrategyName::EmaCross => crate::ema_cross::analyze(s, p),
            };
            st.last_decision = Some(decision);
            if strategy == StrategyName::EmaCross {
                out.extend(self.ema_cross_step(i, &decision, px, now_ms, equity_override));
                continue;
            }
            let Some(side) = decision.signal.side() else { continue };
            let score = f64::from(decision.confidence.rank()) * 100.0 + adx;
            match self.state.positions.at(i).map(|p| p.side) {
                Some(existing) if existing == side => {
                    out.extend(self.try_pyramid(i, decision.confidence, px, now_ms, equity_override));
                }
                Some(_) => {
                    let kind = if allow_reverse { IntentKind::Reverse } else { IntentKind::Close };
                    out.extend(self.close_position(i, 1.0, px, now_ms, ReasonCode::SignalFlip, kind));
                    if allow_reverse {
                        candidates.push(Candidate { idx: i, side, confidence: decision.confidence, score });
                    }
                }
                None => candidates.push(Candidate { idx: i, side, confidence: decision.confidence, score }),
            }
        }

        // Rank: score descending, then symbol ascending (a stable sort of input in name order).
        candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
        let max_orders = self.base.trade.max_entry_orders_per_loop as usize;
        let mut executed = 0usize;
        let breadth = self.regime_breadth();
        for mut c in candidates.drain(..) {
            let regime_cfg = &self.cfg(c.idx).market_regime;
            if regime::any_enabled(regime_cfg) {
                match regime::regime_action(c.side, breadth, regime_cfg, self.btc_snap()) {
                    RegimeAction::Enter { side, .. } => c.side = side,
                    RegimeAction::Block(code) => {
                        out.blocked.push(EntryBlock {
                            symbol: self.names[c.idx].clone(),
                            signal: side_signal(c.side),
                            reason_code: code,
                        });
                        continue;
                    }
                }
            }
            if executed >= max_orders {
                out.blocked.push(EntryBlock {
                    symbol: self.names[c.idx].clone(),
                    signal: side_signal(c.side),
                    reason_code: ReasonCode::MaxPositions,
                });
                continue;
            }
            match self.try_open(c.idx, c.side, c.confidence, c.score, now_ms, equity_override) {
                Ok(o) => {
                    executed += 1;
                    out.extend(o);
                }
                Err(code) => out.blocked.push(EntryBlock {
                    symbol: self.names[c.idx].clone(),
                    signal: side_signal(c.side),
                    reason_code: code,
                }),
            }
        }
        self.scratch = dirty;
        self.candidates = candidates;
        out
    }

    /// Market breadth over every symbol the kernel tracks, computed only when some symbol's
    /// config enables a market-regime rule (it is the same value for every candidate of a step).
    fn regime_breadth(&self) -> Option<f64> {
        if !self.any_regime {
            return None;
        }
        regime::breadth_pct(self.state.symbols.values().filter_map(|s| s.snap()))
    }

    fn ema_cross_step(
        &mut self,
        i: usize,
        decision: &SignalDecision,
        px: f64,
        now_ms: i64,
        equity_override: Option<f64>,
    ) -> StepOutput {
        match (decision.signal, self.state.positions.at(i).is_some()) {
            (Signal::Buy, false) => {
                let equity = equity_override.unwrap_or_else(|| self.equity());
                let t = &self.cfg(i).trade;
                let notional = equity * t.allocation_pct * t.leverage;
                let leverage = t.leverage;
                self.execute_open(
                    i,
                    Side::Long,
                    notional,
                    leverage,
                    Confidence::Medium,
                    0.0,
                    px,
                    now_ms,
                    IntentKind::Open,
                )
            }
            (Signal::Sell, true) => {
                self.close_position(i, 1.0, px, now_ms, ReasonCode::EmaCrossDown, IntentKind::Close)
            }
            _ => StepOutput::default(),
        }
    }

    fn run_exits(&mut self, i: usize, px: f64, now_ms: i64) -> StepOutput {
        let cfg = self.cfg(i);
        if cfg.strategy != StrategyName::MeiAlphaV1 {
            return StepOutput::default();
        }
        let exit_cooldown_ms = (cfg.trade.exit_cooldown_s * 1000.0) as i64;
        let Some(pos) = self.state.positions.at(i) else { return StepOutput::default() };
        let Some(s) = self.state.symbols.at(i).and_then(|s| s.snap()) else {
            return StepOutput::default();
        };
        if now_ms - pos.last_add_ms.max(pos.opened_at_ms) < exit_cooldown_ms {
            return StepOutput::default();
        }
        let (decision, update) = check_exit(pos, s, px, cfg);
        if let Some(p) = self.state.positions.at_mut(i) {
            p.trailing_sl = update.trailing_sl;
        }
        let Some(d) = decision else { return StepOutput::default() };
        let kind = if d.fraction < 1.0 { IntentKind::Reduce } else { IntentKind::Close };
        let mut out = self.close_position(i, d.fraction, px, now_ms, d.reason_code, kind);
        if d.reason_code == ReasonCode::TakeProfitPartial {
            if let Some(p) = self.state.positions.at_mut(i) {
                p.tp1_taken = true;
            }
        }
        out.intents.iter_mut().for_each(|i| i.reason = format!("exit: {}", d.reason_code.as_str()));
        out
    }

    fn check_liquidation(&mut self, i: usize, px: f64, t: i64) -> StepOutput {
        if self.state.positions.is_empty() {
            return StepOutput::default();
        }
        let mut equity = self.state.cash_usd;
        let mut maintenance = 0.0;
        for (j, p) in self.state.positions.iter_indexed() {
            let mark = if j == i {
                px
            } else {
                self.state.symbols.at(j).map_or(p.avg_entry_price, |s| s.last_price)
            };
            equity += p.unrealized_pnl(mark);
            maintenance += p.notional_at(mark) * self.cfg(j).trade.maintenance_margin_pct;
        }
        if equity >= maintenance {
            return StepOutput::default();
        }
        let mut out = StepOutput::default();
        let held: Vec<usize> = self.state.positions.iter_indexed().map(|(j, _)| j).collect();
        for j in held {
            let mark = if j == i { px } else { self.state.symbols.at(j).map_or(0.0, |st| st.last_price) };
            out.extend(self.close_position(j, 1.0, mark, t, ReasonCode::Liquidation, IntentKind::Close));
        }
        out
    }

    fn next_id(&mut self) -> u64 {
        let id = self.state.next_intent_id;
        self.state.next_intent_id += 1;
        id
    }

    fn slipped(&self, i: usize, side: Side, px: f64) -> f64 {
        let bps = self.cfg(i).trade.slippage_bps;
        px * (1.0 + side.sign() * bps / 10_000.0)
    }

    /// Close `fraction` of the position at reference price `px`.
    fn close_position(
        &mut self,
        i: usize,
        fraction: f64,
        px: f64,
        now_ms: i64,
        code: ReasonCode,
        kind: IntentKind,
    ) -> StepOutput {
        let Some(pos) = self.state.positions.at(i) else { return StepOutput::default() };
        let (quantity, side, confidence, leverage) = (pos.quantity, pos.side, pos.confidence, pos.leverage);
        let qty = if fraction >= 1.0 { quantity } else { quantity * fraction };
        let order_side = side.opposite();
        let intent = OrderIntent {
            intent_id: self.next_id(),
            symbol: self.names[i].clone(),
            kind,
            side: order_side,
            quantity: qty,
            price: px,
            notional_usd: qty * px,
            reason: code.as_str().to_string(),
            reason_code: code,
            confidence,
            score: 0.0,
            timestamp_ms: now_ms,
            reduce_only: true,
            leverage,
        };
        self.emit(i, intent)
    }

    /// A step's output for `intent`: the intent, and under [`FillMode::Simulate`] its fill at the
    /// slipped price with the taker fee, applied to positions and cash.
    fn emit(&mut self, i: usize, intent: OrderIntent) -> StepOutput {
        let mut out = StepOutput::default();
        if self.state.fill_mode == FillMode::Simulate {
            let qty = intent.quantity;
            let fill_px = self.slipped(i, intent.side, intent.price);
            let fee = qty * fill_px * self.cfg(i).trade.taker_fee_bps / 10_000.0;
            let fill = Fill {
                intent_id: intent.intent_id,
                symbol: intent.symbol.clone(),
                kind: intent.kind,
                side: intent.side,
                quantity: qty,
                price: fill_px,
                notional_usd: qty * fill_px,
                fee_usd: fee,
                pnl_usd: 0.0,
                reason_code: intent.reason_code,
                timestamp_ms: intent.timestamp_ms,
                confidence: intent.confidence,
                leverage: intent.leverage,
            };
            out.fills.push(self.apply_fill_at(i, fill));
        }
        out.intents.push(intent);
        out
    }

    /// Apply an execution to positions and cash. Used for simulated fills and, in live trading,
    /// for real fills reported by the exchange. Returns the fill with its realised PnL filled in.
    pub fn apply_fill(&mut self, fill: Fill) -> Fill {
        let i = self.symbol_index(&fill.symbol);
        self.apply_fill_at(i, fill)
    }

    fn apply_fill_at(&mut self, i: usize, mut fill: Fill) -> Fill {
        self.state.cash_usd -= fill.fee_usd;
        self.state.fees_usd += fill.fee_usd;
        match self.state.positions.at_mut(i) {
            Some(pos) if pos.side != fill.side => {
                let qty = fill.quantity.min(pos.quantity);
                let pnl = pos.side.sign() * (fill.price - pos.avg_entry_price) * qty;
                fill.pnl_usd = pnl;
                pos.quantity -= qty;
                pos.fees_paid_usd += fill.fee_usd;
                let closed = pos.quantity <= pos.quantity.abs() * 1e-12 || pos.quantity * fill.price < 1e-9;
                let side = pos.side;
                self.state.cash_usd += pnl;
                self.state.realized_pnl_usd += pnl;
                if closed {
                    self.state.positions.take_at(i);
                }
                if let Some(st) = self.state.symbols.at_mut(i) {
                    st.last_exit_ms = Some(fill.timestamp_ms);
                    if closed {
                        st.last_close = Some(CloseInfo {
                            timestamp_ms: fill.timestamp_ms,
                            side,
                            reason_code: fill.reason_code,
                        });
                    }
                }
            }
            Some(pos) => {
                let total = pos.quantity + fill.quantity;
                pos.avg_entry_price =
                    (pos.avg_entry_price * pos.quantity + fill.price * fill.quantity) / total;
                pos.quantity = total;
                pos.adds_count += 1;
                pos.last_add_ms = fill.timestamp_ms;
                pos.fees_paid_usd += fill.fee_usd;
                if let Some(st) = self.state.symbols.at_mut(i) {
                    st.last_entry_ms = Some(fill.timestamp_ms);
                }
            }
            None => {
                let cfg = self.cfg(i);
                let snap = self.state.symbols.at(i).and_then(|s| s.snap().copied());
                let (atr, adx, min_adx) = snap.map_or((0.0, 0.0, cfg.thresholds.entry.min_adx), |s| {
                    (s.atr.max(s.close * cfg.trade.min_atr_pct), s.adx, cfg.thresholds.entry.min_adx)
                });
                let pos = Position {
                    symbol: self.names[i].clone(),
                    side: fill.side,
                    quantity: fill.quantity,
                    avg_entry_price: fill.price,
                    entry_atr: atr,
                    leverage: fill.leverage,
                    confidence: fill.confidence,
                    opened_at_ms: fill.timestamp_ms,
                    last_add_ms: fill.timestamp_ms,
                    adds_count: 0,
                    tp1_taken: false,
                    trailing_sl: None,
                    tp_mult: crate::signal::dynamic_tp_mult(adx, cfg),
                    entry_adx_threshold: min_adx,
                    mae_usd: 0.0,
                    mfe_usd: 0.0,
                    funding_paid_usd: 0.0,
                    fees_paid_usd: fill.fee_usd,
                };
                self.state.positions.put_at(i, pos);
                if let Some(st) = self.state.symbols.at_mut(i) {
                    st.last_entry_ms = Some(fill.timestamp_ms);
                }
            }
        }
        fill
    }

    #[allow(clippy::too_many_arguments)]
    fn execute_open(
        &mut self,
        i: usize,
        side: Side,
        notional: f64,
        leverage: f64,
        confidence: Confidence,
        score: f64,
        px: f64,
        now_ms: i64,
        kind: IntentKind,
    ) -> StepOutput {
        let qty = notional / px;
        let intent = OrderIntent {
            intent_id: self.next_id(),
            symbol: self.names[i].clone(),
            kind,
            side,
            quantity: qty,
            price: px,
            notional_usd: notional,
            reason: format!("{} {}", if kind == IntentKind::Add { "add" } else { "entry" }, side_str(side)),
            reason_code: if kind == IntentKind::Add {
                ReasonCode::PyramidAdd
            } else {
                ReasonCode::EntrySignal
            },
            confidence,
            score,
            timestamp_ms: now_ms,
            reduce_only: false,
            leverage,
        };
        self.emit(i, intent)
    }

    fn headroom(&self, equity: f64, i: usize) -> f64 {
        equity * self.cfg(i).trade.max_total_margin_pct - self.used_margin()
    }

    fn try_open(
        &mut self,
        i: usize,
        side: Side,
        confidence: Confidence,
        score: f64,
        now_ms: i64,
        equity_override: Option<f64>,
    ) -> Result<StepOutput, ReasonCode> {
        let cfg = self.cfg_arc(i);
        let t = &cfg.trade;
        let st = self.state.symbols.at(i).ok_or(ReasonCode::NotReady)?;
        let s = *st.snap().ok_or(ReasonCode::NotReady)?;
        if confidence < t.entry_min_confidence {
            return Err(ReasonCode::LowConfidence);
        }
        if t.enable_reef_filter {
            let extreme = s.adx >= t.reef_adx_threshold;
            let blocked = match side {
                Side::Long => {
                    s.rsi > if extreme { t.reef_long_rsi_extreme_gt } else { t.reef_long_rsi_block_gt }
                }
                Side::Short => {
                    s.rsi < if extreme { t.reef_short_rsi_extreme_lt } else { t.reef_short_rsi_block_lt }
                }
            };
            if blocked {
                return Err(ReasonCode::Reef);
            }
        }
        if t.enable_ssf_filter {
            let blocked = match side {
                Side::Long => s.macd_hist < 0.0,
                Side::Short => s.macd_hist > 0.0,
            };
            if blocked {
                return Err(ReasonCode::Ssf);
            }
        }
        if let Some(last) = st.last_entry_ms {
            if ((now_ms - last) as f64) < t.entry_cooldown_s * 1000.0 {
                return Err(ReasonCode::EntryCooldown);
            }
        }
        if let Some(close) = &st.last_close {
            if close.side == side && close.reason_code != ReasonCode::SignalFlip {
                let mins =
                    pesc_cooldown_minutes(s.adx, t.reentry_cooldown_min_mins, t.reentry_cooldown_max_mins);
                if ((now_ms - close.timestamp_ms) as f64) < mins * 60_000.0 {
                    return Err(ReasonCode::Pesc);
                }
            }
        }
        if self.state.positions.len() >= t.max_open_positions as usize {
            return Err(ReasonCode::MaxPositions);
        }
        let equity = equity_override.unwrap_or_else(|| self.equity());
        let headroom = self.headroom(equity, i);
        let leverage = tier_leverage(t, confidence);
        let mut margin = entry_margin(&cfg, &s, confidence, equity).min(headroom);
        if margin <= 0.0 {
            return Err(ReasonCode::MarginCap);
        }
        if margin * leverage < t.min_notional_usd {
            let needed = t.min_notional_usd / leverage;
            if t.bump_to_min_notional && needed <= headroom {
                margin = needed;
            } else {
                return Err(ReasonCode::MinNotional);
            }
        }
        Ok(self.execute_open(
            i,
            side,
            margin * leverage,
            leverage,
            confidence,
            score,
            s.close,
            now_ms,
            IntentKind::Open,
        ))
    }

    fn try_pyramid(
        &mut self,
        i: usize,
        confidence: Confidence,
        px: f64,
        now_ms: i64,
        equity_override: Option<f64>,
    ) -> StepOutput {
        let cfg = self.cfg_arc(i);
        let t = &cfg.trade;
        let (Some(pos), Some(s)) =
            (self.state.positions.at(i), self.state.symbols.at(i).and_then(|s| s.snap().copied()))
        else {
            return StepOutput::default();
        };
        if !t.enable_pyramiding
            || pos.adds_count >= t.max_adds_per_symbol
            || confidence < t.add_min_confidence
        {
            return StepOutput::default();
        }
        if ((now_ms - pos.last_add_ms) as f64) < t.add_cooldown_minutes * 60_000.0 {
            return StepOutput::default();
        }
        let mut min_profit = t.add_min_profit_atr;
        let rsi_extreme = match pos.side {
            Side::Long => s.rsi > 65.0,
            Side::Short => s.rsi < 35.0,
        };
        if s.adx_slope > 0.75 && s.atr_slope <= 0.0 && !rsi_extreme {
            min_profit *= 0.5;
        }
        if pos.profit_atr(px) < min_profit {
            return StepOutput::default();
        }
        let leverage = pos.leverage;
        let side = pos.side;
        let equity = equity_override.unwrap_or_else(|| self.equity());
        let headroom = self.headroom(equity, i);
        let mut margin =
            (equity * t.allocation_pct * t.add_fraction_of_base_margin * t.size_multiplier).min(headroom);
        if margin <= 0.0 {
            return StepOutput::default();
        }
        if margin * leverage < t.min_notional_usd {
            let needed = t.min_notional_usd / leverage;
            if t.bump_to_min_notional && needed <= headroom {
                margin = needed;
            } else {
                return StepOutput::default();
            }
        }
        self.execute_open(i, side, margin * leverage, leverage, confidence, 0.0, px, now_ms, IntentKind::Add)
    }
}

fn side_signal(side: Side) -> Signal {
    match side {
        Side::Long => Signal::Buy,
        Side::Short => Signal::Sell,
    }
}

fn side_str(side: Side) -> &'static str {
    match side {
        Side::Long => "long",
        Side::Short => "short",
    }
}

fn validate_candle(symbol: &str, c: &Candle) -> Result<(), KernelError> {
    let bad = |problem: &str| {
        Err(KernelError::InvalidCandle { symbol: symbol.to_string(), t: c.t, problem: problem.to_string() })
    };
    if ![c.o, c.h, c.l, c.c, c.v].iter().all(|x| x.is_finite()) {
        return bad("non-finite value");
    }
    if c.o <= 0.0 || c.h <= 0.0 || c.l <= 0.0 || c.c <= 0.0 {
        return bad("non-positive price");
    }
    if c.l > c.o.min(c.c) || c.h < c.o.max(c.c) {
        return bad("OHLC inconsistent (low > min(open, close) or high < max(open, close))");
    }
    if c.v < 0.0 {
        return bad("negative volume");
    }
    Ok(())
}
