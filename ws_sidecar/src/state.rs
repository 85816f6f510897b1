//! State shared by the WebSocket reader, the backfill worker, the flusher and the socket server.

use crate::candles::{self, CandleDb, Step};
use crate::config::{interval_ms, Config};
use crate::frame::{fill_key, Candle, Frame};
use crate::queues::{Bounded, Dedupe};
use crate::subs::{self, Sub};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{watch, Notify};

/// `dir` resolved (symlinks too) when it exists, else joined to the working directory.
pub fn absolute_dir(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).or_else(|_| std::path::absolute(dir)).unwrap_or_else(|_| dir.to_path_buf())
}

pub fn wall_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// Lock a mutex, recovering the data if a panicking thread poisoned it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Clone)]
pub struct BboEntry {
    pub bid: Option<(f64, f64)>,
    pub ask: Option<(f64, f64)>,
    pub time: i64,
    pub at: Instant,
}

#[derive(Default)]
pub struct Market {
    pub mids: HashMap<String, (f64, Instant)>,
    pub mids_seq: u64,
    pub mids_at: Option<Instant>,
    pub mids_recv_ns: u64,
    pub bbo: HashMap<String, BboEntry>,
    pub bbo_seq: u64,
    pub bbo_recv_ns: u64,
    pub bbo_sampled: HashMap<String, Instant>,
}

pub struct UserState {
    pub fills: Bounded<Value>,
    pub order_updates: Bounded<Value>,
    pub fundings: Bounded<Value>,
    pub ledger: Bounded<Value>,
    pub fill_seen: Dedupe<(String, i64)>,
    pub funding_seen: Dedupe<(i64, String)>,
    pub ledger_seen: Dedupe<(i64, String)>,
}

/// Append the user events not seen before (an event without a key is always new).
fn push_unseen<K: std::hash::Hash + Eq + Clone>(
    seen: &mut Dedupe<K>,
    out: &mut Bounded<Value>,
    events: Vec<Value>,
    key: impl Fn(&Value) -> Option<K>,
) {
    for e in events {
        let fresh = match key(&e) {
            Some(k) => seen.insert(k),
            None => true,
        };
        if fresh {
            out.push(e);
        }
    }
}

/// Dedupe key of a user funding or ledger event: its `time` and one identifying text field
/// (0 and "" where missing).
fn timed_key(event: &Value, field: &str) -> (i64, String) {
    (
        event.get("time").and_then(Value::as_i64).unwrap_or(0),
        event.get(field).and_then(Value::as_str).unwrap_or("").to_string(),
    )
}

#[derive(Debug, Clone, Default)]
pub struct KeyState {
    pub live_t: Option<i64>,
    pub need_from: Option<i64>,
    pub need_due: Option<Instant>,
    pub need_gap: bool,
    pub in_flight: bool,
    pub in_flight_gap: bool,
    pub planned: bool,
    pub bootstrapped: bool,
    pub failures: u32,
    pub last_ws_at: Option<Instant>,
    pub latest: Option<(i64, i64)>,
    pub candle_limit: i64,
}

impl KeyState {
    /// Ask for a REST read from open time `from`, due at `due`; `gap` marks a hole (not ready).
    pub fn need(&mut self, from: i64, due: Instant, gap: bool) {
        self.need_from = Some(self.need_from.map_or(from, |f| f.min(from)));
        self.need_due = Some(self.need_due.map_or(due, |d| d.min(due)));
        self.need_gap |= gap;
    }

    pub fn ready(&self) -> bool {
        self.planned
            && self.bootstrapped
            && !(self.need_from.is_some() && self.need_gap)
            && !(self.in_flight && self.in_flight_gap)
    }

    pub fn bump_latest(&mut self, t: i64, t_close: i64) {
        if self.latest.is_none_or(|(lt, _)| t >= lt) {
            self.latest = Some((t, t_close));
        }
    }
}

#[derive(Default)]
pub struct CandleState {
    pub keys: BTreeMap<(String, String), KeyState>,
    pub pending: HashMap<(String, String, i64), Candle>,
}

#[derive(Debug, Clone)]
pub struct Client {
    pub symbols: Vec<String>,
    pub interval: String,
    pub candle_limit: i64,
    pub last_seen: Instant,
}

#[derive(Default)]
pub struct ConnInfo {
    pub connected: bool,
    pub connected_since: Option<Instant>,
    pub connect_attempts: u64,
    pub connects: u64,
    pub disconnects: u64,
    pub stale_reconnects: u64,
    pub last_error: Option<String>,
    pub last_close: Option<String>,
    pub last_msg_at: Option<Instant>,
    pub last_data_at: Option<Instant>,
    pub last_sub_error: Option<String>,
    pub active_subs: usize,
    pub pending_subs: usize,
}

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        #[derive(Default)]
        pub struct Stats { $(pub $name: AtomicU64,)* }
        impl Stats {
            pub fn to_json(&self) -> serde_json::Map<String, Value> {
                let mut m = serde_json::Map::new();
                $(m.insert(stringify!($name).to_string(), Value::from(self.$name.load(Relaxed)));)*
                m
            }
        }
    };
}

counters!(
    frames,
    bytes,
    frames_all_mids,
    frames_bbo,
    frames_candle,
    frames_user,
    frames_other,
    frames_invalid,
    frames_non_json,
    acks,
    pongs,
    venue_errors,
    candle_updates,
    candle_rows_flushed,
    candle_flushes,
    db_errors,
    backfill_requests,
    backfill_errors,
    backfill_rows,
    backfill_rate_limited,
    gaps_detected,
    bars_reconciled,
    rows_pruned,
    bbo_snapshots_written,
    bbo_snapshot_drops,
    sock_connections,
    sock_requests,
    sock_bad_requests,
    sock_oversized,
    sock_write_timeouts,
    wait_mids_calls,
    subscribe_sent,
);

impl Shared {
    /// "Now" for backfill ends: the later of our wall clock and the venue's newest timestamp.
    pub fn now_ms(&self) -> i64 {
        candles::now_ms().max(self.venue_ms.load(Relaxed))
    }
}

pub struct Shared {
    pub cfg: Config,
    pub started: Instant,
    pub market: Mutex<Market>,
    pub seq_tx: watch::Sender<u64>,
    pub user_state: Mutex<UserState>,
    pub user: Mutex<Option<String>>,
    pub candles: Mutex<CandleState>,
    pub clients: Mutex<HashMap<String, Client>>,
    pub conn: Mutex<ConnInfo>,
    pub stats: Stats,
    pub subs_changed: Notify,
    pub backfill_wake: Notify,
    pub restart: Notify,
    pub shutdown: watch::Sender<bool>,
    pub db: Arc<Mutex<CandleDb>>,
    pub bbo_queue: Mutex<Bounded<(String, i64, f64, f64)>>,
    /// The newest venue timestamp seen in a frame (ms); the venue's clock may differ from ours.
    pub venue_ms: AtomicI64,
    /// The candle directory as an absolute path: clients compare it with the one they read.
    pub candles_dir_abs: PathBuf,
}

impl Shared {
    pub fn new(cfg: Config) -> Arc<Shared> {
        let cap = cfg.queue_cap;
        let db = CandleDb::new(&cfg.candles_dir);
        let sh = Arc::new(Shared {
            started: Instant::now(),
            market: Mutex::new(Market::default()),
            seq_tx: watch::channel(0).0,
            user_state: Mutex::new(UserState {
                fills: Bounded::new(cap),
                order_updates: Bounded::new(cap),
                fundings: Bounded::new(cap),
                ledger: Bounded::new(cap),
                fill_seen: Dedupe::new(50_000),
                funding_seen: Dedupe::new(20_000),
                ledger_seen: Dedupe::new(20_000),
            }),
            user: Mutex::new(cfg.user.clone()),
            candles: Mutex::new(CandleState::default()),
            clients: Mutex::new(HashMap::new()),
            conn: Mutex::new(ConnInfo::default()),
            stats: Stats::default(),
            subs_changed: Notify::new(),
            backfill_wake: Notify::new(),
            restart: Notify::new(),
            shutdown: watch::channel(false).0,
            db: Arc::new(Mutex::new(db)),
            bbo_queue: Mutex::new(Bounded::new(20_000)),
            venue_ms: AtomicI64::new(0),
            candles_dir_abs: absolute_dir(&cfg.candles_dir),
            cfg,
        });
        sh.sync_keys();
        sh
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Watched symbols and (symbol, interval) pairs: the configured ones plus every live client's.
    pub fn watched(&self) -> (BTreeSet<String>, BTreeMap<(String, String), i64>) {
        let mut syms: BTreeSet<String> = self.cfg.symbols.iter().cloned().collect();
        let mut pairs = BTreeMap::new();
        for s in &self.cfg.symbols {
            for i in &self.cfg.intervals {
                pairs.insert((s.clone(), i.clone()), 0);
            }
        }
        for c in lock(&self.clients).values() {
            for s in &c.symbols {
                syms.insert(s.clone());
                let e = pairs.entry((s.clone(), c.interval.clone())).or_insert(0);
                *e = (*e).max(c.candle_limit);
            }
        }
        (syms, pairs)
    }

    pub fn wanted_subs(&self) -> BTreeSet<Sub> {
        let (syms, pairs) = self.watched();
        let user = lock(&self.user).clone();
        subs::wanted(
            syms.iter().map(String::as_str),
            pairs.keys().map(|(s, i)| (s.as_str(), i.as_str())),
            user.as_deref(),
        )
    }

    /// Make sure every watched pair has a key state (new ones get planned by the backfill worker).
    pub fn sync_keys(&self) {
        let (_, pairs) = self.watched();
        let mut cs = lock(&self.candles);
        for ((s, i), limit) in pairs {
            let ks = cs.keys.entry((s, i)).or_default();
            ks.candle_limit = ks.candle_limit.max(limit);
        }
    }

    /// After a (re)connect: the WebSocket sends no history, so every watched pair is re-read from
    /// the last bar it knew.
    pub fn on_connected(&self) {
        let now = Instant::now();
        let mut cs = lock(&self.candles);
        for ks in cs.keys.values_mut() {
            let from = match (ks.live_t, ks.latest) {
                (Some(l), Some((p, _))) => Some(l.min(p)),
                (Some(l), None) => Some(l),
                (None, Some((p, _))) => Some(p),
                (None, None) => None,
            };
            ks.live_t = None;
            if let (Some(f), true) = (from, ks.planned) {
                ks.need(f, now, true);
            }
        }
        drop(cs);
        self.backfill_wake.notify_one();
    }

    fn on_candle(&self, c: Candle) {
        let Some(iv) = interval_ms(&c.interval) else { return };
        let now = Instant::now();
        let mut cs = lock(&self.candles);
        let key = (c.symbol.clone(), c.interval.clone());
        let Some(ks) = cs.keys.get_mut(&key) else { return };
        let mut wake = false;
        match candles::step(ks.live_t, c.t, iv) {
            Step::First => {
                // First bar on this connection: whatever we stored last may have been read while it
                // was still open, so it is re-read (and any bars in between are filled).
                ks.live_t = Some(c.t);
                if let Some((lt, _)) = ks.latest {
                    if lt < c.t {
                        ks.need(lt, now, true);
                        wake = true;
                    }
                }
            }
            Step::Same | Step::Old => {}
            Step::Next { prev } => {
                ks.live_t = Some(c.t);
                ks.need(prev, now + self.cfg.reconcile_delay, false);
                self.stats.bars_reconciled.fetch_add(1, Relaxed);
            }
            Step::Gap { prev } => {
                ks.live_t = Some(c.t);
                ks.need(prev, now, true);
                self.stats.gaps_detected.fetch_add(1, Relaxed);
                wake = true;
            }
        }
        ks.last_ws_at = Some(now);
        cs.pending.insert((c.symbol.clone(), c.interval.clone(), c.t), c);
        drop(cs);
        self.stats.candle_updates.fetch_add(1, Relaxed);
        if wake {
            self.backfill_wake.notify_one();
        }
    }

    /// Apply one decoded frame; returns true when it carried data (for stale-stream detection).
    pub fn apply(&self, frame: Frame, recv_ns: u64) -> bool {
        let st = &self.stats;
        let is_data = frame.is_data();
        let now = Instant::now();
        match frame {
            Frame::AllMids(mids) => {
                st.frames_all_mids.fetch_add(1, Relaxed);
                let mut m = lock(&self.market);
                for (k, p) in mids {
                    match m.mids.get_mut(&k) {
                        Some(e) => *e = (p, now),
                        None => {
                            m.mids.insert(k, (p, now));
                        }
                    }
                }
                m.mids_seq += 1;
                m.mids_at = Some(now);
                m.mids_recv_ns = recv_ns;
                drop(m);
                self.seq_tx.send_modify(|s| *s += 1);
            }
            Frame::Bbo { coin, time, bid, ask } => {
                st.frames_bbo.fetch_add(1, Relaxed);
                self.venue_ms.fetch_max(time, Relaxed);
                let mut m = lock(&self.market);
                let entry = BboEntry {
                    bid: bid.map(|l| (l.px, l.sz)),
                    ask: ask.map(|l| (l.px, l.sz)),
                    time,
                    at: now,
                };
                let sample = self.cfg.bbo_db.is_some()
                    && m.bbo_sampled.get(&coin).is_none_or(|t| now.duration_since(*t) >= self.cfg.bbo_sample);
                if sample {
                    if let (Some((b, _)), Some((a, _))) = (entry.bid, entry.ask) {
                        m.bbo_sampled.insert(coin.clone(), now);
                        let ts = if time > 0 { time } else { candles::now_ms() };
                        let mut q = lock(&self.bbo_queue);
                        let before = q.dropped;
                        q.push((coin.clone(), ts, b, a));
                        if q.dropped > before {
                            st.bbo_snapshot_drops.fetch_add(1, Relaxed);
                        }
                    }
                }
                m.bbo.insert(coin, entry);
                m.bbo_seq += 1;
                m.bbo_recv_ns = recv_ns;
                drop(m);
                self.seq_tx.send_modify(|s| *s += 1);
            }
            Frame::Candle(c) => {
                st.frames_candle.fetch_add(1, Relaxed);
                self.venue_ms.fetch_max(c.t, Relaxed);
                self.on_candle(c);
            }
            Frame::UserFills { fills, .. } => {
                st.frames_user.fetch_add(1, Relaxed);
                let u = &mut *lock(&self.user_state);
                push_unseen(&mut u.fill_seen, &mut u.fills, fills, fill_key);
            }
            Frame::OrderUpdates(v) => {
                st.frames_user.fetch_add(1, Relaxed);
                let mut u = lock(&self.user_state);
                for x in v {
                    u.order_updates.push(x);
                }
            }
            Frame::UserFundings { fundings, .. } => {
                st.frames_user.fetch_add(1, Relaxed);
                let u = &mut *lock(&self.user_state);
                push_unseen(&mut u.funding_seen, &mut u.fundings, fundings, |f| Some(timed_key(f, "coin")));
            }
            Frame::LedgerUpdates { updates, .. } => {
                st.frames_user.fetch_add(1, Relaxed);
                let u = &mut *lock(&self.user_state);
                push_unseen(&mut u.ledger_seen, &mut u.ledger, updates, |x| Some(timed_key(x, "hash")));
            }
            Frame::SubscriptionResponse { .. } => {
                st.acks.fetch_add(1, Relaxed);
            }
            Frame::Pong => {
                st.pongs.fetch_add(1, Relaxed);
            }
            Frame::Error(e) => {
                st.venue_errors.fetch_add(1, Relaxed);
                lock(&self.conn).last_sub_error = Some(e);
            }
            Frame::NonJson => {
                st.frames_non_json.fetch_add(1, Relaxed);
            }
            Frame::Other(_) => {
                st.frames_other.fetch_add(1, Relaxed);
            }
            Frame::Invalid(e) => {
                st.frames_invalid.fetch_add(1, Relaxed);
                lock(&self.conn).last_error = Some(format!("invalid frame: {e}"));
            }
        }
        let mut c = lock(&self.conn);
        c.last_msg_at = Some(now);
        if is_data {
            c.last_data_at = Some(now);
        }
        is_data
    }

    /// Write pending streamed candles (and sampled BBOs). Blocking: run it off the reactor.
    pub fn flush_blocking(&self) {
        let pending = std::mem::take(&mut lock(&self.candles).pending);
        let bbo: Vec<_> = {
            let mut q = lock(&self.bbo_queue);
            if q.is_empty() {
                Vec::new()
            } else {
                let n = q.len();
                q.drain(n)
            }
        };
        if !pending.is_empty() {
            let mut by_iv: HashMap<String, Vec<candles::Write>> = HashMap::new();
            for ((_, iv, _), c) in pending {
                by_iv.entry(iv).or_default().push(candles::Write { candle: c, authoritative: false });
            }
            for (iv, rows) in by_iv {
                let res = lock(&self.db).upsert(&iv, &rows);
                match res {
                    Ok(_) => {
                        self.stats.candle_rows_flushed.fetch_add(rows.len() as u64, Relaxed);
                        let mut cs = lock(&self.candles);
                        for w in &rows {
                            if let Some(ks) = cs.keys.get_mut(&(w.candle.symbol.clone(), iv.clone())) {
                                ks.bump_latest(w.candle.t, w.candle.t_close);
                            }
                        }
                    }
                    Err(e) => {
                        self.stats.db_errors.fetch_add(1, Relaxed);
                        crate::log(1, &format!("candle flush to {iv} failed: {e}; re-reading over REST"));
                        let now = Instant::now();
                        let mut cs = lock(&self.candles);
                        for w in &rows {
                            if let Some(ks) = cs.keys.get_mut(&(w.candle.symbol.clone(), iv.clone())) {
                                ks.need(w.candle.t, now + Duration::from_secs(1), true);
                            }
                        }
                    }
                }
            }
            self.stats.candle_flushes.fetch_add(1, Relaxed);
        }
        if let (Some(path), false) = (&self.cfg.bbo_db, bbo.is_empty()) {
            match write_bbo(path, &bbo, self.cfg.bbo_retention) {
                Ok(()) => {
                    self.stats.bbo_snapshots_written.fetch_add(bbo.len() as u64, Relaxed);
                }
                Err(e) => {
                    self.stats.db_errors.fetch_add(1, Relaxed);
                    crate::log(1, &format!("bbo snapshot write failed: {e}"));
                }
            }
        }
    }
}

fn write_bbo(
    path: &std::path::Path,
    rows: &[(String, i64, f64, f64)],
    retention: Duration,
) -> rusqlite::Result<()> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut c = rusqlite::Connection::open(path)?;
    c.busy_timeout(Duration::from_secs(30))?;
    c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    c.execute_batch(
        "PRAGMA synchronous=NORMAL;
         CREATE TABLE IF NOT EXISTS bbo_snapshots (symbol TEXT NOT NULL, ts_ms INTEGER NOT NULL, bid REAL,
           ask REAL, mid REAL, updated_at TEXT, PRIMARY KEY (symbol, ts_ms));",
    )?;
    let stamp = candles::iso_utc(candles::now_ms());
    let tx = c.transaction()?;
    {
        let mut st = tx.prepare_cached(
            "INSERT OR REPLACE INTO bbo_snapshots (symbol, ts_ms, bid, ask, mid, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (s, ts, b, a) in rows {
            st.execute(rusqlite::params![s, ts, b, a, (b + a) / 2.0, stamp])?;
        }
        let horizon = rows.iter().map(|r| r.1).max().unwrap_or(0) - retention.as_millis() as i64;
        tx.execute("DELETE FROM bbo_snapshots WHERE ts_ms < ?1", [horizon])?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn push_unseen_keeps_new_and_keyless_events_once() {
        let (mut seen, mut out) = (Dedupe::new(10), Bounded::new(10));
        let a = json!({"time": 1, "coin": "BTC"});
        let b = json!({"time": 1, "coin": "ETH"});
        let keyless = json!({"coin": "BTC"});
        let key = |e: &Value| e.get("time").map(|_| timed_key(e, "coin"));
        push_unseen(&mut seen, &mut out, vec![a.clone(), b.clone(), a.clone()], key);
        push_unseen(&mut seen, &mut out, vec![b.clone(), keyless.clone(), keyless.clone()], key);
        assert_eq!(out.drain(10), vec![a, b, keyless.clone(), keyless]);
        assert_eq!(timed_key(&json!({}), "hash"), (0, String::new()));
    }
}
