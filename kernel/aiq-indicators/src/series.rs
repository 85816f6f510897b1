//! Per-indicator series over a whole history, for sharing across sweep combos.
//!
//! An [`IndicatorBank`] computes every indicator of one config bar by bar. A sweep over
//! indicator windows runs many configs that differ in one or two windows: computing each
//! indicator once per distinct (kind, parameters) over the symbol's whole history and
//! assembling each combo's [`IndicatorSnapshot`] from those series does the shared work once.
//!
//! Each series is computed by the same primitive ([`Ema`], [`Adx`], ...) fed the same inputs in
//! the same order as inside the bank, and the derived fields (slopes, previous-bar values,
//! `ready`) are formed the same way, so an assembled snapshot is bit-identical to the bank's
//! (tested against the bank on real candles, for every field). Candles the bank would ignore
//! (non-finite, a price <= 0, a volume < 0) are skipped here too: such a bar repeats the
//! previous snapshot.

use crate::bands::Bollinger;
use crate::bank::{candle_error, BankConfig, Candle, IndicatorBank, IndicatorSnapshot, Outputs};
use crate::ma::{Ema, Ring, Sma};
use crate::macd::Macd;
use crate::stoch::StochRsiSmoothed;
use crate::wilder::{Adx, Atr, Rsi};

const NAN: f64 = f64::NAN;

/// One symbol's candles, as the bank sees them: the bars it accepts, and for every input bar
/// the accepted bar whose snapshot it gets.
#[derive(Debug, Clone)]
pub struct BaseSeries {
    t: Vec<i64>,
    /// `[open, high, low, close, volume]` of each accepted bar.
    ohlcv: Vec<[f64; 5]>,
    /// Per input bar: index into the accepted bars (`u32::MAX`: none accepted yet).
    at: Vec<u32>,
}

impl BaseSeries {
    /// From `(t, open, high, low, close, volume)` per bar, in time order.
    pub fn new(bars: impl IntoIterator<Item = (i64, f64, f64, f64, f64, f64)>) -> Self {
        let mut s = Self { t: Vec::new(), ohlcv: Vec::new(), at: Vec::new() };
        for (t, o, h, l, c, v) in bars {
            if candle_error(&Candle { t, o, h, l, c, v }).is_none() {
                s.t.push(t);
                s.ohlcv.push([o, h, l, c, v]);
            }
            s.at.push(if s.t.is_empty() { u32::MAX } else { (s.t.len() - 1) as u32 });
        }
        s
    }

    /// Number of input bars.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    fn col(&self, k: usize) -> impl Iterator<Item = f64> + '_ {
        self.ohlcv.iter().map(move |b| b[k])
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.t.len() * (8 + 40) + self.at.len() * 4
    }
}

/// A distinct indicator computation: its kind and every parameter it depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SeriesKey {
    /// EMA(close, window): ema_fast, ema_slow and ema_macro share it when windows are equal.
    Ema(u32),
    /// `ema_slow_slope_pct`: (ema_slow_window, slow_drift_slope_window).
    EmaSlope(u32, u32),
    /// ADX, +DI, -DI (adx_window).
    Adx(u32),
    /// Bollinger upper, middle, lower, width, width_avg, width_ratio
    /// (bb_window, bb_std bits, bb_width_avg_window).
    Bb(u32, u64, u32),
    /// ATR and avg_atr (atr_window, ave_avg_atr_window).
    Atr(u32, u32),
    /// RSI (rsi_window).
    Rsi(u32),
    /// Smoothed StochRSI K, D (window, smooth1, smooth2).
    Stoch(u32, u32, u32),
    /// MACD line, signal, histogram (fast, slow, signal).
    Macd(u32, u32, u32),
    /// SMA(volume, window): vol_sma and vol_trend_sma.
    VolSma(u32),
    /// A group the bank does not compute (see [`crate::Outputs`]): NaN, this many values wide.
    Unread(u8),
}

impl SeriesKey {
    /// Short name of the kind (for reports).
    pub fn kind(&self) -> &'static str {
        match self {
            SeriesKey::Ema(_) => "ema",
            SeriesKey::EmaSlope(..) => "ema_slope",
            SeriesKey::Adx(_) => "adx",
            SeriesKey::Bb(..) => "bb",
            SeriesKey::Atr(..) => "atr",
            SeriesKey::Rsi(_) => "rsi",
            SeriesKey::Stoch(..) => "stoch_rsi",
            SeriesKey::Macd(..) => "macd",
            SeriesKey::VolSma(_) => "vol_sma",
            SeriesKey::Unread(_) => "unread",
        }
    }

    /// Values per accepted bar.
    pub fn width(&self) -> usize {
        match self {
            SeriesKey::Ema(_) | SeriesKey::EmaSlope(..) | SeriesKey::Rsi(_) | SeriesKey::VolSma(_) => 1,
            SeriesKey::Atr(..) | SeriesKey::Stoch(..) => 2,
            SeriesKey::Adx(_) | SeriesKey::Macd(..) => 3,
            SeriesKey::Bb(..) => 6,
            SeriesKey::Unread(w) => *w as usize,
        }
    }

    /// Compute this series over `base`'s accepted bars (`width()` values per bar, row-major).
    pub fn compute(&self, base: &BaseSeries) -> Vec<f64> {
        let n = base.t.len();
        let mut out = Vec::with_capacity(n * self.width());
        let err = "windows validated by SeriesSet::new";
        match *self {
            SeriesKey::Ema(w) => {
                let mut e = Ema::new(w).expect(err);
                out.extend(base.col(3).map(|c| e.update(c).unwrap_or(NAN)));
            }
            SeriesKey::EmaSlope(w, lag) => {
                // As the bank: a ring of the last `lag` defined ema_slow values.
                let mut e = Ema::new(w).expect(err);
                let mut hist = Ring::new(lag as usize);
                let mut len = 0u64;
                for c in base.col(3) {
                    let v = e.update(c).unwrap_or(NAN);
                    let mut slope = NAN;
                    if !v.is_nan() {
                        if len >= lag as u64 {
                            let old = hist.oldest();
                            slope = (v - old) / old;
                        }
                        hist.push(v);
                        len += 1;
                    }
                    out.push(slope);
                }
            }
            SeriesKey::Adx(w) => {
                let mut a = Adx::new(w).expect(err);
                for b in &base.ohlcv {
                    match a.update(b[1], b[2], b[3]) {
                        Some(x) => out.extend([x.adx.unwrap_or(NAN), x.plus_di, x.minus_di]),
                        None => out.extend([NAN; 3]),
                    }
                }
            }
            SeriesKey::Bb(w, std_bits, avg_w) => {
                let mut bb = Bollinger::new(w, f64::from_bits(std_bits)).expect(err);
                let mut avg = Sma::new(avg_w).expect(err);
                for c in base.col(3) {
                    let mut row = [NAN; 6];
                    if let Some(b) = bb.update(c) {
                        let width = (b.upper - b.lower) / c;
                        row[..4].copy_from_slice(&[b.upper, b.middle, b.lower, width]);
                        if let Some(a) = avg.update(width) {
                            row[4] = a;
                            row[5] = if a == 0.0 { 1.0 } else { width / a };
                        }
                    }
                    out.extend(row);
                }
            }
            SeriesKey::Atr(w, avg_w) => {
                let mut atr = Atr::new(w).expect(err);
                let mut avg = Sma::new(avg_w).expect(err);
                for b in &base.ohlcv {
                    match atr.update(b[1], b[2], b[3]) {
                        Some(a) => out.extend([a, avg.update(a).unwrap_or(NAN)]),
                        None => out.extend([NAN; 2]),
                    }
                }
            }
            SeriesKey::Rsi(w) => {
                let mut r = Rsi::new(w).expect(err);
                out.extend(base.col(3).map(|c| r.update(c).unwrap_or(NAN)));
            }
            SeriesKey::Stoch(w, s1, s2) => {
                let mut s = StochRsiSmoothed::new(w, s1, s2).expect(err);
                for c in base.col(3) {
                    let x = s.update(c);
                    out.extend([x.k.unwrap_or(NAN), x.d.unwrap_or(NAN)]);
                }
            }
            SeriesKey::Macd(f, s, g) => {
                let mut m = Macd::new(f, s, g).expect(err);
                for c in base.col(3) {
                    match m.update(c) {
                        Some(x) => out.extend([x.macd, x.signal, x.hist]),
                        None => out.extend([NAN; 3]),
                    }
                }
            }
            SeriesKey::VolSma(w) => {
                let mut s = Sma::new(w).expect(err);
                out.extend(base.col(4).map(|v| s.update(v).unwrap_or(NAN)));
            }
            SeriesKey::Unread(w) => out.resize(n * w as usize, NAN),
        }
        out
    }
}

/// The series one bank config reads, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesSet {
    pub ema_fast: SeriesKey,
    pub ema_slow: SeriesKey,
    pub ema_macro: SeriesKey,
    pub ema_slope: SeriesKey,
    pub adx: SeriesKey,
    pub bb: SeriesKey,
    pub atr: SeriesKey,
    pub rsi: SeriesKey,
    pub stoch: SeriesKey,
    pub macd: SeriesKey,
    pub vol_sma: SeriesKey,
    pub vol_trend_sma: SeriesKey,
    /// First bar index whose snapshot is `ready` (the bank's).
    pub ready_index: u64,
}

impl SeriesSet {
    /// The series of the bank [`IndicatorBank::from_config`] builds for `cfg` (same clamping).
    pub fn of_bank(bank: &IndicatorBank) -> Self {
        let c: &BankConfig = bank.config();
        let i = &c.indicators;
        let o = bank.outputs();
        // A group the bank skips is a NaN series of the same width (shared by every such combo).
        let pick =
            |g: Outputs, k: SeriesKey| if o.contains(g) { k } else { SeriesKey::Unread(k.width() as u8) };
        Self {
            ema_fast: pick(Outputs::EMA_FAST, SeriesKey::Ema(i.ema_fast_window)),
            ema_slow: pick(Outputs::EMA_SLOW, SeriesKey::Ema(i.ema_slow_window)),
            ema_macro: pick(Outputs::EMA_MACRO, SeriesKey::Ema(i.ema_macro_window)),
            ema_slope: pick(
                Outputs::EMA_SLOPE,
                SeriesKey::EmaSlope(i.ema_slow_window, c.slow_drift_slope_window),
            ),
            adx: pick(Outputs::ADX, SeriesKey::Adx(i.adx_window)),
            bb: pick(Outputs::BB, SeriesKey::Bb(i.bb_window, i.bb_std.to_bits(), i.bb_width_avg_window)),
            atr: pick(Outputs::ATR, SeriesKey::Atr(i.atr_window, c.ave_avg_atr_window)),
            rsi: pick(Outputs::RSI, SeriesKey::Rsi(i.rsi_window)),
            stoch: pick(
                Outputs::STOCH_RSI,
                SeriesKey::Stoch(i.stoch_rsi_window, i.stoch_rsi_smooth1, i.stoch_rsi_smooth2),
            ),
            macd: pick(Outputs::MACD, SeriesKey::Macd(i.macd_fast, i.macd_slow, i.macd_signal)),
            vol_sma: pick(Outputs::VOL, SeriesKey::VolSma(i.vol_sma_window)),
            vol_trend_sma: pick(Outputs::VOL, SeriesKey::VolSma(i.vol_trend_window)),
            ready_index: bank.ready_index(),
        }
    }

    pub fn keys(&self) -> [SeriesKey; 12] {
        [
            self.ema_fast,
            self.ema_slow,
            self.ema_macro,
            self.ema_slope,
            self.adx,
            self.bb,
            self.atr,
            self.rsi,
            self.stoch,
            self.macd,
            self.vol_sma,
            self.vol_trend_sma,
        ]
    }
}

/// Computed series for one [`SeriesSet`], borrowed by role, turned back into snapshots.
pub struct SnapshotSource<'a> {
    pub base: &'a BaseSeries,
    pub ready_index: u64,
    /// Series by role, in the order of [`SeriesSet::keys`].
    pub series: [&'a [f64]; 12],
}

impl SnapshotSource<'_> {
    /// The snapshot the bank returns after input bar `i` (0-based) of the base series.
    #[inline]
    pub fn snapshot(&self, i: usize) -> IndicatorSnapshot {
        let j = self.base.at[i];
        if j == u32::MAX {
            return IndicatorSnapshot::empty();
        }
        let j = j as usize;
        let [ef, es, em, slope, adx, bb, atr, rsi, st, macd, vs, vts] = self.series;
        let b = &self.base.ohlcv[j];
        // Value `k` of a series `w` wide at accepted bar `j - back` (NaN before the first bar).
        let at =
            |s: &[f64], w: usize, k: usize, back: usize| if j >= back { s[(j - back) * w + k] } else { NAN };
        let mut s = IndicatorSnapshot::empty();
        s.t = self.base.t[j];
        (s.open, s.high, s.low, s.close, s.volume) = (b[0], b[1], b[2], b[3], b[4]);
        s.bar_count = j as u64 + 1;
        s.ema_fast = ef[j];
        s.ema_slow = es[j];
        s.ema_macro = em[j];
        s.adx = adx[j * 3];
        s.adx_pos = adx[j * 3 + 1];
        s.adx_neg = adx[j * 3 + 2];
        s.adx_slope = s.adx - at(adx, 3, 0, 1);
        s.bb_upper = bb[j * 6];
        s.bb_middle = bb[j * 6 + 1];
        s.bb_lower = bb[j * 6 + 2];
        s.bb_width = bb[j * 6 + 3];
        s.bb_width_avg = bb[j * 6 + 4];
        s.bb_width_ratio = bb[j * 6 + 5];
        s.atr = atr[j * 2];
        s.avg_atr = atr[j * 2 + 1];
        s.atr_slope = s.atr - at(atr, 2, 0, 1);
        s.rsi = rsi[j];
        s.stoch_rsi_k = st[j * 2];
        s.stoch_rsi_d = st[j * 2 + 1];
        s.macd = macd[j * 3];
        s.macd_signal = macd[j * 3 + 1];
        s.macd_hist = macd[j * 3 + 2];
        s.prev_macd_hist = at(macd, 3, 2, 1);
        s.prev2_macd_hist = at(macd, 3, 2, 2);
        s.prev3_macd_hist = at(macd, 3, 2, 3);
        s.vol_sma = vs[j];
        s.vol_trend_sma = vts[j];
        s.vol_trend = s.vol_trend_sma > s.vol_sma;
        s.prev_close = if j >= 1 { self.base.ohlcv[j - 1][3] } else { NAN };
        s.prev_ema_fast = at(ef, 1, 0, 1);
        s.prev_ema_slow = at(es, 1, 0, 1);
        s.ema_slow_slope_pct = slope[j];
        s.ready = s.bar_count > self.ready_index;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A deterministic, jagged price path with a flat stretch, a zero-volume bar and a few
    /// invalid candles (which the bank ignores).
    fn bars(n: usize) -> Vec<(i64, f64, f64, f64, f64, f64)> {
        let mut x = 100.0f64;
        let mut seed = 12345u64;
        (0..n)
            .map(|i| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let r = ((seed >> 33) as f64 / (1u64 << 31) as f64) - 0.5;
                let o = x;
                if !(300..320).contains(&i) {
                    x *= 1.0 + r * 0.02;
                }
                let (h, l) = (o.max(x) * 1.003, o.min(x) * 0.997);
                let v = if i == 50 { 0.0 } else { 10.0 + (seed >> 40) as f64 / 1e5 };
                match i {
                    0 | 7 => (i as i64, -1.0, h, l, x, v),
                    400 => (i as i64, o, h, l, f64::NAN, v),
                    _ => (i as i64 * 300_000, o, h, l, x, v),
                }
            })
            .collect()
    }

    fn same(a: &IndicatorSnapshot, b: &IndicatorSnapshot) -> bool {
        a.columns().iter().zip(b.columns().iter()).all(|(x, y)| x.1.to_bits() == y.1.to_bits())
    }

    #[test]
    fn assembled_snapshots_are_bit_identical_to_the_bank() {
        let data = bars(3000);
        let base = BaseSeries::new(data.iter().copied());
        let mut cfgs = Vec::new();
        for (f, s, adx, drift, std) in [(20, 50, 14, 20, 2.0), (8, 15, 10, 5, 1.5), (12, 12, 3, 1, 2.5)] {
            let mut c = aiq_config::StrategyConfig::default();
            c.indicators.ema_fast_window = f;
            c.indicators.ema_slow_window = s;
            c.indicators.adx_window = adx;
            c.indicators.bb_std = std;
            c.indicators.vol_trend_window = 20; // equal to vol_sma_window: one shared series
            c.thresholds.entry.slow_drift_slope_window = drift;
            cfgs.push(c);
        }
        let mut cache: BTreeMap<SeriesKey, Vec<f64>> = BTreeMap::new();
        for cfg in &cfgs {
            let mut bank = IndicatorBank::from_config(cfg);
            let set = SeriesSet::of_bank(&bank);
            for k in set.keys() {
                cache.entry(k).or_insert_with(|| k.compute(&base));
            }
            let src = SnapshotSource {
                base: &base,
                ready_index: set.ready_index,
                series: set.keys().map(|k| cache[&k].as_slice()),
            };
            let mut ready = 0;
            for (i, &(t, o, h, l, c, v)) in data.iter().enumerate() {
                let want = bank.update(Candle { t, o, h, l, c, v });
                let got = src.snapshot(i);
                assert!(same(&want, &got), "bar {i}: {want:?} != {got:?}");
                ready += usize::from(got.ready);
            }
            assert!(ready > 2000);
        }
        // EMA windows 20/50/200, 8/15/200, 12/12/200: six series, EMA(12) serving fast and slow.
        assert_eq!(cache.keys().filter(|k| k.kind() == "ema").count(), 6);
    }

    /// A bank computing only some groups: those groups (and the always-set fields) are
    /// bit-identical to the full bank's, every other column is NaN (`vol_trend` false), and the
    /// sweep's series assembled from its [`SeriesSet`] agree with it on the groups it computes.
    #[test]
    fn reads_only_bank_computes_its_groups_bit_identically_and_nan_elsewhere() {
        let data = bars(1500);
        let base = BaseSeries::new(data.iter().copied());
        let cfg = aiq_config::StrategyConfig::default();
        let mut seed = 7u64;
        let mut selections: Vec<Outputs> = Outputs::GROUPS.iter().map(|(_, g)| *g).collect();
        selections.push(Outputs::NONE);
        selections.push(Outputs::EMA_FAST | Outputs::EMA_SLOW);
        for _ in 0..20 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let mut o = Outputs::NONE;
            for (k, (_, g)) in Outputs::GROUPS.iter().enumerate() {
                if (seed >> (20 + k)) & 1 == 1 {
                    o |= *g;
                }
            }
            selections.push(o);
        }
        for sel in selections {
            let mut full = IndicatorBank::from_config(&cfg);
            let mut part = IndicatorBank::from_config_reading(&cfg, sel);
            assert_eq!(part.ready_index(), full.ready_index());
            let got = part.outputs();
            let set = SeriesSet::of_bank(&part);
            let computed: Vec<(SeriesKey, Vec<f64>)> =
                set.keys().iter().map(|k| (*k, k.compute(&base))).collect();
            let src = SnapshotSource {
                base: &base,
                ready_index: set.ready_index,
                series: std::array::from_fn(|i| computed[i].1.as_slice()),
            };
            for (i, &(t, o, h, l, c, v)) in data.iter().enumerate() {
                let want = full.update(Candle { t, o, h, l, c, v });
                let have = part.update(Candle { t, o, h, l, c, v });
                let assembled = src.snapshot(i);
                let cols = have.columns();
                for (k, ((name, x), (_, y))) in cols.iter().zip(want.columns().iter()).enumerate() {
                    let z = assembled.columns()[k].1;
                    match Outputs::of_column(name) {
                        Some(g) if !got.contains(g) => {
                            let unset = if *name == "vol_trend" { 0.0 } else { f64::NAN };
                            assert_eq!(x.to_bits(), unset.to_bits(), "{sel:?} bar {i}: {name} = {x}");
                        }
                        _ => {
                            assert_eq!(x.to_bits(), y.to_bits(), "{sel:?} bar {i}: {name}: {x} != {y}");
                            assert_eq!(
                                z.to_bits(),
                                y.to_bits(),
                                "{sel:?} bar {i}: series {name}: {z} != {y}"
                            );
                        }
                    }
                }
            }
        }
    }
}
