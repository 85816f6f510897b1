//! `dump-indicators`: every indicator snapshot field per bar, as CSV, for parity checks.

use std::io::Write;

use aiq_indicators::{IndicatorBank, SNAPSHOT_COLUMNS};

use crate::prepare::Prepared;
use crate::BtError;

/// Write the CSV for `symbol` to `out` (empty cells for values not yet warmed up).
pub fn dump(p: &Prepared, symbol: &str, out: &mut dyn Write) -> Result<u64, BtError> {
    let i = p.candles.symbols.iter().position(|s| s == symbol).ok_or_else(|| {
        BtError::new(format!(
            "--symbol {symbol}: not in the candles DB for this range (available: {})",
            p.candles.symbols.join(", ")
        ))
    })?;
    let cfg = &p.symbols[symbol].cfg;
    let mut bank = IndicatorBank::from_config(cfg);
    let io = |e: std::io::Error| BtError::new(format!("write failed: {e}"));
    writeln!(out, "{}", SNAPSHOT_COLUMNS.join(",")).map_err(io)?;
    let mut n = 0u64;
    let mut line = String::with_capacity(1024);
    for c in &p.candles.bars[i] {
        let snap = bank.update(*c);
        line.clear();
        for (j, (name, v)) in snap.columns().iter().enumerate() {
            if j > 0 {
                line.push(',');
            }
            if *name == "t" {
                line.push_str(&snap.t.to_string());
            } else if *name == "bar_count" {
                line.push_str(&snap.bar_count.to_string());
            } else if v.is_finite() {
                line.push_str(&format!("{v:?}"));
            }
        }
        writeln!(out, "{line}").map_err(io)?;
        n += 1;
    }
    out.flush().map_err(io)?;
    Ok(n)
}
