//! MACD, bit-identical to TA-Lib `MACD(fast, slow, signal)` (default compatibility).

use serde::{Deserialize, Serialize};

use crate::ma::Ema;
use crate::{check_window, IndicatorError};

/// One MACD update's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MacdOutput {
    pub macd: f64,
    pub signal: f64,
    pub hist: f64,
}

/// MACD line `EMA(fast) - EMA(slow)`, signal `EMA(signal)` of the line, histogram
/// `line - signal`.
///
/// TA-Lib alignment (the subtle part): both price EMAs are seeded with a simple average whose
/// window **ends on the same bar**, index `slow - 1`. So the slow EMA is seeded from bars
/// `0..slow`, but the fast EMA from bars `slow - fast..slow` (it ignores the first
/// `slow - fast` bars), not from bars `0..fast` as a standalone `EMA(fast)` would be. The signal
/// EMA is seeded with the simple average of the first `signal` MACD-line values. If
/// `fast > slow` the two are swapped, as TA-Lib does.
///
/// **Warm-up:** all three outputs first at index `slow + signal - 2` (33 for 12/26/9); TA-Lib
/// reports nothing earlier, not even the MACD line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Macd {
    fast_period: u32,
    slow_period: u32,
    signal_period: u32,
    count: u64,
    fast: Ema,
    slow: Ema,
    signal: Ema,
}

impl Macd {
    /// All periods `>= 1`.
    pub fn new(fast: u32, slow: u32, signal: u32) -> Result<Self, IndicatorError> {
        check_window("macd fast period", fast, 1)?;
        check_window("macd slow period", slow, 1)?;
        check_window("macd signal period", signal, 1)?;
        let (fast, slow) = if slow < fast { (slow, fast) } else { (fast, slow) };
        Ok(Self {
            fast_period: fast,
            slow_period: slow,
            signal_period: signal,
            count: 0,
            fast: Ema::new(fast)?,
            slow: Ema::new(slow)?,
            signal: Ema::new(signal)?,
        })
    }

    /// Index of the first bar with a value.
    pub fn warmup(&self) -> u64 {
        self.slow_period as u64 + self.signal_period as u64 - 2
    }

    #[inline]
    pub fn update(&mut self, x: f64) -> Option<MacdOutput> {
        let idx = self.count;
        self.count += 1;
        let slow = self.slow.update(x);
        let fast =
            if idx >= (self.slow_period - self.fast_period) as u64 { self.fast.update(x) } else { None };
        let (Some(f), Some(s)) = (fast, slow) else { return None };
        let line = f - s;
        let sig = self.signal.update(line)?;
        Some(MacdOutput { macd: line, signal: sig, hist: line - sig })
    }
}
