//! The venue WebSocket: connect, subscribe (throttled), ping, detect a stale stream, reconnect with
//! jittered exponential backoff.

use crate::config::ws_url;
use crate::frame;
use crate::state::{lock, wall_ns, Shared};
use crate::subs::SubManager;
use futures_util::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::{sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;

/// Reconnect delay after `failures` consecutive failures: `min * 2^(failures-1)`, capped at `max`,
/// with a uniform jitter over its upper half. `r` is a random number in [0, 1).
pub fn backoff(failures: u32, min: Duration, max: Duration, r: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let base = min.saturating_mul(1u32 << exp).min(max);
    base.mul_f64(0.5 + 0.5 * r.clamp(0.0, 1.0))
}

/// A small xorshift generator for jitter (no cryptographic need).
pub struct Jitter(u64);

impl Jitter {
    pub fn new() -> Self {
        Jitter(wall_ns() | 1)
    }
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub async fn run(sh: Arc<Shared>) {
    let url = ws_url(&sh.cfg.exchange_url);
    let mut shutdown = sh.shutdown.subscribe();
    let mut failures = 0u32;
    let mut rng = Jitter::new();
    loop {
        if sh.is_shutting_down() {
            return;
        }
        lock(&sh.conn).connect_attempts += 1;
        let reason =
            match timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(url.as_str())).await {
                Ok(Ok((ws, _))) => {
                    let began = Instant::now();
                    let (reason, got_data) = session(&sh, ws).await;
                    if got_data || began.elapsed() > Duration::from_secs(30) {
                        failures = 0;
                    }
                    let mut c = lock(&sh.conn);
                    c.connected = false;
                    c.connected_since = None;
                    c.disconnects += 1;
                    c.last_close = Some(reason.clone());
                    reason
                }
                Ok(Err(e)) => {
                    let r = format!("connect {url}: {e}");
                    lock(&sh.conn).last_error = Some(r.clone());
                    r
                }
                Err(_) => {
                    let r = format!("connect {url}: timed out");
                    lock(&sh.conn).last_error = Some(r.clone());
                    r
                }
            };
        if sh.is_shutting_down() {
            return;
        }
        failures += 1;
        let delay = backoff(failures, sh.cfg.reconnect_min, sh.cfg.reconnect_max, rng.next_f64());
        crate::log(2, &format!("websocket down ({reason}); reconnecting in {} ms", delay.as_millis()));
        tokio::select! {
            _ = sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One connection, until it fails. Returns the reason and whether any data arrived.
async fn session(sh: &Arc<Shared>, ws: Ws) -> (String, bool) {
    let (mut sink, mut stream) = ws.split();
    {
        let mut c = lock(&sh.conn);
        c.connected = true;
        c.connected_since = Some(Instant::now());
        c.connects += 1;
        c.last_data_at = Some(Instant::now());
    }
    crate::log(2, "websocket connected");
    sh.on_connected();
    let mut shutdown = sh.shutdown.subscribe();
    let mut subs = SubManager::default();
    let mut outbox: VecDeque<String> = subs.sync(&sh.wanted_subs()).into();
    let mut next_send = tokio::time::Instant::now();
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + sh.cfg.ping_every, sh.cfg.ping_every);
    let mut check = tokio::time::interval(Duration::from_millis(250));
    let mut last_data = Instant::now();
    let mut got_data = false;
    let cfg = &sh.cfg;
    let reason = loop {
        {
            let mut c = lock(&sh.conn);
            c.active_subs = subs.active.len();
            c.pending_subs = outbox.len();
        }
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                let _ = timeout(Duration::from_secs(1), sink.send(Message::Close(None))).await;
                break "shutdown".to_string();
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let recv = wall_ns();
                    sh.stats.frames.fetch_add(1, Relaxed);
                    sh.stats.bytes.fetch_add(t.len() as u64, Relaxed);
                    if sh.apply(frame::decode(t.as_str()), recv) {
                        last_data = Instant::now();
                        got_data = true;
                    }
                }
                Some(Ok(Message::Ping(_))) => {
                    let _ = sink.flush().await;
                }
                Some(Ok(Message::Close(f))) => break format!("closed by venue: {}", f.map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_default()),
                Some(Ok(_)) => {}
                Some(Err(e)) => break format!("read: {e}"),
                None => break "stream ended".to_string(),
            },
            _ = sleep_until(next_send), if !outbox.is_empty() => {
                if let Some(m) = outbox.pop_front() {
                    if let Err(e) = sink.send(Message::Text(m.into())).await {
                        break format!("send: {e}");
                    }
                    sh.stats.subscribe_sent.fetch_add(1, Relaxed);
                }
                next_send = tokio::time::Instant::now() + cfg.subscribe_gap;
            }
            _ = sh.subs_changed.notified() => {
                outbox.extend(subs.sync(&sh.wanted_subs()));
            }
            _ = ping.tick() => {
                if let Err(e) = sink.send(Message::Text(r#"{"method":"ping"}"#.into())).await {
                    break format!("ping: {e}");
                }
            }
            _ = check.tick() => {
                if last_data.elapsed() > cfg.stale_after {
                    lock(&sh.conn).stale_reconnects += 1;
                    let _ = timeout(Duration::from_secs(1), sink.send(Message::Close(None))).await;
                    break format!("stale: no data for {} ms", last_data.elapsed().as_millis());
                }
            }
            _ = sh.restart.notified() => {
                let _ = timeout(Duration::from_secs(1), sink.send(Message::Close(None))).await;
                break "restart requested".to_string();
            }
        }
    };
    (reason, got_data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        let min = Duration::from_millis(100);
        let max = Duration::from_millis(1000);
        assert_eq!(backoff(1, min, max, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(1, min, max, 0.0), Duration::from_millis(50));
        assert_eq!(backoff(3, min, max, 1.0), Duration::from_millis(400));
        assert_eq!(backoff(10, min, max, 1.0), max);
        assert_eq!(backoff(u32::MAX, min, max, 0.5), Duration::from_millis(750));
        let mut j = Jitter::new();
        for _ in 0..1000 {
            let r = j.next_f64();
            assert!((0.0..1.0).contains(&r));
        }
    }
}
