//! The replay report (JSON) and the trades / equity CSV exports.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::data::{iso, DbFingerprint};
use crate::metrics::periods_per_year;
use crate::sim::{ExitStat, RoundTrip, RunResult};
use crate::BtError;

pub const REPORT_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Bucket {
    pub trades: u64,
    pub wins: u64,
    pub losses: u64,
    pub win_rate: f64,
    pub net_pnl: f64,
    pub gross_profit: f64,
    pub gross_loss: f64,
    pub profit_factor: Option<f64>,
    pub avg_pnl: f64,
    pub fees: f64,
    pub funding: f64,
}

impl Bucket {
    fn add(&mut self, t: &RoundTrip) {
        self.trades += 1;
        if t.net_pnl > 0.0 {
            self.wins += 1;
            self.gross_profit += t.net_pnl;
        } else {
            self.losses += 1;
            self.gross_loss += -t.net_pnl;
        }
        self.net_pnl += t.net_pnl;
        self.fees += t.fees;
        self.funding += t.funding;
    }
    fn finish(mut self) -> Self {
        if self.trades > 0 {
            self.win_rate = self.wins as f64 / self.trades as f64;
            self.avg_pnl = self.net_pnl / self.trades as f64;
        }
        self.profit_factor = profit_factor(self.gross_profit, self.gross_loss);
        self
    }
}

/// `None` (JSON null) when there are no losses.
fn profit_factor(gp: f64, gl: f64) -> Option<f64> {
    if gl > 0.0 {
        Some(gp / gl)
    } else if gp > 0.0 {
        None
    } else {
        Some(0.0)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Inputs {
    pub candles: Vec<DbFingerprint>,
    pub funding: Option<DbFingerprint>,
    pub interval: String,
    pub symbols: Vec<String>,
    pub bars_per_symbol: BTreeMap<String, u64>,
    pub first_bar_ms: i64,
    pub last_bar_ms: i64,
    pub first_bar: String,
    pub last_bar: String,
    pub auto_scope: Option<String>,
    pub init_state: Option<String>,
    /// Sub-bar inputs; absent without `--entry-interval` / `--exit-interval`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_sub_bars: Option<SubInputs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_sub_bars: Option<SubInputs>,
}

/// One sub-bar input: its interval, DB fingerprints and scoped bar count.
#[derive(Debug, Clone, Serialize)]
pub struct SubInputs {
    pub interval: String,
    pub candles: Vec<DbFingerprint>,
    pub bars: u64,
}

impl SubInputs {
    pub fn of(set: &crate::data::CandleSet) -> Self {
        Self {
            interval: set.interval.clone(),
            candles: set.fingerprints.clone(),
            bars: set.bar_count() as u64,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GateStats {
    pub buy_signals: u64,
    pub sell_signals: u64,
    pub entries: u64,
    pub adds: u64,
    pub blocked_total: u64,
    pub blocked_by_reason: BTreeMap<String, u64>,
    pub blocked_by_symbol: BTreeMap<String, BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: String,
    #[serde(flatten)]
    pub meta: ReportMeta,
    pub final_balance: f64,
    pub final_equity: f64,
    pub total_pnl: f64,
    pub total_return_pct: f64,
    pub realized_pnl: f64,
    pub unrealized_pnl: f64,
    pub total_fees: f64,
    pub total_funding: f64,
    pub total_trades: u64,
    pub open_positions_at_end: usize,
    pub wins: u64,
    pub losses: u64,
    pub win_rate: f64,
    pub profit_factor: Option<f64>,
    pub gross_profit: f64,
    pub gross_loss: f64,
    pub avg_trade_pnl: f64,
    pub avg_win: f64,
    pub avg_loss: f64,
    pub sharpe_ratio: f64,
    pub sortino_ratio: f64,
    pub calmar_ratio: f64,
    pub cagr: f64,
    pub periods_per_year: f64,
    pub max_drawdown_usd: f64,
    pub max_drawdown_pct: f64,
    pub exposure_pct: f64,
    pub bars: u64,
    pub steps: u64,
    /// Sub-bar ticks run (absent without sub-bars).
    #[serde(skip_serializing_if = "is_zero")]
    pub sub_ticks: u64,
    pub fills: u64,
    pub liquidations: u64,
    pub liquidation_pnl: f64,
    pub by_symbol: BTreeMap<String, Bucket>,
    pub by_side: BTreeMap<String, Bucket>,
    pub by_confidence: BTreeMap<String, Bucket>,
    pub by_exit_reason: BTreeMap<String, Bucket>,
    pub by_reason_code: BTreeMap<String, ExitStat>,
    pub gate_stats: GateStats,
}

/// Everything about the run that is not in [`RunResult`] (the report's fields after `tool`).
#[derive(Debug, Clone, Serialize)]
pub struct ReportMeta {
    pub config_path: String,
    pub config_id: String,
    pub symbol_config_ids: BTreeMap<String, String>,
    pub strategy: String,
    pub strategy_mode: Option<String>,
    pub live_overlay: bool,
    pub inputs: Inputs,
    pub initial_balance: f64,
}

fn name<T: Serialize>(x: &T) -> String {
    match serde_json::to_value(x) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(_) => String::new(),
    }
}

pub fn build(meta: ReportMeta, interval_ms: i64, r: &RunResult) -> Report {
    let p = periods_per_year(interval_ms);
    let mut all = Bucket::default();
    let mut by_symbol: BTreeMap<String, Bucket> = BTreeMap::new();
    let mut by_side: BTreeMap<String, Bucket> = BTreeMap::new();
    let mut by_conf: BTreeMap<String, Bucket> = BTreeMap::new();
    let mut by_exit: BTreeMap<String, Bucket> = BTreeMap::new();
    for t in &r.trips {
        all.add(t);
        by_symbol.entry(t.symbol.clone()).or_default().add(t);
        by_side.entry(name(&t.side)).or_default().add(t);
        by_conf.entry(name(&t.confidence)).or_default().add(t);
        by_exit.entry(t.exit_reason.as_str().to_string()).or_default().add(t);
    }
    let fin = |m: BTreeMap<String, Bucket>| m.into_iter().map(|(k, v)| (k, v.finish())).collect();
    let all = all.finish();
    let (wins, losses) = (all.wins, all.losses);
    let s = &r.stats;
    let initial = meta.initial_balance;
    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        tool: format!("ai-quant-bt {}", env!("CARGO_PKG_VERSION")),
        meta,
        final_balance: r.cash,
        final_equity: r.equity,
        total_pnl: r.equity - initial,
        total_return_pct: if initial > 0.0 { (r.equity / initial - 1.0) * 100.0 } else { 0.0 },
        realized_pnl: r.realized,
        unrealized_pnl: r.equity - r.cash,
        total_fees: r.fees,
        total_funding: r.funding,
        total_trades: all.trades,
        open_positions_at_end: r.open_positions,
        wins,
        losses,
        win_rate: all.win_rate,
        profit_factor: all.profit_factor,
        gross_profit: all.gross_profit,
        gross_loss: all.gross_loss,
        avg_trade_pnl: all.avg_pnl,
        avg_win: if wins > 0 { all.gross_profit / wins as f64 } else { 0.0 },
        avg_loss: if losses > 0 { -all.gross_loss / losses as f64 } else { 0.0 },
        sharpe_ratio: s.sharpe(p),
        sortino_ratio: s.sortino(p),
        calmar_ratio: s.calmar(p),
        cagr: s.cagr(p),
        periods_per_year: p,
        max_drawdown_usd: s.max_dd_usd,
        max_drawdown_pct: s.max_dd_frac * 100.0,
        exposure_pct: if r.steps > 0 { r.exposure_steps as f64 / r.steps as f64 * 100.0 } else { 0.0 },
        bars: r.bars,
        steps: r.steps,
        sub_ticks: r.sub_ticks,
        fills: r.fills.len() as u64,
        liquidations: r.liquidations,
        liquidation_pnl: r.liquidation_pnl,
        by_symbol: fin(by_symbol),
        by_side: fin(by_side),
        by_confidence: fin(by_conf),
        by_exit_reason: fin(by_exit),
        by_reason_code: r.exits_by_reason.clone(),
        gate_stats: GateStats {
            buy_signals: r.signals.0,
            sell_signals: r.signals.1,
            entries: r.entries,
            adds: r.adds,
            blocked_total: r.blocked.values().sum(),
            blocked_by_reason: r.blocked.clone(),
            blocked_by_symbol: r.blocked_by_symbol.clone(),
        },
    }
}

fn create(path: &str) -> Result<std::io::BufWriter<std::fs::File>, BtError> {
    let f = std::fs::File::create(path).map_err(|e| BtError::new(format!("{path}: cannot create: {e}")))?;
    Ok(std::io::BufWriter::new(f))
}

fn io(path: &str) -> impl Fn(std::io::Error) -> BtError + '_ {
    move |e| BtError::new(format!("{path}: write failed: {e}"))
}

/// Floats as Rust's shortest round-trip text (the same digits as Python's `repr`).
fn f(x: f64) -> String {
    format!("{x:?}")
}

pub const TRADES_HEADER: &str =
    "trade_id,intent_id,timestamp_ms,time,symbol,kind,side,quantity,price,notional_usd,\
fee_usd,pnl_usd,reason_code,confidence,leverage,cash_after";

pub fn write_trades_csv(path: &str, r: &RunResult) -> Result<(), BtError> {
    let mut w = create(path)?;
    writeln!(w, "{TRADES_HEADER}").map_err(io(path))?;
    for row in &r.fills {
        let x = &row.fill;
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            row.trade_id,
            x.intent_id,
            x.timestamp_ms,
            iso(x.timestamp_ms),
            x.symbol,
            name(&x.kind),
            name(&x.side),
            f(x.quantity),
            f(x.price),
            f(x.notional_usd),
            f(x.fee_usd),
            f(x.pnl_usd),
            x.reason_code.as_str(),
            name(&x.confidence),
            f(x.leverage),
            f(row.cash_after)
        )
        .map_err(io(path))?;
    }
    w.flush().map_err(io(path))
}

pub fn write_equity_csv(path: &str, r: &RunResult, initial: f64) -> Result<(), BtError> {
    let mut w = create(path)?;
    writeln!(w, "timestamp_ms,time,equity,drawdown_usd,drawdown_pct").map_err(io(path))?;
    let mut peak = initial;
    for &(t, eq) in &r.equity_curve {
        peak = peak.max(eq);
        let dd = peak - eq;
        let pct = if peak > 0.0 { dd / peak * 100.0 } else { 0.0 };
        writeln!(w, "{t},{},{},{},{}", iso(t), f(eq), f(dd), f(pct)).map_err(io(path))?;
    }
    w.flush().map_err(io(path))
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
