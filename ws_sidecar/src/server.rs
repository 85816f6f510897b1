//! The Unix-socket service: one task per client; newline-delimited JSON requests.

use crate::candles;
use crate::config::{interval_ms, is_address};
use crate::request::{self, err_line, ok_line, Params, Request, MAX_LINE};
use crate::state::{lock, wall_ns, Client, Shared};
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(sh: Arc<Shared>, listener: UnixListener) {
    let mut shutdown = sh.shutdown.subscribe();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    sh.stats.sock_connections.fetch_add(1, Relaxed);
                    tokio::spawn(client(sh.clone(), stream));
                }
                Err(e) => {
                    crate::log(1, &format!("accept: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

async fn send(sh: &Shared, wr: &mut tokio::net::unix::OwnedWriteHalf, line: &[u8]) -> bool {
    match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(line)).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            sh.stats.sock_write_timeouts.fetch_add(1, Relaxed);
            false
        }
    }
}

async fn client(sh: Arc<Shared>, stream: UnixStream) {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let mut line: Vec<u8> = Vec::new();
    let mut discarding = false;
    let mut shutdown = sh.shutdown.subscribe();
    loop {
        let buf = tokio::select! {
            r = rd.fill_buf() => match r {
                Ok(b) if !b.is_empty() => b,
                _ => return,
            },
            _ = shutdown.changed() => return,
        };
        match buf.iter().position(|&b| b == b'\n') {
            Some(pos) => {
                if !discarding {
                    line.extend_from_slice(&buf[..pos]);
                }
                rd.consume(pos + 1);
                if discarding {
                    discarding = false;
                    continue;
                }
                if line.len() > MAX_LINE {
                    sh.stats.sock_oversized.fetch_add(1, Relaxed);
                    if !send(&sh, &mut wr, &err_line(&json!(0), "request too large (over 1 MiB)")).await {
                        return;
                    }
                } else if !line.iter().all(u8::is_ascii_whitespace) {
                    let out = handle(&sh, &line).await;
                    if !send(&sh, &mut wr, &out).await {
                        return;
                    }
                }
                line.clear();
                if line.capacity() > 256 * 1024 {
                    line = Vec::new();
                }
            }
            None => {
                let n = buf.len();
                if !discarding {
                    line.extend_from_slice(buf);
                }
                rd.consume(n);
                if !discarding && line.len() > MAX_LINE {
                    sh.stats.sock_oversized.fetch_add(1, Relaxed);
                    discarding = true;
                    line = Vec::new();
                    if !send(&sh, &mut wr, &err_line(&json!(0), "request too large (over 1 MiB)")).await {
                        return;
                    }
                }
            }
        }
    }
}

async fn handle(sh: &Arc<Shared>, line: &[u8]) -> Vec<u8> {
    sh.stats.sock_requests.fetch_add(1, Relaxed);
    let req = match request::parse(line) {
        Ok(r) => r,
        Err(e) => {
            sh.stats.sock_bad_requests.fetch_add(1, Relaxed);
            return e;
        }
    };
    match dispatch(sh, &req).await {
        Ok(v) => ok_line(&req.id, v),
        Err(e) => {
            sh.stats.sock_bad_requests.fetch_add(1, Relaxed);
            err_line(&req.id, &e)
        }
    }
}

fn age_s(at: Option<Instant>) -> Value {
    at.map(|t| json!(t.elapsed().as_secs_f64())).unwrap_or(Value::Null)
}

fn interval_param(p: &Params, default: &str) -> Result<String, String> {
    let iv = p.str_opt("interval")?.unwrap_or_else(|| default.to_string());
    interval_ms(&iv).ok_or_else(|| format!("unknown interval {iv:?}"))?;
    Ok(iv)
}

fn symbol_ok(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 64 || s.chars().any(|c| c.is_control() || c == ',') {
        return Err(format!("bad symbol {s:?}"));
    }
    Ok(())
}

async fn dispatch(sh: &Arc<Shared>, req: &Request) -> Result<Value, String> {
    let p = Params(&req.params);
    match req.method.as_str() {
        "ensure_started" => ensure_started(sh, &p),
        "restart" => {
            sh.restart.notify_one();
            Ok(json!({"restarting": true}))
        }
        "health" => Ok(health(sh, &p)?),
        "ws_stats" => Ok(ws_stats(sh)),
        "get_mids" => Ok(mids(sh, &p, false)?),
        "wait_mids" => wait_mids(sh, &p).await,
        "get_mid" => {
            let s = p.str_req("symbol")?;
            let max_age = p.f64_opt("max_age_s")?;
            let m = lock(&sh.market);
            Ok(match m.mids.get(&s) {
                Some((px, at)) if max_age.is_none_or(|a| at.elapsed().as_secs_f64() <= a) => {
                    json!({"symbol": s, "mid": px, "age_s": at.elapsed().as_secs_f64()})
                }
                _ => Value::Null,
            })
        }
        "get_bbo" => {
            let s = p.str_req("symbol")?;
            let max_age = p.f64_opt("max_age_s")?;
            let m = lock(&sh.market);
            Ok(match m.bbo.get(&s) {
                Some(b) if max_age.is_none_or(|a| b.at.elapsed().as_secs_f64() <= a) => bbo_json(&s, b),
                _ => Value::Null,
            })
        }
        "candles_ready" => {
            let syms = p.symbols("symbols")?.unwrap_or_default();
            let iv = interval_param(&p, "1h")?;
            let cs = lock(&sh.candles);
            let not_ready: Vec<&String> = syms
                .iter()
                .filter(|s| !cs.keys.get(&((*s).clone(), iv.clone())).is_some_and(|k| k.ready()))
                .collect();
            Ok(json!({"ready": not_ready.is_empty(), "not_ready": not_ready, "interval": iv}))
        }
        "candles_health" => {
            let syms = p.symbols("symbols")?.unwrap_or_default();
            let iv = interval_param(&p, "1h")?;
            let cs = lock(&sh.candles);
            let mut out = Map::new();
            for s in syms {
                let v = match cs.keys.get(&(s.clone(), iv.clone())) {
                    Some(k) => json!({
                        "ready": k.ready(), "watched": true, "latest_t": k.latest.map(|l| l.0),
                        "live_t": k.live_t, "backfill_pending_from": k.need_from, "backfill_in_flight": k.in_flight,
                        "ws_age_s": age_s(k.last_ws_at), "backfill_failures": k.failures,
                    }),
                    None => json!({"ready": false, "watched": false}),
                };
                out.insert(s, v);
            }
            Ok(Value::Object(out))
        }
        "get_latest_candle_times" => {
            let s = p.str_req("symbol")?;
            let iv = interval_param(&p, "1h")?;
            let latest = latest_times(sh, &s, &iv).await?;
            Ok(json!({"symbol": s, "interval": iv, "t": latest.map(|l| l.0), "t_close": latest.map(|l| l.1)}))
        }
        "get_last_closed_candle_times" => {
            let s = p.str_req("symbol")?;
            let iv = interval_param(&p, "1h")?;
            let grace = p.u64_opt("grace_ms")?.unwrap_or(0) as i64;
            let ivm = interval_ms(&iv).unwrap_or(60_000);
            let latest = latest_times(sh, &s, &iv).await?;
            let live = lock(&sh.candles).keys.get(&(s.clone(), iv.clone())).and_then(|k| k.live_t);
            let now = candles::now_ms();
            // The newest stored bar is closed once a later bar is streamed or its close time (plus
            // grace) has passed on the wall clock; otherwise the one before it is the last closed.
            let closed = latest.map(|(t, tc)| {
                if live.is_some_and(|l| l > t) || tc + grace < now {
                    (t, tc)
                } else {
                    (t - ivm, t - 1)
                }
            });
            Ok(json!({"symbol": s, "interval": iv, "t": closed.map(|l| l.0), "t_close": closed.map(|l| l.1)}))
        }
        "drain_user_fills" => Ok(drain(sh, &p, |u| &mut u.fills)?),
        "drain_order_updates" => Ok(drain(sh, &p, |u| &mut u.order_updates)?),
        "drain_user_fundings" => Ok(drain(sh, &p, |u| &mut u.fundings)?),
        "drain_user_ledger_updates" => Ok(drain(sh, &p, |u| &mut u.ledger)?),
        other => Err(format!("unknown method {other:?}")),
    }
}

async fn latest_times(sh: &Arc<Shared>, s: &str, iv: &str) -> Result<Option<(i64, i64)>, String> {
    let mem = lock(&sh.candles).keys.get(&(s.to_string(), iv.to_string())).and_then(|k| k.latest);
    if mem.is_some() {
        return Ok(mem);
    }
    let db = sh.db.clone();
    let (s2, i2) = (s.to_string(), iv.to_string());
    tokio::task::spawn_blocking(move || lock(&db).latest(&s2, &i2))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("db: {e}"))
}

fn ensure_started(sh: &Arc<Shared>, p: &Params) -> Result<Value, String> {
    let id = p.str_opt("client_id")?.unwrap_or_else(|| "default".to_string());
    let symbols = p.symbols("symbols")?.unwrap_or_default();
    if symbols.len() > 1000 {
        return Err("too many symbols (max 1000)".into());
    }
    for s in &symbols {
        symbol_ok(s)?;
    }
    let interval = interval_param(p, "1h")?;
    let candle_limit = p.u64_opt("candle_limit")?.unwrap_or(0).min(5000) as i64;
    if let Some(u) = p.str_opt("user")? {
        let u = u.to_lowercase();
        if !is_address(&u) {
            return Err(format!("bad user address {u:?}"));
        }
        let mut cur = lock(&sh.user);
        match cur.as_ref() {
            Some(existing) if *existing != u => {
                return Err(format!("the sidecar serves user {existing}; restart it to change users"))
            }
            Some(_) => {}
            None => *cur = Some(u),
        }
    }
    let changed = {
        let mut clients = lock(&sh.clients);
        let prev = clients.insert(
            id.clone(),
            Client {
                symbols: symbols.clone(),
                interval: interval.clone(),
                candle_limit,
                last_seen: Instant::now(),
            },
        );
        prev.is_none_or(|c| c.symbols != symbols || c.interval != interval || c.candle_limit != candle_limit)
    };
    if changed {
        sh.sync_keys();
        sh.subs_changed.notify_one();
        sh.backfill_wake.notify_one();
    }
    let connected = lock(&sh.conn).connected;
    let mut out = json!({
        "client_id": id, "symbols": symbols, "interval": interval, "candle_limit": candle_limit,
        "connected": connected, "ttl_s": sh.cfg.client_ttl.as_secs(),
    });
    if let Value::Object(m) = &mut out {
        m.extend(identity(sh));
    }
    Ok(out)
}

/// Which venue, account and candle directory this sidecar serves: a client refuses a sidecar that
/// streams another venue, and says so when it reads candles from another directory.
fn identity(sh: &Shared) -> Map<String, Value> {
    let venue_ms = sh.venue_ms.load(Relaxed);
    let mut m = Map::new();
    m.insert("venue".into(), json!(sh.cfg.exchange_url));
    m.insert("ws_url".into(), json!(crate::config::ws_url(&sh.cfg.exchange_url)));
    m.insert("user".into(), json!(*lock(&sh.user)));
    m.insert("candles_dir".into(), json!(sh.candles_dir_abs.to_string_lossy()));
    m.insert("venue_time_ms".into(), if venue_ms > 0 { json!(venue_ms) } else { Value::Null });
    m
}

/// Drop clients not seen within the TTL; returns true when the watch list changed.
pub fn expire_clients(sh: &Shared) -> bool {
    let ttl = sh.cfg.client_ttl;
    let mut clients = lock(&sh.clients);
    let before = clients.len();
    clients.retain(|_, c| c.last_seen.elapsed() <= ttl);
    clients.len() != before
}

fn bbo_json(sym: &str, b: &crate::state::BboEntry) -> Value {
    json!({
        "symbol": sym,
        "bid": b.bid.map(|x| x.0), "bid_sz": b.bid.map(|x| x.1),
        "ask": b.ask.map(|x| x.0), "ask_sz": b.ask.map(|x| x.1),
        "time": b.time, "age_s": b.at.elapsed().as_secs_f64(),
    })
}

fn mids(sh: &Shared, p: &Params, timed_out: bool) -> Result<Value, String> {
    let syms = p.symbols("symbols")?;
    let max_age = p.f64_opt("max_age_s")?;
    let m = lock(&sh.market);
    let fresh = |at: &Instant| max_age.is_none_or(|a| at.elapsed().as_secs_f64() <= a);
    let mut mids = Map::new();
    let mut bbo = Map::new();
    match &syms {
        Some(list) => {
            for s in list {
                if let Some((px, at)) = m.mids.get(s) {
                    if fresh(at) {
                        mids.insert(s.clone(), json!(px));
                    }
                }
                if let Some(b) = m.bbo.get(s) {
                    if fresh(&b.at) {
                        bbo.insert(s.clone(), bbo_json(s, b));
                    }
                }
            }
        }
        None => {
            for (s, (px, at)) in &m.mids {
                if fresh(at) {
                    mids.insert(s.clone(), json!(px));
                }
            }
            for (s, b) in &m.bbo {
                if fresh(&b.at) {
                    bbo.insert(s.clone(), bbo_json(s, b));
                }
            }
        }
    }
    Ok(json!({
        "mids": mids, "mids_age_s": age_s(m.mids_at), "mids_seq": m.mids_seq, "mids_recv_ns": m.mids_recv_ns,
        "bbo": bbo, "bbo_seq": m.bbo_seq, "bbo_recv_ns": m.bbo_recv_ns,
        "timed_out": timed_out, "now_ns": wall_ns(),
    }))
}

async fn wait_mids(sh: &Arc<Shared>, p: &Params<'_>) -> Result<Value, String> {
    sh.stats.wait_mids_calls.fetch_add(1, Relaxed);
    let after = p.u64_opt("after_seq")?.unwrap_or(0);
    let after_bbo = p.u64_opt("after_bbo_seq")?;
    let timeout_ms = p.u64_opt("timeout_ms")?.unwrap_or(25_000).min(120_000);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    let mut rx = sh.seq_tx.subscribe();
    let mut shutdown = sh.shutdown.subscribe();
    loop {
        rx.borrow_and_update();
        let newer = {
            let m = lock(&sh.market);
            m.mids_seq > after || after_bbo.is_some_and(|b| m.bbo_seq > b)
        };
        if newer {
            return mids(sh, p, false);
        }
        tokio::select! {
            r = rx.changed() => { if r.is_err() { return mids(sh, p, true); } }
            _ = tokio::time::sleep_until(deadline) => return mids(sh, p, true),
            _ = shutdown.changed() => return Err("shutting down".into()),
        }
    }
}

fn drain(
    sh: &Shared,
    p: &Params,
    pick: impl Fn(&mut crate::state::UserState) -> &mut crate::queues::Bounded<Value>,
) -> Result<Value, String> {
    let max = p.u64_opt("max_items")?.unwrap_or(500).clamp(1, 100_000) as usize;
    let mut u = lock(&sh.user_state);
    let q = pick(&mut u);
    let items = q.drain(max);
    Ok(json!({"items": items, "remaining": q.len(), "dropped": q.dropped}))
}

fn health(sh: &Shared, p: &Params) -> Result<Value, String> {
    let syms = p.symbols("symbols")?.unwrap_or_default();
    let iv = interval_param(p, "1h")?;
    let c = lock(&sh.conn);
    let half = sh.cfg.stale_after / 2;
    let (mids_age, bbo_age, mids_old) = {
        let m = lock(&sh.market);
        // Mids older than half the stale bound are stale even while other frames still arrive.
        let mids_old = m.mids_at.is_some_and(|t| t.elapsed() > half);
        let bbo_age = syms
            .iter()
            .filter_map(|s| m.bbo.get(s).map(|b| b.at.elapsed().as_secs_f64()))
            .fold(None, |acc: Option<f64>, x| Some(acc.map_or(x, |a| a.max(x))));
        (age_s(m.mids_at), bbo_age, mids_old)
    };
    let stale = c.connected && (c.last_data_at.is_some_and(|t| t.elapsed() > half) || mids_old);
    let candle_age = {
        let cs = lock(&sh.candles);
        syms.iter()
            .filter_map(|s| cs.keys.get(&(s.clone(), iv.clone())).and_then(|k| k.last_ws_at))
            .map(|t| t.elapsed().as_secs_f64())
            .fold(None, |acc: Option<f64>, x| Some(acc.map_or(x, |a| a.max(x))))
    };
    let u = lock(&sh.user_state);
    let mut out = json!({
        "ok": c.connected && !stale,
        "version": env!("CARGO_PKG_VERSION"),
        "connected": c.connected,
        "stale": stale,
        "ws_connect_attempt": c.connect_attempts,
        "connects": c.connects,
        "disconnects": c.disconnects,
        "stale_reconnects": c.stale_reconnects,
        "last_error": c.last_error,
        "last_close": c.last_close,
        "last_venue_error": c.last_sub_error,
        "last_msg_age_s": age_s(c.last_msg_at),
        "last_data_age_s": age_s(c.last_data_at),
        "connected_for_s": age_s(c.connected_since),
        "mids_age_s": mids_age,
        "bbo_age_s": bbo_age,
        "candle_age_s": candle_age,
        "incoming_drops": u.fills.dropped + u.order_updates.dropped + u.fundings.dropped + u.ledger.dropped,
        "uptime_s": sh.started.elapsed().as_secs_f64(),
        "stale_after_s": half.as_secs_f64(),
    });
    drop(u);
    drop(c);
    if let Value::Object(m) = &mut out {
        m.extend(identity(sh));
    }
    Ok(out)
}

fn ws_stats(sh: &Shared) -> Value {
    let mut m = sh.stats.to_json();
    let c = lock(&sh.conn);
    m.insert("connected".into(), json!(c.connected));
    m.insert("connects".into(), json!(c.connects));
    m.insert("disconnects".into(), json!(c.disconnects));
    m.insert("stale_reconnects".into(), json!(c.stale_reconnects));
    m.insert("active_subscriptions".into(), json!(c.active_subs));
    m.insert("pending_subscriptions".into(), json!(c.pending_subs));
    drop(c);
    let u = lock(&sh.user_state);
    let q =
        |b: &crate::queues::Bounded<Value>| json!({"len": b.len(), "dropped": b.dropped, "pushed": b.pushed});
    m.insert(
        "queues".into(),
        json!({
            "user_fills": q(&u.fills), "order_updates": q(&u.order_updates),
            "user_fundings": q(&u.fundings), "ledger_updates": q(&u.ledger),
        }),
    );
    m.insert("duplicate_fills".into(), json!(u.fill_seen.duplicates));
    m.insert("fills_remembered".into(), json!(u.fill_seen.len()));
    drop(u);
    let (pending, keys) = {
        let cs = lock(&sh.candles);
        (cs.pending.len(), cs.keys.len())
    };
    m.insert("candles_pending".into(), json!(pending));
    m.insert("candle_pairs".into(), json!(keys));
    m.insert("clients".into(), json!(lock(&sh.clients).len()));
    let bq = lock(&sh.bbo_queue);
    m.insert("bbo_queue".into(), json!({"len": bq.len(), "dropped": bq.dropped}));
    drop(bq);
    m.insert("uptime_s".into(), json!(sh.started.elapsed().as_secs_f64()));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Parsed};

    fn shared(args: &[&str]) -> Arc<Shared> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match Config::from_sources(&|_| None, &args) {
            Ok(Parsed::Run(c)) => Shared::new(*c),
            _ => panic!("config"),
        }
    }

    fn health_of(sh: &Shared) -> Value {
        health(sh, &Params(&Map::new())).unwrap()
    }

    #[test]
    fn health_says_which_venue_user_and_candle_dir() {
        let dir = std::env::temp_dir().join(format!("aiq-sidecar-identity-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let user = format!("0x{}", "ab".repeat(20));
        let sh = shared(&[
            "--exchange-url",
            "http://127.0.0.1:35002/",
            "--user",
            &user,
            "--candles-dir",
            dir.to_str().unwrap(),
        ]);
        let h = health_of(&sh);
        assert_eq!(h["venue"], "http://127.0.0.1:35002");
        assert_eq!(h["ws_url"], "ws://127.0.0.1:35002/ws");
        assert_eq!(h["user"], user.as_str());
        assert_eq!(h["candles_dir"], std::fs::canonicalize(&dir).unwrap().to_string_lossy().as_ref());
        assert!(h["venue_time_ms"].is_null());
        sh.venue_ms.store(1_700_000_000_000, Relaxed);
        assert_eq!(health_of(&sh)["venue_time_ms"], 1_700_000_000_000i64);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn old_mids_are_stale_while_other_frames_still_arrive() {
        let sh = shared(&["--stale-secs", "30"]);
        {
            let mut c = lock(&sh.conn);
            c.connected = true;
            c.last_data_at = Some(Instant::now()); // candles or BBO still flowing
        }
        lock(&sh.market).mids_at = Some(Instant::now());
        let h = health_of(&sh);
        assert_eq!((h["stale"].as_bool(), h["ok"].as_bool()), (Some(false), Some(true)));
        lock(&sh.market).mids_at = Instant::now().checked_sub(Duration::from_secs(16));
        let h = health_of(&sh);
        assert_eq!((h["stale"].as_bool(), h["ok"].as_bool()), (Some(true), Some(false)));
        assert_eq!(h["stale_after_s"], 15.0);
    }
}
