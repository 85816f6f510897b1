//! The kernel: per-symbol indicator state, positions and cash, driven by candles, mids and funding.
//!
//! Every method is deterministic: the same sequence of calls on the same state gives bit-identical
//! results, and [`KernelState`] round-trips through JSON mid-stream.

use std::collections::BTreeMap;
use std::sync::Arc;

use aiq_config::{Confidence, StrategyConfig, StrategyName};
use aiq_indicators::{IndicatorBank, IndicatorSnapshot};
use serde::{Deserialize, Serialize};

use crate::exits::check_exit;
use crate::regime::{self, RegimeAction};
use crate::signal::{analyze, SignalDecision};
use crate::sizing::{entry_margin, pesc_cooldown_minutes, tier_leverage};
use crate::types::{
    CloseInfo, Fill, IntentKind, OrderIntent, Position, ReasonCode, Side, Signal, SCHEMA_VERSION,
};

/// One OHLCV bar. `t` is the open time in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candle {
    pub t: i64,
    pub o: f64,
    pub h: f64,
    pub l: f64,
    pub c: f64,
    pub v: f64,
}

/// Whether the kernel fills its own intents (paper, replay, sweep) or waits for real fills (live).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillMode {
    Simulate,
    External,
}

/// Everything the kernel remembers about one symbol besides its position.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SymbolState {
    pub bank: IndicatorBank,
    pub snap: Option<IndicatorSnapshot>,
    pub prev: Option<IndicatorSnapshot>,
    pub last_price: f64,
    pub last_entry_ms: Option<i64>,
    pub last_exit_ms: Option<i64>,
    pub last_close: Option<CloseInfo>,
    /// A candle arrived since the last `evaluate`.
    pub dirty: bool,
    pub last_decision: Option<SignalDecision>,
}

/// The kernel's complete state: the single source of truth for simulated accounting.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelState {
    pub schema_version: u32,
    pub step: u64,
    pub timestamp_ms: i64,
    pub cash_usd: f64,
    pub next_intent_id: u64,
    pub positions: BTreeMap<String, Position>,
    pub symbols: BTreeMap<String, SymbolState>,
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
#[derive(Debug, Clone)]
pub struct Kernel {
    // Arc: decisions borrow a config while the kernel mutates its state, without copying it.
    base: Arc<StrategyConfig>,
    per_symbol: BTreeMap<String, Arc<StrategyConfig>>,
    scratch: Vec<String>,
    /// New symbols get banks computing only what the decisions read ([`crate::reads`]).
    reads_only: bool,
    pub state: KernelState,
}

struct Candidate {
    symbol: String,
    side: Side,
    confidence: Confidence,
    score: f64,
}

impl Kernel {
    pub fn new(cfg: StrategyConfig, initial_cash: f64, fill_mode: FillMode) -> Self {
        Self {
            base: Arc::new(cfg),
            per_symbol: BTreeMap::new(),
            scratch: Vec::new(),
            reads_only: false,
            state: KernelState {
                schema_version: SCHEMA_VERSION,
                step: 0,
                timestamp_ms: 0,
                cash_usd: initial_cash,
                next_intent_id: 1,
                positions: BTreeMap::new(),
                symbols: BTreeMap::new(),
                fill_mode,
                realized_pnl_usd: 0.0,
                fees_usd: 0.0,
                funding_usd: 0.0,
            },
        }
    }

    /// Use a symbol-specific merged config (overrides from `symbols.<SYM>`).
    pub fn set_symbol_config(&mut self, symbol: &str, cfg: StrategyConfig) {
        self.per_symbol.insert(symbol.to_string(), Arc::new(cfg));
    }

    pub fn config(&self, symbol: &str) -> &StrategyConfig {
        self.per_symbol.get(symbol).unwrap_or(&self.base)
    }

    fn config_arc(&self, symbol: &str) -> Arc<StrategyConfig> {
        Arc::clone(self.per_symbol.get(symbol).unwrap_or(&self.base))
    }

    /// Replace the state (restore). Indicator windows in the state must match the config.
    pub fn load_state(&mut self, state: KernelState) -> Result<(), KernelError> {
        if state.schema_version != SCHEMA_VERSION {
            return Err(KernelError::SchemaVersion { found: state.schema_version, expected: SCHEMA_VERSION });
        }
        self.state = state;
        Ok(())
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
        let all = std::iter::once(&*self.base).chain(self.per_symbol.values().map(|c| &**c));
        crate::reads::symbol_reads(symbol, self.config(symbol), all)
    }

    fn symbol_state(&mut self, symbol: &str) -> &mut SymbolState {
        if !self.state.symbols.contains_key(symbol) {
            let bank = IndicatorBank::from_config_reading(self.config(symbol), self.bank_outputs(symbol));
            self.state.symbols.insert(
                symbol.to_string(),
                SymbolState {
                    bank,
                    snap: None,
                    prev: None,
                    last_price: 0.0,
                    last_entry_ms: None,
                    last_exit_ms: None,
                    last_close: None,
                    dirty: false,
                    last_decision: None,
                },
            );
        }
        self.state.symbols.get_mut(symbol).expect("inserted above")
    }

    /// Latest indicator snapshot of a symbol.
    pub fn snapshot(&self, symbol: &str) -> Option<&IndicatorSnapshot> {
        self.state.symbols.get(symbol).and_then(|s| s.snap.as_ref())
    }

    /// Equity: cash plus unrealised PnL at the last known prices.
    pub fn equity(&self) -> f64 {
        let upnl: f64 = self
            .state
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
            .sum();
        self.state.cash_usd + upnl
    }

    pub fn used_margin(&self) -> f64 {
        self.state.positions.values().map(Position::margin).sum()
    }

    /// Feed one closed candle. Updates indicators, MAE/MFE, and checks liquidation on the bar's
    /// adverse extreme. Entry and exit decisions happen in [`Kernel::evaluate`].
    pub fn step_candle(&mut self, symbol: &str, candle: Candle) -> Result<StepOutput, KernelError> {
        self.step_with(symbol, candle, None)
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
        if snap.t != candle.t {
            return Err(KernelError::Invalid(format!(
                "snapshot for {symbol} is for t={}, not the candle's t={}",
                snap.t, candle.t
            )));
        }
        self.step_with(symbol, candle, Some(snap))
    }

    fn step_with(
        &mut self,
        symbol: &str,
        candle: Candle,
        given: Option<IndicatorSnapshot>,
    ) -> Result<StepOutput, KernelError> {
        validate_candle(symbol, &candle)?;
        // One map lookup for a known symbol (`symbol_state` checks, then looks up again).
        let st = match self.state.symbols.get_mut(symbol) {
            Some(st) => st,
            None => self.symbol_state(symbol),
        };
        if let Some(last) = st.snap.as_ref().map(|s| s.t) {
            if candle.t <= last {
                return Err(KernelError::OutOfOrder { symbol: symbol.to_string(), t: candle.t, last });
            }
        }
        let snap = match given {
            Some(s) => s,
            None => st.bank.update(candle.t, candle.o, candle.h, candle.l, candle.c, candle.v),
        };
        st.prev = st.snap.take();
        st.snap = Some(snap);
        st.last_price = candle.c;
        st.dirty = true;
        self.state.step += 1;
        self.state.timestamp_ms = self.state.timestamp_ms.max(candle.t);

        let mut out = StepOutput::default();
        if let Some(pos) = self.state.positions.get_mut(symbol) {
            let (worst, best) = match pos.side {
                Side::Long => (candle.l, candle.h),
                Side::Short => (candle.h, candle.l),
            };
            pos.mae_usd = pos.mae_usd.min(pos.unrealized_pnl(worst));
            pos.mfe_usd = pos.mfe_usd.max(pos.unrealized_pnl(best));
            out.extend(self.check_liquidation(symbol, worst, candle.t));
        }
        Ok(out)
    }

    /// Apply a funding payment for `symbol` at `rate` (per funding period) and mark price `px`.
    pub fn on_funding(&mut self, symbol: &str, rate: f64, px: f64, t: i64) -> Result<f64, KernelError> {
        if !rate.is_finite() || !px.is_finite() || px <= 0.0 {
            return Err(KernelError::Invalid(format!("funding for {symbol}: rate={rate} px={px}")));
        }
        if !self.config(symbol).trade.enable_funding {
            return Ok(0.0);
        }
        let Some(pos) = self.state.positions.get_mut(symbol) else { return Ok(0.0) };
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
        let st = self.symbol_state(symbol);
        st.last_price = px;
        self.state.timestamp_ms = self.state.timestamp_ms.max(t);
        let mut out = self.check_liquidation(symbol, px, t);
        out.extend(self.run_exits(symbol, px, t));
        Ok(out)
    }

    /// Exits, then ranked entries, for every symbol that received a candle since the last call.
    /// `equity_override` is the real account equity in live trading (sizing uses it).
    pub fn evaluate(&mut self, now_ms: i64, equity_override: Option<f64>) -> StepOutput {
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
        let mut saved: Vec<(String, f64)> = Vec::with_capacity(prices.len());
        for &(symbol, px) in prices {
            let Some(st) = self.state.symbols.get_mut(symbol) else { continue };
            let Some(snap) = st.snap.as_mut() else { continue };
            saved.push((symbol.to_string(), snap.close));
            snap.close = px;
            st.last_price = px;
            st.dirty = true;
        }
        self.state.timestamp_ms = self.state.timestamp_ms.max(now_ms);
        let out = self.evaluate_inner(now_ms, equity_override, false);
        for (symbol, close) in saved {
            if let Some(snap) = self.state.symbols.get_mut(&symbol).and_then(|s| s.snap.as_mut()) {
                snap.close = close;
            }
        }
        Ok(out)
    }

    fn evaluate_inner(&mut self, now_ms: i64, equity_override: Option<f64>, exits: bool) -> StepOutput {
        let mut out = StepOutput::default();
        // Names of the symbols to evaluate, copied into reused buffers (no allocation per bar).
        let mut dirty = std::mem::take(&mut self.scratch);
        let mut n = 0;
        for (name, _) in self.state.symbols.iter().filter(|(_, s)| s.dirty) {
            if n == dirty.len() {
                dirty.push(String::new());
            }
            dirty[n].clear();
            dirty[n].push_str(name);
            n += 1;
        }
        let btc_bullish = self
            .state
            .symbols
            .get("BTC")
            .and_then(|s| s.snap.as_ref())
            .filter(|s| s.ready)
            .map(|s| s.ema_fast > s.ema_slow);

        let mut candidates = Vec::new();
        for symbol in &dirty[..n] {
            // Plain copies of what this loop reads of the config (an `Arc` clone per symbol per
            // bar was an atomic increment and decrement on the hot path); `analyze` borrows it.
            let (strategy, allow_reverse) = {
                let cfg = self.config(symbol);
                (cfg.strategy, cfg.trade.allow_reverse)
            };
            let Some(st) = self.state.symbols.get_mut(symbol) else { continue };
            st.dirty = false;
            let (Some(px), Some(adx)) = (st.snap.as_ref().map(|s| s.close), st.snap.as_ref().map(|s| s.adx))
            else {
                continue;
            };
            if st.prev.is_none() {
                continue;
            }
            if exits {
                out.extend(self.run_exits(symbol, px, now_ms));
            }

            // One lookup for the decision and its record (the config is a disjoint field).
            let cfg: &StrategyConfig = self.per_symbol.get(symbol.as_str()).unwrap_or(&self.base);
            let Some(st) = self.state.symbols.get_mut(symbol.as_str()) else { continue };
            let (Some(s), Some(p)) = (st.snap.as_ref(), st.prev.as_ref()) else { continue };
            let decision = match strategy {
                StrategyName::MeiAlphaV1 => analyze(s, p, cfg, symbol, btc_bullish),
                StrategyName::EmaCross => crate::ema_cross::analyze(s, p),
            };
            st.last_decision = Some(decision);
            if strategy == StrategyName::EmaCross {
                out.extend(self.ema_cross_step(symbol, &decision, px, now_ms, equity_override));
                continue;
            }
            let Some(side) = decision.signal.side() else { continue };
            let score = f64::from(decision.confidence.rank()) * 100.0 + adx;
            match self.state.positions.get(symbol).map(|p| p.side) {
                Some(existing) if existing == side => {
                    out.extend(self.try_pyramid(symbol, decision.confidence, px, now_ms, equity_override));
                }
                Some(_) => {
                    let kind = if allow_reverse { IntentKind::Reverse } else { IntentKind::Close };
                    out.extend(self.close_position(symbol, 1.0, px, now_ms, ReasonCode::SignalFlip, kind));
                    if allow_reverse {
                        candidates.push(Candidate {
                            symbol: symbol.clone(),
                            side,
                            confidence: decision.confidence,
                            score,
                        });
                    }
                }
                None => candidates.push(Candidate {
                    symbol: symbol.clone(),
                    side,
                    confidence: decision.confidence,
                    score,
                }),
            }
        }

        // Rank: score descending, then symbol ascending (stable sort over symbol-sorted input).
        candidates.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
        let max_orders = self.base.trade.max_entry_orders_per_loop as usize;
        let mut executed = 0usize;
        let breadth = self.regime_breadth();
        for mut c in candidates {
            let cfg = self.config_arc(&c.symbol);
            if regime::any_enabled(&cfg.market_regime) {
                let btc = self.state.symbols.get("BTC").and_then(|s| s.snap.as_ref());
                match regime::regime_action(c.side, breadth, &cfg.market_regime, btc) {
                    RegimeAction::Enter { side, .. } => c.side = side,
                    RegimeAction::Block(code) => {
                        out.blocked.push(EntryBlock {
                            symbol: c.symbol.clone(),
                            signal: side_signal(c.side),
                            reason_code: code,
                        });
                        continue;
                    }
                }
            }
            if executed >= max_orders {
                out.blocked.push(EntryBlock {
                    symbol: c.symbol.clone(),
                    signal: side_signal(c.side),
                    reason_code: ReasonCode::MaxPositions,
                });
                continue;
            }
            match self.try_open(&c.symbol, c.side, c.confidence, c.score, now_ms, equity_override) {
                Ok(o) => {
                    executed += 1;
                    out.extend(o);
                }
                Err(code) => out.blocked.push(EntryBlock {
                    symbol: c.symbol.clone(),
                    signal: side_signal(c.side),
                    reason_code: code,
                }),
            }
        }
        self.scratch = dirty;
        out
    }

    /// Market breadth over every symbol the kernel tracks, computed only when some symbol's
    /// config enables a market-regime rule (it is the same value for every candidate of a step).
    fn regime_breadth(&self) -> Option<f64> {
        let any = regime::any_enabled(&self.base.market_regime)
            || self.per_symbol.values().any(|c| regime::any_enabled(&c.market_regime));
        if !any {
            return None;
        }
        regime::breadth_pct(self.state.symbols.values().filter_map(|s| s.snap.as_ref()))
    }

    fn ema_cross_step(
        &mut self,
        symbol: &str,
        decision: &SignalDecision,
        px: f64,
        now_ms: i64,
        equity_override: Option<f64>,
    ) -> StepOutput {
        match (decision.signal, self.state.positions.contains_key(symbol)) {
            (Signal::Buy, false) => {
                let equity = equity_override.unwrap_or_else(|| self.equity());
                let t = &self.config(symbol).trade;
                let notional = equity * t.allocation_pct * t.leverage;
                let leverage = t.leverage;
                self.execute_open(
                    symbol,
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
                self.close_position(symbol, 1.0, px, now_ms, ReasonCode::EmaCrossDown, IntentKind::Close)
            }
            _ => StepOutput::default(),
        }
    }

    fn run_exits(&mut self, symbol: &str, px: f64, now_ms: i64) -> StepOutput {
        let cfg = self.config(symbol);
        if cfg.strategy != StrategyName::MeiAlphaV1 {
            return StepOutput::default();
        }
        let exit_cooldown_ms = (cfg.trade.exit_cooldown_s * 1000.0) as i64;
        let Some(pos) = self.state.positions.get(symbol) else { return StepOutput::default() };
        let Some(s) = self.state.symbols.get(symbol).and_then(|s| s.snap.as_ref()) else {
            return StepOutput::default();
        };
        if now_ms - pos.last_add_ms.max(pos.opened_at_ms) < exit_cooldown_ms {
            return StepOutput::default();
        }
        let (decision, update) = check_exit(pos, s, px, cfg);
        if let Some(p) = self.state.positions.get_mut(symbol) {
            p.trailing_sl = update.trailing_sl;
        }
        let Some(d) = decision else { return StepOutput::default() };
        let kind = if d.fraction < 1.0 { IntentKind::Reduce } else { IntentKind::Close };
        let mut out = self.close_position(symbol, d.fraction, px, now_ms, d.reason_code, kind);
        if d.reason_code == ReasonCode::TakeProfitPartial {
            if let Some(p) = self.state.positions.get_mut(symbol) {
                p.tp1_taken = true;
            }
        }
        out.intents.iter_mut().for_each(|i| i.reason = format!("exit: {}", d.reason_code.as_str()));
        out
    }

    fn check_liquidation(&mut self, symbol: &str, px: f64, t: i64) -> StepOutput {
        if self.state.positions.is_empty() {
            return StepOutput::default();
        }
        let mut equity = self.state.cash_usd;
        let mut maintenance = 0.0;
        for p in self.state.positions.values() {
            let mark = if p.symbol == symbol {
                px
            } else {
                self.state.symbols.get(&p.symbol).map_or(p.avg_entry_price, |s| s.last_price)
            };
            equity += p.unrealized_pnl(mark);
            maintenance += p.notional_at(mark) * self.config(&p.symbol).trade.maintenance_margin_pct;
        }
        if equity >= maintenance {
            return StepOutput::default();
        }
        let mut out = StepOutput::default();
        let symbols: Vec<String> = self.state.positions.keys().cloned().collect();
        for s in symbols {
            let mark =
                if s == symbol { px } else { self.state.symbols.get(&s).map_or(0.0, |st| st.last_price) };
            out.extend(self.close_position(&s, 1.0, mark, t, ReasonCode::Liquidation, IntentKind::Close));
        }
        out
    }

    fn next_id(&mut self) -> u64 {
        let id = self.state.next_intent_id;
        self.state.next_intent_id += 1;
        id
    }

    fn slipped(&self, symbol: &str, side: Side, px: f64) -> f64 {
        let bps = self.config(symbol).trade.slippage_bps;
        px * (1.0 + side.sign() * bps / 10_000.0)
    }

    /// Close `fraction` of the position at reference price `px`.
    fn close_position(
        &mut self,
        symbol: &str,
        fraction: f64,
        px: f64,
        now_ms: i64,
        code: ReasonCode,
        kind: IntentKind,
    ) -> StepOutput {
        let Some(pos) = self.state.positions.get(symbol).cloned() else { return StepOutput::default() };
        let qty = if fraction >= 1.0 { pos.quantity } else { pos.quantity * fraction };
        let order_side = pos.side.opposite();
        let intent = OrderIntent {
            intent_id: self.next_id(),
            symbol: symbol.to_string(),
            kind,
            side: order_side,
            quantity: qty,
            price: px,
            notional_usd: qty * px,
            reason: code.as_str().to_string(),
            reason_code: code,
            confidence: pos.confidence,
            score: 0.0,
            timestamp_ms: now_ms,
            reduce_only: true,
            leverage: pos.leverage,
        };
        let mut out = StepOutput::default();
        if self.state.fill_mode == FillMode::Simulate {
            let fill_px = self.slipped(symbol, order_side, px);
            let fee = qty * fill_px * self.config(symbol).trade.taker_fee_bps / 10_000.0;
            let fill = Fill {
                intent_id: intent.intent_id,
                symbol: symbol.to_string(),
                kind,
                side: order_side,
                quantity: qty,
                price: fill_px,
                notional_usd: qty * fill_px,
                fee_usd: fee,
                pnl_usd: 0.0,
                reason_code: code,
                timestamp_ms: now_ms,
                confidence: pos.confidence,
                leverage: pos.leverage,
            };
            out.fills.push(self.apply_fill(fill));
        }
        out.intents.push(intent);
        out
    }

    /// Apply an execution to positions and cash. Used for simulated fills and, in live trading,
    /// for real fills reported by the exchange. Returns the fill with its realised PnL filled in.
    pub fn apply_fill(&mut self, mut fill: Fill) -> Fill {
        let symbol = fill.symbol.clone();
        self.state.cash_usd -= fill.fee_usd;
        self.state.fees_usd += fill.fee_usd;
        let existing = self.state.positions.get(&symbol).cloned();
        match existing {
            Some(mut pos) if pos.side != fill.side => {
                let qty = fill.quantity.min(pos.quantity);
                let pnl = pos.side.sign() * (fill.price - pos.avg_entry_price) * qty;
                fill.pnl_usd = pnl;
                self.state.cash_usd += pnl;
                self.state.realized_pnl_usd += pnl;
                pos.quantity -= qty;
                pos.fees_paid_usd += fill.fee_usd;
                let st = self.state.symbols.get_mut(&symbol);
                if pos.quantity <= pos.quantity.abs() * 1e-12 || pos.quantity * fill.price < 1e-9 {
                    self.state.positions.remove(&symbol);
                    if let Some(st) = st {
                        st.last_exit_ms = Some(fill.timestamp_ms);
                        st.last_close = Some(CloseInfo {
                            timestamp_ms: fill.timestamp_ms,
                            side: pos.side,
                            reason_code: fill.reason_code,
                        });
                    }
                } else {
                    if let Some(st) = st {
                        st.last_exit_ms = Some(fill.timestamp_ms);
                    }
                    self.state.positions.insert(symbol, pos);
                }
            }
            Some(mut pos) => {
                let total = pos.quantity + fill.quantity;
                pos.avg_entry_price =
                    (pos.avg_entry_price * pos.quantity + fill.price * fill.quantity) / total;
                pos.quantity = total;
                pos.adds_count += 1;
                pos.last_add_ms = fill.timestamp_ms;
                pos.fees_paid_usd += fill.fee_usd;
                self.state.positions.insert(symbol.clone(), pos);
                if let Some(st) = self.state.symbols.get_mut(&symbol) {
                    st.last_entry_ms = Some(fill.timestamp_ms);
                }
            }
            None => {
                let cfg = self.config_arc(&symbol);
                let snap = self.state.symbols.get(&symbol).and_then(|s| s.snap);
                let (atr, adx, min_adx) = snap.map_or((0.0, 0.0, cfg.thresholds.entry.min_adx), |s| {
                    (s.atr.max(s.close * cfg.trade.min_atr_pct), s.adx, cfg.thresholds.entry.min_adx)
                });
                self.state.positions.insert(
                    symbol.clone(),
                    Position {
                        symbol: symbol.clone(),
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
                        tp_mult: crate::signal::dynamic_tp_mult(adx, &cfg),
                        entry_adx_threshold: min_adx,
                        mae_usd: 0.0,
                        mfe_usd: 0.0,
                        funding_paid_usd: 0.0,
                        fees_paid_usd: fill.fee_usd,
                    },
                );
                if let Some(st) = self.state.symbols.get_mut(&symbol) {
                    st.last_entry_ms = Some(fill.timestamp_ms);
                }
            }
        }
        fill
    }

    #[allow(clippy::too_many_arguments)]
    fn execute_open(
        &mut self,
        symbol: &str,
        side: Side,
        notional: f64,
        leverage: f64,
        confidence: Confidence,
        score: f64,
        px: f64,
        now_ms: i64,
        kind: IntentKind,
    ) -> StepOutput {
        let cfg = self.config_arc(symbol);
        let qty = notional / px;
        let intent = OrderIntent {
            intent_id: self.next_id(),
            symbol: symbol.to_string(),
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
        let mut out = StepOutput::default();
        if self.state.fill_mode == FillMode::Simulate {
            let fill_px = self.slipped(symbol, side, px);
            let fee = qty * fill_px * cfg.trade.taker_fee_bps / 10_000.0;
            let fill = Fill {
                intent_id: intent.intent_id,
                symbol: symbol.to_string(),
                kind,
                side,
                quantity: qty,
                price: fill_px,
                notional_usd: qty * fill_px,
                fee_usd: fee,
                pnl_usd: 0.0,
                reason_code: intent.reason_code,
                timestamp_ms: now_ms,
                confidence,
                leverage,
            };
            out.fills.push(self.apply_fill(fill));
        }
        out.intents.push(intent);
        out
    }

    fn headroom(&self, equity: f64, symbol: &str) -> f64 {
        equity * self.config(symbol).trade.max_total_margin_pct - self.used_margin()
    }

    fn try_open(
        &mut self,
        symbol: &str,
        side: Side,
        confidence: Confidence,
        score: f64,
        now_ms: i64,
        equity_override: Option<f64>,
    ) -> Result<StepOutput, ReasonCode> {
        let cfg = self.config_arc(symbol);
        let t = &cfg.trade;
        let st = self.state.symbols.get(symbol).ok_or(ReasonCode::NotReady)?;
        let s = st.snap.ok_or(ReasonCode::NotReady)?;
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
        let headroom = self.headroom(equity, symbol);
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
            symbol,
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
        symbol: &str,
        confidence: Confidence,
        px: f64,
        now_ms: i64,
        equity_override: Option<f64>,
    ) -> StepOutput {
        let cfg = self.config_arc(symbol);
        let t = &cfg.trade;
        let (Some(pos), Some(s)) =
            (self.state.positions.get(symbol), self.state.symbols.get(symbol).and_then(|s| s.snap))
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
        let headroom = self.headroom(equity, symbol);
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
        self.execute_open(
            symbol,
            side,
            margin * leverage,
            leverage,
            confidence,
            0.0,
            px,
            now_ms,
            IntentKind::Add,
        )
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
