//! Candle and funding inputs from SQLite, their fingerprints, and the replay timeline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aiq_kernel::Candle;
use rusqlite::Connection;
use serde::Serialize;

use crate::BtError;

/// Resolve `--candles-db`: a file, a comma-separated list of files, or a directory (every
/// `candles_{interval}*.db` in it, or every `*.db` when none is named that way). Sorted by name.
pub fn resolve_db_paths(spec: &str, interval: &str) -> Result<Vec<PathBuf>, BtError> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let p = PathBuf::from(part);
        if p.is_dir() {
            let mut all: Vec<PathBuf> = std::fs::read_dir(&p)
                .map_err(|e| BtError::new(format!("{}: cannot list the directory: {e}", p.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "db"))
                .collect();
            all.sort();
            let prefix = aiq_candles::db_stem(interval);
            let named: Vec<PathBuf> = all
                .iter()
                .filter(|f| {
                    f.file_stem().and_then(|s| s.to_str()).is_some_and(|s| {
                        s == prefix
                            || s.starts_with(&format!("{prefix}_"))
                            || s.starts_with(&format!("{prefix}-"))
                    })
                })
                .cloned()
                .collect();
            let chosen = if named.is_empty() { all } else { named };
            if chosen.is_empty() {
                return Err(BtError::new(format!("{}: no .db files in the directory", p.display())));
            }
            out.extend(chosen);
        } else if p.is_file() {
            out.push(p);
        } else {
            return Err(BtError::new(format!("candles DB {} does not exist", p.display())));
        }
    }
    if out.is_empty() {
        return Err(BtError::new("--candles-db is empty"));
    }
    Ok(out)
}

fn open_ro(path: &Path) -> Result<Connection, BtError> {
    if !path.is_file() {
        return Err(BtError::new(format!("{} does not exist", path.display())));
    }
    aiq_candles::open_ro(path)
        .map_err(|e| BtError::new(format!("{}: cannot open as SQLite: {e}", path.display())))
}

/// Per-file facts recorded in the report.
#[derive(Debug, Clone, Serialize)]
pub struct DbFingerprint {
    pub path: String,
    pub rows: u64,
    pub first_t: Option<i64>,
    pub last_t: Option<i64>,
    pub bytes: u64,
}

/// The rows read from one database file and the span of their times: its [`DbFingerprint`].
#[derive(Debug, Default)]
struct RowSpan {
    rows: u64,
    first: Option<i64>,
    last: Option<i64>,
}

impl RowSpan {
    fn see(&mut self, t: i64) {
        self.rows += 1;
        self.first = Some(self.first.map_or(t, |f| f.min(t)));
        self.last = Some(self.last.map_or(t, |l| l.max(t)));
    }

    fn fingerprint(self, path: &Path) -> DbFingerprint {
        DbFingerprint {
            path: path.display().to_string(),
            rows: self.rows,
            first_t: self.first,
            last_t: self.last,
            bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        }
    }
}

/// Every symbol's candles for one interval, sorted by time, no duplicates.
#[derive(Debug, Clone, Default)]
pub struct CandleSet {
    pub interval: String,
    pub interval_ms: i64,
    /// Sorted by symbol name.
    pub symbols: Vec<String>,
    pub bars: Vec<Vec<Candle>>,
    pub fingerprints: Vec<DbFingerprint>,
    pub duplicates_dropped: u64,
}

fn num(row: &rusqlite::Row, i: usize, what: &str, path: &Path, sym: &str, t: i64) -> Result<f64, BtError> {
    use rusqlite::types::ValueRef;
    match row.get_ref(i) {
        Ok(ValueRef::Real(x)) => Ok(x),
        Ok(ValueRef::Integer(x)) => Ok(x as f64),
        Ok(ValueRef::Null) => {
            Err(BtError::new(format!("{}: corrupt row {sym} t={t}: column {what} is NULL", path.display())))
        }
        Ok(other) => Err(BtError::new(format!(
            "{}: corrupt row {sym} t={t}: column {what} is not a number ({:?})",
            path.display(),
            other.data_type()
        ))),
        Err(e) => Err(BtError::new(format!("{}: corrupt row {sym} t={t}: {what}: {e}", path.display()))),
    }
}

/// What is wrong with a bar, naming the field and its value: prices finite and > 0, volume finite
/// and >= 0, `l <= o, c <= h`. Checked on load so that a bad row is named here, not refused later by
/// the kernel with a message about something else.
fn check_candle(c: &Candle) -> Result<(), String> {
    for (name, x) in [("o", c.o), ("h", c.h), ("l", c.l), ("c", c.c)] {
        if !x.is_finite() {
            return Err(format!("field {name} = {x} is not finite"));
        }
        if x <= 0.0 {
            return Err(format!("field {name} = {x} (prices must be > 0)"));
        }
    }
    if !c.v.is_finite() {
        return Err(format!("field v = {} is not finite", c.v));
    }
    if c.v < 0.0 {
        return Err(format!("field v = {} (volume must be >= 0)", c.v));
    }
    if c.h < c.l {
        return Err(format!("field h = {} is below l = {} (OHLC inconsistent)", c.h, c.l));
    }
    for (name, x) in [("o", c.o), ("c", c.c)] {
        if x < c.l || x > c.h {
            return Err(format!(
                "field {name} = {x} is outside [l, h] = [{}, {}] (OHLC inconsistent)",
                c.l, c.h
            ));
        }
    }
    Ok(())
}

impl CandleSet {
    /// Load `interval` candles from every DB file; later files win on duplicate `(symbol, t)`.
    pub fn load(paths: &[PathBuf], interval: &str, symbols: Option<&[String]>) -> Result<Self, BtError> {
        let interval_ms = aiq_config::interval_ms(interval)
            .ok_or_else(|| BtError::new(format!("unknown interval {interval:?}")))?;
        // Rows in file order per symbol (SELECT_BARS has no ORDER BY); sorted (stable, so later
        // files win) at the end.
        let mut by_sym: BTreeMap<String, Vec<Candle>> = BTreeMap::new();
        let mut cur = String::new();
        let mut fingerprints = Vec::new();
        let mut rows_total = 0u64;
        for path in paths {
            let conn = open_ro(path)?;
            let mut stmt = conn
                .prepare(aiq_candles::SELECT_BARS)
                .map_err(|e| BtError::new(format!("{}: not a candles DB: {e}", path.display())))?;
            let mut rows = stmt
                .query([interval])
                .map_err(|e| BtError::new(format!("{}: query failed: {e}", path.display())))?;
            let mut span = RowSpan::default();
            while let Some(row) =
                rows.next().map_err(|e| BtError::new(format!("{}: read failed: {e}", path.display())))?
            {
                let sym: &str = row
                    .get_ref(0)
                    .and_then(|v| v.as_str().map_err(Into::into))
                    .map_err(|e| BtError::new(format!("{}: corrupt row: symbol: {e}", path.display())))?;
                let t: i64 = row
                    .get(1)
                    .map_err(|e| BtError::new(format!("{}: corrupt row {sym}: t: {e}", path.display())))?;
                if let Some(want) = symbols {
                    if !want.iter().any(|s| s == sym) {
                        continue;
                    }
                }
                let c = Candle {
                    t,
                    o: num(row, 2, "o", path, sym, t)?,
                    h: num(row, 3, "h", path, sym, t)?,
                    l: num(row, 4, "l", path, sym, t)?,
                    c: num(row, 5, "c", path, sym, t)?,
                    v: num(row, 6, "v", path, sym, t)?,
                };
                if let Err(why) = check_candle(&c) {
                    return Err(BtError::new(format!(
                        "{}: corrupt row in table candles: {sym} {interval} t={t} ({}): {why}",
                        path.display(),
                        iso(t)
                    )));
                }
                if t % interval_ms != 0 {
                    return Err(BtError::new(format!(
                        "{}: corrupt row {sym} t={t}: open time is not a multiple of {interval}",
                        path.display()
                    )));
                }
                span.see(t);
                if cur != sym {
                    cur.clear();
                    cur.push_str(sym);
                }
                match by_sym.get_mut(&cur) {
                    Some(v) => v.push(c),
                    None => {
                        by_sym.insert(cur.clone(), vec![c]);
                    }
                }
            }
            rows_total += span.rows;
            fingerprints.push(span.fingerprint(path));
        }
        if let Some(want) = symbols {
            let missing: Vec<&String> = want.iter().filter(|s| !by_sym.contains_key(*s)).collect();
            if !missing.is_empty() {
                let available = Self::list_symbols(paths, interval).unwrap_or_default();
                return Err(BtError::new(format!(
                    "unknown symbol(s) {} (no {interval} candles in {}); available: {}",
                    missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
                    available.join(", ")
                )));
            }
        }
        if by_sym.is_empty() {
            return Err(BtError::new(format!(
                "no {interval} candles in {}",
                paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            )));
        }
        for v in by_sym.values_mut() {
            v.sort_by_key(|c| c.t);
            // Keep the last of equal times (the later file's row).
            let mut out: Vec<Candle> = Vec::with_capacity(v.len());
            for c in v.drain(..) {
                match out.last_mut() {
                    Some(l) if l.t == c.t => *l = c,
                    _ => out.push(c),
                }
            }
            *v = out;
        }
        let kept: u64 = by_sym.values().map(|m| m.len() as u64).sum();
        let mut set = CandleSet {
            interval: interval.to_string(),
            interval_ms,
            duplicates_dropped: rows_total.saturating_sub(kept),
            fingerprints,
            ..Default::default()
        };
        for (sym, m) in by_sym {
            set.symbols.push(sym);
            set.bars.push(m);
        }
        Ok(set)
    }

    fn list_symbols(paths: &[PathBuf], interval: &str) -> Result<Vec<String>, BtError> {
        let mut out = std::collections::BTreeSet::new();
        for p in paths {
            let conn = open_ro(p)?;
            let mut stmt =
                conn.prepare(aiq_candles::SELECT_SYMBOLS).map_err(|e| BtError::new(e.to_string()))?;
            let it = stmt
                .query_map([interval], |r| r.get::<_, String>(0))
                .map_err(|e| BtError::new(e.to_string()))?;
            for s in it.flatten() {
                out.insert(s);
            }
        }
        Ok(out.into_iter().collect())
    }

    pub fn first_t(&self) -> Option<i64> {
        self.bars.iter().filter_map(|b| b.first().map(|c| c.t)).min()
    }
    pub fn last_t(&self) -> Option<i64> {
        self.bars.iter().filter_map(|b| b.last().map(|c| c.t)).max()
    }

    /// Keep bars with `start <= t <= end`; drop symbols left empty.
    pub fn trim(&mut self, start: i64, end: i64) {
        let mut symbols = Vec::new();
        let mut bars = Vec::new();
        for (s, b) in self.symbols.drain(..).zip(self.bars.drain(..)) {
            let lo = b.partition_point(|c| c.t < start);
            let hi = b.partition_point(|c| c.t <= end);
            if hi > lo {
                symbols.push(s);
                bars.push(b[lo..hi].to_vec());
            }
        }
        self.symbols = symbols;
        self.bars = bars;
    }

    pub fn bar_count(&self) -> usize {
        self.bars.iter().map(Vec::len).sum()
    }
}

/// Funding rates per symbol, sorted by time.
#[derive(Debug, Clone, Default)]
pub struct FundingSet {
    pub by_symbol: BTreeMap<String, Vec<(i64, f64)>>,
    pub fingerprint: Option<DbFingerprint>,
}

impl FundingSet {
    pub fn load(path: &Path, symbols: &[String]) -> Result<Self, BtError> {
        let conn = open_ro(path)?;
        let mut stmt = conn
            .prepare("SELECT symbol, time, funding_rate FROM funding_rates ORDER BY symbol, time")
            .map_err(|e| BtError::new(format!("{}: not a funding DB: {e}", path.display())))?;
        let mut rows =
            stmt.query([]).map_err(|e| BtError::new(format!("{}: query failed: {e}", path.display())))?;
        let mut by_symbol: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
        let mut span = RowSpan::default();
        while let Some(row) =
            rows.next().map_err(|e| BtError::new(format!("{}: read failed: {e}", path.display())))?
        {
            let sym: String = row
                .get(0)
                .map_err(|e| BtError::new(format!("{}: corrupt funding row: {e}", path.display())))?;
            if !symbols.iter().any(|s| s == &sym) {
                continue;
            }
            let mut t: i64 = row.get(1).map_err(|e| {
                BtError::new(format!("{}: corrupt funding row {sym}: time: {e}", path.display()))
            })?;
            if t.abs() < 100_000_000_000 {
                t *= 1000; // seconds
            }
            let rate = num(row, 2, "funding_rate", path, &sym, t)?;
            if !rate.is_finite() {
                return Err(BtError::new(format!(
                    "{}: corrupt funding row {sym} t={t}: non-finite rate",
                    path.display()
                )));
            }
            span.see(t);
            by_symbol.entry(sym).or_default().push((t, rate));
        }
        for v in by_symbol.values_mut() {
            v.sort_by_key(|x| x.0);
            v.dedup_by_key(|x| x.0);
        }
        Ok(Self { by_symbol, fingerprint: Some(span.fingerprint(path)) })
    }

    pub fn range(&self) -> Option<(i64, i64)> {
        let lo = self.by_symbol.values().filter_map(|v| v.first().map(|x| x.0)).min()?;
        let hi = self.by_symbol.values().filter_map(|v| v.last().map(|x| x.0)).max()?;
        Some((lo, hi))
    }
}

/// Every event of a replay in order, built once and shared by all sweep combos.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    pub symbols: Vec<String>,
    pub interval_ms: i64,
    /// Distinct bar open times, ascending.
    pub times: Vec<i64>,
    /// `steps[k]` = `(symbol index, candle)` for every symbol with a bar at `times[k]`, by symbol.
    pub step_start: Vec<u32>,
    pub step_items: Vec<(u32, Candle)>,
    /// Funding events due at step `k`: `fund_start[k]..fund_start[k+1]` in `fund_items`
    /// `(symbol index, time, rate)`.
    pub fund_start: Vec<u32>,
    pub fund_items: Vec<(u32, i64, f64)>,
    /// Sub-bar ticks (`--entry-interval` / `--exit-interval`), empty without them.
    pub sub: SubTicks,
}

/// One symbol's sub-bar prices at a tick: the close of its entry and/or exit sub-bar (NaN when
/// that symbol has no such sub-bar at the tick).
#[derive(Debug, Clone, Copy)]
pub struct SubItem {
    pub symbol: u32,
    pub entry_px: f64,
    pub exit_px: f64,
}

/// Sub-bar ticks by close time: the union of every symbol's entry and exit sub-bar close times,
/// ascending. Tick `k` holds `items[start[k]..start[k+1]]`, by symbol.
#[derive(Debug, Clone, Default)]
pub struct SubTicks {
    pub times: Vec<i64>,
    pub start: Vec<u32>,
    pub items: Vec<SubItem>,
}

impl SubTicks {
    /// Merge entry and exit sub-bars (symbol indices of the main timeline) by close time.
    pub fn build(symbols: &[String], entry: Option<&CandleSet>, exit: Option<&CandleSet>) -> Self {
        let mut by_key: BTreeMap<(i64, u32), (f64, f64)> = BTreeMap::new();
        for (set, is_entry) in [(entry, true), (exit, false)] {
            let Some(set) = set else { continue };
            for (name, bars) in set.symbols.iter().zip(&set.bars) {
                let Some(si) = symbols.iter().position(|s| s == name) else { continue };
                for c in bars {
                    let e = by_key.entry((c.t + set.interval_ms, si as u32)).or_insert((f64::NAN, f64::NAN));
                    if is_entry {
                        e.0 = c.c;
                    } else {
                        e.1 = c.c;
                    }
                }
            }
        }
        let mut out = SubTicks::default();
        for ((t, s), (entry_px, exit_px)) in by_key {
            if out.times.last() != Some(&t) {
                out.times.push(t);
                out.start.push(out.items.len() as u32);
            }
            out.items.push(SubItem { symbol: s, entry_px, exit_px });
        }
        out.start.push(out.items.len() as u32);
        out
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

impl Timeline {
    /// Merge symbols by time. Funding at time `F` is due at the first step whose bar closes at or
    /// after `F` (`t + interval >= F`), after that step's candles and before its `evaluate`.
    pub fn build(candles: &CandleSet, funding: Option<&FundingSet>) -> Self {
        let mut items: Vec<(i64, u32, Candle)> = Vec::with_capacity(candles.bar_count());
        for (i, bars) in candles.bars.iter().enumerate() {
            items.extend(bars.iter().map(|c| (c.t, i as u32, *c)));
        }
        items.sort_by_key(|x| (x.0, x.1));
        let mut tl = Timeline {
            symbols: candles.symbols.clone(),
            interval_ms: candles.interval_ms,
            ..Default::default()
        };
        for (t, s, c) in items {
            if tl.times.last() != Some(&t) {
                tl.times.push(t);
                tl.step_start.push(tl.step_items.len() as u32);
            }
            tl.step_items.push((s, c));
        }
        tl.step_start.push(tl.step_items.len() as u32);

        let mut events: Vec<(i64, u32, f64)> = Vec::new();
        if let Some(f) = funding {
            for (i, sym) in candles.symbols.iter().enumerate() {
                if let Some(v) = f.by_symbol.get(sym) {
                    events.extend(v.iter().map(|&(t, r)| (t, i as u32, r)));
                }
            }
        }
        events.sort_by_key(|x| (x.0, x.1));
        let first_close = tl.times.first().map_or(i64::MAX, |t| t + tl.interval_ms);
        let mut j = events.partition_point(|e| e.0 <= first_close - tl.interval_ms);
        for &t in &tl.times {
            tl.fund_start.push(tl.fund_items.len() as u32);
            let close = t + tl.interval_ms;
            while j < events.len() && events[j].0 <= close {
                let (ft, s, r) = events[j];
                tl.fund_items.push((s, ft, r));
                j += 1;
            }
        }
        tl.fund_start.push(tl.fund_items.len() as u32);
        tl
    }

    pub fn bars(&self) -> usize {
        self.step_items.len()
    }
}

/// Parse `--start/--end`: epoch seconds or milliseconds, or ISO `YYYY-MM-DD[THH:MM[:SS]][Z]`
/// (UTC).
pub fn parse_time(s: &str) -> Result<i64, BtError> {
    let s = s.trim();
    let err =
        || BtError::new(format!("cannot parse time {s:?} (use epoch s/ms or YYYY-MM-DD[THH:MM[:SS]][Z])"));
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
        let n: i64 = s.parse().map_err(|_| err())?;
        return Ok(if n < 100_000_000_000 { n * 1000 } else { n });
    }
    let s2 = s.trim_end_matches('Z').trim_end_matches("+00:00");
    let (date, time) = match s2.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s2, None),
    };
    let dp: Vec<&str> = date.split('-').collect();
    if dp.len() != 3 {
        return Err(err());
    }
    let y: i64 = dp[0].parse().map_err(|_| err())?;
    let m: i64 = dp[1].parse().map_err(|_| err())?;
    let d: i64 = dp[2].parse().map_err(|_| err())?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(err());
    }
    let (mut hh, mut mm, mut ss) = (0i64, 0i64, 0i64);
    if let Some(t) = time {
        let tp: Vec<&str> = t.split(':').collect();
        if tp.len() < 2 || tp.len() > 3 {
            return Err(err());
        }
        hh = tp[0].parse().map_err(|_| err())?;
        mm = tp[1].parse().map_err(|_| err())?;
        if tp.len() == 3 {
            ss = tp[2].split('.').next().unwrap_or("0").parse().map_err(|_| err())?;
        }
        if hh > 23 || mm > 59 || ss > 60 {
            return Err(err());
        }
    }
    Ok((days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss) * 1000)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a millisecond timestamp (one formatter with the sidecar's).
pub use aiq_candles::iso_seconds as iso;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("2025-03-14").unwrap(), 1_741_910_400_000);
        assert_eq!(parse_time("2025-03-14T01:02:03Z").unwrap(), 1_741_914_123_000);
        assert_eq!(parse_time("1741910400").unwrap(), 1_741_910_400_000);
        assert_eq!(parse_time("1741910400000").unwrap(), 1_741_910_400_000);
        assert!(parse_time("yesterday").is_err());
        assert_eq!(iso(1_741_914_123_000), "2025-03-14T01:02:03Z");
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn candle_checks_name_field_and_value() {
        let ok = Candle { t: 0, o: 10.0, h: 11.0, l: 9.0, c: 10.5, v: 0.0 };
        assert!(check_candle(&ok).is_ok());
        let bad = |f: fn(&mut Candle)| {
            let mut c = ok;
            f(&mut c);
            check_candle(&c).unwrap_err()
        };
        assert_eq!(bad(|c| c.o = -5.0), "field o = -5 (prices must be > 0)");
        assert_eq!(bad(|c| c.l = 0.0), "field l = 0 (prices must be > 0)");
        assert_eq!(bad(|c| c.v = -1.0), "field v = -1 (volume must be >= 0)");
        assert_eq!(bad(|c| c.h = f64::NAN), "field h = NaN is not finite");
        assert_eq!(bad(|c| c.h = 8.0), "field h = 8 is below l = 9 (OHLC inconsistent)");
        assert_eq!(bad(|c| c.c = 12.0), "field c = 12 is outside [l, h] = [9, 11] (OHLC inconsistent)");
    }
}
