//! REST backfill over `/info candleSnapshot`: bootstrap of empty DBs, gap fills after reconnects and
//! detected holes, and confirmation of each bar after it closes. Chunked, rate-limited (a minimum
//! spacing between request starts) and bounded in concurrency.

use crate::candles::{self, Write};
use crate::config::interval_ms;
use crate::frame::parse_candle_snapshot;
use crate::http;
use crate::state::{lock, Shared};
use serde_json::json;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex as AsyncMutex, Semaphore};

pub async fn run(sh: Arc<Shared>) {
    let url = match http::parse_url(&sh.cfg.exchange_url) {
        Ok(u) => Arc::new(u),
        Err(e) => {
            crate::log(0, &format!("candle backfill disabled: {e}"));
            return;
        }
    };
    let sem = Arc::new(Semaphore::new(sh.cfg.backfill_concurrency));
    let spacing = Arc::new(AsyncMutex::new(tokio::time::Instant::now()));
    let mut shutdown = sh.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = sh.backfill_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = shutdown.changed() => return,
        }
        plan_new_keys(&sh).await;
        let now = Instant::now();
        let jobs: Vec<(String, String, i64, bool)> = {
            let mut cs = lock(&sh.candles);
            let mut out = Vec::new();
            for ((s, i), ks) in cs.keys.iter_mut() {
                if ks.in_flight || !ks.planned {
                    continue;
                }
                if let (Some(from), Some(due)) = (ks.need_from, ks.need_due) {
                    if due <= now {
                        ks.in_flight = true;
                        ks.in_flight_gap = ks.need_gap;
                        out.push((s.clone(), i.clone(), from, ks.need_gap));
                        ks.need_from = None;
                        ks.need_due = None;
                        ks.need_gap = false;
                    }
                }
            }
            out
        };
        for (sym, iv, from, gap) in jobs {
            let Ok(permit) = sem.clone().acquire_owned().await else { return };
            let (sh2, url2, sp) = (sh.clone(), url.clone(), spacing.clone());
            tokio::spawn(async move {
                let res = fill(&sh2, &url2, &sp, &sym, &iv, from).await;
                let mut cs = lock(&sh2.candles);
                if let Some(ks) = cs.keys.get_mut(&(sym.clone(), iv.clone())) {
                    ks.in_flight = false;
                    ks.in_flight_gap = false;
                    match res {
                        Ok(()) => {
                            ks.failures = 0;
                            ks.bootstrapped = true;
                        }
                        Err((resume, e)) => {
                            ks.failures += 1;
                            let wait = Duration::from_millis((500u64 << ks.failures.min(6)).min(30_000));
                            ks.need(resume, Instant::now() + wait, gap || !ks.bootstrapped);
                            crate::log(
                                1,
                                &format!(
                                    "backfill {sym} {iv} from {resume}: {e}; retry in {} ms",
                                    wait.as_millis()
                                ),
                            );
                        }
                    }
                }
                drop(cs);
                drop(permit);
                sh2.backfill_wake.notify_one();
            });
        }
    }
}

/// Read the DB for pairs not planned yet and decide where their backfill starts.
async fn plan_new_keys(sh: &Arc<Shared>) {
    let todo: Vec<(String, String, i64)> = lock(&sh.candles)
        .keys
        .iter()
        .filter(|(_, ks)| !ks.planned)
        .map(|((s, i), ks)| (s.clone(), i.clone(), ks.candle_limit))
        .collect();
    for (sym, iv, limit) in todo {
        let Some(ivm) = interval_ms(&iv) else { continue };
        let bars = sh.cfg.bootstrap_bars(&iv, limit);
        let window_start = candles::now_ms() - bars * ivm;
        let db = sh.db.clone();
        let (s2, i2) = (sym.clone(), iv.clone());
        let res = tokio::task::spawn_blocking(move || {
            let mut db = lock(&db);
            let times = db.times_since(&s2, &i2, window_start)?;
            let latest = db.latest(&s2, &i2)?;
            Ok::<_, rusqlite::Error>((times, latest))
        })
        .await;
        let (times, latest) = match res {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                sh.stats.db_errors.fetch_add(1, Relaxed);
                crate::log(1, &format!("planning {sym} {iv}: {e}"));
                continue;
            }
            Err(_) => continue,
        };
        let from = candles::plan_from(&times, ivm, window_start);
        let mut cs = lock(&sh.candles);
        if let Some(ks) = cs.keys.get_mut(&(sym.clone(), iv.clone())) {
            ks.planned = true;
            if let Some((t, tc)) = latest {
                ks.bump_latest(t, tc);
            }
            ks.need(from, Instant::now(), true);
        }
    }
}

/// Fetch `[from, now]` for one pair in chunks and upsert it. On failure, the open time to resume from.
async fn fill(
    sh: &Arc<Shared>,
    url: &http::Url,
    spacing: &AsyncMutex<tokio::time::Instant>,
    sym: &str,
    iv: &str,
    from: i64,
) -> Result<(), (i64, String)> {
    let ivm = interval_ms(iv).ok_or((from, "unknown interval".to_string()))?;
    // Never fewer than one request: the venue's clock may run ahead of ours (a stepped simulator).
    let to = sh.now_ms().max(from) + ivm;
    for (start, end) in candles::chunks(from, to, ivm, sh.cfg.backfill_chunk) {
        if sh.is_shutting_down() {
            return Err((start, "shutting down".into()));
        }
        {
            let mut next = spacing.lock().await;
            tokio::time::sleep_until(*next).await;
            *next = tokio::time::Instant::now() + sh.cfg.backfill_spacing;
        }
        sh.stats.backfill_requests.fetch_add(1, Relaxed);
        let body = json!({"type": "candleSnapshot", "req": {"coin": sym, "interval": iv, "startTime": start, "endTime": end}})
            .to_string();
        let resp = match http::post_json(url, "/info", &body, Duration::from_secs(15)).await {
            Ok(r) => r,
            Err(e) => {
                sh.stats.backfill_errors.fetch_add(1, Relaxed);
                return Err((start, e));
            }
        };
        if resp.status == 429 {
            sh.stats.backfill_rate_limited.fetch_add(1, Relaxed);
            return Err((start, "rate limited (429)".into()));
        }
        if resp.status != 200 {
            sh.stats.backfill_errors.fetch_add(1, Relaxed);
            let text = String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)]).to_string();
            return Err((start, format!("HTTP {}: {text}", resp.status)));
        }
        let text = String::from_utf8_lossy(&resp.body);
        let mut rows = match parse_candle_snapshot(&text) {
            Ok(r) => r,
            Err(e) => {
                sh.stats.backfill_errors.fetch_add(1, Relaxed);
                return Err((start, e));
            }
        };
        rows.retain(|c| c.symbol == sym && c.t >= start && c.t <= end);
        rows.sort_by_key(|c| c.t);
        let live_t = lock(&sh.candles).keys.get(&(sym.to_string(), iv.to_string())).and_then(|k| k.live_t);
        let last_t = rows.last().map(|c| c.t);
        // A bar followed by a later one, or older than the streamed live bar, is closed: the REST
        // row is final and overwrites. The newest bar may still be open: it must not overwrite a
        // newer streamed state of itself.
        let writes: Vec<Write> = rows
            .into_iter()
            .map(|mut c| {
                let authoritative = Some(c.t) != last_t || live_t.is_some_and(|l| c.t < l);
                c.interval = iv.to_string();
                Write { candle: c, authoritative }
            })
            .collect();
        let n = writes.len();
        let latest = writes.last().map(|w| (w.candle.t, w.candle.t_close));
        let db = sh.db.clone();
        let iv2 = iv.to_string();
        let res = tokio::task::spawn_blocking(move || lock(&db).upsert(&iv2, &writes)).await;
        match res {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                sh.stats.db_errors.fetch_add(1, Relaxed);
                return Err((start, format!("db: {e}")));
            }
            Err(e) => return Err((start, format!("db task: {e}"))),
        }
        sh.stats.backfill_rows.fetch_add(n as u64, Relaxed);
        if let Some((t, tc)) = latest {
            if let Some(ks) = lock(&sh.candles).keys.get_mut(&(sym.to_string(), iv.to_string())) {
                ks.bump_latest(t, tc);
            }
        }
    }
    Ok(())
}

/// Retention: delete bars older than each interval's horizon, except intervals listed in
/// `prune_disable` and pairs whose history the data layer imported (a `candle_meta` row).
pub fn prune_blocking(sh: &Shared) {
    let pairs: Vec<(String, String)> = lock(&sh.candles).keys.keys().cloned().collect();
    let now = candles::now_ms();
    for (sym, iv) in pairs {
        if sh.cfg.prune_disable.contains(&iv) {
            continue;
        }
        let Some(ivm) = interval_ms(&iv) else { continue };
        let Some(before) = candles::prune_before(now, crate::config::default_retention_days(&iv), ivm) else {
            continue;
        };
        let mut db = lock(&sh.db);
        match db.has_meta(&sym, &iv) {
            Ok(false) => match db.prune(&sym, &iv, before) {
                Ok(n) => {
                    sh.stats.rows_pruned.fetch_add(n as u64, Relaxed);
                }
                Err(e) => crate::log(1, &format!("prune {sym} {iv}: {e}")),
            },
            Ok(true) => {}
            Err(e) => crate::log(1, &format!("prune {sym} {iv}: {e}")),
        }
    }
}
