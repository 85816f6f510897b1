//! Typed values that cross the kernel boundary: signals, intents, fills, positions.

use aiq_config::Confidence;
use serde::{Deserialize, Serialize};

/// Version of every JSON payload the kernel reads or writes (state, events, params).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Long,
    Short,
}

impl Side {
    /// +1 for long, -1 for short.
    pub fn sign(self) -> f64 {
        match self {
            Side::Long => 1.0,
            Side::Short => -1.0,
        }
    }
    pub fn opposite(self) -> Side {
        match self {
            Side::Long => Side::Short,
            Side::Short => Side::Long,
        }
    }
}

/// Direction of an entry signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    Buy,
    Sell,
    Neutral,
}

impl Signal {
    pub fn side(self) -> Option<Side> {
        match self {
            Signal::Buy => Some(Side::Long),
            Signal::Sell => Some(Side::Short),
            Signal::Neutral => None,
        }
    }
    /// 1 buy, -1 sell, 0 neutral (the compact encoding used by parity tools).
    pub fn code(self) -> i8 {
        match self {
            Signal::Buy => 1,
            Signal::Sell => -1,
            Signal::Neutral => 0,
        }
    }
}

/// What an order intent does to the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntentKind {
    Open,
    Add,
    Reduce,
    Close,
    /// Close of an opposite position immediately followed by an open (the open is a separate intent).
    Reverse,
}

/// Machine-readable reason for an intent or a blocked entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    EntrySignal,
    PyramidAdd,
    SignalFlip,
    StopLoss,
    BreakevenStop,
    TrailingStop,
    TakeProfitPartial,
    TakeProfit,
    TrendBreakdown,
    AdxExhaustion,
    MacroBreakdown,
    Stagnation,
    Tsme,
    Mmde,
    RsiOverextension,
    Liquidation,
    EmaCrossDown,
    // entry blocks (diagnostics only)
    LowConfidence,
    Reef,
    Ssf,
    EntryCooldown,
    Pesc,
    MaxPositions,
    MarginCap,
    MinNotional,
    NotReady,
    // market-regime blocks (config `market_regime`)
    BreadthLong,
    BreadthShort,
    RegimeGate,
    RegimeGateNoData,
}

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::EntrySignal => "entry_signal",
            ReasonCode::PyramidAdd => "pyramid_add",
            ReasonCode::SignalFlip => "signal_flip",
            ReasonCode::StopLoss => "stop_loss",
            ReasonCode::BreakevenStop => "breakeven_stop",
            ReasonCode::TrailingStop => "trailing_stop",
            ReasonCode::TakeProfitPartial => "take_profit_partial",
            ReasonCode::TakeProfit => "take_profit",
            ReasonCode::TrendBreakdown => "trend_breakdown",
            ReasonCode::AdxExhaustion => "adx_exhaustion",
            ReasonCode::MacroBreakdown => "macro_breakdown",
            ReasonCode::Stagnation => "stagnation",
            ReasonCode::Tsme => "tsme",
            ReasonCode::Mmde => "mmde",
            ReasonCode::RsiOverextension => "rsi_overextension",
            ReasonCode::Liquidation => "liquidation",
            ReasonCode::EmaCrossDown => "ema_cross_down",
            ReasonCode::LowConfidence => "low_confidence",
            ReasonCode::Reef => "reef",
            ReasonCode::Ssf => "ssf",
            ReasonCode::EntryCooldown => "entry_cooldown",
            ReasonCode::Pesc => "pesc",
            ReasonCode::MaxPositions => "max_positions",
            ReasonCode::MarginCap => "margin_cap",
            ReasonCode::MinNotional => "min_notional",
            ReasonCode::NotReady => "not_ready",
            ReasonCode::BreadthLong => "breadth_long",
            ReasonCode::BreadthShort => "breadth_short",
            ReasonCode::RegimeGate => "regime_gate",
            ReasonCode::RegimeGateNoData => "regime_gate_no_data",
        }
    }
}

/// An order the kernel wants placed. In simulation it is filled at once (see [`Fill`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderIntent {
    pub intent_id: u64,
    pub symbol: String,
    pub kind: IntentKind,
    /// Side of the order itself: `Long` buys, `Short` sells.
    pub side: Side,
    pub quantity: f64,
    /// Reference price (candle close or mid) before slippage.
    pub price: f64,
    pub notional_usd: f64,
    pub reason: String,
    pub reason_code: ReasonCode,
    pub confidence: Confidence,
    /// Ranking score (`confidence rank * 100 + ADX`).
    pub score: f64,
    pub timestamp_ms: i64,
    /// True for orders that only reduce a position.
    pub reduce_only: bool,
    /// Leverage for opens and adds.
    pub leverage: f64,
}

/// A simulated execution of an intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fill {
    pub intent_id: u64,
    pub symbol: String,
    pub kind: IntentKind,
    pub side: Side,
    pub quantity: f64,
    pub price: f64,
    pub notional_usd: f64,
    pub fee_usd: f64,
    /// Realised PnL of the part closed (0 for opens and adds), before fees.
    pub pnl_usd: f64,
    pub reason_code: ReasonCode,
    pub timestamp_ms: i64,
    /// Confidence of the decision behind the order (sets the position's tier on an open).
    pub confidence: Confidence,
    /// Leverage of the position the fill belongs to.
    pub leverage: f64,
}

/// An open position and everything the exit logic needs to remember about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub symbol: String,
    pub side: Side,
    pub quantity: f64,
    pub avg_entry_price: f64,
    pub entry_atr: f64,
    pub leverage: f64,
    pub confidence: Confidence,
    pub opened_at_ms: i64,
    pub last_add_ms: i64,
    pub adds_count: u32,
    pub tp1_taken: bool,
    /// Trailing stop price, once armed.
    pub trailing_sl: Option<f64>,
    pub tp_mult: f64,
    pub entry_adx_threshold: f64,
    /// Worst and best unrealised PnL seen (USD).
    pub mae_usd: f64,
    pub mfe_usd: f64,
    pub funding_paid_usd: f64,
    pub fees_paid_usd: f64,
}

impl Position {
    pub fn notional_at(&self, px: f64) -> f64 {
        self.quantity * px
    }
    pub fn margin(&self) -> f64 {
        self.quantity * self.avg_entry_price / self.leverage
    }
    pub fn unrealized_pnl(&self, px: f64) -> f64 {
        self.side.sign() * (px - self.avg_entry_price) * self.quantity
    }
    /// Profit in units of entry ATR at price `px`.
    pub fn profit_atr(&self, px: f64) -> f64 {
        if self.entry_atr > 0.0 {
            self.side.sign() * (px - self.avg_entry_price) / self.entry_atr
        } else {
            0.0
        }
    }
}

/// Why the last position on a symbol closed (for PESC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloseInfo {
    pub timestamp_ms: i64,
    pub side: Side,
    pub reason_code: ReasonCode,
}
