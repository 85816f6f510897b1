//! Bollinger bands, matching TA-Lib `BBANDS(period, nbdev, nbdev, MA_Type.SMA)`.

use serde::{Deserialize, Serialize};

use crate::ma::{Ring, Sma};
use crate::stoch::RollingMinMax;
use crate::{check_window, IndicatorError};

/// One Bollinger update's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BollingerOutput {
    pub upper: f64,
    pub middle: f64,
    pub lower: f64,
}

/// Bollinger bands: `middle = SMA(period)` (bit-identical to TA-Lib), `upper/lower = middle ±
/// nbdev * σ` with `σ` the **population** standard deviation of the window.
///
/// σ is computed in a numerically stable way, in amortised O(1): running sums of `x - a` and
/// `(x - a)²` around an anchor `a`; every `period` bars the anchor moves to the current mean and
/// both sums are recomputed exactly from the ring buffer (an O(period) pass once per `period`
/// bars). `var = Σ(x-a)²/n - (Σ(x-a)/n)²`; `σ = 0` when the window is flat (max == min, exact)
/// or `var <= 0`. The naive `E[x²] - E[x]²` over raw prices (TA-Lib 0.4's formula) loses up to
/// ~1e-5 of σ to cancellation on 5m crypto prices and leaves a non-zero σ on flat windows;
/// TA-Lib 0.8 is stable too (and exactly 0 on flat windows), so parity holds within ~1e-11 of σ.
///
/// **Warm-up:** first value at index `period - 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bollinger {
    period: u32,
    nbdev: f64,
    sma: Sma,
    minmax: RollingMinMax,
    ring: Ring,
    count: u64,
    anchor: f64,
    s1: f64,
    s2: f64,
    /// Updates since the last re-anchoring.
    since_anchor: u32,
}

impl Bollinger {
    /// `period >= 1`; `nbdev` must be finite.
    pub fn new(period: u32, nbdev: f64) -> Result<Self, IndicatorError> {
        check_window("bollinger period", period, 1)?;
        if !nbdev.is_finite() {
            return Err(IndicatorError::InvalidParameter { name: "nbdev", value: nbdev });
        }
        Ok(Self {
            period,
            nbdev,
            sma: Sma::new(period)?,
            minmax: RollingMinMax::new(period)?,
            ring: Ring::new(period as usize),
            count: 0,
            anchor: 0.0,
            s1: 0.0,
            s2: 0.0,
            since_anchor: 0,
        })
    }

    /// Index of the first bar with a value.
    pub fn warmup(&self) -> u64 {
        self.period as u64 - 1
    }

    #[inline]
    pub fn update(&mut self, x: f64) -> Option<BollingerOutput> {
        let middle = self.sma.update(x);
        let range = self.minmax.update(x);
        let p = self.period as u64;
        if self.count == 0 {
            self.anchor = x;
        }
        let full_before = self.count >= p;
        let oldest = self.ring.oldest();
        self.ring.push(x);
        self.count += 1;
        let d = x - self.anchor;
        self.s1 += d;
        self.s2 += d * d;
        if full_before {
            let o = oldest - self.anchor;
            self.s1 -= o;
            self.s2 -= o * o;
        }
        let middle = middle?;
        let (lo, hi) = range?;
        self.since_anchor += 1;
        if self.since_anchor >= self.period {
            self.reanchor(middle);
        }
        let n = self.period as f64;
        let sd = if hi == lo {
            0.0
        } else {
            let m1 = self.s1 / n;
            let var = self.s2 / n - m1 * m1;
            if var > 0.0 {
                var.sqrt()
            } else {
                0.0
            }
        };
        let dev = sd * self.nbdev;
        Some(BollingerOutput { upper: middle + dev, middle, lower: middle - dev })
    }

    /// Move the anchor to `mean` and recompute both sums exactly from the (full) ring buffer.
    #[cold]
    fn reanchor(&mut self, mean: f64) {
        self.anchor = mean;
        self.since_anchor = 0;
        let (mut s1, mut s2) = (0.0, 0.0);
        for &v in self.ring.values() {
            let d = v - mean;
            s1 += d;
            s2 += d * d;
        }
        self.s1 = s1;
        self.s2 = s2;
    }
}
