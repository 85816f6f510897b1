//! ai-quant CPU backtester: the shared decision kernel driven over history.
//!
//! `ai-quant-bt replay` runs one config over candle DBs and writes a report, trades and an equity
//! curve; `sweep` runs a grid of overrides in parallel; `dump-indicators` writes every indicator
//! per bar. The calling convention is documented in [`sim`] and docs/backtester.md.

pub mod config;
pub mod core_sweep;
pub mod data;
pub mod dump;
pub mod metrics;
pub mod prepare;
pub mod report;
pub mod sim;
pub mod sweep;

/// An error with a message that names the problem (file, symbol, key, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct BtError(pub String);

impl BtError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

impl std::fmt::Display for BtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BtError {}
