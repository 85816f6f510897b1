//! Candle persistence: `<candles_dir>/candles_{interval}.db` (WAL), upserts, retention, and the
//! planning of REST backfills (bootstrap and gap fills).

use crate::frame::Candle;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use aiq_candles::{UPSERT, UPSERT_MONOTONE};

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// UTC time as ISO 8601 with milliseconds and `Z` (the data layer's `updated_at` form).
pub use aiq_candles::iso_millis as iso_utc;

/// One write: the candle and whether it is authoritative (a closed bar read over REST).
#[derive(Debug, Clone)]
pub struct Write {
    pub candle: Candle,
    pub authoritative: bool,
}

pub struct CandleDb {
    dir: PathBuf,
    conns: HashMap<String, Connection>,
}

impl CandleDb {
    pub fn new(dir: &Path) -> Self {
        CandleDb { dir: dir.to_path_buf(), conns: HashMap::new() }
    }

    pub fn conn(&mut self, interval: &str) -> rusqlite::Result<&mut Connection> {
        if !self.conns.contains_key(interval) {
            let c = aiq_candles::open_rw(&self.dir, interval)?;
            self.conns.insert(interval.to_string(), c);
        }
        Ok(self.conns.get_mut(interval).expect("inserted above"))
    }

    /// Upsert `rows` of one interval in one transaction; returns how many rows changed.
    pub fn upsert(&mut self, interval: &str, rows: &[Write]) -> rusqlite::Result<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        let stamp = iso_utc(now_ms());
        let c = self.conn(interval)?;
        let tx = c.transaction()?;
        let mut changed = 0;
        {
            let mut hard = tx.prepare_cached(UPSERT)?;
            let mut soft = tx.prepare_cached(UPSERT_MONOTONE)?;
            for w in rows {
                let k = &w.candle;
                let stmt = if w.authoritative { &mut hard } else { &mut soft };
                changed += stmt.execute(params![
                    k.symbol, interval, k.t, k.t_close, k.o, k.h, k.l, k.c, k.v, k.n, stamp
                ])?;
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// (t, t_close) of the newest bar.
    pub fn latest(&mut self, symbol: &str, interval: &str) -> rusqlite::Result<Option<(i64, i64)>> {
        let c = self.conn(interval)?;
        c.query_row(aiq_candles::SELECT_LATEST, params![symbol, interval], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
    }

    /// Open times at or after `from_t`, ascending.
    pub fn times_since(&mut self, symbol: &str, interval: &str, from_t: i64) -> rusqlite::Result<Vec<i64>> {
        let c = self.conn(interval)?;
        let mut st = c.prepare_cached(aiq_candles::SELECT_TIMES_SINCE)?;
        let rows = st.query_map(params![symbol, interval, from_t], |r| r.get::<_, i64>(0))?;
        rows.collect()
    }

    /// True when the data layer keeps a `candle_meta` row for this pair (an imported history that
    /// retention must not touch).
    pub fn has_meta(&mut self, symbol: &str, interval: &str) -> rusqlite::Result<bool> {
        let c = self.conn(interval)?;
        let exists: bool = c.query_row(
            "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'candle_meta')",
            [],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(false);
        }
        c.query_row(
            "SELECT EXISTS(SELECT 1 FROM candle_meta WHERE symbol = ?1 AND interval = ?2)",
            params![symbol, interval],
            |r| r.get(0),
        )
    }

    pub fn prune(&mut self, symbol: &str, interval: &str, before_t: i64) -> rusqlite::Result<usize> {
        let c = self.conn(interval)?;
        c.execute(aiq_candles::DELETE_BEFORE, params![symbol, interval, before_t])
    }

    /// Checkpoint and close every connection.
    pub fn close(&mut self) {
        for (_, c) in self.conns.drain() {
            let _ = c.execute_batch("PRAGMA wal_checkpoint(PASSIVE);");
            let _ = c.close();
        }
    }
}

/// Where a backfill must start, given the open times already stored from `window_start` on
/// (ascending): the first missing bar between stored bars, else the newest stored bar (it may
/// be partial), else `window_start` (an empty DB: bootstrap).
pub fn plan_from(existing: &[i64], iv: i64, window_start: i64) -> i64 {
    let start = window_start.div_euclid(iv) * iv;
    let Some(&first) = existing.first() else { return start };
    let mut expect = first;
    for &t in existing {
        if t > expect {
            return expect;
        }
        expect = t + iv;
    }
    *existing.last().unwrap_or(&first)
}

/// `candleSnapshot` request windows covering `[from, to]`, `chunk` bars each, bar-aligned.
pub fn chunks(from: i64, to: i64, iv: i64, chunk: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let span = iv * chunk.max(1);
    let mut s = from.div_euclid(iv) * iv;
    while s <= to && out.len() < 10_000 {
        out.push((s, s + span - 1));
        s += span;
    }
    out
}

/// What a streamed candle means for the bar sequence of its (symbol, interval).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// First bar seen on this connection.
    First,
    /// An update of the live bar.
    Same,
    /// The next bar opened; `prev` closed and should be confirmed over REST.
    Next { prev: i64 },
    /// Bars between `prev` and this one were never seen: fill from `prev`.
    Gap { prev: i64 },
    /// A late frame for an older bar.
    Old,
}

pub fn step(live_t: Option<i64>, t: i64, iv: i64) -> Step {
    match live_t {
        None => Step::First,
        Some(p) if t == p => Step::Same,
        Some(p) if t == p + iv => Step::Next { prev: p },
        Some(p) if t > p => Step::Gap { prev: p },
        Some(_) => Step::Old,
    }
}

/// First open time to keep under the retention horizon, or `None` when `interval` is not pruned.
pub fn prune_before(now: i64, retention_days: Option<i64>, iv: i64) -> Option<i64> {
    retention_days.map(|d| (now - d * 86_400_000).div_euclid(iv) * iv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candle(sym: &str, t: i64, c: f64, v: f64, n: i64) -> Candle {
        Candle {
            symbol: sym.into(),
            interval: "1m".into(),
            t,
            t_close: t + 59_999,
            o: 1.0,
            h: c.max(1.0),
            l: c.min(1.0),
            c,
            v,
            n,
        }
    }

    fn w(c: Candle, authoritative: bool) -> Write {
        Write { candle: c, authoritative }
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_utc(1_684_702_799_999), "2023-05-21T20:59:59.999Z");
        assert_eq!(iso_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn schema_and_upserts() {
        let dir = std::env::temp_dir().join(format!("aiq-sidecar-test-{}-{}", std::process::id(), now_ms()));
        let mut db = CandleDb::new(&dir);
        assert_eq!(db.upsert("1m", &[w(candle("BTC", 60_000, 2.0, 5.0, 3), false)]).unwrap(), 1);
        // Older state of the same bar (less volume): ignored.
        assert_eq!(db.upsert("1m", &[w(candle("BTC", 60_000, 1.5, 4.0, 2), false)]).unwrap(), 0);
        // Newer state: applied.
        assert_eq!(db.upsert("1m", &[w(candle("BTC", 60_000, 2.5, 6.0, 4), false)]).unwrap(), 1);
        // Authoritative REST row always applies.
        assert_eq!(db.upsert("1m", &[w(candle("BTC", 60_000, 2.4, 5.5, 4), true)]).unwrap(), 1);
        db.upsert(
            "1m",
            &[w(candle("BTC", 120_000, 3.0, 1.0, 1), false), w(candle("ETH", 0, 3.0, 1.0, 1), false)],
        )
        .unwrap();
        assert_eq!(db.latest("BTC", "1m").unwrap(), Some((120_000, 179_999)));
        assert_eq!(db.latest("SOL", "1m").unwrap(), None);
        assert_eq!(db.times_since("BTC", "1m", 0).unwrap(), vec![60_000, 120_000]);
        let c = db.conn("1m").unwrap();
        let (cl, v, upd): (f64, f64, String) = c
            .query_row("SELECT c, v, updated_at FROM candles WHERE symbol='BTC' AND t=60000", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!((cl, v), (2.4, 5.5));
        assert!(upd.ends_with('Z'));
        let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        // Another writer's tables next to ours are left alone; candle_meta marks imported history.
        c.execute_batch(
            "CREATE TABLE IF NOT EXISTS candle_meta (symbol TEXT NOT NULL, interval TEXT NOT NULL, first_t INTEGER,
             last_t INTEGER, rows INTEGER, source TEXT, updated_at TEXT, PRIMARY KEY (symbol, interval));
             INSERT INTO candle_meta (symbol, interval) VALUES ('ETH', '1m');",
        )
        .unwrap();
        assert!(db.has_meta("ETH", "1m").unwrap());
        assert!(!db.has_meta("BTC", "1m").unwrap());
        assert_eq!(db.prune("BTC", "1m", 100_000).unwrap(), 1);
        assert_eq!(db.times_since("BTC", "1m", 0).unwrap(), vec![120_000]);
        db.close();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn plan_finds_holes() {
        let iv = 60_000;
        assert_eq!(plan_from(&[], iv, 125_000), 120_000);
        assert_eq!(plan_from(&[0, 60_000, 120_000], iv, 0), 120_000);
        assert_eq!(plan_from(&[0, 60_000, 180_000, 240_000], iv, 0), 120_000);
        assert_eq!(plan_from(&[300_000], iv, 0), 300_000);
    }

    #[test]
    fn chunking() {
        let iv = 60_000;
        assert_eq!(chunks(30_000, 60_000, iv, 2), vec![(0, 119_999)]);
        let c = chunks(0, 10 * iv, iv, 4);
        assert_eq!(c, vec![(0, 4 * iv - 1), (4 * iv, 8 * iv - 1), (8 * iv, 12 * iv - 1)]);
        assert!(chunks(3 * iv, iv, iv, 4).is_empty());
    }

    #[test]
    fn steps() {
        let iv = 60;
        assert_eq!(step(None, 60, iv), Step::First);
        assert_eq!(step(Some(60), 60, iv), Step::Same);
        assert_eq!(step(Some(60), 120, iv), Step::Next { prev: 60 });
        assert_eq!(step(Some(60), 240, iv), Step::Gap { prev: 60 });
        assert_eq!(step(Some(60), 0, iv), Step::Old);
    }

    #[test]
    fn retention() {
        let day = 86_400_000;
        assert_eq!(prune_before(10 * day + 30_000, Some(1), 60_000), Some(9 * day));
        assert_eq!(prune_before(10 * day, None, 60_000), None);
    }
}
