//! The candle store, once for Rust: `<dir>/candles_{interval}.db`, the `candles` table and every
//! SQL statement on it. The sidecar writes through [`open_rw`] and the upserts; the backtester reads
//! through [`open_ro`] and the select statements. The table itself is `candles.sql`, which Python
//! (`exchange/candle_db.py`) reads too; the ISO time stamps of `updated_at` and the logs are here.

mod time;

pub use time::{iso_millis, iso_seconds};

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The shared table: `candles.sql`, the file `exchange/candle_db.py` creates it from too.
pub const CANDLES_SQL: &str = include_str!("../candles.sql");

/// Insert or overwrite one bar: `?1..?11` = symbol, interval, t, t_close, o, h, l, c, v, n, updated_at.
pub const UPSERT: &str = "INSERT INTO candles (symbol, interval, t, t_close, o, h, l, c, v, n, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
    ON CONFLICT (symbol, interval, t) DO UPDATE SET
      t_close = excluded.t_close, o = excluded.o, h = excluded.h, l = excluded.l, c = excluded.c,
      v = excluded.v, n = excluded.n, updated_at = excluded.updated_at";

/// [`UPSERT`] that never goes backwards. A bar's volume and trade count only grow while it is
/// open, so a write that carries less is an older state of the bar (a late or replayed frame) and
/// must not overwrite a newer one.
pub const UPSERT_MONOTONE: &str =
    "INSERT INTO candles (symbol, interval, t, t_close, o, h, l, c, v, n, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
    ON CONFLICT (symbol, interval, t) DO UPDATE SET
      t_close = excluded.t_close, o = excluded.o, h = excluded.h, l = excluded.l, c = excluded.c,
      v = excluded.v, n = excluded.n, updated_at = excluded.updated_at
    WHERE candles.v IS NULL OR excluded.v > candles.v
       OR (excluded.v = candles.v AND COALESCE(excluded.n, 0) >= COALESCE(candles.n, 0))";

/// `(symbol, t, o, h, l, c, v)` of every bar of interval `?1`, in file order (no ORDER BY: the
/// sort in SQLite spilled to a temporary file and dominated the backtester's load time).
pub const SELECT_BARS: &str = "SELECT symbol, t, o, h, l, c, v FROM candles WHERE interval = ?1";

/// The symbols with bars of interval `?1`.
pub const SELECT_SYMBOLS: &str = "SELECT DISTINCT symbol FROM candles WHERE interval = ?1";

/// `(t, t_close)` of the newest bar of symbol `?1`, interval `?2`.
pub const SELECT_LATEST: &str =
    "SELECT t, t_close FROM candles WHERE symbol = ?1 AND interval = ?2 ORDER BY t DESC LIMIT 1";

/// Open times of symbol `?1`, interval `?2` at or after `?3`, ascending.
pub const SELECT_TIMES_SINCE: &str =
    "SELECT t FROM candles WHERE symbol = ?1 AND interval = ?2 AND t >= ?3 ORDER BY t";

/// Delete the bars of symbol `?1`, interval `?2` that open before `?3`.
pub const DELETE_BEFORE: &str = "DELETE FROM candles WHERE symbol = ?1 AND interval = ?2 AND t < ?3";

/// `candles_{interval}`: the file stem of an interval's DB (partition files add `_...` or `-...`).
pub fn db_stem(interval: &str) -> String {
    format!("candles_{interval}")
}

/// `<dir>/candles_{interval}.db`.
pub fn db_path(dir: &Path, interval: &str) -> PathBuf {
    dir.join(format!("{}.db", db_stem(interval)))
}

/// Open (creating the directory, file and table) an interval's DB for writing: WAL, NORMAL sync,
/// 30 s busy timeout.
pub fn open_rw(dir: &Path, interval: &str) -> rusqlite::Result<Connection> {
    let _ = std::fs::create_dir_all(dir);
    let c = Connection::open(db_path(dir, interval))?;
    c.busy_timeout(Duration::from_secs(30))?;
    c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    c.execute_batch("PRAGMA synchronous=NORMAL;")?;
    c.execute_batch(CANDLES_SQL)?;
    Ok(c)
}

/// Open an existing DB file read-only (never creates it, never writes).
pub fn open_ro(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_only() {
        let dir = std::env::temp_dir().join(format!("aiq-candles-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let c = open_rw(&dir, "5m").unwrap();
        for (t, v) in [(0, 1.0), (300_000, 2.0)] {
            c.execute(UPSERT, rusqlite::params!["BTC", "5m", t, t + 299_999, 1.0, 2.0, 0.5, 1.5, v, 3, "x"])
                .unwrap();
        }
        // A lower volume is an older state of the bar: the monotone upsert leaves it alone.
        let n = c
            .execute(
                UPSERT_MONOTONE,
                rusqlite::params!["BTC", "5m", 0, 299_999, 9.0, 9.0, 9.0, 9.0, 0.5, 1, "y"],
            )
            .unwrap();
        assert_eq!(n, 0);
        drop(c);
        let path = db_path(&dir, "5m");
        assert_eq!(path.file_name().unwrap(), "candles_5m.db");
        let ro = open_ro(&path).unwrap();
        let latest: (i64, i64) =
            ro.query_row(SELECT_LATEST, ["BTC", "5m"], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!(latest, (300_000, 599_999));
        let syms: Vec<String> =
            ro.prepare(SELECT_SYMBOLS).unwrap().query_map(["5m"], |r| r.get(0)).unwrap().flatten().collect();
        assert_eq!(syms, ["BTC"]);
        assert!(ro.execute(DELETE_BEFORE, rusqlite::params!["BTC", "5m", i64::MAX]).is_err(), "read-only");
        assert!(open_ro(&dir.join("candles_1h.db")).is_err());
        assert!(!dir.join("candles_1h.db").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
