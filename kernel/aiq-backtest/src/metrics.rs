//! Performance metrics, computed in one pass over the equity curve (memory stays flat in sweeps).
//!
//! Definitions (the same as `empyrical`, checked in tests/backtest against empyrical/quantstats):
//! per-step simple returns `r_i = E_i / E_{i-1} - 1` with `E_{-1}` the initial balance; `P` steps
//! per year (`365 * 86_400_000 / interval_ms`);
//! Sharpe `mean(r) / std(r, ddof=1) * sqrt(P)`; Sortino `mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(P)`;
//! max drawdown over `[initial, E_0, E_1, ...]` against the running peak;
//! CAGR `(E_last / initial)^(P / n) - 1`; Calmar `CAGR / max_drawdown` (fractions).

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct EquityStats {
    pub initial: f64,
    pub last: f64,
    pub peak: f64,
    pub max_dd_usd: f64,
    pub max_dd_frac: f64,
    pub n: u64,
    mean: f64,
    m2: f64,
    down_sq: f64,
}

impl EquityStats {
    pub fn new(initial: f64) -> Self {
        Self { initial, last: initial, peak: initial, ..Default::default() }
    }

    pub fn push(&mut self, eq: f64) {
        let r = if self.last != 0.0 { eq / self.last - 1.0 } else { 0.0 };
        self.n += 1;
        let d = r - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (r - self.mean);
        if r < 0.0 {
            self.down_sq += r * r;
        }
        self.last = eq;
        if eq > self.peak {
            self.peak = eq;
        }
        let dd = self.peak - eq;
        if dd > self.max_dd_usd {
            self.max_dd_usd = dd;
        }
        if self.peak > 0.0 && dd / self.peak > self.max_dd_frac {
            self.max_dd_frac = dd / self.peak;
        }
    }

    /// Stats from accumulators another engine computed with [`EquityStats::push`]'s arithmetic
    /// (the decision core's `AiqResult`), so the ratios come from this one implementation.
    #[allow(clippy::too_many_arguments)]
    pub fn from_accumulators(
        initial: f64,
        last: f64,
        peak: f64,
        max_dd_usd: f64,
        max_dd_frac: f64,
        n: u64,
        mean: f64,
        m2: f64,
        down_sq: f64,
    ) -> Self {
        Self { initial, last, peak, max_dd_usd, max_dd_frac, n, mean, m2, down_sq }
    }

    pub fn mean_return(&self) -> f64 {
        self.mean
    }

    pub fn std_return(&self) -> f64 {
        if self.n > 1 {
            (self.m2 / (self.n - 1) as f64).sqrt()
        } else {
            f64::NAN
        }
    }

    pub fn sharpe(&self, periods: f64) -> f64 {
        let sd = self.std_return();
        if sd > 0.0 && sd.is_finite() {
            self.mean / sd * periods.sqrt()
        } else {
            0.0
        }
    }

    pub fn sortino(&self, periods: f64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let dr = (self.down_sq / self.n as f64).sqrt();
        if dr > 0.0 {
            self.mean / dr * periods.sqrt()
        } else {
            0.0
        }
    }

    pub fn cagr(&self, periods: f64) -> f64 {
        if self.n == 0 || self.initial <= 0.0 {
            return 0.0;
        }
        let growth = self.last / self.initial;
        if growth <= 0.0 {
            return -1.0;
        }
        growth.powf(periods / self.n as f64) - 1.0
    }

    pub fn calmar(&self, periods: f64) -> f64 {
        if self.max_dd_frac > 0.0 {
            self.cagr(periods) / self.max_dd_frac
        } else {
            0.0
        }
    }
}

/// Steps per year for an interval.
pub fn periods_per_year(interval_ms: i64) -> f64 {
    365.0 * 86_400_000.0 / interval_ms as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawdown_and_ratios() {
        let mut s = EquityStats::new(100.0);
        for e in [110.0, 99.0, 120.0, 90.0, 130.0] {
            s.push(e);
        }
        assert!((s.max_dd_usd - 30.0).abs() < 1e-12);
        assert!((s.max_dd_frac - 0.25).abs() < 1e-12);
        let r = [0.1, 99.0 / 110.0 - 1.0, 120.0 / 99.0 - 1.0, 0.75 - 1.0, 130.0 / 90.0 - 1.0];
        let mean = r.iter().sum::<f64>() / 5.0;
        let sd = (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0).sqrt();
        assert!((s.sharpe(1.0) - mean / sd).abs() < 1e-12);
        let dr = (r.iter().map(|x| x.min(0.0).powi(2)).sum::<f64>() / 5.0).sqrt();
        assert!((s.sortino(1.0) - mean / dr).abs() < 1e-12);
    }
}
